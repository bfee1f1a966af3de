/**
 * Sluice plugin SDK for TypeScript and JavaScript: plugins for the
 * `sluice:plugin@0.2.0` worlds (`wit/0.2.0/`), made into WebAssembly
 * components by `plugins/js/build.sh` (esbuild, then componentize-js).
 *
 * ```ts
 * import { defineValidator, accept, reject, InvalidConfig } from "sluice-plugin";
 *
 * export const validate = defineValidator({
 *   fields: ["properties"],
 *   init(config) {
 *     if (!Array.isArray(config)) throw new InvalidConfig("expected a list of event names");
 *     return new Set(config);
 *   },
 *   validate(event, denied) {
 *     return denied.has(event.name) ? reject("denied_name", `\`${event.name}\` is not accepted`) : accept();
 *   },
 * });
 * ```
 *
 * The plugin module exports the object `defineValidator` / `defineEnricher`
 * returns as `validate` (world `validator`) or `enrich` (world `enricher`):
 * that is the name componentize-js looks for, and the object has exactly
 * the shape it lifts and lowers (`init(config: string)` returning the WIT
 * `needs` record, `validate(batch)` / `enrich(batch)` returning a list).
 *
 * Runtime contract (as in the Rust SDK):
 * - `init` parses the configuration (JSON; empty means `{}`) and calls the
 *   plugin's `init` with it (and its text). A later `init` replaces the
 *   configuration; a failed one clears it. Throwing {@link InvalidConfig} /
 *   {@link OtherError} returns the WIT error `plugin-error`; anything else
 *   thrown traps.
 * - A batch call parses `batch.events` once and calls the per-event function
 *   once per event, in order (with the batch and the event's index, for
 *   plugins that read its exact text: `json.ts`): one result per event, always.
 * - A batch call before a successful `init` traps, as does an exception in
 *   plugin code or a per-event result that is not a verdict / enriched value.
 *   The message (with its stack) is sent to the host log at level `error`
 *   first: plugins have no stderr (`console` output is discarded).
 */

import { log as hostLog, type Level } from "sluice:plugin/log@0.2.0";
import { isBlank } from "./json.ts";

export type { Level };
export {
  fieldTypes,
  hasLoneSurrogate,
  invalidType,
  JsonElements,
  JsonMembers,
  JsonNumber,
  JsonReader,
  JsonSyntaxError,
  MAX_DEPTH,
  memberText,
  readJson,
  readStruct,
  writeJson,
  type JsonNode,
  type StructField,
} from "./json.ts";
export { Sha256, sha256, sha256Hex, toHex, utf8Encode, utf8Length } from "./sha256.ts";

// ---------------------------------------------------------------------------
// Data (the WIT types, as componentize-js represents them in JavaScript)

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * The parts of an event a plugin may ask for besides `event_id` and `name`
 * (WIT `flags fields`, named here as the JSON members they bring):
 * `times` brings `timestamp_ms` and `received_at_ms`.
 */
export type Field = "user_id" | "times" | "schema_version" | "properties" | "context";

/** The WIT flag (jco's camelCase property of the `fields` object) for each {@link Field}. */
export const FIELD_FLAGS = {
  user_id: "userId",
  times: "times",
  schema_version: "schemaVersion",
  properties: "properties",
  context: "context",
} as const satisfies Record<Field, string>;

/** The names of the WIT `fields` flags, as properties of jco's flags object. */
export type FlagName = (typeof FIELD_FLAGS)[Field];

/** WIT `flags fields`: jco represents flags as an object of booleans. */
export type Flags = Record<FlagName, boolean>;

/** WIT `record needs`. */
export interface Needs {
  fields: Flags;
  spans: boolean;
}

/** WIT `record batch`: every event as one JSON array text. */
export interface Batch {
  events: string;
  spans: Uint32Array;
}

/** Members every event has. */
export interface EventBase {
  /** The event's UUID. */
  event_id: string;
  /** The event's name, e.g. `Signed Up`. */
  name: string;
}

