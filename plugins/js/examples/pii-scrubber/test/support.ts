// Helpers for the pii-scrubber tests: events as JSON values (numbers as
// written, the last of repeated keys), merge patches applied as the host
// applies them, and the Rust plugin's two previous implementations
// (`reference.rs`) on those values, to compare with.
import assert from "node:assert/strict";

import {
  JsonElements,
  JsonMembers,
  JsonNumber,
  readJson,
  type Enriched,
  type JsonNode,
} from "sluice-plugin";
import { enrich as plugin } from "../src/index.ts";
import { findPii, type Scrubber } from "../src/index.ts";
import { compareCodePoints, formatNumber, serdeNumber } from "../src/serde.ts";
import { rawEvents, type RawEvent } from "../../../test/support/batch.ts";

/** A JSON value as serde_json keeps it: objects as maps (the last of repeated keys), numbers as written. */
export type Value = null | boolean | string | JsonNumber | Value[] | Map<string, Value>;

export function toValue(node: JsonNode): Value {
  if (node instanceof JsonElements) return node.items.map(toValue);
  if (node instanceof JsonMembers) {
    const map = new Map<string, Value>();
    node.keys.forEach((k, i) => map.set(k, toValue(node.values[i]!)));
    return map;
  }
  return node;
}

export function parse(text: string): Value {
  return toValue(readJson(text));
}

/** `value` as JSON text (numbers as written). */
export function write(value: Value): string {
  if (value instanceof Map) {
    return `{${[...value].map(([k, v]) => `${JSON.stringify(k)}:${write(v)}`).join(",")}}`;
  }
  if (Array.isArray(value)) return `[${value.map(write).join(",")}]`;
  if (value instanceof JsonNumber) return value.text;
  return JSON.stringify(value);
}

/**
 * `value` in a canonical form, for comparing as serde_json compares values:
 * keys sorted, numbers as serde_json reads them; with `withoutNulls`, `null`
 * object members left out (at any depth).
 */
export function canonical(value: Value, withoutNulls = false): string {
  if (value instanceof Map) {
    const keys = [...value.keys()].filter((k) => !(withoutNulls && value.get(k) === null)).sort(compareCodePoints);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value.get(k)!, withoutNulls)}`).join(",")}}`;
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v, withoutNulls)).join(",")}]`;
  if (value instanceof JsonNumber) {
    const n = serdeNumber(value.text);
    return `${n.kind}:${formatNumber(n)}`;
  }
  return JSON.stringify(value);
}

/** RFC 7396 `MergePatch(target, patch)`. */
export function merge(target: Value | undefined, patch: Value): Value {
  if (!(patch instanceof Map)) return patch;
  const out = target instanceof Map ? new Map(target) : new Map<string, Value>();
  for (const [key, value] of patch) {
    if (value === null) out.delete(key);
    else out.set(key, merge(out.get(key), value));
  }
  return out;
}

/** An event's properties and context, as values. */
export interface EventValues {
  properties: Value;
  context?: Value;
}

export function values(event: RawEvent): EventValues {
  const properties = parse(event.properties);
  return event.context === undefined ? { properties } : { properties, context: parse(event.context) };
}

/** `event` as the host makes it of `patch` (RFC 7396 over the event object). */
export function apply(event: RawEvent, patch: string): RawEvent {
  const p = parse(patch);
  assert.ok(p instanceof Map, patch);
  let { properties, context } = values(event);
  for (const [key, value] of p) {
    if (key === "properties") {
      assert.ok(value instanceof Map, patch);
      properties = merge(properties, value);
    } else if (key === "context") {
      context = value === null ? undefined : merge(context ?? new Map(), value);
    } else {
      assert.fail(`the scrubber may not patch \`${key}\`: ${patch}`);
    }
  }
  const out: RawEvent = { name: event.name, properties: write(properties) };
  if (context !== undefined) out.context = write(context);
  return out;
}

/** The event after `result`, which must be a patch. */
export function changed(event: RawEvent, result: Enriched): RawEvent {
  assert.equal(result.tag, "patched", JSON.stringify(result));
  return apply(event, (result as { val: string }).val);
}

/** The results for `events` under `config` (a JSON text), in one batch. */
export function scrubAll(config: string, events: RawEvent[]): Enriched[] {
  plugin.init(config);
  const results = plugin.enrich(rawEvents(events));
  assert.equal(results.length, events.length);
  return results;
}

export function scrub(config: string, event: RawEvent): Enriched {
  return scrubAll(config, [event])[0]!;
}

/** An event with these properties and context (JSON values, serialised with `JSON.stringify`). */
export function event(properties: unknown, context?: unknown): RawEvent {
  const e: RawEvent = { name: "Signed Up", properties: JSON.stringify(properties) };
  if (context !== undefined) e.context = JSON.stringify(context);
  return e;
}

/** An event with these properties and context texts. */
export function raw(properties: string, context?: string): RawEvent {
  return context === undefined ? { properties } : { properties, context };
}

