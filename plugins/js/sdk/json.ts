/**
 * JSON read as the Rust SDK and `serde_json` read it, for plugins that must
 * behave exactly like a Rust twin. `JSON.parse` loses what they see:
 *
 * - repeated keys: kept here, in order ({@link JsonMembers}; parsers keep
 *   the last one, as {@link JsonMembers.last} does);
 * - numbers as written ({@link JsonNumber}: `1.0`, `1e3` and `-0` are not
 *   the integers `1`, `1000` and `0` to `serde_json`; integers beyond 2^53
 *   are exact);
 * - the checks beyond RFC 8259's grammar: a lone surrogate escape
 *   (`"\ud800"`) and nesting deeper than {@link MAX_DEPTH} are errors, as in
 *   `serde_json` and the Rust SDK's `scan`.
 *
 * And configurations as `#[derive(Deserialize)]` structs read them
 * ({@link readStruct}): unknown and repeated fields refused, missing ones
 * defaulted, the struct also accepted as a JSON array of its fields in order.
 */

import { InvalidConfig, type Batch, type EventSource } from "./index.ts";

/** A number as written (its JSON text, e.g. `1.50`). */
export class JsonNumber {
  constructor(
    /** The text, e.g. `-1.5e3`. */
    readonly text: string,
    /** Where it starts in the text it was read from (UTF-16 index). */
    readonly index = 0,
  ) {}
}

/** An array. */
export class JsonElements {
  constructor(
    readonly items: JsonNode[],
    /** Where it starts in the text it was read from (UTF-16 index). */
    readonly index = 0,
  ) {}
}

/** An object: its members in order, repeated keys included. */
export class JsonMembers {
  constructor(
    /** Decoded keys (`keys[i]` is the key of `values[i]`). */
    readonly keys: string[] = [],
    readonly values: JsonNode[] = [],
    /** Where it starts in the text it was read from (UTF-16 index). */
    readonly index = 0,
  ) {}

  /** The value of the last member named `key` (the one parsers keep). */
  last(key: string): JsonNode | undefined {
    const i = this.keys.lastIndexOf(key);
    return i < 0 ? undefined : this.values[i];
  }
}

/** A JSON value as {@link readJson} returns it (strings decoded). */
export type JsonNode = null | boolean | string | JsonNumber | JsonElements | JsonMembers;

/** Deepest nesting of objects and arrays accepted (`serde_json`'s limit; the Rust SDK's `scan::MAX_DEPTH`). */
export const MAX_DEPTH = 127;

