#!/usr/bin/env bash
# Tests one JavaScript/TypeScript plugin directory, anywhere (what `sluice
# plugin test` runs for a plugin made by `sluice plugin new --lang ts|js`):
#   1. tsc over DIR/tsconfig.json (the plugin code) and DIR/test/tsconfig.json
#      (the tests), when they exist;
#   2. the unit tests DIR/test/*.test.{ts,js,mjs} with node --test, bundled
#      by esbuild into DIR/.build/test/ (the SDK as `sluice-plugin`, the
#      host's log import replaced by the recording stub test/support/host-log.ts).
#
#   plugins/js/tools/test-plugin.sh DIR
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: plugins/js/tools/test-plugin.sh DIR" >&2
  exit 2
fi
dir="$(realpath "$1")"
cd "$(dirname "$0")/.."
# shellcheck source=common.sh
source tools/common.sh
ensure_node_modules

tsc="$PWD/node_modules/.bin/tsc"
for config in tsconfig.json test/tsconfig.json; do
  if [[ -f "$dir/$config" ]]; then
    echo "== types: $config"
    (cd "$dir" && "$tsc" -p "$config") # errors name the plugin's files relative to it
  fi
done

echo "== unit tests"
list="$(node tools/bundle-tests.mjs --plugin "$dir" "$dir/.build/test")"
if [[ -z "$list" ]]; then
  echo "error: no tests in $dir/test/ (*.test.ts, *.test.js or *.test.mjs)" >&2
  exit 1
fi
mapfile -t tests <<<"$list"
node --test --test-reporter=spec "${tests[@]}"
