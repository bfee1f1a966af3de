// The Rust example's tests (plugins/examples/required-properties), through
// the exported component interface: `init(config)` then `validate(batch)`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { accept, InvalidConfig, reject, type Verdict } from "sluice-plugin";
import { validate as plugin } from "../src/index.ts";
import { batch, event, rawBatch } from "../../../test/support/batch.ts";

const CONFIG = '{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}';

function validate(events: object[], config = CONFIG): Verdict[] {
  plugin.init(config);
  return plugin.validate(batch(events));
}

function codes(verdicts: Verdict[]): (string | null)[] {
  return verdicts.map((v) => (v.tag === "reject" ? v.val.code : null));
}

test("init declares that it reads properties only", () => {
  assert.deepEqual(plugin.init(CONFIG), {
    fields: { userId: false, times: false, schemaVersion: false, properties: true, context: false },
    spans: false,
  });
});

test("accepts events with every required property", () => {
  assert.deepEqual(
    validate([
      event("Signed Up", { plan: "pro", email: "a@b.c", app_version: "1.2" }),
      event("Page Viewed", { app_version: "1.2" }),
    ]),
    [accept(), accept()],
  );
});

test("rejects a missing property, naming it", () => {
  assert.deepEqual(validate([event("Signed Up", { plan: "pro", app_version: "1.2" })]), [
    reject("missing_property", "event `Signed Up` is missing required property `email`"),
  ]);
});

test("the wildcard applies to every event and null counts as missing", () => {
  assert.deepEqual(validate([event("Page Viewed", { app_version: null }), event("Signed Up", {})]), [
    reject("missing_property", "event `Page Viewed` is missing required property `app_version`"),
    reject("missing_property", "event `Signed Up` is missing required properties `plan`, `email`, `app_version`"),
  ]);
});

test("nothing required: accepts without looking at the properties", () => {
  const config = '{"required": {"Other": ["x"]}}';
  assert.deepEqual(validate([event("Anything", "not an object"), event("Anything")], config), [accept(), accept()]);
  assert.deepEqual(validate([event("Anything", {})], '{"required": {}}'), [accept()]);
});

test("properties that are not an object are rejected when something is required", () => {
  assert.deepEqual(codes(validate([event("Page Viewed", []), event("Page Viewed")])), [
    "invalid_properties",
    "invalid_properties",
  ]);
  assert.deepEqual(validate([event("Page Viewed", [])]), [
    reject("invalid_properties", "properties are not a JSON object"),
  ]);
});

test("only top-level members count, and the last of repeated keys wins", () => {
  plugin.init(CONFIG);
  const verdicts = plugin.validate(
    rawBatch(
      "[" +
        [
          String.raw`{"event_id":"1","name":"Page Viewed","properties":{"nested":{"app_version":"1"},"s":"\"app_version\": 1"}}`,
          String.raw`{"event_id":"2","name":"Page Viewed","properties":{"app_version":"1","app_version":null}}`,
          String.raw`{"event_id":"3","name":"Page Viewed","properties":{"app_version":null,"app_version":"1"}}`,
          String.raw`{"event_id":"4","name":"Page Viewed","properties":{"app\u005fversion":0}}`,
        ].join(",") +
        "]",
    ),
  );
  assert.deepEqual(codes(verdicts), ["missing_property", "missing_property", null, null]);
});

test("a name required twice is named once, in first-occurrence order", () => {
  const config = '{"required": {"x": ["a", "b"], "*": ["a"]}}';
  assert.deepEqual(validate([event("x", { b: false })], config), [
    reject("missing_property", "event `x` is missing required property `a`"),
  ]);
  assert.deepEqual(validate([event("x", {})], '{"required": {"x": ["b", "a", "b"], "*": ["c", "a"]}}'), [
    reject("missing_property", "event `x` is missing required properties `b`, `a`, `c`"),
  ]);
  assert.deepEqual(validate([event("y", {})], '{"required": {"*": ["c", "c"]}}'), [
    reject("missing_property", "event `y` is missing required property `c`"),
  ]);
});

test("many required names", () => {
  const names = Array.from({ length: 100 }, (_, i) => `p${i}`);
  const config = JSON.stringify({ required: { "*": names } });
  const all: Record<string, number> = Object.fromEntries(names.map((n) => [n, 1]));
  assert.deepEqual(validate([event("x", all)], config), [accept()]);
  delete all.p70;
  assert.deepEqual(validate([event("x", all)], config), [
    reject("missing_property", "event `x` is missing required property `p70`"),
  ]);
});

test("long names and escaped keys", () => {
  const long = "x".repeat(63);
  const longer = "y".repeat(70);
  const config = JSON.stringify({ required: { "*": [long, longer, "ab"] } });
  assert.deepEqual(validate([event("x", { [long]: 1, [longer]: 2, ab: 3 })], config), [accept()]);
  plugin.init(config);
  const escaped = `[{"event_id":"1","name":"x","properties":{"${long}":1,"${longer}":2,"\\u0061\\u0062":3}}]`;
  assert.deepEqual(plugin.validate(rawBatch(escaped)), [accept()]);
  assert.deepEqual(validate([event("x", { [longer]: 2, ab: 3, abc: 4 })], config), [
    reject("missing_property", `event \`x\` is missing required property \`${long}\``),
  ]);
});

test("event and property names that are Object.prototype members are ordinary names", () => {
  const config = '{"required": {"*": ["constructor", "__proto__", "toString"]}}';
  assert.deepEqual(validate([event("constructor", {}), event("__proto__", {})], config), [
    reject("missing_property", "event `constructor` is missing required properties `constructor`, `__proto__`, `toString`"),
    reject("missing_property", "event `__proto__` is missing required properties `constructor`, `__proto__`, `toString`"),
  ]);
  plugin.init(config);
  const present = '[{"event_id":"1","name":"x","properties":{"constructor":1,"__proto__":2,"toString":3}}]';
  assert.deepEqual(plugin.validate(rawBatch(present)), [accept()]);
});

test("an event named `*` gets the wildcard list only", () => {
  const config = '{"required": {"*": ["a"], "x": ["b"]}}';
  assert.deepEqual(validate([event("*", {})], config), [
    reject("missing_property", "event `*` is missing required property `a`"),
  ]);
});

test("bad configurations are invalid-config", () => {
  for (const config of [
    "",
    "{}",
    '{"requried": {}}',
    '{"required": {}, "extra": 1}',
    '{"required": {"x": "plan"}}',
    '{"required": {"x": [1]}}',
    '{"required": {"x": null}}',
    '{"required": null}',
    '{"required": ["x"]}',
    '{"required": {"x": [""]}}',
    '{"required": {"*": ["a", ""]}}',
    "nope",
    "[]",
    "null",
  ]) {
    assert.throws(
      () => plugin.init(config),
      (e: unknown) => e instanceof InvalidConfig && e.payload.tag === "invalid-config",
      config,
    );
  }
  assert.throws(() => plugin.init('{"required": {"x": [""]}}'), /^InvalidConfig: property names must not be empty$/);
  assert.throws(() => plugin.init('{"requried": {}}'), /unknown field `requried`, expected `required`/);
});

test("one verdict per event", () => {
  assert.deepEqual(validate([]), []);
  assert.equal(validate(Array.from({ length: 5 }, () => event("x", { app_version: 1 }))).length, 5);
});
