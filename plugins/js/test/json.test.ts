// The SDK's exact JSON reading (sdk/json.ts) and what defineValidator /
// defineEnricher pass plugins for it (the configuration text, the event's
// batch and index).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  defineEnricher,
  defineValidator,
  fieldTypes,
  hasLoneSurrogate,
  InvalidConfig,
  JsonElements,
  JsonMembers,
  JsonNumber,
  JsonSyntaxError,
  memberText,
  parseConfig,
  readJson,
  readStruct,
  unchanged,
  accept,
  writeJson,
  type EventSource,
  type JsonNode,
} from "sluice-plugin";
import { rawBatch, rawEvents } from "./support/batch.ts";

/** What `readJson` throws for `text`. */
function syntaxError(text: string): JsonSyntaxError {
  try {
    readJson(text);
  } catch (e) {
    assert.ok(e instanceof JsonSyntaxError, String(e));
    return e;
  }
  return assert.fail(`accepted ${text}`);
}

describe("readJson", () => {
  test("keeps repeated keys and numbers as written", () => {
    const node = readJson(' {"a": 1.50, "a": [-0, 1E3, 18446744073709551617], "b": {"c": null, "d": true}} ');
    assert.ok(node instanceof JsonMembers);
    assert.deepEqual(node.keys, ["a", "a", "b"]);
    assert.deepEqual(node.values[0], new JsonNumber("1.50", 7));
    assert.deepEqual(
      (node.last("a") as JsonElements).items.map((n) => (n as JsonNumber).text),
      ["-0", "1E3", "18446744073709551617"],
    );
    assert.equal(node.last("x"), undefined);
    assert.equal(writeJson(node), '{"a":1.50,"a":[-0,1E3,18446744073709551617],"b":{"c":null,"d":true}}');
  });

  test("decodes strings as JSON.parse does", () => {
    for (const text of [
      String.raw`"plain"`,
      String.raw`"\"\\\/\b\f\n\r\t"`,
      String.raw`"\u00e9\u0041\ud83d\ude00 é 😀"`,
      String.raw`{"\u0061": "\u0062", "__proto__": [], "": ""}`,
      "[]",
      "{}",
      "[1, [2, [3, {}]]]",
      "  true ",
      "null",
      "-1.5e+3",
    ]) {
      assert.deepEqual(JSON.parse(writeJson(readJson(text))), JSON.parse(text), text);
    }
  });

  test("refuses what serde_json refuses, saying where", () => {
    const cases: [string, string, number][] = [
      [String.raw`"\ud800"`, "lone leading surrogate in \\u escape", 1],
      [String.raw`["ok", "a\ud83d\u0041"]`, "lone leading surrogate in \\u escape", 9],
      [String.raw`{"\udc00": 1}`, "lone trailing surrogate in \\u escape", 2],
      [String.raw`"\x"`, "invalid escape", 1],
      [String.raw`"\u12"`, "invalid \\u escape", 1],
      ['"a\nb"', "control character in string", 2],
      ['"abc', "unterminated string", 4],
      ["[1,]", "expected a value", 3],
      ["[1 2]", "expected ',' or ']'", 3],
      ['{"a" 1}', "expected ':'", 5],
      ["{1: 2}", "expected a key", 1],
      ['{"a": 1,}', "expected a key", 8],
      ["01", "trailing characters", 1],
      ["1.", "trailing characters", 1],
      ["nul", "invalid literal", 0],
      ["", "unexpected end of text", 0],
      ["{} x", "trailing characters", 3],
      ["[".repeat(128) + "]".repeat(128), "nesting too deep", 127],
    ];
    for (const [text, what, index] of cases) {
      const e = syntaxError(text);
      assert.deepEqual([e.what, e.index], [what, index], text);
    }
    readJson("[".repeat(127) + "]".repeat(127)); // serde_json's limit: 127 levels
  });

  test("hasLoneSurrogate", () => {
    assert.equal(hasLoneSurrogate("a\ud83d\ude00b"), false);
    assert.equal(hasLoneSurrogate("\ud83d"), true);
    assert.equal(hasLoneSurrogate("\ude00x"), true);
    assert.equal(hasLoneSurrogate("\ud83d\ud83d\ude00"), true);
  });
});

