# shellcheck shell=bash disable=SC2153 # STATE, CACHE, ... come from common.sh
# Apache Kafka 4.x in KRaft mode, run straight from the Maven Central jars.
# Sourced by scripts/stack after lib/common.sh.

# Main classes (checked against the 4.1.1 jars: kafka_2.13 and kafka-tools).
KAFKA_MAIN_CLASS=kafka.Kafka
KAFKA_STORAGE_CLASS=kafka.tools.StorageTool
KAFKA_TOPIC_CLASS=org.apache.kafka.tools.TopicCommand

KAFKA_POM=$STACK_SCRIPTS/kafka/pom.xml
KAFKA_PROBE=$STACK_SCRIPTS/lib/kafka_probe.py
KAFKA_STATE=$STATE/kafka

kafka_home() { printf '%s/kafka-%s\n' "$CACHE" "$KAFKA_VERSION"; }
kafka_libs() { printf '%s/libs\n' "$(kafka_home)"; }

# Topics the project expects. Partition count of the data topics follows
# SLUICE_PARTITIONS; the internal ones are compacted single-partition logs.
kafka_topic_specs() {
	local p=${SLUICE_PARTITIONS:-6}
	if ! is_uint "$p" || ((p == 0)); then
		die "SLUICE_PARTITIONS must be a positive integer (got '$p')"
	fi
	printf '%s %s %s\n' \
		events.raw "$p" - \
		events.rejected "$p" - \
		sluice.keys 1 cleanup.policy=compact \
		sluice.plugins 1 cleanup.policy=compact \
		sluice.plugin-blobs 1 cleanup.policy=compact \
		sluice.schemas 1 cleanup.policy=compact
}

# Node n (1-based) listens on KAFKA_PORT + 100*(n-1) for clients and on
# the next port for the KRaft controller: 19092/19093, 19192/19193, ...
kafka_client_port() { printf '%s\n' $((KAFKA_PORT + 100 * ($1 - 1))); }
kafka_controller_port() { printf '%s\n' $((KAFKA_PORT + 100 * ($1 - 1) + 1)); }
# Data is kept per mode (and per port when not the default), because a
# KRaft log formatted for one quorum (voter ids and controller ports)
# cannot be reused by another.
kafka_mode_dir() {
	local suffix=""
	[[ $KAFKA_PORT == "$DEFAULT_KAFKA_PORT" ]] || suffix=-port-$KAFKA_PORT
	printf '%s/brokers-%s%s\n' "$KAFKA_STATE" "$BROKERS" "$suffix"
}
kafka_node_dir() { printf '%s/node-%s\n' "$(kafka_mode_dir)" "$1"; }
kafka_node_props() { printf '%s/server.properties\n' "$(kafka_node_dir "$1")"; }
kafka_node_log() { printf '%s/kafka-%s.log\n' "$LOG_DIR" "$1"; }
kafka_node_name() { if ((BROKERS == 1)); then echo kafka; else echo "kafka-$1"; fi; }

kafka_bootstrap() {
	local n out=()
	for ((n = 1; n <= BROKERS; n++)); do out+=("127.0.0.1:$(kafka_client_port "$n")"); done
	local IFS=,
	printf '%s\n' "${out[*]}"
}

kafka_voters() {
	local n out=()
	for ((n = 1; n <= BROKERS; n++)); do out+=("$n@127.0.0.1:$(kafka_controller_port "$n")"); done
	local IFS=,
	printf '%s\n' "${out[*]}"
}

# The pid file alone is not trusted: the process must be a java whose
# command line names this node's server.properties.
kafka_node_pid() { service_pid "kafka-$1" "$(kafka_node_props "$1")"; }

# ---------------------------------------------------------------- install --
java_major() {
	local v
	v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9.]*\).*/\1/p' | head -n 1)
	v=${v#1.} # "1.8.0" style
	printf '%s\n' "${v%%.*}"
}

