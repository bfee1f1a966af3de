// The Rust example's tests (plugins/examples/bot-filter), through the
// exported component interface: `init(config)` then `validate(batch)`;
// then what the TypeScript version must match besides.
import assert from "node:assert/strict";
import { test } from "node:test";

import { accept, InvalidConfig, reject, type Verdict } from "sluice-plugin";
import { DEFAULT_PATTERNS, matching, parseFilter, validate as plugin } from "../src/index.ts";
import { batch, rawEvents } from "../../../test/support/batch.ts";

const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const HEADLESS =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
const FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

interface TestEvent {
  name: string;
  properties: Record<string, unknown>;
  context?: Record<string, unknown>;
}

let next = 0;

/** An event as the Rust tests' `EventBuf::new(name)` makes it: empty properties, no context. */
function event(name: string, properties: Record<string, unknown> = {}, context?: Record<string, unknown>): TestEvent {
  return context === undefined ? { name, properties } : { name, properties, context };
}

function withContextUa(ua: string): TestEvent {
  return event("Page Viewed", {}, { user_agent: ua });
}

function withPropertyUa(ua: string): TestEvent {
  return event("Page Viewed", { $user_agent: ua });
}

/** The verdicts for `events` under `config`, sent as the host sends them (with ids). */
function run(config: string, events: TestEvent[]): Verdict[] {
  plugin.init(config);
  return plugin.validate(batch(events.map((e) => ({ event_id: `e${++next}`, ...e }))));
}

/** The verdict for one event. */
function check(config: string, e: TestEvent): Verdict {
  const verdicts = run(config, [e]);
  assert.equal(verdicts.length, 1);
  return verdicts[0]!;
}

/** The verdict for one event whose properties and context are JSON texts. */
function checkRaw(config: string, properties: string, context?: string): Verdict {
  plugin.init(config);
  const verdicts = plugin.validate(rawEvents([{ properties, context }]));
  assert.equal(verdicts.length, 1);
  return verdicts[0]!;
}

const isAccept = (v: Verdict): boolean => v.tag === "accept";
const code = (v: Verdict): string | null => (v.tag === "reject" ? v.val.code : null);

test("init declares that it reads context and properties", () => {
  assert.deepEqual(plugin.init("{}"), {
    fields: { userId: false, times: false, schemaVersion: false, properties: true, context: true },
    spans: false,
  });
});

test("defaults reject common bots and accept browsers", () => {
  const verdicts = run("{}", [
    withContextUa(GOOGLEBOT),
    withContextUa(HEADLESS),
    withPropertyUa("Baiduspider/2.0"),
    withContextUa(FIREFOX),
    event("No Context"),
  ]);
  assert.deepEqual(verdicts.map(code), ["bot_traffic", "bot_traffic", "bot_traffic", null, null]);
  assert.deepEqual(verdicts[1], reject("bot_traffic", "the user agent matches the bot pattern `HeadlessChrome`"));
});

test("only the user agent members are checked", () => {
  const e = event("Robot Built", { kind: "bot" }, { page: "/spider-man", user_agent: FIREFOX });
  assert.deepEqual(run("", [e]), [accept()]);
});

test("case sensitivity is configurable", () => {
  const sensitive = '{"user_agent_patterns": ["HeadlessChrome"], "case_insensitive": false}';
  assert.ok(!isAccept(check(sensitive, withContextUa(HEADLESS))));
  assert.ok(isAccept(check(sensitive, withContextUa("headlesschrome/1"))));
  const insensitive = '{"user_agent_patterns": ["HEADLESSCHROME"]}';
  assert.ok(!isAccept(check(insensitive, withContextUa("headlesschrome/1"))));
});

test("escaped user agents are parsed", () => {
  assert.ok(!isAccept(checkRaw("{}", "{}", String.raw`{"user_agent": "Google\u0062ot/2.1"}`)));
});

test("the first configured pattern is named", () => {
  const config = '{"user_agent_patterns": ["Spider", "crawl", "bot"]}';
  assert.deepEqual(
    check(config, withContextUa("a bot, a Crawler and a spider")),
    reject("bot_traffic", "the user agent matches the bot pattern `Spider`"),
  );
  assert.deepEqual(
    check(config, withContextUa("BOT then CRAWLER")),
    reject("bot_traffic", "the user agent matches the bot pattern `crawl`"),
  );
  // A match ending at the last character, and a pattern cut off by the end.
  assert.ok(!isAccept(check(config, withContextUa("xbot"))));
  assert.ok(isAccept(check(config, withContextUa("xbo"))));
});

