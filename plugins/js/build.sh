#!/usr/bin/env bash
# Builds every JavaScript/TypeScript plugin under examples/ and fixtures/
# into a WebAssembly component (esbuild, then componentize-js):
#   examples/<name>  -> OUT_DIR/ts_<name>.wasm          (dashes -> underscores)
#   fixtures/<name>  -> OUT_DIR/ts_fixture_<name>.wasm
# or, with --plugin, one plugin directory anywhere (what `sluice plugin
# build` runs for a plugin made by `sluice plugin new --lang ts|js`):
#   DIR              -> OUT_DIR/<dir name>.wasm        (default OUT_DIR: DIR/dist)
# Components are cached in $SLUICE_CACHE/plugins-js-cache/ by a hash of the
# bundled JavaScript, the WIT files, package-lock.json and the world.
#
#   plugins/js/build.sh            # -> plugins/js/dist/
#   plugins/js/build.sh OUT_DIR
#   plugins/js/build.sh --plugin DIR [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ "${1:-}" == --plugin ]]; then
  if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: plugins/js/build.sh --plugin DIR [OUT_DIR]" >&2
    exit 2
  fi
  plugin="$(realpath "$2")"
  args=(--plugin "$plugin" "$(realpath -m "${3:-$plugin/dist}")")
else
  args=("$(realpath -m "${1:-$here/dist}")")
fi
cd "$here"
# shellcheck source=tools/common.sh
source tools/common.sh
ensure_node_modules
node tools/build.mjs "${args[@]}"