kafka_require_tools() {
	local logfile=$CACHE/logs/apt-java.log
	if ! command -v java >/dev/null 2>&1 || (($(java_major) < 17)); then
		log "installing Java 17 (Kafka 4 needs Java 17+; log: $logfile)"
		mkdir -p "$CACHE/logs"
		apt_install "$logfile" openjdk-17-jre-headless || {
			show_log_tail "$logfile"
			die "could not install openjdk-17-jre-headless"
		}
	fi
	if ! command -v mvn >/dev/null 2>&1; then
		log "installing Maven (resolves the Kafka jars; log: $logfile)"
		mkdir -p "$CACHE/logs"
		apt_install "$logfile" maven || {
			show_log_tail "$logfile"
			die "could not install maven"
		}
	fi
}

# The jars are reused while the pom that produced them is unchanged.
kafka_stamp() { printf 'kafka=%s pom=%s\n' "$KAFKA_VERSION" "$(sha256sum "$KAFKA_POM" | cut -c1-16)"; }

kafka_installed() {
	local stamp
	stamp=$(kafka_home)/.complete
	[[ -f $stamp && "$(<"$stamp")" == "$(kafka_stamp)" ]]
}

kafka_install() {
	kafka_require_tools
	if kafka_installed; then
		log "kafka $KAFKA_VERSION jars cached in $(kafka_libs)"
		return 0
	fi
	with_lock "$CACHE/kafka.lock" kafka_install_locked
}

kafka_install_locked() {
	kafka_installed && return 0 # another process finished it meanwhile
	local home libs tmp logfile
	home=$(kafka_home) libs=$(kafka_libs) tmp=$(kafka_home)/libs.tmp.$$
	logfile=$CACHE/logs/mvn-kafka-$KAFKA_VERSION.log
	mkdir -p "$home" "$CACHE/logs" "$CACHE/m2"
	log "resolving Kafka $KAFKA_VERSION jars from Maven Central (log: $logfile)"
	rm -rf "$tmp"
	# -B: no colours/progress bars in the log. The local repo lives in the
	# cache so a fresh clone does not download ~60 MB again.
	if ! mvn -B -f "$KAFKA_POM" \
		-Dmaven.repo.local="$CACHE/m2" \
		-Dkafka.version="$KAFKA_VERSION" \
		dependency:copy-dependencies \
		-DoutputDirectory="$tmp" -DincludeScope=runtime >"$logfile" 2>&1; then
		rm -rf "$tmp"
		grep -E '^\[ERROR\]' "$logfile" | head -n 20 >&2 || true
		die "Maven could not resolve Kafka $KAFKA_VERSION (see $logfile)" \
			"is the version published? try another 4.x: SLUICE_KAFKA_VERSION=4.1.1 scripts/stack install"
	fi
	local jar
	for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar"; do
		[[ -f $tmp/$jar ]] || die "Maven finished but $jar is missing from $tmp (see $logfile)"
	done
	rm -rf "$libs"
	mv "$tmp" "$libs"
	kafka_stamp >"$home/.complete"
	info "$(find "$libs" -name '*.jar' | wc -l) jars in $libs"
}

# ---------------------------------------------------------------- configs --
# Kafka 4 logs through log4j2; the Maven artifacts ship no config, so we
# write our own: the broker logs to stdout (redirected to logs/kafka-N.log),
# the CLI tools log warnings to stderr only so their stdout stays clean.
kafka_write_log_configs() {
	mkdir -p "$KAFKA_STATE"
	cat >"$KAFKA_STATE/log4j2.properties" <<'EOF'
# generated by scripts/stack
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = STDOUT
# The per-request and state-change loggers are very chatty at INFO.
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
logger.netclient.name = org.apache.kafka.clients.NetworkClient
logger.netclient.level = warn
EOF
	cat >"$KAFKA_STATE/tools-log4j2.properties" <<'EOF'
# generated by scripts/stack
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
EOF
}

