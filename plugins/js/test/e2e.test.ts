// End-to-end smoke test of built components, run in Node through
// `jco transpile` (test.sh builds the components, transpiles them into
// $SLUICE_TS_TRANSPILED/<name>/ and sets the variable; without it these
// tests are skipped). It checks the components' ABI shape before a Rust
// host runs them: what init returns, how errors and traps come out.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import type { Batch, Enriched, Needs, Verdict } from "sluice-plugin";
import { batch, event, rawEvents } from "./support/batch.ts";

// Node's global (not in lib es2022 nor @types/node 20), as far as used here.
declare namespace WebAssembly {
  type Module = object;
  function compile(bytes: Uint8Array): Promise<Module>;
  const RuntimeError: new (message?: string) => Error;
}

const dir = process.env.SLUICE_TS_TRANSPILED;
const skip = dir ? false : "SLUICE_TS_TRANSPILED is not set (test.sh sets it after building the components)";

type Log = (level: string, message: string) => void;
interface Instance {
  validate?: { init(config: string): Needs; validate(batch: Batch): Verdict[] };
  enrich?: { init(config: string): Needs; enrich(batch: Batch): Enriched[] };
}
type Instantiate = (
  getCoreModule: (path: string) => Promise<WebAssembly.Module>,
  imports: Record<string, unknown>,
) => Promise<Instance>;

const modules = new Map<string, Promise<WebAssembly.Module>>();

/** A fresh instance of the transpiled component `name`, its log lines collected in `lines`. */
async function instance(name: string, lines: string[] = []): Promise<Instance> {
  const base = join(dir ?? "", name);
  const { instantiate } = (await import(pathToFileURL(join(base, `${name}.js`)).href)) as { instantiate: Instantiate };
  const getCoreModule = (path: string) => {
    const key = join(base, path);
    let module = modules.get(key);
    if (!module) {
      module = WebAssembly.compile(readFileSync(key));
      modules.set(key, module);
    }
    return module;
  };
  const log: Log = (level, message) => lines.push(`${level}: ${message}`);
  return instantiate(getCoreModule, { "sluice:plugin/log": { log } });
}