test("properties are checked when the context has no match", () => {
  const e = event("Page Viewed", { $user_agent: GOOGLEBOT }, { user_agent: FIREFOX });
  assert.ok(!isAccept(check("{}", e)));
  // Not in nested objects, and the last of repeated keys counts. (The Rust
  // test's last case, truncated properties, cannot happen here: the host
  // sends valid JSON, and the SDK parses the whole batch first.)
  for (const [properties, accepted] of [
    ['{"nested": {"$user_agent": "Googlebot"}}', true],
    ['{"$user_agent": "Googlebot", "$user_agent": "Firefox"}', true],
    ['{"$user_agent": "Firefox", "$user_agent": "Googlebot"}', false],
    ['{"$user_agent": ["Googlebot"]}', true],
  ] as const) {
    assert.equal(isAccept(checkRaw("{}", properties)), accepted, properties);
  }
});

test("unicode user agents are lower-cased fully", () => {
  const config = '{"user_agent_patterns": ["kit", "ünï"]}';
  // U+212A KELVIN SIGN lower-cases to an ASCII `k`.
  assert.ok(!isAccept(check(config, withContextUa("Web\u212aIT"))));
  assert.ok(!isAccept(check(config, withContextUa("ÜNÏcode"))));
  assert.ok(isAccept(check(config, withContextUa("UNIcode"))));
  const sensitive = '{"user_agent_patterns": ["kit"], "case_insensitive": false}';
  assert.ok(isAccept(check(sensitive, withContextUa("Web\u212ait"))));
  assert.ok(!isAccept(check(sensitive, withContextUa("ÜNÏ kit"))));
});

test("more than 64 patterns", () => {
  const patterns = Array.from({ length: 70 }, (_, i) => `pattern${String(i).padStart(2, "0")}x`);
  patterns.push("Bot");
  const config = JSON.stringify({ user_agent_patterns: patterns });
  assert.deepEqual(
    check(config, withContextUa("PATTERN66X and pattern65x")),
    reject("bot_traffic", "the user agent matches the bot pattern `pattern65x`"),
  );
  assert.deepEqual(check(config, withContextUa("a bot")), reject("bot_traffic", "the user agent matches the bot pattern `Bot`"));
  assert.ok(isAccept(check(config, withContextUa(FIREFOX))));
});

test("matching agrees with lower-casing and contains", () => {
  const ALPHABET = "abAB/o0 ";
  let state = 99n;
  const random = (n: number): number => {
    state = (state * 6_364_136_223_846_793_005n + 1_442_695_040_888_963_407n) & 0xffff_ffff_ffff_ffffn;
    return Number((state >> 33n) % BigInt(n));
  };
  const text = (max: number): string => {
    const len = random(max + 1);
    let out = "";
    for (let i = 0; i < len; i++) out += ALPHABET[random(ALPHABET.length)];
    return out;
  };
  for (let round = 0; round < 3000; round++) {
    const count = 1 + (round % 4) * 30;
    const patterns: string[] = [];
    for (let i = 0; i < count; i++) patterns.push(`${ALPHABET[round % ALPHABET.length]}${text(2)}`);
    const caseInsensitive = round % 2 === 0;
    const haystack = text(40);
    const config = JSON.stringify({ user_agent_patterns: patterns, case_insensitive: caseInsensitive });
    const filter = parseFilter(config);
    const folded = caseInsensitive ? haystack.toLowerCase() : haystack;
    const i = filter.needles.findIndex((n) => folded.includes(n));
    const expected = i < 0 ? undefined : filter.patterns[i];
    assert.equal(matching(filter, haystack), expected, `${JSON.stringify(haystack)} ${config}`);
    // and through the component interface
    const verdict = check(config, withContextUa(haystack));
    assert.deepEqual(
      verdict,
      expected === undefined ? accept() : reject("bot_traffic", `the user agent matches the bot pattern \`${expected}\``),
    );
  }
});

test("an empty pattern list accepts everything", () => {
  assert.ok(isAccept(check('{"user_agent_patterns": []}', withContextUa(GOOGLEBOT))));
});

test("bad configs are invalid-config", () => {
  for (const bad of [
    '{"user_agent_patterns": [""]}',
    '{"user_agent_patterns": "bot"}',
    '{"case_insensitive": "yes"}',
    '{"patterns": ["bot"]}',
  ]) {
    assert.throws(
      () => plugin.init(bad),
      (e: unknown) => e instanceof InvalidConfig && e.payload.tag === "invalid-config",
      bad,
    );
  }
  assert.throws(
    () => plugin.init('{"user_agent_patterns": [""]}'),
    /^InvalidConfig: `user_agent_patterns` must not contain an empty pattern \(it would match everything\)$/,
  );
  assert.throws(
    () => plugin.init('{"patterns": ["bot"]}'),
    /unknown field `patterns`, expected `user_agent_patterns` or `case_insensitive`/,
  );
});

// ---------------------------------------------------------------------------
// Beyond the Rust tests: what serde_json and the Rust SDK's scanner do