kafka_write_node_config() {
	local n=$1 rf=$BROKERS min_isr=1
	((BROKERS >= 3)) && min_isr=2
	local dir
	dir=$(kafka_node_dir "$n")
	mkdir -p "$dir/data"
	cat >"$dir/server.properties" <<EOF
# generated by scripts/stack; edits are overwritten on the next 'up'
# KRaft combined mode: each node is broker and controller.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(kafka_voters)
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$(kafka_client_port "$n"),CONTROLLER://127.0.0.1:$(kafka_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_client_port "$n")
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data

# Test-friendly defaults: topics are created explicitly by scripts/stack.
auto.create.topics.enable=false
num.partitions=${SLUICE_PARTITIONS:-6}
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
EOF
	# How long the controller waits for heartbeats before it fences a
	# broker. It also delays the restart of a broker that crashed (kill):
	# the new incarnation cannot register until the old session expired.
	local session=${SLUICE_KAFKA_SESSION_TIMEOUT_MS:-}
	if [[ -n $session ]]; then
		if ! is_uint "$session" || ((session < 1000)); then
			die "SLUICE_KAFKA_SESSION_TIMEOUT_MS must be a number of milliseconds >= 1000 (got '$session')"
		fi
		local heartbeat=$((session / 3 < 2000 ? session / 3 : 2000))
		printf 'broker.session.timeout.ms=%s\nbroker.heartbeat.interval.ms=%s\n' \
			"$session" "$heartbeat" >>"$dir/server.properties"
	fi
}

# Run one of Kafka's CLI classes. Short-lived JVM tuned for start-up time.
kafka_tool() {
	local class=$1
	shift
	java -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
		-Dlog4j2.configurationFile="$KAFKA_STATE/tools-log4j2.properties" \
		-cp "$(kafka_libs)/*" "$class" "$@"
}

# All nodes of one cluster share a cluster id, generated once per mode.
kafka_cluster_id() {
	local file
	file=$(kafka_mode_dir)/cluster.id
	mkdir -p "$(kafka_mode_dir)"
	if [[ ! -s $file ]]; then
		kafka_tool "$KAFKA_STORAGE_CLASS" random-uuid >"$file.tmp" ||
			die "kafka StorageTool random-uuid failed"
		mv "$file.tmp" "$file"
	fi
	tr -d '[:space:]' <"$file"
}

kafka_format_node() {
	local n=$1 cluster_id=$2 dir
	dir=$(kafka_node_dir "$n")
	# Static quorum (controller.quorum.voters), so no --standalone needed.
	kafka_tool "$KAFKA_STORAGE_CLASS" format --ignore-formatted \
		--cluster-id "$cluster_id" --config "$dir/server.properties" \
		>>"$(kafka_node_log "$n")" 2>&1
}

# ---------------------------------------------------------------- runtime --
kafka_probe() { python3 "$KAFKA_PROBE" "$@"; }

# The whole cluster serves clients when node 1 answers a Metadata request
# listing every broker (a broker is listed once it is registered and
# unfenced, i.e. ready to host replicas).
kafka_cluster_ready() {
	local count
	count=$(kafka_probe "127.0.0.1:$(kafka_client_port 1)" brokers 2>/dev/null) || return 1
	[[ $count == "$BROKERS" ]]
}

