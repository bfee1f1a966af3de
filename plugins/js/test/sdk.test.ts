import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import {
  accept,
  defineEnricher,
  defineValidator,
  failed,
  InvalidConfig,
  log,
  OtherError,
  parseConfig,
  patch,
  PluginError,
  reject,
  unchanged,
  type Verdict,
} from "sluice-plugin";
import { batch, event, rawBatch } from "./support/batch.ts";
import { logged } from "./support/host-log.ts";

beforeEach(() => {
  logged.length = 0;
});

/** Runs `f`, expecting it to throw; returns what it threw. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  assert.fail("expected an exception");
}

describe("results", () => {
  test("have the WIT variant shapes componentize-js lowers", () => {
    assert.deepEqual(accept(), { tag: "accept" });
    assert.deepEqual(reject("c", "m"), { tag: "reject", val: { code: "c", message: "m" } });
    assert.deepEqual(unchanged(), { tag: "unchanged" });
    assert.deepEqual(failed("why"), { tag: "failed", val: "why" });
  });

  test("patch serialises a merge patch", () => {
    const p = patch({ properties: { email: null, email_hash: "sha256:ab" }, context: null, name: "Renamed" });
    assert.equal(p.tag, "patched");
    assert.deepEqual(p, {
      tag: "patched",
      val: '{"properties":{"email":null,"email_hash":"sha256:ab"},"context":null,"name":"Renamed"}',
    });
    assert.deepEqual(patch({}), { tag: "patched", val: "{}" });
  });
});

describe("parseConfig", () => {
  test("reads an empty configuration as {}", () => {
    assert.deepEqual(parseConfig(""), {});
    assert.deepEqual(parseConfig(" \n"), {});
    assert.deepEqual(parseConfig("[1]"), [1]);
  });

  test("reports invalid JSON as invalid-config", () => {
    const e = thrown(() => parseConfig("nope"));
    assert.ok(e instanceof InvalidConfig);
    assert.equal(e.payload.tag, "invalid-config");
    assert.match(e.payload.val, /^invalid JSON: /);
  });
});

describe("errors", () => {
  test("carry the plugin-error variant as an own `payload` (what componentize-js returns as the err)", () => {
    const invalid = new InvalidConfig("bad");
    assert.ok(Object.prototype.hasOwnProperty.call(invalid, "payload"));
    assert.deepEqual(invalid.payload, { tag: "invalid-config", val: "bad" });
    assert.equal(invalid.message, "bad");
    assert.equal(invalid.name, "InvalidConfig");
    assert.ok(invalid instanceof PluginError && invalid instanceof Error);
    assert.deepEqual(new OtherError("x").payload, { tag: "other", val: "x" });
  });
});

describe("defineValidator", () => {
  const names = defineValidator({
    fields: ["properties", "times"],
    init(config) {
      if (!Array.isArray(config)) throw new InvalidConfig("expected a list");
      return new Set(config as string[]);
    },
    validate(e, denied): Verdict {
      return denied.has(e.name) ? reject("denied", `${e.name} at ${e.timestamp_ms}`) : accept();
    },
  });

  test("init returns the needs record: jco's flags object, no spans", () => {
    assert.deepEqual(names.init('["x"]'), {
      fields: { userId: false, times: true, schemaVersion: false, properties: true, context: false },
      spans: false,
    });
    const none = defineValidator({ fields: [], validate: () => accept() });
    assert.deepEqual(none.init(""), {
      fields: { userId: false, times: false, schemaVersion: false, properties: false, context: false },
      spans: false,
    });
    const all = defineValidator({
      fields: ["user_id", "times", "schema_version", "properties", "context"],
      validate: () => accept(),
    });
    assert.deepEqual(all.init("{}").fields, {
      userId: true,
      times: true,
      schemaVersion: true,
      properties: true,
      context: true,
    });
  });

  test("one verdict per event, in order, from one parse of the batch", () => {
    names.init('["b", "d"]');
    assert.deepEqual(names.validate(batch([])), []);
    const events = ["a", "b", "c", "d", "e"].map((n, i) => ({ ...(event(n) as object), timestamp_ms: i }));
    const verdicts = names.validate(batch(events));
    assert.equal(verdicts.length, 5);
    assert.deepEqual(verdicts, [
      accept(),
      reject("denied", "b at 1"),
      accept(),
      reject("denied", "d at 3"),
      accept(),
    ]);
  });

  test("a later init replaces the configuration; a failed one clears it", () => {
    names.init('["a"]');
    assert.deepEqual(names.validate(batch([event("a")])), [reject("denied", "a at undefined")]);
    names.init('["b"]');
    assert.deepEqual(names.validate(batch([event("a")])), [accept()]);

    const e = thrown(() => names.init('{"not": "a list"}'));
    assert.ok(e instanceof InvalidConfig);
    assert.deepEqual(e.payload, { tag: "invalid-config", val: "expected a list" });
    const trap = thrown(() => names.validate(batch([event("a")])));
    assert.ok(trap instanceof Error);
    assert.equal(trap.message, "sluice plugin: `validate` called before a successful `init`");
  });

  test("a batch call before init throws (a trap), logged", () => {
    const fresh = defineValidator({ fields: [], validate: () => accept() });
    const e = thrown(() => fresh.validate(batch([event("a")])));
    assert.ok(e instanceof Error && !(e instanceof PluginError));
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.level, "error");
    assert.match(logged[0]?.message ?? "", /`validate` called before a successful `init`/);
  });

  test("invalid JSON config is invalid-config before the plugin's init runs", () => {
    let called = false;
    const plugin = defineValidator({
      fields: [],
      init: () => {
        called = true;
      },
      validate: () => accept(),
    });
    const e = thrown(() => plugin.init("{"));
    assert.ok(e instanceof InvalidConfig);
    assert.equal(called, false);
  });

  test("errors other than PluginError thrown by init are rethrown (traps) and logged", () => {
    const plugin = defineValidator({
      fields: [],
      init: (config: unknown) => (config as { a: { b: number } }).a.b,
      validate: () => accept(),
    });
    const e = thrown(() => plugin.init("{}"));
    assert.ok(e instanceof TypeError);
    assert.equal(logged.length, 1);
    assert.match(logged[0]?.message ?? "", /^sluice plugin: uncaught exception in `init`: TypeError: /);
    const other = defineValidator({
      fields: [],
      init: () => {
        throw new OtherError("database of bots unavailable");
      },
      validate: () => accept(),
    });
    assert.deepEqual((thrown(() => other.init("")) as PluginError).payload, {
      tag: "other",
      val: "database of bots unavailable",
    });
  });

  test("an exception in the per-event function is rethrown (a trap) and logged with its stack", () => {
    const plugin = defineValidator({
      fields: [],
      validate(e) {
        if (e.name === "bad") throw new RangeError("cannot handle bad");
        return accept();
      },
    });
    plugin.init("");
    const e = thrown(() => plugin.validate(batch([event("ok"), event("bad")])));
    assert.ok(e instanceof RangeError);
    assert.equal(logged.length, 1);
    assert.match(logged[0]?.message ?? "", /^sluice plugin: uncaught exception in `validate`: RangeError: cannot handle bad\n/);
    assert.match(logged[0]?.message ?? "", /at /); // the stack
  });

  test("a per-event result that is not a verdict throws, naming the event", () => {
    const results: unknown[] = [accept(), undefined, { tag: "reject", val: { code: "c" } }, Promise.resolve(accept())];
    const plugin = defineValidator({
      fields: [],
      validate: (e) => results[Number(e.name)] as Verdict,
    });
    plugin.init("");
    assert.deepEqual(plugin.validate(batch([event("0")])), [accept()]);
    assert.match(String(thrown(() => plugin.validate(batch([event("0"), event("1")])))), /returned undefined for event 1/);
    assert.match(String(thrown(() => plugin.validate(batch([event("2")])))), /returned \{"tag":"reject","val":\{"code":"c"\}\} for event 0/);
    assert.match(String(thrown(() => plugin.validate(batch([event("3")])))), /a Promise/);
  });

  test("a batch that is not a JSON array throws", () => {
    const plugin = defineValidator({ fields: [], validate: () => accept() });
    plugin.init("");
    assert.throws(() => plugin.validate(rawBatch('{"event_id":"x"}')), /not a JSON array/);
    assert.throws(() => plugin.validate(rawBatch("[")), SyntaxError);
  });

  test("an unknown field is refused when the plugin is defined (at build time)", () => {
    assert.throws(
      () => defineValidator({ fields: ["user_id", "timestamp"] as never[], validate: () => accept() }),
      /unknown field "timestamp"/,
    );
  });
});

describe("Event", () => {
  test("has the members of the declared fields only (type-checked)", () => {
    const plugin = defineValidator({
      fields: ["user_id", "context"],
      validate(e) {
        const id: string = e.user_id;
        const ip = e.context?.ip; // context is optional: absent from events that have none
        // @ts-expect-error: `properties` was not declared
        void e.properties;
        // @ts-expect-error: `times` was not declared
        void e.timestamp_ms;
        return id === "u1" && ip === undefined ? accept() : reject("r", "r");
      },
    });
    plugin.init("");
    assert.deepEqual(plugin.validate(batch([{ event_id: "1", name: "n", user_id: "u1" }])), [accept()]);
  });
});

describe("defineEnricher", () => {
  const tagger = defineEnricher({
    fields: ["properties", "context"],
    init: (config) => String((config as { tag?: unknown }).tag ?? "ts"),
    enrich(e, tag) {
      if (e.name === "fail") return failed(`cannot tag ${e.event_id}`);
      if (e.properties.tag === tag) return unchanged();
      return patch({ properties: { tag }, context: e.context ? null : { tagged: true } });
    },
  });

  test("one result per event, patches serialised", () => {
    assert.deepEqual(tagger.init('{"tag": "x"}'), {
      fields: { userId: false, times: false, schemaVersion: false, properties: true, context: true },
      spans: false,
    });
    const results = tagger.enrich(
      rawBatch(
        '[{"event_id":"1","name":"a","properties":{}},' +
          '{"event_id":"2","name":"b","properties":{"tag":"x"}},' +
          '{"event_id":"3","name":"fail","properties":{}},' +
          '{"event_id":"4","name":"c","properties":{"tag":"y"},"context":{"ip":"10.0.0.1"}}]',
      ),
    );
    assert.deepEqual(results, [
      { tag: "patched", val: '{"properties":{"tag":"x"},"context":{"tagged":true}}' },
      { tag: "unchanged" },
      { tag: "failed", val: "cannot tag 3" },
      { tag: "patched", val: '{"properties":{"tag":"x"},"context":null}' },
    ]);
    assert.deepEqual(tagger.enrich(batch([])), []);
  });

  test("a per-event result that is not an enriched value throws", () => {
    const bad = defineEnricher({ fields: [], enrich: () => accept() as never });
    bad.init("");
    assert.throws(() => bad.enrich(batch([event("a")])), /`enrich` returned \{"tag":"accept"\} for event 0, expected unchanged\(\)/);
  });
});

describe("log", () => {
  test("writes through the host's log import", () => {
    log.trace("t");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    log.info(42 as unknown as string);
    assert.deepEqual(logged, [
      { level: "trace", message: "t" },
      { level: "debug", message: "d" },
      { level: "info", message: "i" },
      { level: "warn", message: "w" },
      { level: "error", message: "e" },
      { level: "info", message: "42" },
    ]);
  });
});