test("configurations are read as serde_json reads the Rust struct", () => {
  const defaults = parseFilter("");
  assert.deepEqual(defaults.patterns, DEFAULT_PATTERNS);
  assert.equal(defaults.caseInsensitive, true);
  // all-whitespace (as Rust's `str::trim` sees it: U+0085 is whitespace) is `{}`
  assert.deepEqual(parseFilter(" \n\t\u0085").patterns, DEFAULT_PATTERNS);
  // a struct may also be written as an array of its fields, missing ones defaulted
  assert.deepEqual(parseFilter("[]").patterns, DEFAULT_PATTERNS);
  assert.deepEqual(parseFilter('[["x"]]'), { patterns: ["x"], needles: ["x"], caseInsensitive: true });
  assert.deepEqual(parseFilter('[["X"], false]'), { patterns: ["X"], needles: ["X"], caseInsensitive: false });
  assert.deepEqual(parseFilter('{"case_insensitive": false}').patterns, DEFAULT_PATTERNS);
  for (const bad of [
    '[["x"], true, 1]', // trailing element
    '{"case_insensitive": true, "case_insensitive": true}', // repeated field (JSON.parse would keep the last)
    '{"user_agent_patterns": ["bot", "\\ud800"]}', // lone surrogate
    '{"user_agent_patterns": null}',
    '{"case_insensitive": null}',
    '{"case_insensitive": 1}',
    '{"user_agent_patterns": [1]}',
    '{"user_agent_patterns": {"a": "b"}}',
    "null",
    '"bot"',
    "1",
    "\ufeff{}", // a byte-order mark is not whitespace to Rust
    "{",
  ]) {
    assert.throws(() => plugin.init(bad), InvalidConfig, bad);
  }
  assert.throws(() => plugin.init('{"case_insensitive": true, "case_insensitive": false}'), /duplicate field `case_insensitive`/);
  assert.throws(() => plugin.init('{"case_insensitive": "yes"}'), /invalid type: string "yes", expected a boolean/);
});

test("a user agent that is not a string, or a context that is not an object, is ignored", () => {
  assert.deepEqual(run("{}", [event("x", { $user_agent: 1 }, { user_agent: ["Googlebot"] })]), [accept()]);
  assert.deepEqual(run("{}", [event("x", { $user_agent: null }, { user_agent: null })]), [accept()]);
  assert.deepEqual(checkRaw("{}", '{"$user_agent": "Googlebot"}', '["Googlebot"]'), reject("bot_traffic", "the user agent matches the bot pattern `bot`"));
  assert.deepEqual(checkRaw("{}", '{"$user_agent": "Firefox"}', '"Googlebot"'), accept());
  // the last repeated `user_agent` of the context counts
  assert.ok(isAccept(checkRaw("{}", "{}", '{"user_agent": "Googlebot", "user_agent": "Firefox"}')));
  assert.ok(!isAccept(checkRaw("{}", "{}", '{"user_agent": "Firefox", "user_agent": "Googlebot"}')));
  // members named like Object.prototype's are ordinary
  assert.ok(isAccept(checkRaw("{}", '{"__proto__": {"$user_agent": "Googlebot"}}', '{"constructor": "bot"}')));
});

test("an object holding a lone surrogate escape is not read (the Rust SDK's scanner refuses it)", () => {
  const lone = String.raw`"\ud83d"`;
  // in the context: its user agent is ignored, the properties' still counts
  assert.ok(isAccept(checkRaw("{}", "{}", `{"user_agent": "Googlebot", "x": ${lone}}`)));
  assert.ok(isAccept(checkRaw("{}", "{}", `{${lone}: 1, "user_agent": "Googlebot"}`)));
  assert.deepEqual(
    checkRaw("{}", '{"$user_agent": "Slurp"}', `{"user_agent": "Googlebot", "x": [${lone}]}`),
    reject("bot_traffic", "the user agent matches the bot pattern `Slurp`"),
  );
  // in the properties
  assert.ok(isAccept(checkRaw("{}", `{"$user_agent": "Googlebot", "y": {"z": ${lone}}}`)));
  assert.ok(isAccept(checkRaw("{}", String.raw`{"$user_agent": "Googlebot\udc00"}`)));
  // a surrogate pair is fine, and so is a lone surrogate where nothing matches
  assert.ok(!isAccept(checkRaw("{}", String.raw`{"$user_agent": "Googlebot \ud83d\ude00"}`)));
  assert.ok(!isAccept(checkRaw("{}", `{"x": ${lone}}`, '{"user_agent": "Googlebot"}')));
});

test("one verdict per event", () => {
  assert.deepEqual(run("{}", []), []);
  assert.equal(run("{}", Array.from({ length: 5 }, () => withContextUa(GOOGLEBOT))).length, 5);
});
