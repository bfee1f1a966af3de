/**
 * The scrubbing, as the Rust plugin does it (`lib.rs`): on the exact JSON
 * text (repeated keys kept, numbers as written), member by member, and the
 * merge patch of what changed. Object members are scrubbed one by one,
 * repeated keys included; a patch names the members that changed (a
 * nested object as a patch of its own, strings and arrays whole, removed
 * members as `null`); where a changed key repeats, the patch is the diff
 * of the object's values before and after (the last member of a name
 * counts), as serde_json sees them.
 */

import {
  JsonElements,
  JsonMembers,
  JsonNumber,
  JsonReader,
  JsonSyntaxError,
  readJson,
  Sha256,
  utf8Length,
  writeJson,
  type JsonNode,
} from "sluice-plugin";

import { findIps, findPii, mayHoldAddress, type Span } from "./find.ts";
import { checkNumbers, compareCodePoints, lastWins, OutOfRange, serdeEqual, serdeString } from "./serde.ts";

/** What to do with personal data: replace it with a salted SHA-256, or remove the value holding it. */
export type Mode = "hash" | "drop";

export const HASH_PREFIX = "sha256:";

const KEPT = 0;
const CHANGED = 1;
const REMOVE = 2;
type Outcome = typeof KEPT | typeof CHANGED | typeof REMOVE;

/** What scrubbing did to a value; `node` is the new value when `CHANGED`. */
interface Scrubbed {
  outcome: Outcome;
  node: JsonNode;
}

const KEPT_VALUE: Scrubbed = Object.freeze({ outcome: KEPT, node: null });
const REMOVED: Scrubbed = Object.freeze({ outcome: REMOVE, node: null });

/** Members of an object's merge patch: decoded key, new JSON text (`null`: remove). */
export type PatchMembers = [key: string, json: string | null][];

/** Where an object is, which decides what of it is scrubbed. */
type Scope = "properties" | "context";

/** Why the text could not be scrubbed, with the Rust plugin's words and byte offset. */
export class ScrubError extends Error {
  constructor(
    readonly what: string,
    /** UTF-16 index into the scrubbed text. */
    readonly index: number,
  ) {
    super(what);
  }

  /** As Rust's `scan::Error` displays: `{what} at byte {offset}`. */
  describe(text: string): string {
    return `${this.what} at byte ${utf8Length(text.slice(0, this.index))}`;
  }
}

/** The result for one event's properties or context. */
export type TextResult = { members: PatchMembers } | { error: string };

const NONE: TextResult = Object.freeze({ members: [] as PatchMembers });

export class Scrubber {
  private readonly fieldSet: Set<string>;
  /** `"field"` as written in JSON text, for the quick looks. */
  private readonly quotedFields: string[];

  constructor(
    readonly mode: Mode,
    readonly salt: string,
    readonly fields: readonly string[],
  ) {
    this.fieldSet = new Set(fields);
    this.quotedFields = fields.map((f) => `"${f}"`);
  }

  /** `sha256:` + lower-case hex of sha256(salt + value). */
  hash(value: string): string {
    return HASH_PREFIX + new Sha256().update(this.salt + value).hex();
  }

  // -------------------------------------------------------------------------
  // The two texts of an event

  /**
   * The top-level properties that scrubbing `text` (the properties' JSON)
   * changes, or why it failed (the Rust plugin's message).
   */
  scrubProperties(text: string): TextResult {
    if (!this.mayContainPii(text)) return NONE; // the usual case: nothing to find
    try {
      return { members: this.topLevelPatch(text, "properties") };
    } catch (e) {
      if (!(e instanceof ScrubError)) throw e;
      // Text that is not JSON but shows nothing to scrub passes unchanged.
      if (!this.looksLikePii(text)) return NONE;
      return { error: `properties are not JSON: ${e.describe(text)}` };
    }
  }

  /** The context's top-level `ip`, scrubbed, if it changes (a patch of the context's members). */
  scrubContext(text: string): TextResult {
    // Quick look: the member `ip` needs `"ip"` written out, or an escape.
    if (!text.includes('"ip"') && !text.includes("\\")) return NONE;
    try {
      return { members: this.topLevelPatch(text, "context") };
    } catch (e) {
      if (!(e instanceof ScrubError)) throw e;
      // Valid JSON, but not an object (or a number serde_json refuses): nothing to scrub.
      if (isJson(text)) return NONE;
      return { error: `context is not JSON: ${e.describe(text)}` };
    }
  }

