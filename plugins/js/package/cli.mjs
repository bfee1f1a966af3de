#!/usr/bin/env node
// `sluice-plugin`: the build and test entry point of the npm package of the
// same name (made by scripts/package-sdks from this file, ../sdk and the
// WIT), run by `sluice plugin build|test` for a plugin made by `sluice
// plugin new --lang ts|js`. It needs nothing but the package and its pinned
// dependencies (esbuild, componentize-js, typescript, @types/node), so a
// plugin project builds without a Sluice checkout:
//
//   sluice-plugin build DIR [OUT]   DIR/src/index.{ts,js} -> OUT/<dir name, `-` as `_`>.wasm
//                                   (default OUT: DIR/dist); prints the component's path
//   sluice-plugin test DIR          tsc over DIR/tsconfig.json and DIR/test/tsconfig.json,
//                                   then node --test over DIR/test/*.test.{ts,js,mjs}
//
// The same recipe as the repository's plugins/js/tools/build.mjs: esbuild
// bundles the plugin with the SDK into one ES module, componentize-js makes
// it a component of the world its package.json names (`"sluice": {"world":
// "validator" | "enricher", "features": [...]}`), with every optional WASI
// feature disabled unless listed. Components are cached by content hash in
// ${SLUICE_CACHE:-~/.cache/sluice}/plugins-js-cache (componentizing takes
// seconds); the key names this package's version, so SDK and toolchain
// changes never reuse a stale component.

import { spawnSync } from "node:child_process";
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
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** This package's directory. */
const HERE = dirname(fileURLToPath(import.meta.url));
const SDK = join(HERE, "sdk", "index.ts");
const HOST_LOG_STUB = join(HERE, "testing", "host-log.ts");
const WIT = join(HERE, "wit", "0.2.0");
const PACKAGE = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8"));
const ALL_FEATURES = ["stdio", "random", "clocks", "http", "fetch-event"];
const EXPORTS = { validator: "sluice:plugin/validate@0.2.0", enricher: "sluice:plugin/enrich@0.2.0" };
const OTHER = { validator: "sluice:plugin/enrich@", enricher: "sluice:plugin/validate@" };
const COMPONENT_HEADER = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
/** Bump when the recipe below changes (the options, the checks). */
const RECIPE = "sluice-plugin-npm-1";
const CACHE_DAYS = 30;

// Resolved from this package, wherever npm put its dependencies (hoisted
// into the project's node_modules or nested in ours).
const require = createRequire(import.meta.url);

function usage() {
  console.error("usage: sluice-plugin build DIR [OUT] | sluice-plugin test DIR");
  process.exit(2);
}