# kafka_start [--no-format] [NODE...]: start the given nodes (default: all)
# that are not running; does not wait (see kafka_wait, kafka_wait_node).
# --no-format (for `start`): a node must restart from existing data, never
# from a freshly formatted log.
kafka_start() {
	local n pid todo=() pids=() rc=0 logfile cluster_id item format=1 nodes=()
	if [[ ${1:-} == --no-format ]]; then
		format=0
		shift
	fi
	nodes=("$@")
	if ((${#nodes[@]} == 0)); then
		for ((n = 1; n <= BROKERS; n++)); do nodes+=("$n"); done
	fi
	kafka_write_log_configs
	for n in "${nodes[@]}"; do
		if pid=$(kafka_node_pid "$n"); then
			log "$(kafka_node_name "$n") already running (pid $pid)"
			continue
		fi
		require_free_port "$(kafka_client_port "$n")" "kafka node $n clients"
		require_free_port "$(kafka_controller_port "$n")" "kafka node $n controller"
		todo+=("$n")
	done
	((${#todo[@]})) || return 0

	for n in "${todo[@]}"; do
		kafka_write_node_config "$n"
		logfile=$(kafka_node_log "$n")
		[[ -f $logfile ]] && mv -f "$logfile" "$logfile.prev"
	done

	# Format new data dirs; one JVM per node, side by side.
	for n in "${todo[@]}"; do
		[[ -f $(kafka_node_dir "$n")/data/meta.properties ]] && continue
		((format)) || die "$(kafka_node_name "$n") has no data in $(kafka_node_dir "$n")/data" \
			"start only restarts a node that 'scripts/stack up' created; run: scripts/stack up"
		[[ -n ${cluster_id:-} ]] || cluster_id=$(kafka_cluster_id)
		log "formatting KRaft storage of kafka node $n (cluster id $cluster_id)"
		kafka_format_node "$n" "$cluster_id" &
		pids+=("$n=$!")
	done
	for item in "${pids[@]}"; do
		wait "${item#*=}" || {
			show_log_tail "$(kafka_node_log "${item%%=*}")" 20
			rc=1
		}
	done
	((rc == 0)) || die "formatting Kafka storage failed" \
		"if the data is from another Kafka version, wipe it: scripts/stack down --purge"

	for n in "${todo[@]}"; do
		log "starting $(kafka_node_name "$n") (Kafka $KAFKA_VERSION, KRaft) on 127.0.0.1:$(kafka_client_port "$n")"
		start_detached "kafka-$n" "$(kafka_node_log "$n")" "$(kafka_node_dir "$n")" \
			java "-Xms256m" "-Xmx${SLUICE_KAFKA_HEAP:-1g}" \
			-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
			-Djava.awt.headless=true \
			-Dlog4j2.configurationFile="$KAFKA_STATE/log4j2.properties" \
			-Dkafka.logs.dir="$LOG_DIR" \
			-cp "$(kafka_libs)/*" "$KAFKA_MAIN_CLASS" "$(kafka_node_props "$n")"
	done
}

kafka_wait() {
	local timeout=${SLUICE_STACK_TIMEOUT:-120} n pid deadline=$((SECONDS + ${SLUICE_STACK_TIMEOUT:-120}))
	log "waiting for kafka ($BROKERS broker(s)) to answer metadata requests"
	for ((n = 1; n <= BROKERS; n++)); do
		pid=$(kafka_node_pid "$n") || {
			show_log_tail "$(kafka_node_log "$n")"
			die "kafka node $n is not running; see $(kafka_node_log "$n")"
		}
		timeout=$((deadline - SECONDS))
		((timeout > 0)) || timeout=1
		if ! wait_for "kafka node $n" "$timeout" "$pid" "$(kafka_node_log "$n")" \
			kafka_probe "127.0.0.1:$(kafka_client_port "$n")" brokers; then
			kafka_stop stop || true
			die "kafka node $n did not answer within ${SLUICE_STACK_TIMEOUT:-120}s (stopped it again)"
		fi
	done
	if ! wait_for "kafka cluster" $((deadline - SECONDS > 0 ? deadline - SECONDS : 1)) "$pid" \
		"$(kafka_node_log 1)" kafka_cluster_ready; then
		kafka_stop stop || true
		die "kafka did not report $BROKERS registered broker(s) in time (stopped it again)"
	fi
	info "kafka answers on $(kafka_bootstrap)"
}

# kafka_wait_node N: wait until node N answers a Metadata request that
# lists itself (it is registered and unfenced). On timeout, stop that node
# only and fail.
kafka_wait_node() {
	local n=$1 name pid port timeout=${SLUICE_STACK_TIMEOUT:-120}
	name=$(kafka_node_name "$n") port=$(kafka_client_port "$n")
	pid=$(kafka_node_pid "$n") || {
		show_log_tail "$(kafka_node_log "$n")"
		die "$name is not running; see $(kafka_node_log "$n")"
	}
	log "waiting for $name to answer metadata requests on 127.0.0.1:$port"
	if ! wait_for "$name" "$timeout" "$pid" "$(kafka_node_log "$n")" kafka_node_lists_itself "$n"; then
		kafka_stop_nodes stop "$n" || true
		local hint
		hint="see $(kafka_node_log "$n")"
		((BROKERS == 1)) || hint="a majority of the $BROKERS controllers must run for a node to join; $hint"
		die "$name did not answer within ${timeout}s (stopped it again)" "$hint"
	fi
	info "$name answers on 127.0.0.1:$port"
}

kafka_node_lists_itself() {
	local ids
	ids=$(kafka_probe "127.0.0.1:$(kafka_client_port "$1")" ids 2>/dev/null) || return 1
	grep -qx "$1" <<<"$ids"
}

kafka_ensure_topics() {
	local existing name parts config current pids=() names=() i rc=0
	existing=$(kafka_probe "127.0.0.1:$(kafka_client_port 1)" topics) ||
		die "could not list Kafka topics"
	while read -r name parts config; do
		current=$(awk -v t="$name" '$1 == t { print $2 }' <<<"$existing")
		if [[ -n $current ]]; then
			[[ $current == "$parts" ]] ||
				warn "topic $name has $current partitions, wanted $parts (left as is; 'down --purge' recreates it)"
			continue
		fi
		local args=(--bootstrap-server "$(kafka_bootstrap)" --create --if-not-exists
			--topic "$name" --partitions "$parts" --replication-factor "$BROKERS")
		[[ $config == - ]] || args+=(--config "$config")
		local extra=""
		[[ $config == - ]] || extra=", $config"
		log "creating topic $name (partitions=$parts, replication=$BROKERS$extra)"
		# One JVM per topic; run them side by side to save start-up time.
		kafka_tool "$KAFKA_TOPIC_CLASS" "${args[@]}" >"$LOG_DIR/topic-$name.log" 2>&1 &
		pids+=($!) names+=("$name")
	done < <(kafka_topic_specs)
	for i in "${!pids[@]}"; do
		if ! wait "${pids[$i]}"; then
			show_log_tail "$LOG_DIR/topic-${names[$i]}.log" 20
			rc=1
		fi
	done
	((rc == 0)) || die "creating Kafka topics failed"
	info "topics: $(kafka_topic_specs | awk '{ print $1 }' | paste -sd ' ')"
}

# name=pid items of every running node of this state dir, including nodes
# of the other mode and nodes whose pid file got lost.
kafka_running_items() {
	local file pid seen=" "
	for file in "$PID_DIR"/kafka-*.pid; do
		[[ -f $file ]] || continue
		pid=$(<"$file")
		if proc_matches "$pid" "$KAFKA_STATE/"; then
			printf '%s=%s\n' "$(basename "$file" .pid)" "$pid"
			seen+="$pid "
		else
			rm -f "$file"
		fi
	done
	for pid in $(pids_matching "$KAFKA_MAIN_CLASS" "$KAFKA_STATE/"); do
		[[ $seen == *" $pid "* ]] && continue
		warn "found a kafka process of this stack without pid file (pid $pid)"
		printf 'kafka-orphan=%s\n' "$pid"
	done
}

# kafka_stop_timeout: seconds to wait after SIGTERM before SIGKILL. A
# broker's graceful shutdown waits (up to 5 minutes) for the controller
# quorum to acknowledge it; with only a minority of the 3 nodes running
# there is no quorum, so waiting longer than a moment is pointless.
kafka_stop_timeout() {
	local timeout=${SLUICE_STOP_TIMEOUT:-20} running=0 n
	if ((BROKERS > 1)); then
		for ((n = 1; n <= BROKERS; n++)); do
			kafka_node_pid "$n" >/dev/null && running=$((running + 1))
		done
		if ((running > 0 && running <= BROKERS / 2 && timeout > 3)); then
			warn "only $running of $BROKERS kafka nodes run: no controller quorum, so a graceful shutdown cannot complete; SIGKILL after 3 s"
			timeout=3
		fi
	fi
	printf '%s\n' "$timeout"
}

# kafka_stop [stop|quiet|kill]: stop every kafka node of this state dir
# (SIGTERM, SIGKILL after SLUICE_STOP_TIMEOUT), or kill them with SIGKILL at
# once. Data is kept. quiet = stop, but say nothing if none runs.
kafka_stop() {
	local items rc=0 mode=${1:-stop}
	mapfile -t items < <(kafka_running_items)
	if ((${#items[@]} == 0)); then
		[[ $mode == quiet ]] || log "kafka is not running"
	elif [[ $mode == kill ]]; then
		kill_pids "${items[@]}" || rc=1
	else
		stop_pids "$(kafka_stop_timeout)" "${items[@]}" || rc=1
	fi
	rm -f "$PID_DIR"/kafka-*.pid
	return "$rc"
}

# name=pid items of the given running nodes of the current mode, including
# a node whose pid file got lost.
kafka_node_items() {
	local n pid seen
	for n; do
		seen=" "
		if pid=$(kafka_node_pid "$n"); then
			printf '%s=%s\n' "$(kafka_node_name "$n")" "$pid"
			seen+="$pid "
		fi
		for pid in $(pids_matching "$KAFKA_MAIN_CLASS" "$(kafka_node_props "$n")"); do
			[[ $seen == *" $pid "* ]] && continue
			warn "found $(kafka_node_name "$n") running without pid file (pid $pid)"
			printf '%s=%s\n' "$(kafka_node_name "$n")" "$pid"
		done
	done
}

# kafka_stop_nodes stop|kill NODE...: stop (SIGTERM, then SIGKILL after
# SLUICE_STOP_TIMEOUT) or kill (SIGKILL) the given nodes; data is kept.
kafka_stop_nodes() {
	local mode=$1 items rc=0 n
	shift
	mapfile -t items < <(kafka_node_items "$@")
	if ((${#items[@]} == 0)); then
		for n; do log "$(kafka_node_name "$n") is not running"; done
		return 0
	fi
	if [[ $mode == kill ]]; then
		kill_pids "${items[@]}" || rc=1
	else
		stop_pids "$(kafka_stop_timeout)" "${items[@]}" || rc=1
	fi
	for n; do
		kafka_node_pid "$n" >/dev/null || rm -f "$(pid_file "kafka-$n")"
	done
	return "$rc"
}

# Status lines; returns non-zero if any node is down or not answering.
kafka_status() {
	local n pid port state rc=0 detail
	for ((n = 1; n <= BROKERS; n++)); do
		port=$(kafka_client_port "$n")
		detail="Kafka $KAFKA_VERSION KRaft, $BROKERS broker(s)"
		if pid=$(kafka_node_pid "$n"); then
			if kafka_probe "127.0.0.1:$port" brokers >/dev/null 2>&1; then
				state=up
			else
				state=noanswer rc=1
			fi
			pid="pid $pid"
		else
			state=down pid=- rc=1
		fi
		printf '%-11s %-9s %-11s %-22s %s\n' "$(kafka_node_name "$n")" "$state" "$pid" "127.0.0.1:$port" "$detail"
	done
	return "$rc"
}
