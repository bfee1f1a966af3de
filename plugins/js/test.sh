#!/usr/bin/env bash
# Checks the JavaScript/TypeScript plugin SDK, example and fixtures:
#   1. type-check the plugin code (tsconfig.json), then the tests and the WIT
#      drift check (test/tsconfig.json) against the types generated from
#      wit/0.2.0, and check that the drift check fails on a changed WIT;
#   2. unit tests (node --test, bundled by esbuild);
#   3. end to end: build the components (build.sh, cached), `jco transpile`
#      some of them and call them from Node (skipped with SLUICE_JS_E2E=0).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=tools/common.sh
source tools/common.sh
ensure_node_modules

tsc=node_modules/.bin/tsc
wit=../../wit/0.2.0

echo "== types"
node tools/wit-types.mjs .wit-types "$wit"
"$tsc" -p tsconfig.json
"$tsc" -p test/tsconfig.json

# The drift check must notice an incompatible WIT change: rename a verdict case.
mkdir -p .build
rm -rf .build/wit-mutant
cp -r "$wit" .build/wit-mutant
sed -i 's/reject(rejection)/refuse(rejection)/' .build/wit-mutant/types.wit
grep -q 'refuse(rejection)' .build/wit-mutant/types.wit
node tools/wit-types.mjs .build/wit-mutant-types .build/wit-mutant
cat > .build/tsconfig.mutant.json <<'JSON'
{
  "extends": "../test/tsconfig.json",
  "compilerOptions": { "paths": { "sluice-plugin": ["../sdk/index.ts"], "#wit/*": ["./wit-mutant-types/*"] } }
}
JSON
if "$tsc" -p .build/tsconfig.mutant.json > .build/mutant-tsc.log 2>&1; then
  echo "FAIL: the drift check (test/drift.ts) accepted a WIT whose verdict case 'reject' was renamed" >&2
  exit 1
fi
grep -q "test/drift.ts" .build/mutant-tsc.log
echo "drift check: fails as it should on a changed WIT"

echo "== unit tests"
node tools/bundle-tests.mjs .build/test > .build/tests.txt
mapfile -t tests < .build/tests.txt
unit=()
for t in "${tests[@]}"; do [[ "$t" == */e2e.test.mjs ]] || unit+=("$t"); done
node --test --test-reporter=spec "${unit[@]}"

if [[ "${SLUICE_JS_E2E:-1}" == 0 ]]; then
  echo "== end to end: skipped (SLUICE_JS_E2E=0)"
  exit 0
fi
echo "== end to end"
bash build.sh .build/dist
rm -rf .build/transpiled
for name in ts_required_properties ts_bot_filter ts_pii_scrubber ts_fixture_tag_enricher ts_fixture_throws; do
  node_modules/.bin/jco transpile ".build/dist/$name.wasm" -o ".build/transpiled/$name" \
    --name "$name" --instantiation async --quiet
done
SLUICE_TS_TRANSPILED="$PWD/.build/transpiled" node --test --test-reporter=spec .build/test/test/e2e.test.mjs