// ---------------------------------------------------------------------------
// The Rust plugin's previous implementations (reference.rs)

/** What an 0.1 plugin returned: whole properties and context. */
export type Old =
  | { kind: "unchanged" }
  | { kind: "changed"; properties: Value; context?: Value }
  | { kind: "failed"; message: string };

const KEPT = 0;
const CHANGED = 1;
const REMOVE = 2;

/**
 * `Reference`: parse into a tree (the last of repeated keys), scrub,
 * re-serialise. Right for events without repeated keys.
 */
export function reference(s: Scrubber, event: RawEvent): Old {
  const whole = (v: Value): [number, Value] => {
    if (v === null) return [KEPT, v];
    if (typeof v === "string" && v.startsWith("sha256:")) return [KEPT, v];
    if (s.mode === "drop") return [REMOVE, v];
    return [CHANGED, s.hash(typeof v === "string" ? v : serdeText(v))];
  };
  const value = (v: Value): [number, Value] => {
    if (typeof v === "string") {
      const found = findPii(v);
      if (found.length === 0) return [KEPT, v];
      if (s.mode === "drop") return [REMOVE, v];
      let out = "";
      let last = 0;
      for (const [a, b] of found) {
        out += v.slice(last, a) + s.hash(v.slice(a, b));
        last = b;
      }
      return [CHANGED, out + v.slice(last)];
    }
    if (Array.isArray(v)) {
      let outcome = KEPT;
      const items: Value[] = [];
      for (const item of v) {
        const [o, n] = value(item);
        if (o !== KEPT) outcome = CHANGED;
        if (o !== REMOVE) items.push(n);
      }
      return [outcome, items];
    }
    if (v instanceof Map) {
      let outcome = KEPT;
      const out = new Map<string, Value>();
      for (const [k, member] of v) {
        const [o, n] = s.fields.includes(k) ? whole(member) : value(member);
        if (o !== KEPT) outcome = CHANGED;
        if (o !== REMOVE) out.set(k, n);
      }
      return [outcome, out];
    }
    return [KEPT, v];
  };

  let properties = parse(event.properties);
  let context = event.context === undefined ? undefined : parse(event.context);
  let isChanged = false;
  if (s.looksLikePii(event.properties)) {
    const [o, n] = value(properties);
    if (o !== KEPT) {
      properties = n;
      isChanged = true;
    }
  }
  if (event.context !== undefined && (event.context.includes('"ip"') || event.context.includes("\\"))) {
    if (context instanceof Map && context.has("ip")) {
      const [o, n] = whole(context.get("ip")!);
      const copy = new Map(context);
      if (o === REMOVE) copy.delete("ip");
      else copy.set("ip", n);
      if (o !== KEPT) {
        context = copy;
        isChanged = true;
      }
    }
  }
  return isChanged ? { kind: "changed", properties, context } : { kind: "unchanged" };
}

/**
 * `Spliced` (the 0.1 plugin), on the values: members scrubbed one by one,
 * repeated keys included; the result read as a parser reads it.
 */
export function spliced(s: Scrubber, event: RawEvent): Old {
  const whole = (node: JsonNode): [number, JsonNode] => {
    if (node === null) return [KEPT, node];
    if (typeof node === "string" && node.startsWith("sha256:")) return [KEPT, node];
    if (s.mode === "drop") return [REMOVE, node];
    return [CHANGED, s.hash(typeof node === "string" ? node : serdeText(toValue(node)))];
  };
  const items = (
    entries: [string | undefined, JsonNode][],
    scrubItem: (key: string | undefined, node: JsonNode) => [number, JsonNode],
  ): [number, [string | undefined, JsonNode][]] => {
    let outcome = KEPT;
    const out: [string | undefined, JsonNode][] = [];
    for (const [k, n] of entries) {
      const [o, m] = scrubItem(k, n);
      if (o !== KEPT) outcome = CHANGED;
      if (o !== REMOVE) out.push([k, m]);
    }
    return [outcome, out];
  };
  const value = (node: JsonNode): [number, JsonNode] => {
    if (typeof node === "string") {
      const found = findPii(node);
      if (found.length === 0) return [KEPT, node];
      if (s.mode === "drop") return [REMOVE, node];
      let out = "";
      let last = 0;
      for (const [a, b] of found) {
        out += node.slice(last, a) + s.hash(node.slice(a, b));
        last = b;
      }
      return [CHANGED, out + node.slice(last)];
    }
    if (node instanceof JsonElements) {
      const [o, out] = items(
        node.items.map((n) => [undefined, n]),
        (_, n) => value(n),
      );
      return [o, new JsonElements(out.map(([, n]) => n))];
    }
    if (node instanceof JsonMembers) {
      const [o, out] = items(
        node.keys.map((k, i) => [k, node.values[i]!]),
        (k, n) => (s.fields.includes(k!) ? whole(n) : value(n)),
      );
      return [o, new JsonMembers(out.map(([k]) => k!), out.map(([, n]) => n))];
    }
    return [KEPT, node];
  };
  const properties = readJson(event.properties);
  const [po, pn] = s.mayContainPii(event.properties) ? value(properties) : [KEPT, properties];
  let context: JsonNode | undefined = event.context === undefined ? undefined : readJson(event.context);
  let co = KEPT;
  if (context instanceof JsonMembers) {
    const object = context;
    const [o, out] = items(
      object.keys.map((k, i) => [k, object.values[i]!]),
      (k, n) => (k === "ip" ? whole(n) : [KEPT, n]),
    );
    co = o;
    context = new JsonMembers(out.map(([k]) => k!), out.map(([, n]) => n));
  }
  if (po === KEPT && co === KEPT) return { kind: "unchanged" };
  return {
    kind: "changed",
    properties: toValue(po === KEPT ? properties : pn),
    context: context === undefined ? undefined : toValue(context),
  };
}