/** Why a text is not JSON (as `serde_json` and the Rust SDK's `scan` read it), and where. */
export class JsonSyntaxError extends Error {
  constructor(
    /** What was wrong, e.g. `lone leading surrogate in \u escape` (the Rust SDK's words). */
    readonly what: string,
    /** Where, as a UTF-16 index into the text (see `utf8Length` for a byte offset). */
    readonly index: number,
  ) {
    super(`${what} at index ${index}`);
    this.name = "JsonSyntaxError";
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const CONTROL = /[\u0000-\u001f]/;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/**
 * A reader of one JSON text, checking it as it goes. {@link readJson} reads
 * a whole text; {@link JsonReader.members} reads an object member by member
 * (each value whole), for callers that act on a member before the next is
 * read, as the Rust SDK's `scan::members` iterator does.
 */
export class JsonReader {
  /** The UTF-16 index of the next character to read. */
  pos = 0;

  constructor(readonly text: string) {}

  /** Skips whitespace (space, tab, line feed, carriage return). */
  ws(): void {
    const t = this.text;
    let c = t.charCodeAt(this.pos);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = t.charCodeAt(++this.pos);
  }

  /** Checks that nothing but whitespace is left. */
  end(): void {
    this.ws();
    if (this.pos < this.text.length) throw new JsonSyntaxError("trailing characters", this.pos);
  }

  /** The value at `pos`, inside `depth` containers. */
  value(depth = 0): JsonNode {
    const t = this.text;
    const at = this.pos;
    switch (t.charCodeAt(at)) {
      case 0x22: // "
        return this.string();
      case 0x7b: // {
        return this.object(depth);
      case 0x5b: // [
        return this.array(depth);
      case 0x74: // t
        return this.literal("true", true);
      case 0x66: // f
        return this.literal("false", false);
      case 0x6e: // n
        return this.literal("null", null);
      default: {
        NUMBER.lastIndex = at;
        const m = NUMBER.exec(t);
        if (m === null) {
          throw new JsonSyntaxError(at >= t.length ? "unexpected end of text" : "expected a value", at);
        }
        this.pos = at + m[0].length;
        return new JsonNumber(m[0], at);
      }
    }
  }

  /**
   * Reads the object at `pos` (inside `depth` containers), calling `each`
   * with each member as soon as its value is read.
   */
  members(each: (key: string, value: JsonNode) => void, depth = 0): void {
    const t = this.text;
    const open = this.pos;
    if (t.charCodeAt(open) !== 0x7b) throw new JsonSyntaxError("expected an object", open);
    if (depth >= MAX_DEPTH) throw new JsonSyntaxError("nesting too deep", open);
    this.pos++;
    this.ws();
    if (t.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return;
    }
    for (;;) {
      if (t.charCodeAt(this.pos) !== 0x22) throw new JsonSyntaxError("expected a key", this.pos);
      const key = this.string();
      this.ws();
      if (t.charCodeAt(this.pos) !== 0x3a) throw new JsonSyntaxError("expected ':'", this.pos);
      this.pos++;
      this.ws();
      each(key, this.value(depth + 1));
      this.ws();
      const c = t.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.ws();
      } else if (c === 0x7d) {
        this.pos++;
        return;
      } else {
        throw new JsonSyntaxError("expected ',' or '}'", this.pos);
      }
    }
  }

  private object(depth: number): JsonMembers {
    const node = new JsonMembers([], [], this.pos);
    this.members((key, value) => {
      node.keys.push(key);
      node.values.push(value);
    }, depth);
    return node;
  }

  private array(depth: number): JsonElements {
    const t = this.text;
    const node = new JsonElements([], this.pos);
    if (depth >= MAX_DEPTH) throw new JsonSyntaxError("nesting too deep", this.pos);
    this.pos++;
    this.ws();
    if (t.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return node;
    }
    for (;;) {
      node.items.push(this.value(depth + 1));
      this.ws();
      const c = t.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.ws();
      } else if (c === 0x5d) {
        this.pos++;
        return node;
      } else {
        throw new JsonSyntaxError("expected ',' or ']'", this.pos);
      }
    }
  }

  private literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) throw new JsonSyntaxError("invalid literal", this.pos);
    this.pos += word.length;
    return value;
  }

  /** The string at `pos` (its opening quote), decoded. */
  string(): string {
    const t = this.text;
    const start = this.pos + 1;
    const quote = t.indexOf('"', start);
    const backslash = t.indexOf("\\", start);
    if (quote >= 0 && (backslash < 0 || backslash > quote)) {
      // No escape: the text is the value.
      const s = t.slice(start, quote);
      if (CONTROL.test(s)) this.control(start, quote);
      this.pos = quote + 1;
      return s;
    }
    let out = "";
    let from = start;
    let at = start;
    for (;;) {
      const c = t.charCodeAt(at);
      if (c === 0x22) {
        out += t.slice(from, at);
        this.pos = at + 1;
        return out;
      }
      if (c === 0x5c) {
        out += t.slice(from, at);
        const e = t[at + 1];
        if (e === "u") {
          const code = hex4(t, at + 2);
          if (code < 0) throw new JsonSyntaxError("invalid \\u escape", at);
          if (code >= 0xd800 && code < 0xdc00) {
            const low = t.startsWith("\\u", at + 6) ? hex4(t, at + 8) : -1;
            if (low < 0xdc00 || low >= 0xe000) throw new JsonSyntaxError("lone leading surrogate in \\u escape", at);
            out += String.fromCharCode(code, low);
            at += 12;
          } else if (code >= 0xdc00 && code < 0xe000) {
            throw new JsonSyntaxError("lone trailing surrogate in \\u escape", at);
          } else {
            out += String.fromCharCode(code);
            at += 6;
          }
        } else if (e !== undefined && Object.prototype.hasOwnProperty.call(ESCAPES, e)) {
          out += ESCAPES[e];
          at += 2;
        } else {
          throw new JsonSyntaxError("invalid escape", at);
        }
        from = at;
        continue;
      }
      if (Number.isNaN(c)) throw new JsonSyntaxError("unterminated string", at);
      if (c < 0x20) throw new JsonSyntaxError("control character in string", at);
      at++;
    }
  }

  private control(from: number, to: number): never {
    for (let i = from; i < to; i++) {
      if (this.text.charCodeAt(i) < 0x20) throw new JsonSyntaxError("control character in string", i);
    }
    throw new JsonSyntaxError("control character in string", from);
  }
}