  /**
   * A quick look at the raw text: `false` guarantees that scanning would
   * find nothing to scrub. Every address needs an `@`, two dots with one to
   * three digits between them (IPv4), or a second colon after a colon with
   * only hex digits and dots between them (IPv6), unless there is an escape
   * (any backslash means "look closer"); a configured field needs its name
   * written out.
   */
  mayContainPii(raw: string): boolean {
    return QUICK_LOOK.test(raw) || this.quotedFields.some((f) => raw.includes(f));
  }

  /**
   * The Rust plugin's older, stricter pre-check: text that is not JSON but
   * passes it is returned `unchanged`.
   */
  looksLikePii(raw: string): boolean {
    return (
      raw.includes("@") || raw.includes("\\") || findIps(raw).length > 0 || this.quotedFields.some((f) => raw.includes(f))
    );
  }

  // -------------------------------------------------------------------------
  // Patches

  /**
   * The patch of the object that is the whole of `text`, read member by
   * member: each member is read (and checked) whole before it is scrubbed,
   * so the first error is the one the Rust plugin meets first.
   */
  private topLevelPatch(text: string, scope: Scope): PatchMembers {
    const reader = new JsonReader(text);
    const object = new JsonMembers([], [], 0);
    const changes: PatchMembers = [];
    try {
      reader.ws();
      reader.members((key, value) => {
        object.keys.push(key);
        object.values.push(value);
        const change = this.memberChange(key, value, scope);
        if (change !== undefined) changes.push([key, change]);
      });
      reader.end();
    } catch (e) {
      if (e instanceof JsonSyntaxError) throw new ScrubError(e.what, e.index);
      throw e;
    }
    return this.finish(object, changes, scope);
  }

  /** The patch of a (read) object of the properties. */
  private objectPatch(object: JsonMembers): PatchMembers {
    const changes: PatchMembers = [];
    for (let i = 0; i < object.keys.length; i++) {
      const change = this.memberChange(object.keys[i]!, object.values[i]!, "properties");
      if (change !== undefined) changes.push([object.keys[i]!, change]);
    }
    return this.finish(object, changes, "properties");
  }

  /**
   * The member changes of `object`, unless a changed key repeats: a patch
   * has one value per name, and the event's is the last member's. Then the
   * diff of the values (rare).
   */
  private finish(object: JsonMembers, changes: PatchMembers, scope: Scope): PatchMembers {
    if (changes.length === 0) return changes;
    if (changes.some(([key]) => object.keys.indexOf(key) !== object.keys.lastIndexOf(key))) {
      return this.patchByValue(object, scope);
    }
    return changes;
  }

  /** What scrubbing does to the member `key` (value `value`) of an object in `scope`: `undefined` when kept. */
  private memberChange(key: string, value: JsonNode, scope: Scope): string | null | undefined {
    if (scope === "context") return key === "ip" ? textChange(this.scrubWhole(value)) : undefined;
    if (this.fieldSet.has(key)) return textChange(this.scrubWhole(value));
    if (value instanceof JsonMembers) {
      const nested = this.objectPatch(value);
      return nested.length === 0 ? undefined : objectText(nested);
    }
    return textChange(this.scrubValue(value));
  }

  /**
   * The patch of an object with a repeated changed key: scrub it as a
   * whole, then diff the two as serde_json values.
   */
  private patchByValue(object: JsonMembers, scope: Scope): PatchMembers {
    const after = scope === "properties" ? this.scrubObject(object) : this.scrubContextMembers(object);
    if (after.outcome === KEPT) return [];
    try {
      checkNumbers(object); // serde_json parses the object (the scrubbed one has no other numbers)
    } catch (e) {
      if (e instanceof OutOfRange) throw new ScrubError("invalid object", object.index);
      throw e;
    }
    return objectDiff(object, after.node as JsonMembers);
  }

  // -------------------------------------------------------------------------
  // Values

  private scrubValue(node: JsonNode): Scrubbed {
    if (typeof node === "string") return this.scrubString(node);
    if (node instanceof JsonMembers) return this.scrubObject(node);
    if (node instanceof JsonElements) return this.scrubArray(node);
    return KEPT_VALUE;
  }

  private scrubObject(object: JsonMembers): Scrubbed {
    return this.scrubMembers(object, (key, value) =>
      this.fieldSet.has(key) ? this.scrubWhole(value) : this.scrubValue(value),
    );
  }

  /** The context's members: only `ip`, whole. */
  private scrubContextMembers(object: JsonMembers): Scrubbed {
    return this.scrubMembers(object, (key, value) => (key === "ip" ? this.scrubWhole(value) : KEPT_VALUE));
  }