describe("readStruct", () => {
  interface Config {
    names: string[];
    on: boolean;
    mode: "a" | "b";
  }
  const FIELDS = {
    names: { read: fieldTypes.list(fieldTypes.string) },
    on: { read: fieldTypes.boolean, default: () => true },
    mode: { read: fieldTypes.unitEnum("Mode", ["a", "b"] as const), default: () => "a" as const },
  };
  const read = (text: string) => readStruct<Config>(text, "Config", FIELDS);
  const message = (text: string) => {
    try {
      read(text);
    } catch (e) {
      assert.ok(e instanceof InvalidConfig, String(e));
      return e.payload.val;
    }
    return assert.fail(`accepted ${text}`);
  };

  test("an object, or an array of the fields in order", () => {
    assert.deepEqual(read('{"names": ["x"]}'), { names: ["x"], on: true, mode: "a" });
    assert.deepEqual(read('{"mode": {"b": null}, "names": [], "on": false}'), { names: [], on: false, mode: "b" });
    assert.deepEqual(read('[["x"], false, "b"]'), { names: ["x"], on: false, mode: "b" });
    assert.deepEqual(read('[["x"]]'), { names: ["x"], on: true, mode: "a" });
  });

  test("serde's errors", () => {
    assert.equal(message('{"names": [], "extra": 1}'), "unknown field `extra`, expected one of `names`, `on`, `mode`");
    assert.equal(message('{"names": [], "names": []}'), "duplicate field `names`");
    assert.equal(message("{}"), "missing field `names`");
    assert.equal(message("[]"), "invalid length 0, expected struct Config with 3 elements");
    assert.equal(message('[[], true, "a", 1]'), "trailing characters");
    assert.equal(message('{"names": "x"}'), 'invalid type: string "x", expected a sequence');
    assert.equal(message('{"names": [1.5]}'), "invalid type: floating point `1.5`, expected a string");
    assert.equal(message('{"names": [], "on": 1}'), "invalid type: integer `1`, expected a boolean");
    assert.equal(message('{"names": [], "mode": "c"}'), "unknown variant `c`, expected `a` or `b`");
    assert.equal(message('{"names": [], "mode": {"a": 1}}'), "invalid type: integer `1`, expected unit");
    assert.equal(message('{"names": [], "mode": null}'), "invalid type: null, expected enum Mode");
    assert.equal(message("null"), "invalid type: null, expected struct Config");
    assert.equal(message('{"names": ["\\ud800"]}'), "lone leading surrogate in \\u escape");
  });

  test("a struct default fills the fields without their own", () => {
    const config = readStruct<{ a: string; b: boolean }>(
      "  ",
      "C",
      { a: { read: fieldTypes.string }, b: { read: fieldTypes.boolean } },
      () => ({ a: "default", b: false }),
    );
    assert.deepEqual(config, { a: "default", b: false });
  });

  test("blank is as Rust's str::trim sees it", () => {
    assert.deepEqual(parseConfig("\u0085 \u3000"), {});
    assert.throws(() => parseConfig("\ufeff"), InvalidConfig);
  });
});

describe("plugins get the exact text", () => {
  test("init receives the configuration as given", () => {
    const texts: string[] = [];
    const plugin = defineValidator({
      fields: [],
      init(config, text) {
        texts.push(text);
        return config;
      },
      validate: () => accept(),
    });
    plugin.init('{"a": 1, "a": 2}');
    plugin.init("");
    assert.deepEqual(texts, ['{"a": 1, "a": 2}', ""]);
  });

  test("the per-event function receives the batch and the event's index; memberText slices its members", () => {
    const seen: [number, string | undefined, string | undefined, string | undefined][] = [];
    const plugin = defineEnricher({
      fields: ["properties", "context"],
      enrich(event, _config, source: EventSource) {
        seen.push([source.index, event.event_id, memberText(source, "properties"), memberText(source, "context")]);
        return unchanged();
      },
    });
    plugin.init("");
    const batch = rawEvents([
      { properties: '{ "a" : 1.50, "a": "x", "s": "}]\\"{[" }', context: '{"ip": "1.2.3.4"}' },
      { properties: "{}" },
      { properties: '{"n": [1, {"m": [2, "\\\\"]}], "t": true}', context: "{ }" },
    ]);
    assert.equal(plugin.enrich(batch).length, 3);
    assert.deepEqual(seen, [
      [0, "raw-1", '{ "a" : 1.50, "a": "x", "s": "}]\\"{[" }', '{"ip": "1.2.3.4"}'],
      [1, "raw-2", "{}", undefined],
      [2, "raw-3", '{"n": [1, {"m": [2, "\\\\"]}], "t": true}', "{ }"],
    ]);
    // members of any kind, escaped keys, whitespace between members
    const other = rawBatch(' [ { "event_id" : "e" , "n\\u0061me" : 12 , "x": null } , {"event_id":"f","name":"y"} ] ');
    const source = { batch: other, index: 0 };
    assert.equal(memberText(source, "name"), "12");
    assert.equal(memberText(source, "x"), "null");
    assert.equal(memberText(source, "event_id"), '"e"');
    assert.equal(memberText({ batch: other, index: 1 }, "name"), '"y"');
    assert.equal(memberText({ batch: other, index: 2 }, "name"), undefined);
  });
});

// Keep the node types in use for the type check of this file.
export const _types: JsonNode[] = [new JsonElements([]), new JsonMembers()];
