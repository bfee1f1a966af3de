/**
 * Enricher: finds email addresses and IPv4/IPv6 addresses in string
 * property values (at any depth) and in `context.ip`, and hashes or drops
 * them (the TypeScript twin of the Rust example `plugins/examples/pii-scrubber`,
 * with the same configuration, results and messages).
 *
 * Configuration: `{"mode": "hash" | "drop", "salt": "...", "fields": ["phone", ...]}`
 *
 * - `hash` (default): each address found inside a string is replaced by
 *   `sha256:` + hex(sha256(salt + address)); other text in the string is
 *   kept. A non-empty `salt` is required.
 * - `drop`: a string value containing an address is removed (the object
 *   member, or the array element).
 * - `fields`: extra property names (matched at any depth) whose whole value
 *   is personal: hashed (non-strings as serde_json writes them: compact,
 *   keys sorted) or dropped.
 * - `context.ip` is always treated like a `fields` entry.
 *
 * Values already starting with `sha256:` are left alone, so scrubbing twice
 * changes nothing. Unspecified and loopback IPs are kept. Object keys are
 * not scanned. An event in which nothing is found is returned `unchanged`;
 * otherwise a merge patch of what changed, e.g.
 * `{"properties":{"email":"sha256:…","profile":{"phone":null}},"context":{"ip":"sha256:…"}}`:
 * the changed top-level properties (strings and arrays with their whole new
 * values, objects as patches of their own: an object in a merge patch is
 * merged, not replaced), removed ones as `null`, and `context.ip`.
 *
 * It reads the properties and context as the host wrote them in the batch
 * (not as `JSON.parse` sees them): repeated keys are scrubbed member by
 * member and numbers keep their spelling, as in the Rust plugin.
 */

import {
  defineEnricher,
  failed,
  fieldTypes,
  InvalidConfig,
  memberText,
  readStruct,
  unchanged,
  type Enriched,
  type EventSource,
} from "sluice-plugin";

import { objectText, Scrubber, type Mode } from "./scrub.ts";

export { findEmails, findIps, findPii, mayHoldAddress, parseIpv4, parseIpv6 } from "./find.ts";
export { HASH_PREFIX, Scrubber, type Mode } from "./scrub.ts";

interface Config {
  mode: Mode;
  salt: string;
  fields: string[];
}

/** Checks the configuration, as the Rust plugin's `init` does. */
export function parseScrubber(text: string): Scrubber {
  const { mode, salt, fields } = readStruct<Config>(text, "Config", {
    mode: { read: fieldTypes.unitEnum("Mode", ["hash", "drop"] as const), default: () => "hash" },
    salt: { read: fieldTypes.string, default: () => "" },
    fields: { read: fieldTypes.list(fieldTypes.string), default: () => [] },
  });
  if (mode === "hash" && salt === "") {
    throw new InvalidConfig(
      "`salt` is required in hash mode: unsalted hashes of emails and IPs are easy to reverse",
    );
  }
  if (fields.some((f) => f === "")) throw new InvalidConfig("`fields` must not contain empty names");
  return new Scrubber(mode, salt, fields);
}

/** The result for the event at `source`. */
export function scrubEvent(scrubber: Scrubber, source: EventSource): Enriched {
  const properties = memberText(source, "properties");
  const scrubbed = properties === undefined ? { members: [] } : scrubber.scrubProperties(properties);
  if ("error" in scrubbed) return failed(scrubbed.error);
  const context = memberText(source, "context");
  const ip = context === undefined ? { members: [] } : scrubber.scrubContext(context);
  if ("error" in ip) return failed(ip.error);
  if (scrubbed.members.length === 0 && ip.members.length === 0) return unchanged();
  const parts: string[] = [];
  if (scrubbed.members.length > 0) parts.push(`"properties":${objectText(scrubbed.members)}`);
  if (ip.members.length > 0) parts.push(`"context":${objectText(ip.members)}`);
  // The patch text is built here (not by `patch()`): numbers keep their spelling.
  return { tag: "patched", val: `{${parts.join(",")}}` };
}

export const enrich = defineEnricher({
  fields: ["properties", "context"],
  init: (_config, text) => parseScrubber(text),
  enrich: (_event, scrubber, source) => scrubEvent(scrubber, source),
});