/** What calling `f` throws. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return assert.fail("expected an exception");
}

const NEEDS_PROPERTIES = {
  fields: { userId: false, times: false, schemaVersion: false, properties: true, context: false },
  spans: false,
};

describe("ts_required_properties.wasm", { skip }, () => {
  test("init returns needs; validate returns one verdict per event", async () => {
    const plugin = (await instance("ts_required_properties")).validate!;
    assert.deepEqual(
      plugin.init('{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}'),
      NEEDS_PROPERTIES,
    );
    const verdicts = plugin.validate(
      batch([
        event("Signed Up", { plan: "pro", email: "a@b.c", app_version: "1.2" }),
        event("Signed Up", { plan: "pro", app_version: "1.2" }),
        event("Signed Up", { app_version: null }),
      ]),
    );
    assert.deepEqual(verdicts, [
      { tag: "accept" },
      { tag: "reject", val: { code: "missing_property", message: "event `Signed Up` is missing required property `email`" } },
      {
        tag: "reject",
        val: {
          code: "missing_property",
          message: "event `Signed Up` is missing required properties `plan`, `email`, `app_version`",
        },
      },
    ]);
    assert.deepEqual(plugin.validate(batch([])), []);
  });

  test("a bad configuration is the result's err: plugin-error invalid-config", async () => {
    const plugin = (await instance("ts_required_properties")).validate!;
    const e = thrown(() => plugin.init('{"requried": {}}')) as { payload?: unknown };
    assert.deepEqual(e.payload, { tag: "invalid-config", val: "unknown field `requried`, expected `required`" });
    // the instance is still usable
    assert.deepEqual(plugin.init('{"required": {}}'), NEEDS_PROPERTIES);
  });

  test("validate before init traps, and says why in the log", async () => {
    const lines: string[] = [];
    const plugin = (await instance("ts_required_properties", lines)).validate!;
    const e = thrown(() => plugin.validate(batch([event("x")])));
    assert.ok(e instanceof WebAssembly.RuntimeError, String(e));
    assert.match(lines.join("\n"), /^error: Error: sluice plugin: `validate` called before a successful `init`/);
  });
});

describe("ts_bot_filter.wasm", { skip }, () => {
  test("verdicts, Unicode lower-casing in the engine, invalid-config", async () => {
    const plugin = (await instance("ts_bot_filter")).validate!;
    assert.deepEqual(plugin.init(""), {
      fields: { userId: false, times: false, schemaVersion: false, properties: true, context: true },
      spans: false,
    });
    const verdicts = plugin.validate(
      rawEvents([
        { properties: "{}", context: '{"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}' },
        { properties: '{"$user_agent": "Baiduspider/2.0"}', context: '{"user_agent": "Firefox"}' },
        { properties: '{"$user_agent": "Firefox"}' },
        // a lone surrogate escape: Rust's scanner does not read these properties
        { properties: '{"$user_agent": "Googlebot", "x": "\\ud800"}' },
      ]),
    );
    assert.deepEqual(verdicts, [
      { tag: "reject", val: { code: "bot_traffic", message: "the user agent matches the bot pattern `bot`" } },
      { tag: "reject", val: { code: "bot_traffic", message: "the user agent matches the bot pattern `spider`" } },
      { tag: "accept" },
      { tag: "accept" },
    ]);
    plugin.init('{"user_agent_patterns": ["kit", "\u00fcn\u00ef"]}');
    assert.deepEqual(
      plugin.validate(rawEvents([{ properties: "{}", context: '{"user_agent": "Web\u212aIT \u00dcN\u00cfcode"}' }])),
      [{ tag: "reject", val: { code: "bot_traffic", message: "the user agent matches the bot pattern `kit`" } }],
    );
    assert.deepEqual(
      plugin.validate(rawEvents([{ properties: "{}", context: '{"user_agent": "x", "y": "\\ud800 kit"}' }])),
      [{ tag: "accept" }],
    );
    for (const bad of ['{"user_agent_patterns": [""]}', '{"patterns": []}', '{"case_insensitive": true, "case_insensitive": true}']) {
      const e = thrown(() => plugin.init(bad)) as { payload?: { tag?: string } };
      assert.equal(e.payload?.tag, "invalid-config", bad);
    }
  });
});

describe("ts_pii_scrubber.wasm", { skip }, () => {
  const hash = (salt: string, value: string) => `sha256:${createHash("sha256").update(salt + value, "utf8").digest("hex")}`;

  test("patches with SHA-256 computed in the engine, drops, failures", async () => {
    const plugin = (await instance("ts_pii_scrubber")).enrich!;
    assert.deepEqual(plugin.init('{"salt": "s\u00e9", "fields": ["phone"]}'), {
      fields: { userId: false, times: false, schemaVersion: false, properties: true, context: true },
      spans: false,
    });
    const salt = "s\u00e9";
    const results = plugin.enrich(
      rawEvents([
        { properties: '{"plan": "pro", "n": 1.50}', context: '{"locale": "en"}' },
        {
          properties: '{"email": "jane@example.com", "list": [1.0, "from 10.0.0.7", -0], "phone": {"b": 1e3, "a": 2}}',
          context: '{"ip": "2001:db8::5", "locale": "en"}',
        },
        { properties: '{"x": "\\ud800 a@b.io"}' },
        { properties: '{"a": "x@y.io", "a": 1}' },
      ]),
    );
    assert.deepEqual(results, [
      { tag: "unchanged" },
      {
        tag: "patched",
        val:
          `{"properties":{"email":"${hash(salt, "jane@example.com")}","list":[1.0,"from ${hash(salt, "10.0.0.7")}",-0],` +
          `"phone":"${hash(salt, '{"a":2,"b":1000.0}')}"},"context":{"ip":"${hash(salt, "2001:db8::5")}"}}`,
      },
      { tag: "failed", val: "properties are not JSON: lone leading surrogate in \\u escape at byte 7" },
      { tag: "unchanged" },
    ]);
    // a long value: many SHA-256 blocks
    const long = "x".repeat(100_000);
    assert.deepEqual(plugin.enrich(rawEvents([{ properties: `{"phone": "${long}"}` }])), [
      { tag: "patched", val: `{"properties":{"phone":"${hash(salt, long)}"}}` },
    ]);
    plugin.init('{"mode": "drop"}');
    assert.deepEqual(
      plugin.enrich(rawEvents([{ properties: '{"deep": {"ip": "10.1.1.1", "k": 1}, "keep": 1}', context: '{"ip": "10.0.0.1"}' }])),
      [{ tag: "patched", val: '{"properties":{"deep":{"ip":null}},"context":{"ip":null}}' }],
    );
    const e = thrown(() => plugin.init('{"mode": "hash"}')) as { payload?: unknown };
    assert.deepEqual(e.payload, {
      tag: "invalid-config",
      val: "`salt` is required in hash mode: unsalted hashes of emails and IPs are easy to reverse",
    });
  });
});

describe("ts_fixture_tag_enricher.wasm", { skip }, () => {
  test("patched, unchanged and failed", async () => {
    const plugin = (await instance("ts_fixture_tag_enricher")).enrich!;
    assert.deepEqual(plugin.init('{"tag": "x"}'), NEEDS_PROPERTIES);
    assert.deepEqual(plugin.enrich(batch([event("a", {}), event("b", { tag: "x" }), event("Fail Me", {})])), [
      { tag: "patched", val: '{"properties":{"tag":"x"}}' },
      { tag: "unchanged" },
      { tag: "failed", val: "fixture: asked to fail" },
    ]);
  });
});

describe("ts_fixture_throws.wasm", { skip }, () => {
  test("an exception in validate traps, its message in the log", async () => {
    const lines: string[] = [];
    const plugin = (await instance("ts_fixture_throws", lines)).validate!;
    assert.deepEqual(plugin.init("{}").spans, false);
    const e = thrown(() => plugin.validate(batch([event("x")])));
    assert.ok(e instanceof WebAssembly.RuntimeError, String(e));
    assert.match(lines.join("\n"), /^error: sluice plugin: uncaught exception in `validate`: Error: fixture: validate throws/);
  });

  test('{"in": "init"}: an exception in init traps too', async () => {
    const lines: string[] = [];
    const plugin = (await instance("ts_fixture_throws", lines)).validate!;
    const e = thrown(() => plugin.init('{"in": "init"}'));
    assert.ok(e instanceof WebAssembly.RuntimeError, String(e));
    assert.match(lines.join("\n"), /uncaught exception in `init`: Error: fixture: init throws/);
  });
});
