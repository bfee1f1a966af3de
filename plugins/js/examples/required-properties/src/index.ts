/**
 * Validator: rejects events that lack required properties (the TypeScript
 * twin of the Rust example `plugins/examples/required-properties`, with the
 * same configuration, codes and messages).
 *
 * Configuration: event name → property names, `"*"` for every event:
 * `{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}`.
 * A property is missing when it is absent or `null`. A rejection has code
 * `missing_property` and names every missing property.
 */

import { accept, defineValidator, InvalidConfig, reject, type Event, type Verdict } from "sluice-plugin";

/** What each event must have, worked out once at `init`. */
export interface Required {
  /** Configured event name → its names followed by the `*` ones, without repeats. */
  perEvent: Map<string, string[]>;
  /** Every other event: the `*` names. */
  wildcard: string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const hasOwn = Object.prototype.hasOwnProperty;

/** The names in order, each once (its first occurrence). */
function unique(names: Iterable<string>): string[] {
  return [...new Set(names)];
}

/** Checks the configuration (`{"required": {event: [names]}}`, nothing else). */
export function parseRequired(config: unknown): Required {
  if (!isObject(config)) {
    throw new InvalidConfig("expected an object with the field `required`");
  }
  for (const key of Object.keys(config)) {
    if (key !== "required") throw new InvalidConfig(`unknown field \`${key}\`, expected \`required\``);
  }
  if (!Object.prototype.hasOwnProperty.call(config, "required")) {
    throw new InvalidConfig("missing field `required`");
  }
  const required = config.required;
  if (!isObject(required)) {
    throw new InvalidConfig("`required` must be an object: event name (or `*`) → property names");
  }
  const lists = new Map<string, string[]>();
  for (const [event, names] of Object.entries(required)) {
    if (!Array.isArray(names) || !names.every((name) => typeof name === "string")) {
      throw new InvalidConfig(`\`required\` of \`${event}\` must be a list of property names`);
    }
    lists.set(event, names);
  }
  if ([...lists.values()].some((names) => names.includes(""))) {
    throw new InvalidConfig("property names must not be empty");
  }
  const forAll = lists.get("*") ?? [];
  const perEvent = new Map<string, string[]>();
  for (const [event, names] of lists) {
    if (event !== "*") perEvent.set(event, unique([...names, ...forAll]));
  }
  return { perEvent, wildcard: unique(forAll) };
}

/**
 * The verdict on one event. Plain loops and string concatenation: this runs
 * once per event in SpiderMonkey's interpreter (no JIT inside a component),
 * where a callback per name (`filter`, `map`) costs more than the check.
 */
export function check(event: Event<"properties">, required: Required): Verdict {
  const names = required.perEvent.get(event.name) ?? required.wildcard;
  const count = names.length;
  if (count === 0) return accept(); // nothing required: no need to look

  const properties: unknown = event.properties;
  if (!isObject(properties)) {
    return reject("invalid_properties", "properties are not a JSON object");
  }
  let missing = 0;
  let list = "";
  for (let i = 0; i < count; i++) {
    const name = names[i]!;
    if (!hasOwn.call(properties, name) || properties[name] === null) {
      list = missing === 0 ? `\`${name}\`` : `${list}, \`${name}\``;
      missing++;
    }
  }
  if (missing === 0) return accept();

  const noun = missing === 1 ? "property" : "properties";
  return reject("missing_property", `event \`${event.name}\` is missing required ${noun} ${list}`);
}

export const validate = defineValidator({
  fields: ["properties"],
  init: parseRequired,
  validate: check,
});
