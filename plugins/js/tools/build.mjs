// Builds every plugin under examples/ and fixtures/ into a component, or
// one plugin directory anywhere into OUT_DIR/<dir name>.wasm (dashes ->
// underscores; its bundle in DIR/.build/bundles/):
//   node tools/build.mjs OUT_DIR                (build.sh runs it after `npm ci`)
//   node tools/build.mjs --plugin DIR OUT_DIR   (build.sh --plugin DIR)
//
// Per plugin: esbuild bundles src/index.ts (or .js) with the SDK into one ES
// module; componentize-js makes it a component of the world named in the
// plugin's package.json (`"sluice": {"world": "validator" | "enricher"}`).
// componentize-js's optional WASI features (stdio, random, clocks, http,
// fetch-event) are all disabled unless listed in `"sluice": {"features":
// [...]}`: the component then imports nothing but `sluice:plugin/*`.
// Outputs are cached by content hash (componentizing takes seconds).

import { componentize } from "@bytecodealliance/componentize-js";
import { componentWit } from "@bytecodealliance/jco";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { bundlePlugin, ROOT } from "./bundle.mjs";

/** Bump to invalidate every cached component (e.g. when the options below change). */
const CACHE_VERSION = "sluice-plugins-js-1";
const WIT_DIR = resolve(ROOT, "..", "..", "wit", "0.2.0");
const ALL_FEATURES = ["stdio", "random", "clocks", "http", "fetch-event"];
const EXPORTS = { validator: "sluice:plugin/validate@0.2.0", enricher: "sluice:plugin/enrich@0.2.0" };
/** Cached components unused for this long are deleted. */
const CACHE_DAYS = 30;
const HEADER = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);

const args = process.argv.slice(2);
const single = args[0] === "--plugin";
if (args.length !== (single ? 3 : 1) || !args.every(Boolean)) {
  console.error("usage: node tools/build.mjs OUT_DIR | node tools/build.mjs --plugin DIR OUT_DIR");
  process.exit(2);
}
/** With --plugin: the one plugin to build. */
const pluginDir = single ? resolve(args[1]) : undefined;
const out = args[args.length - 1];
const cacheDir = join(process.env.SLUICE_CACHE || join(homedir(), ".cache", "sluice"), "plugins-js-cache");
const bundleDir = join(pluginDir ?? ROOT, ".build", "bundles");
mkdirSync(out, { recursive: true });
mkdirSync(cacheDir, { recursive: true });
mkdirSync(bundleDir, { recursive: true });