/** The members each {@link Field} brings. */
export interface FieldMembers {
  user_id: { user_id: string };
  /** Milliseconds since the Unix epoch (UTC). */
  times: { timestamp_ms: number; received_at_ms: number };
  schema_version: { schema_version: number };
  properties: { properties: JsonObject };
  /** Absent from an event that has none. */
  context: { context?: JsonObject };
}

/**
 * One event of a batch, with the members of the declared fields `F` (all of
 * them when `F` is not given).
 */
export type Event<F extends Field = Field> = EventBase &
  ("user_id" extends F ? FieldMembers["user_id"] : unknown) &
  ("times" extends F ? FieldMembers["times"] : unknown) &
  ("schema_version" extends F ? FieldMembers["schema_version"] : unknown) &
  ("properties" extends F ? FieldMembers["properties"] : unknown) &
  ("context" extends F ? FieldMembers["context"] : unknown);

/** WIT `record rejection`. */
export interface Rejection {
  /** A stable, machine-readable code, e.g. `missing_plan`. */
  code: string;
  /** A sentence for the developer who sent the event. */
  message: string;
}

/** WIT `variant verdict`: `{tag: "accept"}` or `{tag: "reject", val: Rejection}`. */
export type Verdict = { tag: "accept" } | { tag: "reject"; val: Rejection };

/**
 * WIT `variant enriched`: `{tag: "unchanged"}`, `{tag: "patched", val: json}`
 * or `{tag: "failed", val: message}`.
 */
export type Enriched =
  | { tag: "unchanged" }
  | { tag: "patched"; val: string }
  | { tag: "failed"; val: string };

/**
 * A JSON merge patch (RFC 7396) over an event, limited to the members an
 * enricher may touch. `null` removes: a property (inside `properties`), or
 * the whole `context`.
 */
export interface Patch {
  name?: string;
  user_id?: string;
  timestamp_ms?: number;
  /** Merged into the event's properties; a `null` member removes that property. */
  properties?: { [key: string]: JsonValue };
  /** Merged into the event's context; `null` removes the context. */
  context?: { [key: string]: JsonValue } | null;
}

// ---------------------------------------------------------------------------
// Results

const ACCEPT: Verdict = Object.freeze({ tag: "accept" });
const UNCHANGED: Enriched = Object.freeze({ tag: "unchanged" });

/** The event may continue. */
export function accept(): Verdict {
  return ACCEPT;
}

/** The event is refused; the client sees `plugin_rejected` with this code and message. */
export function reject(code: string, message: string): Verdict {
  return { tag: "reject", val: { code, message } };
}

/** Pass the event on as it came in. */
export function unchanged(): Enriched {
  return UNCHANGED;
}

/** Apply `patch` (serialised here with `JSON.stringify`). */
export function patch(patch: Patch): Enriched {
  return { tag: "patched", val: JSON.stringify(patch) };
}

/** This event could not be processed; the plugin's failure policy decides what happens to it. */
export function failed(message: string): Enriched {
  return { tag: "failed", val: message };
}

// ---------------------------------------------------------------------------
// Errors

/** WIT `variant plugin-error`, as componentize-js expects a thrown error's `payload`. */
export type PluginErrorPayload =
  | { tag: "invalid-config"; val: string }
  | { tag: "other"; val: string };

/**
 * An error `init` reports as a value (WIT `plugin-error`) rather than a trap.
 * componentize-js turns a thrown object with an own `payload` property into
 * the `err` of the function's `result`, with `payload` as the error value.
 */
export class PluginError extends Error {
  readonly payload: PluginErrorPayload;

  constructor(payload: PluginErrorPayload) {
    super(payload.val);
    this.name = new.target.name;
    this.payload = payload;
  }
}

/** The team's configuration for this plugin is unusable (WIT `invalid-config`). */
export class InvalidConfig extends PluginError {
  constructor(message: string) {
    super({ tag: "invalid-config", val: message });
  }
}