function hex4(t: string, at: number): number {
  if (at + 4 > t.length) return -1;
  let v = 0;
  for (let i = at; i < at + 4; i++) {
    const c = t.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * The JSON value that is the whole of `text` (whitespace around it
 * allowed), with repeated keys and numbers as written.
 *
 * @throws {JsonSyntaxError} when `text` is not exactly one JSON value as `serde_json` reads it
 */
export function readJson(text: string): JsonNode {
  const reader = new JsonReader(text);
  reader.ws();
  const value = reader.value();
  reader.end();
  return value;
}

/** Writes `node` as compact JSON text: numbers as written, repeated keys kept. */
export function writeJson(node: JsonNode): string {
  if (node === null) return "null";
  switch (typeof node) {
    case "boolean":
      return node ? "true" : "false";
    case "string":
      return JSON.stringify(node);
  }
  if (node instanceof JsonNumber) return node.text;
  if (node instanceof JsonElements) return `[${node.items.map(writeJson).join(",")}]`;
  let out = "{";
  for (let i = 0; i < node.keys.length; i++) {
    if (i > 0) out += ",";
    out += `${JSON.stringify(node.keys[i])}:${writeJson(node.values[i]!)}`;
  }
  return `${out}}`;
}

/** Whether `text` has a lone surrogate (as `JSON.parse` decodes `"\ud800"`, which Rust refuses). */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// ---------------------------------------------------------------------------
// Configurations, as `serde_json` reads a `#[derive(Deserialize)]` struct

/** One field of a configuration struct: how to read it, and its default when absent. */
export interface StructField<T> {
  read: (value: JsonNode) => T;
  /** `#[serde(default)]` on the field. */
  default?: () => T;
}

/**
 * Reads a configuration (`init`'s text, all-whitespace meaning `{}`) as
 * `serde_json` reads a `#[derive(Deserialize)]` `#[serde(deny_unknown_fields)]`
 * struct named `name` whose fields are `fields` (in declaration order):
 * an object (an unknown or repeated field is an error, a missing one takes
 * its default) or an array of the fields' values in order (missing ones
 * take their defaults, extra ones are an error). `structDefault` is
 * `#[serde(default)]` on the struct: the defaults of fields without their own.
 *
 * @throws {InvalidConfig} with `serde`'s message (without its position)
 */
export function readStruct<T extends object>(
  text: string,
  name: string,
  fields: { [K in keyof T]: StructField<T[K]> },
  structDefault?: () => T,
): T {
  let node: JsonNode;
  try {
    node = readJson(isBlank(text) ? "{}" : text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new InvalidConfig(e.what);
    throw e;
  }
  const names = Object.keys(fields) as (keyof T & string)[];
  const out: Partial<T> = {};
  const missing = <K extends keyof T & string>(field: K, error: () => string): T[K] => {
    const own = fields[field].default;
    if (own) return own();
    if (structDefault) return structDefault()[field];
    throw new InvalidConfig(error());
  };
  if (node instanceof JsonMembers) {
    const seen = new Set<string>();
    for (let i = 0; i < node.keys.length; i++) {
      const key = node.keys[i]!;
      if (!names.includes(key as keyof T & string)) {
        throw new InvalidConfig(`unknown field \`${key}\`, ${expected(names)}`);
      }
      if (seen.has(key)) throw new InvalidConfig(`duplicate field \`${key}\``);
      seen.add(key);
      const field = key as keyof T & string;
      out[field] = fields[field].read(node.values[i]!);
    }
    for (const field of names) {
      if (!seen.has(field)) out[field] = missing(field, () => `missing field \`${field}\``);
    }
    return out as T;
  }
  if (node instanceof JsonElements) {
    const n = names.length;
    names.forEach((field, i) => {
      const item = node.items[i];
      out[field] =
        item === undefined
          ? missing(field, () => `invalid length ${i}, expected struct ${name} with ${n} element${n === 1 ? "" : "s"}`)
          : fields[field].read(item);
    });
    if (node.items.length > n) throw new InvalidConfig("trailing characters");
    return out as T;
  }
  throw invalidType(node, `struct ${name}`);
}

/** serde's list of expected fields or variants. */
function expected(names: readonly string[]): string {
  const quoted = names.map((n) => `\`${n}\``);
  if (quoted.length === 0) return "there are no fields";
  if (quoted.length === 1) return `expected ${quoted[0]}`;
  if (quoted.length === 2) return `expected ${quoted[0]} or ${quoted[1]}`;
  return `expected one of ${quoted.join(", ")}`;
}

/** Rust's `str::trim` leaves nothing (Unicode White_Space: U+0085 yes, U+FEFF no). */
export function isBlank(text: string): boolean {
  return /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/.test(text);
}

/** serde_json's "invalid type" error for `node` where `what` was expected. */
export function invalidType(node: JsonNode, what: string): InvalidConfig {
  return new InvalidConfig(`invalid type: ${describeNode(node)}, expected ${what}`);
}

function describeNode(node: JsonNode): string {
  if (node === null) return "null";
  if (typeof node === "boolean") return `boolean \`${node}\``;
  if (typeof node === "string") return `string ${JSON.stringify(node)}`;
  if (node instanceof JsonNumber) {
    return /[.eE]/.test(node.text) ? `floating point \`${node.text}\`` : `integer \`${node.text}\``;
  }
  return node instanceof JsonElements ? "sequence" : "map";
}

/** Readers of common field types, with serde's messages. */
export const fieldTypes = {
  /** `String`. */
  string(node: JsonNode): string {
    if (typeof node !== "string") throw invalidType(node, "a string");
    return node;
  },
  /** `bool`. */
  boolean(node: JsonNode): boolean {
    if (typeof node !== "boolean") throw invalidType(node, "a boolean");
    return node;
  },
  /** `Vec<T>`. */
  list<T>(item: (node: JsonNode) => T): (node: JsonNode) => T[] {
    return (node) => {
      if (!(node instanceof JsonElements)) throw invalidType(node, "a sequence");
      return node.items.map(item);
    };
  },
  /**
   * An enum of unit variants named `variants` (as serialised, e.g. after
   * `rename_all`): `"name"`, or `{"name": null}`.
   */
  unitEnum<V extends string>(name: string, variants: readonly V[]): (node: JsonNode) => V {
    const variant = (key: string): V => {
      if (!(variants as readonly string[]).includes(key)) {
        throw new InvalidConfig(`unknown variant \`${key}\`, ${expected(variants)}`);
      }
      return key as V;
    };
    return (node) => {
      if (typeof node === "string") return variant(node);
      if (node instanceof JsonMembers && node.keys.length === 1) {
        const v = variant(node.keys[0]!);
        if (node.values[0] !== null) throw invalidType(node.values[0]!, "unit");
        return v;
      }
      throw invalidType(node, `enum ${name}`);
    };
  },
};

// ---------------------------------------------------------------------------
// An event's members as written in the batch

/** Per batch: for each event, where each of its members' values is in `batch.events`. */
const located = new WeakMap<Batch, Map<string, [number, number]>[]>();

/**
 * The JSON text of the member `key` (e.g. `"properties"`) of the event at
 * `source` as the host wrote it in `batch.events` (the client's spacing,
 * repeated keys and number spelling kept), `undefined` when the event has
 * no such member. The batch is scanned once, at the first call for it.
 */
export function memberText(source: EventSource, key: string): string | undefined {
  const { batch, index } = source;
  let events = located.get(batch);
  if (events === undefined) {
    events = locateMembers(batch.events);
    located.set(batch, events);
  }
  const span = events[index]?.get(key);
  return span === undefined ? undefined : batch.events.slice(span[0], span[1]);
}

const STRUCTURE = /["{}[\]]/g;
const SCALAR_END = /[\s,\]}]/g;

/** For each event of the JSON array `text`, its members' value spans. */
function locateMembers(text: string): Map<string, [number, number]>[] {
  const fail = (at: number): never => {
    throw new JsonSyntaxError("unexpected text in `batch.events`", at);
  };
  const out: Map<string, [number, number]>[] = [];
  let pos = skipWs(text, 0);
  if (text[pos] !== "[") fail(pos);
  pos = skipWs(text, pos + 1);
  if (text[pos] === "]") return out;
  for (;;) {
    if (text[pos] !== "{") fail(pos);
    const members = new Map<string, [number, number]>();
    pos = skipWs(text, pos + 1);
    if (text[pos] === "}") {
      pos++;
    } else {
      for (;;) {
        if (text[pos] !== '"') fail(pos);
        const keyEnd = skipString(text, pos);
        const raw = text.slice(pos + 1, keyEnd - 1);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(pos, keyEnd)) as string) : raw;
        pos = skipWs(text, keyEnd);
        if (text[pos] !== ":") fail(pos);
        const start = skipWs(text, pos + 1);
        const end = skipValue(text, start);
        members.set(key, [start, end]);
        pos = skipWs(text, end);
        if (text[pos] === ",") {
          pos = skipWs(text, pos + 1);
        } else if (text[pos] === "}") {
          pos++;
          break;
        } else {
          fail(pos);
        }
      }
    }
    out.push(members);
    pos = skipWs(text, pos);
    if (text[pos] === ",") {
      pos = skipWs(text, pos + 1);
    } else if (text[pos] === "]") {
      return out;
    } else {
      fail(pos);
    }
  }
}