/** The plugin in `dir`, built into `file`: { dir, file, world, features, entry }. */
function plugin(dir, file) {
  const manifestPath = join(dir, "package.json");
  if (!existsSync(manifestPath)) throw new Error(`${dir}: no package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const { world, features = [] } = manifest.sluice ?? {};
  if (!Object.hasOwn(EXPORTS, world)) {
    throw new Error(`${dir}/package.json: "sluice": {"world"} must be "validator" or "enricher"`);
  }
  const unknown = features.filter((f) => !ALL_FEATURES.includes(f));
  if (unknown.length) throw new Error(`${dir}/package.json: unknown features ${unknown.join(", ")}`);
  const entry = ["src/index.ts", "src/index.js"].map((p) => join(dir, p)).find(existsSync);
  if (!entry) throw new Error(`${dir}: no src/index.ts or src/index.js`);
  return { dir, file, world, features, entry };
}

/** Every plugin to build (just the one with --plugin). */
function plugins() {
  if (pluginDir) return [plugin(pluginDir, `${basename(pluginDir).replaceAll("-", "_")}.wasm`)];
  const found = [];
  for (const [group, prefix] of [["examples", "ts_"], ["fixtures", "ts_fixture_"]]) {
    const groupDir = join(ROOT, group);
    if (!existsSync(groupDir)) continue;
    for (const name of readdirSync(groupDir).sort()) {
      const dir = join(groupDir, name);
      if (!statSync(dir).isDirectory()) continue;
      found.push(plugin(dir, `${prefix}${name.replaceAll("-", "_")}.wasm`));
    }
  }
  return found;
}

/** The hash of everything a component is made from. */
function cacheKey(js, world, features) {
  const hash = createHash("sha256");
  const part = (s) => hash.update(`${Buffer.byteLength(s)}:`).update(s);
  part(CACHE_VERSION);
  part(world);
  part(JSON.stringify([...features].sort()));
  part(js);
  part(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
  for (const name of readdirSync(WIT_DIR).sort()) {
    part(name);
    part(readFileSync(join(WIT_DIR, name), "utf8"));
  }
  return hash.digest("hex");
}

/** The component's WIT world: its imports and exports. */
async function interfaces(wasm) {
  const wit = await componentWit(wasm);
  const names = (kind) => [...wit.matchAll(new RegExp(`^\\s*${kind} ([^;]+);`, "gm"))].map((m) => m[1]);
  return { imports: names("import"), exports: names("export") };
}

const rows = [];
let failed = false;
for (const plugin of plugins()) {
  const start = performance.now();
  const js = await bundlePlugin(plugin.entry);
  const bundlePath = join(bundleDir, plugin.file.replace(/\.wasm$/, ".js"));
  writeFileSync(bundlePath, js);

  const key = cacheKey(js, plugin.world, plugin.features);
  const cached = join(cacheDir, `${key}.wasm`);
  let status = "cached";
  if (!existsSync(cached)) {
    status = "built";
    const work = mkdtempSync(join(tmpdir(), "sluice-componentize-"));
    try {
      const source = join(work, basename(bundlePath));
      writeFileSync(source, js);
      const { component } = await componentize({
        sourcePath: source,
        witPath: WIT_DIR,
        worldName: plugin.world,
        disableFeatures: ALL_FEATURES.filter((f) => !plugin.features.includes(f)),
      });
      const partial = `${cached}.${process.pid}.tmp`;
      writeFileSync(partial, component);
      renameSync(partial, cached);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const now = new Date();
  utimesSync(cached, now, now); // last used, for pruning
  const target = join(out, plugin.file);
  copyFileSync(cached, target);
  const seconds = (performance.now() - start) / 1000;

  const wasm = readFileSync(target);
  const problems = [];
  if (!wasm.subarray(0, 8).equals(HEADER)) problems.push("not a component (header)");
  const { imports, exports } = await interfaces(wasm);
  if (exports.join() !== EXPORTS[plugin.world]) problems.push(`exports ${exports.join(", ")}`);
  const foreign = imports.filter((i) => !i.startsWith("sluice:plugin/"));
  if (plugin.features.length === 0 && foreign.length) problems.push(`imports ${foreign.join(", ")}`);
  if (problems.length) failed = true;
  rows.push({ file: plugin.file, bytes: wasm.length, seconds, status, foreign, problems });
}

for (const name of readdirSync(cacheDir)) {
  const path = join(cacheDir, name);
  if (Date.now() - statSync(path).mtimeMs > CACHE_DAYS * 86_400_000) rmSync(path, { force: true });
}

const width = Math.max(4, ...rows.map((r) => r.file.length));
console.log(`${"file".padEnd(width)}  ${"bytes".padStart(10)}  ${"seconds".padStart(7)}  status  imports besides sluice:plugin/*`);
for (const r of rows) {
  const extra = r.foreign.length ? r.foreign.join(" ") : "-";
  console.log(
    `${r.file.padEnd(width)}  ${String(r.bytes).padStart(10)}  ${r.seconds.toFixed(1).padStart(7)}  ${r.status.padEnd(6)}  ${extra}`,
  );
  for (const p of r.problems) console.error(`  ERROR ${r.file}: ${p}`);
}
console.log(`-> ${out}`);
if (failed) process.exit(1);
