// esbuild settings shared by the component build (tools/build.mjs) and the
// unit tests (tools/bundle-tests.mjs).

import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** plugins/js/ */
export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** The SDK, imported by plugins as `sluice-plugin`. */
export const SDK = join(ROOT, "sdk", "index.ts");

/**
 * A plugin (its `src/index.ts` or `.js`) with the SDK as one ES module for
 * componentize-js; the WIT imports (`sluice:plugin/...`) stay imports.
 */
export async function bundlePlugin(entry) {
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

/**
 * Test files for Node: `sluice:plugin/log@0.2.0` becomes the recording stub
 * test/support/host-log.ts. Each lands in `outdir` at its path relative to
 * `outbase`.
 */
export async function bundleTests(entries, outdir, outbase = ROOT) {
  await build({
    entryPoints: entries,
    outdir,
    outbase,
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
          b.onResolve({ filter: /^sluice:plugin\/log@/ }, () => ({
            path: join(ROOT, "test", "support", "host-log.ts"),
          }));
        },
      },
    ],
    logLevel: "warning",
  });
}
