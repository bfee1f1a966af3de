# shellcheck shell=bash disable=SC2153 # STATE, CACHE, ... come from common.sh
# An S3-compatible server for the loader's lake: gofakes3
# (github.com/johannesboyne/gofakes3, a Go module built with `go install`
# from the Go module proxy into the cache), run on its filesystem backend
# under the state dir. Sourced by scripts/stack after lib/common.sh.
#
# Decision: gofakes3 rather than MinIO. Both are real S3 HTTP servers built
# from a Go module; gofakes3 builds in under a minute on a cold cache
# (a handful of small dependencies) where MinIO pulls hundreds of modules.
# What it does not do: it accepts any credentials (no SigV4 check; our
# signing is unit-tested against the AWS documentation example instead).

S3_STATE=$STATE/s3
S3_STDOUT=$LOG_DIR/s3.log
S3_BUCKET=sluice-lake
S3_GO_ROOT=$CACHE/go
S3_BIN=$S3_GO_ROOT/bin/gofakes3
S3_MODULE=github.com/johannesboyne/gofakes3/cmd/gofakes3

s3_url() { printf 'http://127.0.0.1:%s\n' "$S3_PORT"; }
s3_pid() { service_pid s3 "$S3_STATE"; }
# Listing the lake bucket succeeds once the server answers and the bucket exists.
s3_ready() { curl -fsS --max-time 2 "$(s3_url)/$S3_BUCKET?list-type=2&max-keys=1" >/dev/null 2>&1; }
s3_installed() { [[ -x $S3_BIN && -f $S3_GO_ROOT/gofakes3.version && "$(<"$S3_GO_ROOT/gofakes3.version")" == "$S3_VERSION" ]]; }

# ---------------------------------------------------------------- install --
s3_install() {
	local logfile=$CACHE/logs/go-gofakes3.log t0=$SECONDS
	if s3_installed; then
		log "gofakes3 $S3_VERSION present ($S3_BIN)"
		return 0
	fi
	command -v go >/dev/null 2>&1 ||
		die "go is not installed: the S3 server (gofakes3) is built from its Go module" \
			"install Go 1.22+ (e.g. apt-get install golang-go), then run scripts/stack install"
	mkdir -p "$S3_GO_ROOT" "$CACHE/logs"
	log "building gofakes3 $S3_VERSION with go install (log: $logfile)"
	# Everything Go writes stays in the cache: modules, build cache, binary.
	if ! GOPATH=$S3_GO_ROOT GOMODCACHE=$S3_GO_ROOT/mod GOCACHE=$S3_GO_ROOT/build GOFLAGS=-modcacherw \
		go install "$S3_MODULE@$S3_VERSION" >"$logfile" 2>&1; then
		show_log_tail "$logfile"
		die "go install $S3_MODULE@$S3_VERSION failed (see $logfile)"
	fi
	printf '%s\n' "$S3_VERSION" >"$S3_GO_ROOT/gofakes3.version"
	info "built $S3_BIN in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- runtime --
s3_start() {
	local pid
	if pid=$(s3_pid); then
		log "s3 already running (pid $pid)"
		return 0
	fi
	[[ -x $S3_BIN ]] || die "gofakes3 is not installed" "run: scripts/stack install"
	require_free_port "$S3_PORT" "s3"
	mkdir -p "$S3_STATE"
	log "starting s3 (gofakes3) on $(s3_url), bucket $S3_BUCKET"
	# The fs backend keeps objects across stop/start like the other
	# services' data; the state path on the command line is how the stack
	# recognizes its own process.
	start_detached s3 "$S3_STDOUT" "$S3_STATE" "$S3_BIN" -host "127.0.0.1:$S3_PORT" \
		-backend fs -fs.path "$S3_STATE" -fs.create -initialbucket "$S3_BUCKET" -quiet
}

s3_wait() {
	local pid
	pid=$(s3_pid) || {
		show_log_tail "$S3_STDOUT"
		die "s3 is not running; see $S3_STDOUT"
	}
	log "waiting for s3 to answer on $(s3_url)"
	if ! wait_for s3 "${SLUICE_STACK_TIMEOUT:-120}" "$pid" "$S3_STDOUT" s3_ready; then
		show_log_tail "$S3_STDOUT" 20
		s3_stop stop || true
		die "s3 did not answer within ${SLUICE_STACK_TIMEOUT:-120}s (stopped it again)"
	fi
	info "s3 (gofakes3 $S3_VERSION) answers on $(s3_url), bucket $S3_BUCKET"
}

s3_running_items() { single_running_items s3 "$S3_STATE" gofakes3 "$S3_STATE"; }

# s3_stop [stop|quiet|kill]: see single_stop.
s3_stop() { single_stop s3 s3_running_items "${1:-stop}"; }

s3_status() {
	local pid state
	if pid=$(s3_pid); then
		if s3_ready; then state=up; else state=noanswer; fi
		pid="pid $pid"
	else
		state=down pid=-
	fi
	printf '%-11s %-9s %-11s %-22s %s\n' s3 "$state" "$pid" "127.0.0.1:$S3_PORT" \
		"gofakes3 $S3_VERSION (S3 API, bucket $S3_BUCKET)"
	[[ $state == up ]]
}
