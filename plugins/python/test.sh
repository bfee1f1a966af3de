#!/usr/bin/env bash
# Tests the Python plugin SDK natively (no component needed): the SDK's unit
# tests, the drift test (the glue against bindings generated from
# wit/0.2.0, and altered copies of it) and every example's and fixture's
# tests, with pytest from the pinned venv (set up by lib.sh).
#
# Usage: plugins/python/test.sh [--e2e] [pytest arguments]
#   --e2e   also builds the components (build.sh, cached) into
#           ${SLUICE_CACHE:-~/.cache/sluice}/plugins-py-dist and runs
#           tests/test_component.py: them in a real component host
#           (wasmtime's Python bindings), which compiles each in ~5-20 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
py_venv

if [[ ${1:-} == --e2e ]]; then
    shift
    export SLUICE_PY_COMPONENTS=$PY_CACHE/plugins-py-dist
    "$here/build.sh" "$SLUICE_PY_COMPONENTS"
fi

cd "$here"
PYTHONDONTWRITEBYTECODE=1 exec "$PY_VENV/bin/python" -m pytest "$@"
