# shellcheck shell=bash disable=SC2153 # STATE, CACHE, ... come from common.sh
# chdb: ClickHouse's engine in-process (PyPI package chdb-core, imported as
# `chdb`), in a virtualenv in the cache, plus pytest for the Python tests.
# Sourced by scripts/stack after lib/common.sh.

CHDB_VENV=$CACHE/venv
CHDB_PYTHON=$CHDB_VENV/bin/python
# Requirement specs; override e.g. SLUICE_CHDB_SPEC='chdb-core==26.9.0'.
CHDB_SPEC=${SLUICE_CHDB_SPEC:-chdb-core}
CHDB_EXTRA_SPEC=${SLUICE_CHDB_EXTRA_SPEC:-pytest}

chdb_stamp() { printf 'spec=%s %s\n' "$CHDB_SPEC" "$CHDB_EXTRA_SPEC"; }

# Cheap check (no `import chdb`, which maps a ~500 MB library): the venv's
# interpreter runs and can find both packages.
chdb_installed() {
	[[ -x $CHDB_PYTHON && -f $CHDB_VENV/.sluice-complete ]] || return 1
	[[ "$(<"$CHDB_VENV/.sluice-complete")" == "$(chdb_stamp)" ]] || return 1
	"$CHDB_PYTHON" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("chdb") and u.find_spec("pytest") else 1)' 2>/dev/null
}

chdb_base_python() {
	local py=${SLUICE_PYTHON:-python3}
	command -v "$py" >/dev/null 2>&1 || die "no $py found" "install Python 3.9+ or set SLUICE_PYTHON"
	"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' ||
		die "$py is older than 3.9; chdb-core needs a newer Python (set SLUICE_PYTHON)"
	# Debian's system python ships venv without ensurepip (python3-venv).
	if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
		log "installing python3-venv (needed to create the chdb virtualenv)"
		with_lock "$CACHE/apt.lock" apt_install "$CACHE/logs/apt-python-venv.log" python3-venv ||
			die "could not install python3-venv (see $CACHE/logs/apt-python-venv.log)"
	fi
	printf '%s\n' "$py"
}

chdb_install() {
	if chdb_installed; then
		log "chdb venv ready ($CHDB_PYTHON)"
		return 0
	fi
	with_lock "$CACHE/venv.lock" chdb_install_locked
}

chdb_install_locked() {
	chdb_installed && return 0
	local py logfile=$CACHE/logs/pip-chdb.log
	mkdir -p "$CACHE/logs" "$CACHE/pip"
	py=$(chdb_base_python)
	# Recreate a venv whose interpreter vanished (e.g. pyenv version removed).
	if [[ -d $CHDB_VENV ]] && ! "$CHDB_PYTHON" -c '' 2>/dev/null; then
		warn "the venv in $CHDB_VENV is broken; recreating it"
		rm -rf "$CHDB_VENV"
	fi
	if [[ ! -x $CHDB_PYTHON ]]; then
		log "creating virtualenv $CHDB_VENV ($("$py" --version 2>&1))"
		"$py" -m venv "$CHDB_VENV" >>"$logfile" 2>&1 || {
			show_log_tail "$logfile"
			die "python -m venv failed"
		}
	fi
	log "installing $CHDB_SPEC and $CHDB_EXTRA_SPEC into the venv (~180 MB wheel on first run; log: $logfile)"
	# shellcheck disable=SC2086 # the specs may hold several words on purpose
	if ! PIP_CACHE_DIR=$CACHE/pip PIP_DISABLE_PIP_VERSION_CHECK=1 \
		"$CHDB_PYTHON" -m pip install --upgrade $CHDB_SPEC $CHDB_EXTRA_SPEC >>"$logfile" 2>&1; then
		show_log_tail "$logfile" 20
		die "pip install $CHDB_SPEC failed (see $logfile)"
	fi
	local version
	version=$("$CHDB_PYTHON" -c 'import chdb; print(chdb.query("select version()", "CSV"), end="")' 2>>"$logfile") || {
		show_log_tail "$logfile" 20
		die "chdb was installed but 'import chdb; chdb.query(...)' fails (see $logfile)"
	}
	chdb_stamp >"$CHDB_VENV/.sluice-complete"
	info "chdb works: engine version ${version//\"/}"
}

chdb_status() {
	local version
	if chdb_installed; then
		version=$("$CHDB_PYTHON" -c 'from importlib.metadata import version; print(version("chdb-core"))' 2>/dev/null || echo '?')
		printf '%-11s %-9s %-11s %-22s %s\n' chdb ok - "$CHDB_PYTHON" "chdb-core $version"
	else
		printf '%-11s %-9s %-11s %-22s %s\n' chdb missing - "$CHDB_PYTHON" "run: scripts/stack install"
		return 1
	fi
}