/** The plugin in `dir`: its world, features and entry point, checked. */
function readPlugin(dir) {
  const manifestPath = join(dir, "package.json");
  if (!existsSync(manifestPath)) throw new Error(`${dir}: no package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const { world, features = [] } = manifest.sluice ?? {};
  if (!Object.hasOwn(EXPORTS, world)) {
    throw new Error(`${manifestPath}: "sluice": {"world"} must be "validator" or "enricher"`);
  }
  const unknown = features.filter((f) => !ALL_FEATURES.includes(f));
  if (unknown.length) throw new Error(`${manifestPath}: unknown features ${unknown.join(", ")}`);
  const entry = ["src/index.ts", "src/index.js"].map((p) => join(dir, p)).find(existsSync);
  if (!entry) throw new Error(`${dir}: no src/index.ts or src/index.js`);
  return { world, features, entry };
}

/** The plugin with the SDK as one ES module; the WIT imports stay imports. */
async function bundle(entry) {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    target: "es2022",
    external: ["sluice:plugin/*"],
    alias: { "sluice-plugin": SDK },
    charset: "utf8",
    legalComments: "none",
    logLevel: "warning",
  });
  return result.outputFiles[0].text;
}

function cacheKey(js, world, features) {
  const hash = createHash("sha256");
  const part = (s) => hash.update(`${Buffer.byteLength(s)}:`).update(s);
  part(RECIPE);
  part(`${PACKAGE.name}@${PACKAGE.version}`);
  part(JSON.stringify(PACKAGE.dependencies));
  part(world);
  part(JSON.stringify([...features].sort()));
  part(js);
  for (const name of readdirSync(WIT).sort()) {
    part(name);
    part(readFileSync(join(WIT, name), "utf8"));
  }
  return hash.digest("hex");
}

async function buildCommand(dir, out) {
  const plugin = readPlugin(dir);
  const file = `${basename(dir).replaceAll("-", "_")}.wasm`;
  const cacheDir = join(process.env.SLUICE_CACHE || join(homedir(), ".cache", "sluice"), "plugins-js-cache");
  mkdirSync(out, { recursive: true });
  mkdirSync(cacheDir, { recursive: true });

  const js = await bundle(plugin.entry);
  const bundleDir = join(dir, ".build", "bundles");
  mkdirSync(bundleDir, { recursive: true });
  writeFileSync(join(bundleDir, file.replace(/\.wasm$/, ".js")), js); // for reading stack traces

  const cached = join(cacheDir, `${cacheKey(js, plugin.world, plugin.features)}.wasm`);
  if (!existsSync(cached)) {
    const { componentize } = await import("@bytecodealliance/componentize-js");
    const work = mkdtempSync(join(tmpdir(), "sluice-componentize-"));
    try {
      const source = join(work, file.replace(/\.wasm$/, ".js"));
      writeFileSync(source, js);
      const { component } = await componentize({
        sourcePath: source,
        witPath: WIT,
        worldName: plugin.world,
        disableFeatures: ALL_FEATURES.filter((f) => !plugin.features.includes(f)),
      });
      // Written aside then renamed: a concurrent reader never sees half a file.
      const partial = `${cached}.${process.pid}.tmp`;
      writeFileSync(partial, component);
      renameSync(partial, cached);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const now = new Date();
  utimesSync(cached, now, now); // last used, for pruning
  for (const name of readdirSync(cacheDir)) {
    const path = join(cacheDir, name);
    try {
      const { mtimeMs } = statSync(path);
      if (Date.now() - mtimeMs > CACHE_DAYS * 86_400_000) rmSync(path, { force: true });
    } catch {
      // Another build pruned or renamed it first.
    }
  }

  const wasm = readFileSync(cached);
  // The same checks as the repository's Python build: a component, of this
  // world (its export named, the other world's not).
  const problem = !wasm.subarray(0, 8).equals(COMPONENT_HEADER)
    ? "not a component (header)"
    : !wasm.includes(EXPORTS[plugin.world])
      ? `does not export ${EXPORTS[plugin.world]}`
      : wasm.includes(OTHER[plugin.world])
        ? `also names ${OTHER[plugin.world]} (wrong world?)`
        : undefined;
  if (problem) {
    rmSync(cached, { force: true });
    throw new Error(`${file}: ${problem}`);
  }
  const target = join(out, file);
  copyFileSync(cached, `${target}.tmp`);
  renameSync(`${target}.tmp`, target);
  console.log(target);
}

/** Runs `command`, exiting with its status if it fails. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: "inherit", ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

async function testCommand(dir) {
  // typescript's exports map hides bin/tsc: find it next to its package.json.
  const tsc = join(dirname(require.resolve("typescript/package.json")), "bin", "tsc");
  for (const config of ["tsconfig.json", "test/tsconfig.json"]) {
    if (existsSync(join(dir, config))) {
      console.log(`== types: ${config}`);
      run(process.execPath, [tsc, "-p", config], { cwd: dir }); // errors name the plugin's files relative to it
    }
  }

  console.log("== unit tests");
  const testDir = join(dir, "test");
  const entries = existsSync(testDir)
    ? readdirSync(testDir)
        .filter((f) => /\.test\.(ts|js|mjs)$/.test(f))
        .sort()
        .map((f) => join(testDir, f))
    : [];
  if (!entries.length) {
    console.error(`error: no tests in ${testDir}/ (*.test.ts, *.test.js or *.test.mjs)`);
    process.exit(1);
  }
  const out = join(dir, ".build", "test");
  rmSync(out, { recursive: true, force: true });
  const { build } = await import("esbuild");
  // Node 20 cannot run TypeScript: the tests are bundled with the SDK, the
  // host's log import replaced by a recording stub.
  await build({
    entryPoints: entries,
    outdir: out,
    outbase: dir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    alias: { "sluice-plugin": SDK },
    plugins: [
      {
        name: "sluice-host-stub",
        setup(b) {
          b.onResolve({ filter: /^sluice:plugin\/log@/ }, () => ({ path: HOST_LOG_STUB }));
        },
      },
    ],
    logLevel: "warning",
  });
  const bundles = entries.map((e) => join(out, relative(dir, e)).replace(/\.(ts|js|mjs)$/, ".mjs"));
  run(process.execPath, ["--test", "--test-reporter=spec", ...bundles]);
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === "build" && (args.length === 1 || args.length === 2)) {
    const dir = resolve(args[0]);
    await buildCommand(dir, resolve(args[1] ?? join(dir, "dist")));
  } else if (command === "test" && args.length === 1) {
    await testCommand(resolve(args[0]));
  } else {
    usage();
  }
} catch (error) {
  console.error(`error: ${error.message ?? error}`);
  process.exit(1);
}
