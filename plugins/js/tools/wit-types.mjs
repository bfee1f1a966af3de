// Generates the TypeScript declarations of the WIT worlds, as `jco types`
// does, for the drift check (test/drift.ts):
//   node tools/wit-types.mjs OUT_DIR [WIT_DIR]   -> OUT_DIR/{validator,enricher}/...
//
// Why not the `jco types` command: jco 1.35's type generator runs as a
// component on @bytecodealliance/preview2-shim 0.26, which no longer
// preopens the host's `/`, so it cannot read any WIT path ("failed to read
// path for WIT ... No such file or directory (os error 44)"). This calls the
// same generator (jco-transpile's generateHostTypes, what `jco types` runs)
// after preopening `/` in that copy of the shim.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "./bundle.mjs";

const [outArg, witArg] = process.argv.slice(2);
if (!outArg) {
  console.error("usage: node tools/wit-types.mjs OUT_DIR [WIT_DIR]");
  process.exit(2);
}
const out = resolve(outArg);
const wit = resolve(witArg ?? join(ROOT, "..", "..", "wit", "0.2.0"));

const require = createRequire(join(ROOT, "package.json"));
const transpile = require.resolve("@bytecodealliance/jco-transpile");
const shim = await import(pathToFileURL(createRequire(transpile).resolve("@bytecodealliance/preview2-shim/filesystem")));
if (typeof shim._addPreopen === "function") shim._addPreopen("/", "/");
const { generateHostTypes } = await import(pathToFileURL(transpile));

rmSync(out, { recursive: true, force: true });
for (const world of ["validator", "enricher"]) {
  const dir = join(out, world);
  const files = await generateHostTypes(wit, { worldName: world, outDir: `${dir}/` });
  for (const [path, contents] of Object.entries(files)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, contents);
  }
}
