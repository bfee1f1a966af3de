# shellcheck shell=bash disable=SC2034 # globals used by the other files
# Shared helpers for scripts/stack: logging, paths, settings, process and port
# handling. Sourced, never executed.

# ---------------------------------------------------------------- logging --
# Progress goes to stderr so that stdout stays machine-readable
# (`eval "$(scripts/stack env)"`, `scripts/stack status | grep`).
log() { printf '==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$1" >&2
	shift
	local hint
	for hint in "$@"; do printf '       %s\n' "$hint" >&2; done
	exit 1
}

# Print the last lines of a log file, indented, to help diagnose a failure.
show_log_tail() {
	local file=$1 lines=${2:-40}
	if [[ -s $file ]]; then
		printf -- '---- last %s lines of %s ----\n' "$lines" "$file" >&2
		tail -n "$lines" "$file" | sed 's/^/    /' >&2
		printf -- '---- end of %s ----\n' "$file" >&2
	else
		printf '    (log %s is empty or missing)\n' "$file" >&2
	fi
}

# ------------------------------------------------------------------ paths --
STACK_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK_SCRIPTS=$STACK_REPO_ROOT/scripts

abspath() { # abspath PATH: absolute path without requiring it to exist
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$PWD" "$1" ;;
	esac
}

# Everything that is per checkout (data, logs, pids, generated configs).
STATE=$(abspath "${SLUICE_STATE:-$STACK_REPO_ROOT/.stack}")
# Everything that is expensive to fetch and shared between checkouts.
CACHE=$(abspath "${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}")

PID_DIR=$STATE/pids
LOG_DIR=$STATE/logs
STATE_FILE=$STATE/stack.state
# Marks a directory as ours, so that `down --purge` never removes anything else.
STATE_MARKER=$STATE/.sluice-stack

ensure_state_dirs() {
	mkdir -p "$STATE" "$PID_DIR" "$LOG_DIR"
	[[ -e $STATE_MARKER ]] || printf 'Sluice local stack state (scripts/stack); safe to delete when the stack is down.\n' >"$STATE_MARKER"
}

# ------------------------------------------------------------- settings --
# Defaults; environment variables override them, `up --brokers` overrides
# the environment. See resolve_settings for how the recorded state wins
# while a stack is running.
DEFAULT_KAFKA_VERSION=4.1.1
DEFAULT_KAFKA_PORT=19092
DEFAULT_CH_HTTP_PORT=18123
DEFAULT_CH_TCP_PORT=19000
DEFAULT_S3_PORT=19400
S3_VERSION=${SLUICE_S3_VERSION:-v1.2.0}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# recorded KEY: value saved by the last `up` (empty if none).
recorded() {
	[[ -f $STATE_FILE ]] || return 0
	local k v
	while IFS='=' read -r k v; do
		if [[ $k == "$1" ]]; then
			printf '%s\n' "$v"
			return 0
		fi
	done <"$STATE_FILE"
}

# record_settings: save the resolved settings. The stack counts as brought
# up (active=1) until `down` clears it with `record_key active 0`.
record_settings() {
	ensure_state_dirs
	cat >"$STATE_FILE.tmp" <<EOF
brokers=$BROKERS
services=$SERVICES
kafka_version=$KAFKA_VERSION
kafka_port=$KAFKA_PORT
clickhouse_http_port=$CH_HTTP_PORT
clickhouse_tcp_port=$CH_TCP_PORT
s3_port=$S3_PORT
active=1
EOF
	mv "$STATE_FILE.tmp" "$STATE_FILE"
}

# record_key KEY VALUE: change one recorded value (no-op without a state file).
record_key() {
	[[ -f $STATE_FILE ]] || return 0
	local k v found=0
	while IFS='=' read -r k v; do
		[[ -n $k ]] || continue
		if [[ $k == "$1" ]]; then
			v=$2 found=1
		fi
		printf '%s=%s\n' "$k" "$v"
	done <"$STATE_FILE" >"$STATE_FILE.tmp"
	((found)) || printf '%s=%s\n' "$1" "$2" >>"$STATE_FILE.tmp"
	mv "$STATE_FILE.tmp" "$STATE_FILE"
}