/** Any other reason `init` fails (WIT `other`). */
export class OtherError extends PluginError {
  constructor(message: string) {
    super({ tag: "other", val: message });
  }
}

/**
 * Parses a configuration as `init` receives it: JSON, where an empty (or
 * all-whitespace, as Rust's `str::trim` sees it) text means `{}`. Invalid
 * JSON is {@link InvalidConfig}.
 */
export function parseConfig(config: string): unknown {
  if (isBlank(config)) return {};
  try {
    return JSON.parse(config);
  } catch (e) {
    throw new InvalidConfig(`invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// ---------------------------------------------------------------------------
// Logging

function write(level: Level, message: string): void {
  hostLog(level, typeof message === "string" ? message : String(message));
}

/**
 * Structured logging through the host (tagged with the plugin's name,
 * version and team, rate-limited by the host). `console` output goes nowhere.
 */
export const log = {
  trace: (message: string): void => write("trace", message),
  debug: (message: string): void => write("debug", message),
  info: (message: string): void => write("info", message),
  warn: (message: string): void => write("warn", message),
  error: (message: string): void => write("error", message),
};

// ---------------------------------------------------------------------------
// Plugins

/** What a plugin module exports as `validate` (world `validator`). */
export interface ValidatorExport {
  init(config: string): Needs;
  validate(batch: Batch): Verdict[];
}

/** What a plugin module exports as `enrich` (world `enricher`). */
export interface EnricherExport {
  init(config: string): Needs;
  enrich(batch: Batch): Enriched[];
}

interface Spec<C, F extends Field> {
  /** What the plugin reads of each event besides `event_id` and `name`. */
  fields: readonly F[];
  /**
   * Checks the team's configuration (parsed JSON, `{}` when none) and
   * returns what the per-event function receives. Throw
   * {@link InvalidConfig} when it is unusable. Without `init`, any JSON
   * configuration is accepted and ignored. `text` is the configuration as
   * given, for plugins that read it exactly as `serde_json` does
   * ({@link readStruct}: repeated keys, number spelling).
   */
  init?: (config: unknown, text: string) => C;
}

/**
 * Where an event comes from, for plugins that need its exact text (what
 * `JSON.parse` loses: repeated keys, number spelling): the batch, whose
 * `events` text holds it, and its index there.
 */
export interface EventSource {
  batch: Batch;
  index: number;
}

/** A validator: {@link defineValidator}'s argument. */
export interface ValidatorSpec<C, F extends Field> extends Spec<C, F> {
  /** The verdict on one event. Keep no state between events or calls. */
  validate: (event: Event<F>, config: C, source: EventSource) => Verdict;
}

/** An enricher: {@link defineEnricher}'s argument. */
export interface EnricherSpec<C, F extends Field> extends Spec<C, F> {
  /**
   * The result for one event: {@link unchanged}, {@link patch} or
   * {@link failed}. Keep no state between events or calls.
   */
  enrich: (event: Event<F>, config: C, source: EventSource) => Enriched;
}

/**
 * A validator plugin: export the result as `validate`.
 *
 * `C` (the configuration `init` returns) and `F` (the fields) are inferred
 * from the spec.
 */
export function defineValidator<C = undefined, const F extends Field = never>(
  spec: ValidatorSpec<C, F>,
): ValidatorExport {
  const plugin = define("validate", spec, spec.validate, ACCEPT, isVerdict, "accept() or reject(code, message)");
  return { init: plugin.init, validate: plugin.run };
}

/** An enricher plugin: export the result as `enrich`. */
export function defineEnricher<C = undefined, const F extends Field = never>(
  spec: EnricherSpec<C, F>,
): EnricherExport {
  const plugin = define("enrich", spec, spec.enrich, UNCHANGED, isEnriched, "unchanged(), patch(...) or failed(message)");
  return { init: plugin.init, enrich: plugin.run };
}

function define<C, F extends Field, R>(
  fn: "validate" | "enrich",
  spec: Spec<C, F>,
  each: (event: Event<F>, config: C, source: EventSource) => R,
  shared: R,
  isResult: (value: unknown) => boolean,
  expected: string,
): { init(config: string): Needs; run(batch: Batch): R[] } {
  if (typeof each !== "function") {
    throw new TypeError(`sluice plugin: the spec has no \`${fn}\` function`);
  }
  const flags = flagsFor(spec.fields);
  let state: { config: C } | undefined;

  return {
    init(config: string): Needs {
      state = undefined;
      const parsed = parseConfig(config);
      let value: C;
      try {
        value = spec.init ? spec.init(parsed, config) : (undefined as C);
      } catch (e) {
        if (e instanceof PluginError) throw e; // -> result::err(e.payload)
        throw fault(e, "init");
      }
      state = { config: value };
      return { fields: { ...flags }, spans: false };
    },

    // This loop runs once per event in SpiderMonkey's interpreter (no JIT
    // inside the component): the shared result (accept() / unchanged())
    // skips the shape check. Measured with a profiling build, the loop
    // costs about 1 µs per event; the bindings componentize-js generates
    // around it cost far more (lowering a rejection's two strings, about
    // 20 µs), so this is not where a plugin's time goes.
    run(batch: Batch): R[] {
      if (state === undefined) {
        throw fault(new Error(`sluice plugin: \`${fn}\` called before a successful \`init\``));
      }
      const config = state.config;
      try {
        const events: unknown = JSON.parse(batch.events);
        if (!Array.isArray(events)) throw new TypeError("sluice plugin: `batch.events` is not a JSON array");
        const n = events.length;
        const results = new Array<R>(n);
        for (let i = 0; i < n; i++) {
          const result = each.call(spec, events[i] as Event<F>, config, { batch, index: i });
          if (result !== shared && !isResult(result)) {
            throw new TypeError(
              `sluice plugin: \`${fn}\` returned ${describe(result)} for event ${i}, expected ${expected}`,
            );
          }
          results[i] = result;
        }
        return results;
      } catch (e) {
        throw fault(e, fn);
      }
    },
  };
}

