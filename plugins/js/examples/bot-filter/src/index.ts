/**
 * Validator: rejects events whose user agent looks like a bot (the
 * TypeScript twin of the Rust example `plugins/examples/bot-filter`, with
 * the same configuration, codes and messages).
 *
 * Configuration (every key optional):
 * `{"user_agent_patterns": ["bot", "crawler", "spider", "HeadlessChrome"], "case_insensitive": true}`
 *
 * The user agent is `context.user_agent`, else `properties.$user_agent`
 * (both are checked: the properties when the context's does not match; a
 * member that is not a string is ignored). A pattern is a plain substring.
 * Ignoring case means comparing the lower-cased user agent with the
 * lower-cased patterns (full Unicode lower-casing: `K`, the Kelvin sign,
 * matches `k`). The first configured pattern that matches is named in the
 * rejection, code `bot_traffic`. An empty pattern list disables the filter.
 *
 * As in the Rust plugin, which reads the context and properties with the
 * Rust SDK's scanner: an object that holds a lone surrogate escape
 * (`"\ud800"`, which `JSON.parse` accepts and Rust refuses) is not read.
 */

import {
  accept,
  defineValidator,
  fieldTypes,
  hasLoneSurrogate,
  InvalidConfig,
  readStruct,
  reject,
  type Event,
  type Verdict,
} from "sluice-plugin";

/** The patterns used when the configuration names none. */
export const DEFAULT_PATTERNS: readonly string[] = [
  "bot",
  "crawler",
  "spider",
  "HeadlessChrome",
  "PhantomJS",
  "Slurp",
  "facebookexternalhit",
];

/** The filter, worked out once at `init`. */
export interface BotFilter {
  /** As configured (for messages). */
  patterns: string[];
  /** What is searched for: lower-cased when matching ignores case. */
  needles: string[];
  caseInsensitive: boolean;
}

interface Config {
  user_agent_patterns: string[];
  case_insensitive: boolean;
}

/** Checks the configuration (`{"user_agent_patterns": [...], "case_insensitive": bool}`, both optional). */
export function parseFilter(text: string): BotFilter {
  const { user_agent_patterns: patterns, case_insensitive: caseInsensitive } = readStruct<Config>(
    text,
    "Config",
    {
      user_agent_patterns: { read: fieldTypes.list(fieldTypes.string) },
      case_insensitive: { read: fieldTypes.boolean },
    },
    () => ({ user_agent_patterns: [...DEFAULT_PATTERNS], case_insensitive: true }),
  );
  if (patterns.some((p) => p === "")) {
    throw new InvalidConfig(
      "`user_agent_patterns` must not contain an empty pattern (it would match everything)",
    );
  }
  const needles = caseInsensitive ? patterns.map((p) => p.toLowerCase()) : patterns;
  return { patterns, needles, caseInsensitive };
}

/** The first pattern (in configured order) that occurs in `userAgent`. */
export function matching(filter: BotFilter, userAgent: string): string | undefined {
  const haystack = filter.caseInsensitive ? userAgent.toLowerCase() : userAgent;
  const i = filter.needles.findIndex((needle) => haystack.includes(needle));
  return i < 0 ? undefined : filter.patterns[i];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The pattern matching the string member `key` of `object` (none when
 * `object` is not an object, or holds a lone surrogate anywhere).
 */
function userAgentIn(filter: BotFilter, object: unknown, key: string): string | undefined {
  if (!isObject(object) || !Object.prototype.hasOwnProperty.call(object, key)) return undefined;
  const userAgent = object[key];
  if (typeof userAgent !== "string") return undefined;
  const pattern = matching(filter, userAgent);
  return pattern === undefined || holdsLoneSurrogate(object) ? undefined : pattern;
}

/** Whether a key or string anywhere in `value` has a lone surrogate. */
function holdsLoneSurrogate(value: unknown): boolean {
  if (typeof value === "string") return hasLoneSurrogate(value);
  if (Array.isArray(value)) return value.some(holdsLoneSurrogate);
  if (isObject(value)) {
    return Object.keys(value).some((k) => hasLoneSurrogate(k) || holdsLoneSurrogate(value[k]));
  }
  return false;
}

/** The verdict on one event. */
export function check(event: Event<"context" | "properties">, filter: BotFilter): Verdict {
  if (filter.needles.length === 0) return accept();
  const found =
    userAgentIn(filter, event.context, "user_agent") ?? userAgentIn(filter, event.properties, "$user_agent");
  return found === undefined
    ? accept()
    : reject("bot_traffic", `the user agent matches the bot pattern \`${found}\``);
}

export const validate = defineValidator({
  fields: ["context", "properties"],
  init: (_config, text) => parseFilter(text),
  validate: check,
});