# stack_active: `up` ran in this state dir and no `down` since; some of its
# services may be stopped, killed or crashed.
stack_active() { [[ "$(recorded active)" == 1 ]]; }

ALL_SERVICES=kafka,clickhouse,s3

# normalize_services LIST: a subset of "kafka,clickhouse,s3" (in this
# order) from a comma separated list; "all" means all three. Fails on
# anything else.
normalize_services() {
	local item kafka=0 ch=0 s3=0 out=()
	for item in ${1//,/ }; do
		case $item in
		kafka) kafka=1 ;;
		clickhouse | ch) ch=1 ;;
		s3) s3=1 ;;
		all) kafka=1 ch=1 s3=1 ;;
		*) return 1 ;;
		esac
	done
	((kafka)) && out+=(kafka)
	((ch)) && out+=(clickhouse)
	((s3)) && out+=(s3)
	((${#out[@]})) || return 1
	local IFS=,
	printf '%s\n' "${out[*]}"
}

# has_service NAME: NAME (kafka, clickhouse or s3) belongs to this stack.
has_service() { [[ ,$SERVICES, == *",$1,"* ]]; }
full_stack() { [[ $SERVICES == "$ALL_SERVICES" ]]; }

# resolve_settings COMMAND [EXPLICIT_BROKERS] [EXPLICIT_ONLY]
# Sets BROKERS SERVICES KAFKA_VERSION KAFKA_PORT CH_HTTP_PORT CH_TCP_PORT
# S3_PORT.
#  - While something of this stack runs, the recorded settings win (status/
#    down/env must describe what actually runs); `up` refuses an explicit
#    request that contradicts them instead of silently ignoring it. While
#    the stack is active (up ran, no down since) but everything is stopped,
#    the recorded settings win too, except for up/install: start/stop/kill
#    must find the data of the nodes that were stopped.
#  - Otherwise explicit values (flag/env) win, then the recorded ones (for
#    `up` of an active stack, so that it resumes as it was; for the
#    read-only commands, so that `logs` finds the last run's files), then
#    the defaults.
resolve_settings() {
	local cmd=$1 flag_brokers=${2:-} flag_only=${3:-}
	local -A explicit=() rec=()
	local key only

	if [[ -n $flag_brokers ]]; then
		explicit[brokers]=$flag_brokers
	elif [[ -n ${SLUICE_STACK_BROKERS:-} ]]; then
		if ! is_uint "$SLUICE_STACK_BROKERS"; then
			die "SLUICE_STACK_BROKERS must be 1 or 3, got '$SLUICE_STACK_BROKERS'"
		fi
		explicit[brokers]=$SLUICE_STACK_BROKERS
	fi
	if [[ -n $flag_only ]]; then
		only=$(normalize_services "$flag_only") ||
			die "--only needs kafka, clickhouse, s3 (comma separated) or all (got '$flag_only')"
		explicit[services]=$only
	elif [[ -n ${SLUICE_STACK_ONLY:-} ]]; then
		only=$(normalize_services "$SLUICE_STACK_ONLY") ||
			die "SLUICE_STACK_ONLY must be kafka, clickhouse, s3 (comma separated) or all (got '$SLUICE_STACK_ONLY')"
		explicit[services]=$only
	fi
	[[ -n ${SLUICE_KAFKA_VERSION:-} ]] && explicit[kafka_version]=$SLUICE_KAFKA_VERSION
	[[ -n ${SLUICE_KAFKA_PORT:-} ]] && explicit[kafka_port]=$SLUICE_KAFKA_PORT
	[[ -n ${SLUICE_CLICKHOUSE_HTTP_PORT:-} ]] && explicit[clickhouse_http_port]=$SLUICE_CLICKHOUSE_HTTP_PORT
	[[ -n ${SLUICE_CLICKHOUSE_TCP_PORT:-} ]] && explicit[clickhouse_tcp_port]=$SLUICE_CLICKHOUSE_TCP_PORT
	[[ -n ${SLUICE_S3_PORT:-} ]] && explicit[s3_port]=$SLUICE_S3_PORT

	for key in brokers services kafka_version kafka_port clickhouse_http_port clickhouse_tcp_port s3_port; do
		rec[$key]=$(recorded "$key")
	done
	# State files written before --only existed have no services key: they
	# describe a full stack, which is the default below.
	if [[ -n ${rec[services]} ]]; then
		rec[services]=$(normalize_services "${rec[services]}") || rec[services]=""
	fi

	local -A value=(
		[brokers]=1
		[services]=$ALL_SERVICES
		[kafka_version]=$DEFAULT_KAFKA_VERSION
		[kafka_port]=$DEFAULT_KAFKA_PORT
		[clickhouse_http_port]=$DEFAULT_CH_HTTP_PORT
		[clickhouse_tcp_port]=$DEFAULT_CH_TCP_PORT
		[s3_port]=$DEFAULT_S3_PORT
	)

	local running=0 active=0 pinned=0
	if [[ -f $STATE_FILE ]]; then
		any_service_running && running=1
		stack_active && active=1
	fi
	if ((running)) || { ((active)) && [[ $cmd != up && $cmd != install ]]; }; then
		pinned=1
	fi

	if ((pinned)); then
		for key in "${!value[@]}"; do
			[[ -n ${rec[$key]} ]] && value[$key]=${rec[$key]}
			if [[ -n ${explicit[$key]:-} && ${explicit[$key]} != "${value[$key]}" ]]; then
				if [[ $cmd == up ]]; then
					die "the stack in $STATE is running with $key=${value[$key]}, but $key=${explicit[$key]} was requested" \
						"run 'scripts/stack down' first, then 'scripts/stack up' again"
				fi
				warn "ignoring requested $key=${explicit[$key]}: the stack in $STATE was brought up with ${value[$key]}"
			fi
		done
	else
		for key in "${!value[@]}"; do
			if [[ -n ${explicit[$key]:-} ]]; then
				value[$key]=${explicit[$key]}
			elif [[ -n ${rec[$key]} ]] && { ((active)) || [[ $cmd != up && $cmd != install && $cmd != env ]]; }; then
				value[$key]=${rec[$key]}
			fi
		done
	fi

	BROKERS=${value[brokers]}
	SERVICES=${value[services]}
	KAFKA_VERSION=${value[kafka_version]}
	KAFKA_PORT=${value[kafka_port]}
	CH_HTTP_PORT=${value[clickhouse_http_port]}
	CH_TCP_PORT=${value[clickhouse_tcp_port]}
	S3_PORT=${value[s3_port]}

	[[ $BROKERS == 1 || $BROKERS == 3 ]] ||
		die "unsupported broker count '$BROKERS'" "use 1 (default) or 3: scripts/stack up --brokers 3"
	for key in KAFKA_PORT CH_HTTP_PORT CH_TCP_PORT S3_PORT; do
		if ! is_uint "${!key}" || ((${!key} == 0 || ${!key} >= 65000)); then
			die "invalid port $key=${!key}"
		fi
	done
	[[ $KAFKA_VERSION =~ ^4\.[0-9]+\.[0-9]+$ ]] ||
		die "SLUICE_KAFKA_VERSION must be a Kafka 4.x release like 4.1.1 (got '$KAFKA_VERSION')"
}

# -------------------------------------------------------------- processes --
pid_file() { printf '%s/%s.pid\n' "$PID_DIR" "$1"; }

# pid_alive PID: the process exists and is not a zombie (a dead child that
# nobody reaped yet still answers kill -0).
pid_alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	{ stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# elapsed T0: seconds since T0 (an $EPOCHREALTIME value), e.g. "2.4".
elapsed() {
	local now=${EPOCHREALTIME/[.,]/} t0=${1/[.,]/} ms
	ms=$(((10#$now - 10#$t0) / 1000))
	printf '%d.%d\n' $((ms / 1000)) $((ms % 1000 / 100))
}

# proc_matches PID MARKER: PID is alive and its command line contains MARKER.
# The marker (a config path under $STATE) guards against a recycled pid.
proc_matches() {
	local pid=$1 marker=$2 cmdline
	[[ -n $pid ]] && is_uint "$pid" || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[[ $cmdline == *"$marker"* ]]
}

# any_service_running: some pid file of this state dir names a live process
# of ours (every service's command line contains a path under $STATE). The
# ClickHouse cluster mode (zookeeper, ch-*) has settings of its own and does
# not pin the stack's (lib/clickhouse_cluster.sh).
any_service_running() {
	local file
	for file in "$PID_DIR"/*.pid; do
		[[ -f $file ]] || continue
		case ${file##*/} in zookeeper.pid | ch-*.pid) continue ;; esac
		proc_matches "$(<"$file")" "$STATE/" && return 0
	done
	return 1
}

# service_pid NAME MARKER: print the pid of a live service, else fail (and
# drop a stale pid file).
service_pid() {
	local file pid
	file=$(pid_file "$1")
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	if proc_matches "$pid" "$2"; then
		printf '%s\n' "$pid"
		return 0
	fi
	rm -f "$file"
	return 1
}

# Processes whose command line contains every given fixed string. Used by
# `down` to also catch a service of ours whose pid file was lost.
pids_matching() {
	local dir pid cmdline s ok
	for dir in /proc/[0-9]*; do
		pid=${dir#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		cmdline=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue
		ok=1
		for s; do [[ $cmdline == *"$s"* ]] || ok=0; done
		((ok)) && printf '%s\n' "$pid"
	done
	return 0
}

# start_detached NAME LOGFILE WORKDIR CMD...: run CMD in its own session
# (so Ctrl-C on the caller or the caller's exit does not kill it), write
# its pid to the pid file. `exec` keeps the pid, so the pid file holds
# the real server pid, not a wrapper's.
start_detached() {
	local name=$1 logfile=$2 workdir=$3 file
	shift 3
	file=$(pid_file "$name")
	rm -f "$file"
	(
		cd "$workdir" || exit 1
		# shellcheck disable=SC2016 # $$ and $@ are for the inner shell
		# 8>&- 9>&-: the server must not inherit (and hold forever) the
		# lock file descriptors of stack_lock / with_lock.
		exec setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$file" "$@" >>"$logfile" 2>&1 </dev/null 8>&- 9>&-
	) &
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $file ]] && return 0
		sleep 0.1
	done
	die "$name did not start (no pid file $file)"
}

# single_running_items NAME MARKER STRING...: NAME=PID for the live process
# of NAME's pid file (MARKER is in its command line), then NAME-orphan=PID
# for any other process of ours whose command line has every STRING.
single_running_items() {
	local name=$1 marker=$2 pid seen=" "
	shift 2
	if pid=$(service_pid "$name" "$marker"); then
		printf '%s=%s\n' "$name" "$pid"
		seen+="$pid "
	fi
	for pid in $(pids_matching "$@"); do
		[[ $seen == *" $pid "* ]] && continue
		warn "found a $name process of this stack without pid file (pid $pid)"
		printf '%s-orphan=%s\n' "$name" "$pid"
	done
}

# single_stop NAME ITEMS_FN [stop|quiet|kill]: stop a one-process service
# gracefully (SIGTERM, SIGKILL after SLUICE_STOP_TIMEOUT) or kill it with
# SIGKILL at once; ITEMS_FN lists its processes (single_running_items).
# Data is kept. quiet = stop, but say nothing if it is not running.
single_stop() {
	local name=$1 items_fn=$2 mode=${3:-stop} items rc=0
	mapfile -t items < <("$items_fn")
	if ((${#items[@]} == 0)); then
		[[ $mode == quiet ]] || log "$name is not running"
	elif [[ $mode == kill ]]; then
		kill_pids "${items[@]}" || rc=1
	else
		stop_pids "${SLUICE_STOP_TIMEOUT:-20}" "${items[@]}" || rc=1
	fi
	rm -f "$(pid_file "$name")"
	return "$rc"
}

# stop_pids TIMEOUT NAME=PID...: SIGTERM all at once (Kafka nodes shut down
# faster together), wait up to TIMEOUT seconds, then SIGKILL survivors.
stop_pids() {
	local timeout=$1 item name pid
	shift
	(($#)) || return 0
	for item; do
		name=${item%%=*} pid=${item#*=}
		log "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
	done
	local deadline=$((SECONDS + timeout)) alive
	while :; do
		alive=()
		for item; do
			pid=${item#*=}
			pid_alive "$pid" && alive+=("$item")
		done
		((${#alive[@]})) || return 0
		((SECONDS < deadline)) || break
		sleep 0.2
	done
	for item in "${alive[@]}"; do
		name=${item%%=*} pid=${item#*=}
		warn "$name (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait_gone 10 "${alive[@]}"
}

# kill_pids NAME=PID...: SIGKILL right away (a simulated crash), then wait
# until the processes are gone so that their ports are free again.
kill_pids() {
	local item
	for item; do
		log "killing ${item%%=*} (pid ${item#*=}) with SIGKILL"
		kill -KILL "${item#*=}" 2>/dev/null || true
	done
	wait_gone 10 "$@"
}

# wait_gone TIMEOUT NAME=PID...: wait until no process is left; fail if one
# survives (SIGKILL cannot be ignored, so only an uninterruptible sleep in
# the kernel can do that).
wait_gone() {
	local deadline=$((SECONDS + $1)) item left
	shift
	while :; do
		left=()
		for item; do pid_alive "${item#*=}" && left+=("$item"); done
		((${#left[@]})) || return 0
		if ((SECONDS >= deadline)); then
			warn "still alive after SIGKILL: ${left[*]}"
			return 1
		fi
		sleep 0.1
	done
}

# ------------------------------------------------------------------ ports --
port_open() { # port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
	# shellcheck disable=SC2016 # $0 is expanded by the inner shell
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# Describe who listens on a port (best effort, for error messages).
port_owner() {
	if command -v ss >/dev/null 2>&1; then
		ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n 1
	fi
}

# Fail early with a useful message rather than letting a server die on
# "Address already in use" deep inside its log.
require_free_port() {
	local port=$1 what=$2 owner
	if port_open "$port"; then
		owner=$(port_owner "$port")
		die "port $port (for $what) is already in use${owner:+ by $owner}" \
			"is another Sluice stack running from a different checkout or SLUICE_STATE?" \
			"stop it, or pick other ports (SLUICE_KAFKA_PORT, SLUICE_CLICKHOUSE_HTTP_PORT, SLUICE_CLICKHOUSE_TCP_PORT)"
	fi
}

# wait_for WHAT TIMEOUT PID LOGFILE CHECK...: poll CHECK until it succeeds.
# Fails early if the process died, and shows the log tail on failure.
wait_for() {
	local what=$1 timeout=$2 pid=$3 logfile=$4
	shift 4
	local deadline=$((SECONDS + timeout))
	while ! "$@" >/dev/null 2>&1; do
		if ! pid_alive "$pid"; then
			show_log_tail "$logfile"
			die "$what exited during startup (pid $pid); see $logfile"
		fi
		if ((SECONDS >= deadline)); then
			show_log_tail "$logfile"
			return 1
		fi
		sleep 0.3
	done
}

# stack_lock: one 'up'/'down' at a time per state dir. The lock is held on
# fd 8 until the script exits; start_detached closes fd 8 in the servers.
stack_lock() {
	exec 8>"$STATE/.cmd.lock"
	flock -w 600 8 || die "another scripts/stack command holds $STATE/.cmd.lock (waited 600 s)"
}

# ---------------------------------------------------------------- install --
# Serialise concurrent installs (two checkouts running `up` at once share
# the cache) with a lock file in the cache.
with_lock() {
	local lockfile=$1
	shift
	mkdir -p "$(dirname "$lockfile")"
	(
		flock -w 900 9 || die "timed out waiting for lock $lockfile"
		"$@"
	) 9>"$lockfile"
}

as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $*" "run scripts/stack as root, or install sudo"
	fi
}

# apt_install LOGFILE PACKAGE...: install Debian packages without starting
# their services. A package's postinst may try to start its daemon; on a
# machine with a running init that would start a second, system-wide
# server, and where starting is blocked it must not fail the install. A
# temporary policy-rc.d answering 101 ("action forbidden") makes
# invoke-rc.d / deb-systemd-invoke skip the start cleanly.
apt_install() {
	local logfile=$1 policy=/usr/sbin/policy-rc.d created=0 rc=0
	shift
	if [[ ! -e $policy ]]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
		created=1
	fi
	{
		as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update &&
			as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
				install -y --no-install-recommends "$@"
	} >>"$logfile" 2>&1 || rc=$?
	((created)) && as_root rm -f "$policy"
	return "$rc"
}
