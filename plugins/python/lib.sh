# Sourced by build.sh and test.sh: the pinned toolchain's venv.
#
#   py_venv    ensures ${SLUICE_CACHE:-~/.cache/sluice}/plugins-py-venv holds
#              exactly requirements.txt (pip --require-hashes, wheels only)
#              and sets PY_VENV to it. The venv keeps a copy of the
#              requirements it was made from (sluice-requirements.txt) and
#              is made anew when requirements.txt differs from that copy.
#
# The base Python: $SLUICE_PYTHON, else python3.11, else python3 (>= 3.11).
# Downloads are cached in $SLUICE_CACHE/pip (as scripts/sdk-setup does).
#
# Run as a command (what `sluice plugin build|test` of a Python plugin use):
#   bash plugins/python/lib.sh setup   makes the venv if needed (py_venv), prints its path
#   bash plugins/python/lib.sh check   prints its path if it is ready, else fails
# shellcheck shell=bash

PY_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY_CACHE=${SLUICE_CACHE:-$HOME/.cache/sluice}
PY_VENV=$PY_CACHE/plugins-py-venv
PY_REQUIREMENTS=$PY_HERE/requirements.txt

py_base_python() {
    local candidate
    for candidate in ${SLUICE_PYTHON:-} python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: no Python >= 3.11 found (set SLUICE_PYTHON)" >&2
    return 1
}

py_venv_ready() {
    [[ -x $PY_VENV/bin/python && -x $PY_VENV/bin/componentize-py ]] &&
        cmp -s "$PY_REQUIREMENTS" "$PY_VENV/sluice-requirements.txt" &&
        "$PY_VENV/bin/python" -c '' 2>/dev/null
}

py_venv_install() {
    py_venv_ready && return 0
    local base log start
    base=$(py_base_python)
    mkdir -p "$PY_CACHE/logs"
    log=$PY_CACHE/logs/plugins-py-venv.log
    echo "setting up $PY_VENV from requirements.txt (log: $log)" >&2
    start=$SECONDS
    rm -rf "$PY_VENV"
    if ! "$base" -m venv "$PY_VENV" >"$log" 2>&1 ||
        ! PIP_CACHE_DIR=$PY_CACHE/pip PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "$PY_VENV/bin/python" -m pip install --require-hashes --only-binary=:all: \
            -r "$PY_REQUIREMENTS" >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "error: could not set up $PY_VENV (see $log)" >&2
        rm -rf "$PY_VENV"
        return 1
    fi
    # Last: a venv without this copy is incomplete and is made again.
    cp "$PY_REQUIREMENTS" "$PY_VENV/sluice-requirements.txt"
    echo "venv ready in $((SECONDS - start)) s" >&2
}

py_venv() {
    mkdir -p "$PY_CACHE"
    if command -v flock >/dev/null 2>&1; then
        (
            flock 9
            py_venv_install
        ) 9>"$PY_CACHE/plugins-py-venv.lock"
    else
        py_venv_install
    fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case ${1:-} in
        setup)
            py_venv
            echo "$PY_VENV"
            ;;
        check)
            if ! py_venv_ready; then
                echo "error: $PY_VENV is missing or not made from $PY_REQUIREMENTS:" \
                    "run \`bash $PY_HERE/lib.sh setup\`" >&2
                exit 1
            fi
            echo "$PY_VENV"
            ;;
        *)
            echo "usage: bash plugins/python/lib.sh setup|check" >&2
            exit 2
            ;;
    esac
fi