/** serde_json's `Value::to_string()` of a value. */
function serdeText(v: Value): string {
  if (v instanceof Map) {
    const keys = [...v.keys()].sort(compareCodePoints);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${serdeText(v.get(k)!)}`).join(",")}}`;
  }
  if (Array.isArray(v)) return `[${v.map(serdeText).join(",")}]`;
  if (v instanceof JsonNumber) return formatNumber(serdeNumber(v.text));
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------
// Random events (the Rust tests' generator, same sequence)

export class Random {
  private state: bigint;

  constructor(
    seed: number,
    readonly repeats: boolean,
  ) {
    this.state = BigInt(seed);
  }

  below(n: number): number {
    this.state = (this.state * 6_364_136_223_846_793_005n + 1_442_695_040_888_963_407n) & 0xffff_ffff_ffff_ffffn;
    return Number((this.state >> 33n) % BigInt(n));
  }

  pick<T>(from: readonly T[]): T {
    return from[this.below(from.length)]!;
  }

  space(): string {
    return this.pick(["", "", " ", "\n  "]);
  }

  /** A JSON value as raw text (escapes and spacing included). */
  value(depth: number): string {
    const SCALARS = [
      '"a@b.io"',
      String.raw`"x \u0040y.io, z@w.org"`,
      '"call 10.0.0.7 now"',
      '"2001:db8::5"',
      '"sha256:abc"',
      '"plain text"',
      String.raw`"q\"uote 10.0.0.9 \\ end"`,
      String.raw`"tab\t8.8.8.8\n"`,
      String.raw`"\u00e9 10.0.0.1 \ud83d\ude00"`,
      '"1.2.3.4.5"',
      '"::ffff:10.1.2.3"',
      '"v1.2.3 12:30:45"',
      '"https://shop.example.com/p/x?y=1"',
      '"127.0.0.1"',
      '""',
      "1.50",
      "-0",
      "1e3",
      "12345678901234567890",
      "true",
      "null",
    ];
    const KEYS = ['"email"', '"phone"', String.raw`"ph\u006fne"`, '"address"', '"ip"', '"note"', '"tags"', '"n"'];
    const kind = this.below(depth === 0 ? 1 : 4);
    if (kind <= 1) return this.pick(SCALARS);
    if (kind === 2) {
      const n = this.below(4);
      const items: string[] = [];
      for (let i = 0; i < n; i++) {
        const before = this.space();
        const v = this.value(depth - 1);
        items.push(before + v + this.space());
      }
      return `[${items.join(",")}]`;
    }
    const keys: string[] = [];
    const members: string[] = [];
    const n = this.below(5);
    for (let i = 0; i < n; i++) {
      const key = this.pick(KEYS);
      // Distinct keys unless asked (with repeats the tree version kept only the last).
      if ((!this.repeats && keys.includes(key)) || (key.includes("ph") && keys.some((k) => k.includes("ph")))) continue;
      keys.push(key);
      const v = this.value(depth - 1);
      const s1 = this.space();
      const s2 = this.space();
      const s3 = this.space();
      const s4 = this.space();
      members.push(`${s1}${key}${s2}:${s3}${v}${s4}`);
    }
    return `{${members.join(",")}}`;
  }

  /** A random event's properties (an object) and context. */
  event(): RawEvent {
    let properties = this.value(4);
    if (!properties.startsWith("{")) properties = `{"v": ${properties}}`;
    let context: string | undefined;
    switch (this.below(5)) {
      case 0:
        break;
      case 1:
        context = `{"locale": "en", "ip": ${this.value(1)}}`;
        break;
      case 2:
        context = `{ "ip" : ${this.value(0)} , "n": [1]}`;
        break;
      case 3:
        if (this.repeats) {
          const a = this.value(0);
          const b = this.value(0);
          context = String.raw`{"ip": ${a}, "locale": "en", "i\u0070": ${b}}`;
          break;
        }
        context = '{"locale": "en"}';
        break;
      default:
        context = '{"locale": "en"}';
    }
    return raw(properties, context);
  }
}