function flagsFor(fields: readonly Field[]): Flags {
  if (!Array.isArray(fields as unknown)) {
    throw new TypeError("sluice plugin: `fields` must be a list (possibly empty) of field names");
  }
  const flags: Flags = { userId: false, times: false, schemaVersion: false, properties: false, context: false };
  for (const field of fields) {
    if (!Object.prototype.hasOwnProperty.call(FIELD_FLAGS, field)) {
      throw new TypeError(
        `sluice plugin: unknown field ${JSON.stringify(field)}; expected one of ${Object.keys(FIELD_FLAGS).join(", ")}`,
      );
    }
    flags[FIELD_FLAGS[field]] = true;
  }
  return flags;
}

function isVerdict(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return false;
  const { tag, val } = v as { tag?: unknown; val?: Partial<Rejection> };
  return (
    tag === "accept" ||
    (tag === "reject" && typeof val === "object" && val !== null && typeof val.code === "string" && typeof val.message === "string")
  );
}

function isEnriched(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return false;
  const { tag, val } = v as { tag?: unknown; val?: unknown };
  return tag === "unchanged" || ((tag === "patched" || tag === "failed") && typeof val === "string");
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object" && typeof (value as { then?: unknown }).then === "function") {
    return "a Promise (the function must be synchronous)";
  }
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

/**
 * Sends an exception about to trap the component to the host log (plugins
 * have no stderr) and returns it, as an `Error`, to be thrown.
 */
function fault(e: unknown, where?: string): Error {
  const error = e instanceof Error ? e : new Error(`uncaught ${describe(e)}`);
  const context = where === undefined ? "" : `sluice plugin: uncaught exception in \`${where}\`: `;
  const stack = error.stack ? `\n${error.stack}` : "";
  try {
    hostLog("error", `${context}${error.name}: ${error.message}${stack}`);
  } catch {
    // The log itself failed: still trap with the original error.
  }
  return error;
}
