# shellcheck shell=bash disable=SC2154 # bin, port and die come from the sourcing script
# A release gateway as its own process, for the benchmark scripts
# (scripts/bench, scripts/bench-plugins). Sourced after they set `bin` (the
# release binaries), `port` and `die`. Sets and clears `gateway_pid`.

gateway_pid=""

# start_gateway NAME LOG TOML ENV...: writes the effective configuration
# (--print-config) to TOML, starts the gateway with ENV (KEY=VALUE words) on
# top of this environment, logging to LOG, and waits until /readyz answers.
start_gateway() {
	local name=$1 log=$2 toml=$3
	shift 3
	env "$@" "$bin/sluice-gateway" --print-config >"$toml"
	env "$@" "$bin/sluice-gateway" >"$log" 2>&1 &
	gateway_pid=$!
	# Every 50 ms: scripts/bench-plugins times a restart by this.
	for _ in $(seq 1 1200); do
		if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
			printf '    gateway %s: pid %s, log %s\n' "$name" "$gateway_pid" "$log" >&2
			return 0
		fi
		if ! kill -0 "$gateway_pid" 2>/dev/null; then
			tail -n 30 "$log" >&2
			die "gateway $name exited during start-up"
		fi
		sleep 0.05
	done
	tail -n 30 "$log" >&2
	die "gateway $name not ready after 60 s"
}

# stop_gateway: SIGTERM, then up to 15 s (the gateway drains and flushes on
# SIGTERM; give it the delivery timeout), then SIGKILL.
stop_gateway() {
	[[ -n $gateway_pid ]] || return 0
	kill -TERM "$gateway_pid" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$gateway_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$gateway_pid" 2>/dev/null || true
	wait "$gateway_pid" 2>/dev/null || true
	gateway_pid=""
}