  private scrubMembers(object: JsonMembers, scrub: (key: string, value: JsonNode) => Scrubbed): Scrubbed {
    let changed = false;
    const keys: string[] = [];
    const values: JsonNode[] = [];
    for (let i = 0; i < object.keys.length; i++) {
      const key = object.keys[i]!;
      const value = object.values[i]!;
      const result = scrub(key, value);
      if (result.outcome === KEPT) {
        keys.push(key);
        values.push(value);
      } else {
        changed = true;
        if (result.outcome === CHANGED) {
          keys.push(key);
          values.push(result.node);
        }
      }
    }
    return changed ? { outcome: CHANGED, node: new JsonMembers(keys, values, object.index) } : KEPT_VALUE;
  }

  private scrubArray(array: JsonElements): Scrubbed {
    let changed = false;
    const items: JsonNode[] = [];
    for (const item of array.items) {
      const result = this.scrubValue(item);
      if (result.outcome === KEPT) {
        items.push(item);
      } else {
        changed = true;
        if (result.outcome === CHANGED) items.push(result.node);
      }
    }
    return changed ? { outcome: CHANGED, node: new JsonElements(items, array.index) } : KEPT_VALUE;
  }

  /** A string value: hashes (in place) or drops the addresses it holds. */
  private scrubString(text: string): Scrubbed {
    if (!mayHoldAddress(text)) return KEPT_VALUE;
    const found = findPii(text);
    if (found.length === 0) return KEPT_VALUE;
    if (this.mode === "drop") return REMOVED;
    return { outcome: CHANGED, node: this.hashSpans(text, found) };
  }

  /** A value that is personal as a whole (`fields`, `context.ip`). */
  private scrubWhole(node: JsonNode): Scrubbed {
    if (node === null) return KEPT_VALUE;
    let text: string;
    if (typeof node === "string") {
      if (node.startsWith(HASH_PREFIX)) return KEPT_VALUE;
      if (this.mode === "drop") return REMOVED;
      text = node;
    } else {
      if (this.mode === "drop") return REMOVED;
      // Hashed as serde_json writes it (compact, keys sorted).
      try {
        text = serdeString(node);
      } catch (e) {
        if (e instanceof OutOfRange) throw new ScrubError("invalid value", startOf(node));
        throw e;
      }
    }
    return { outcome: CHANGED, node: this.hash(text) };
  }

  private hashSpans(text: string, spans: Span[]): string {
    let out = "";
    let last = 0;
    for (const [start, end] of spans) {
      out += text.slice(last, start) + this.hash(text.slice(start, end));
      last = end;
    }
    return out + text.slice(last);
  }
}

/** `/[@\\]|\.\d{1,3}\.|:[0-9A-Fa-f.]*:/`: see {@link Scrubber.mayContainPii}. */
const QUICK_LOOK = /[@\\]|\.[0-9]{1,3}\.|:[0-9A-Fa-f.]*:/;

function textChange(result: Scrubbed): string | null | undefined {
  if (result.outcome === KEPT) return undefined;
  return result.outcome === REMOVE ? null : writeJson(result.node);
}

/** The JSON text of a merge patch's object. */
export function objectText(members: PatchMembers): string {
  return `{${members.map(([key, json]) => `${JSON.stringify(key)}:${json ?? "null"}`).join(",")}}`;
}

/**
 * The merge patch that turns `before` into `after`, as serde_json values
 * (the last of repeated keys; the Rust plugin's `object_diff`, keys in
 * `BTreeMap` order). Changed values are written as serde_json writes them.
 */
function objectDiff(before: JsonMembers, after: JsonMembers): PatchMembers {
  const old = lastWins(before);
  const now = lastWins(after);
  const members: PatchMembers = [];
  for (const key of [...old.keys()].sort(compareCodePoints)) {
    if (!now.has(key)) members.push([key, null]);
  }
  for (const key of [...now.keys()].sort(compareCodePoints)) {
    const value = now.get(key)!;
    const previous = old.get(key);
    if (previous !== undefined && serdeEqual(previous, value)) continue;
    members.push([
      key,
      previous instanceof JsonMembers && value instanceof JsonMembers
        ? objectText(objectDiff(previous, value))
        : serdeString(value),
    ]);
  }
  return members;
}

/** Where a (non-string) value starts in its text. */
function startOf(node: JsonNode): number {
  return node instanceof JsonNumber || node instanceof JsonElements || node instanceof JsonMembers ? node.index : 0;
}

/** Whether `text` is one JSON value (of any kind) as the Rust SDK's scanner reads it. */
function isJson(text: string): boolean {
  try {
    readJson(text);
    return true;
  } catch (e) {
    if (e instanceof JsonSyntaxError) return false;
    throw e;
  }
}