function skipWs(text: string, pos: number): number {
  let c = text.charCodeAt(pos);
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++pos);
  return pos;
}

/** Past the closing quote of the (valid) string whose opening quote is at `pos`. */
function skipString(text: string, pos: number): number {
  let from = pos + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) throw new JsonSyntaxError("unterminated string", pos);
    let k = quote - 1;
    while (text.charCodeAt(k) === 0x5c) k--;
    if ((quote - 1 - k) % 2 === 0) return quote + 1; // not escaped
    from = quote + 1;
  }
}

/** Past the (valid) value at `pos`. */
function skipValue(text: string, pos: number): number {
  const c = text[pos];
  if (c === '"') return skipString(text, pos);
  if (c === "{" || c === "[") {
    let depth = 0;
    STRUCTURE.lastIndex = pos;
    for (;;) {
      const m = STRUCTURE.exec(text);
      if (m === null) throw new JsonSyntaxError("unterminated value", pos);
      const ch = m[0];
      if (ch === '"') {
        STRUCTURE.lastIndex = skipString(text, m.index);
      } else if (ch === "{" || ch === "[") {
        depth++;
      } else if (--depth === 0) {
        return m.index + 1;
      }
    }
  }
  SCALAR_END.lastIndex = pos;
  const m = SCALAR_END.exec(text);
  return m === null ? text.length : m.index;
}
