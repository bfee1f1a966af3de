// Bundles every *.test.ts (test/, examples/*/test/, fixtures/*/test/) for
// Node's test runner (Node 20 cannot run TypeScript itself), or, with
// --plugin, the *.test.{ts,js,mjs} in one plugin directory's test/
// (tools/test-plugin.sh):
//   node tools/bundle-tests.mjs OUT_DIR                -> OUT_DIR/<same relative path>.test.mjs
//   node tools/bundle-tests.mjs --plugin DIR OUT_DIR   -> OUT_DIR/test/<name>.test.mjs
// Prints the bundled files, one per line.

import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { bundleTests, ROOT } from "./bundle.mjs";

const args = process.argv.slice(2);
const single = args[0] === "--plugin";
if (args.length !== (single ? 3 : 1) || !args.every(Boolean)) {
  console.error("usage: node tools/bundle-tests.mjs OUT_DIR | node tools/bundle-tests.mjs --plugin DIR OUT_DIR");
  process.exit(2);
}
const out = args[args.length - 1];
/** The directory the bundles' paths are relative to. */
const base = single ? resolve(args[1]) : ROOT;

function tests(dir, pattern = /\.test\.ts$/) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => join(dir, f));
}

const entries = [];
if (single) {
  entries.push(...tests(join(base, "test"), /\.test\.(ts|js|mjs)$/));
} else {
  entries.push(...tests(join(ROOT, "test")));
  for (const group of ["examples", "fixtures"]) {
    const groupDir = join(ROOT, group);
    if (!existsSync(groupDir)) continue;
    for (const name of readdirSync(groupDir).sort()) entries.push(...tests(join(groupDir, name, "test")));
  }
}

rmSync(out, { recursive: true, force: true });
if (entries.length) await bundleTests(entries, out, base);
for (const entry of entries) console.log(join(out, relative(base, entry)).replace(/\.(ts|js|mjs)$/, ".mjs"));
