/**
 * What `serde_json` 1.0.154 (default features: no `float_roundtrip`, no
 * `arbitrary_precision`, no `preserve_order`) makes of a JSON value when it
 * parses it into a `serde_json::Value`: integers that fit `u64` / `i64`
 * stay exact, anything else is an `f64` computed as serde_json computes it
 * (which is not always the correctly rounded double `Number()` gives); an
 * `f64` that overflows is an error. And how such a value prints
 * (`Value::to_string()`: compact, object keys sorted, floats like `1.0`,
 * `1e+16`, `-0.0`), and when two are equal.
 *
 * The Rust plugin parses a value this way to hash a non-string `fields`
 * value whole, and to diff an object with repeated keys.
 */

import { JsonElements, JsonMembers, JsonNumber, type JsonNode } from "sluice-plugin";

/** A `serde_json::Number`. */
export type SerdeNumber =
  | { kind: "u64"; value: bigint }
  | { kind: "i64"; value: bigint }
  | { kind: "f64"; value: number };

/** A number serde_json refuses ("number out of range"). */
export class OutOfRange extends Error {
  constructor(readonly text: string) {
    super(`number out of range: ${text}`);
  }
}

const U64_MAX = (1n << 64n) - 1n;
const U64_MAX_DIV_10 = U64_MAX / 10n;
const U64_MAX_MOD_10 = U64_MAX % 10n;
const I32_MAX = 2147483647;
const I32_MIN = -2147483648;
/** serde_json's `POW10`: the literals `1e0` … `1e308`. */
const POW10 = Array.from({ length: 309 }, (_, i) => Number(`1e${i}`));

/**
 * The number serde_json parses from `text` (a valid JSON number), step by
 * step as its parser does (`parse_integer`, `parse_decimal`,
 * `parse_exponent`, `f64_from_parts`, without `float_roundtrip`).
 *
 * @throws {OutOfRange} where serde_json fails with "number out of range"
 */
export function serdeNumber(text: string): SerdeNumber {
  let i = 0;
  const positive = text.charCodeAt(0) !== 0x2d;
  if (!positive) i++;
  const digit = (at: number): number => {
    const c = text.charCodeAt(at);
    return c >= 0x30 && c <= 0x39 ? c - 0x30 : -1;
  };
  const overflows = (significand: bigint, d: number): boolean =>
    significand >= U64_MAX_DIV_10 && (significand > U64_MAX_DIV_10 || BigInt(d) > U64_MAX_MOD_10);

  const fromParts = (significand: bigint, exponent: number): number => {
    let f = Number(significand);
    for (;;) {
      const abs = Math.abs(exponent);
      if (abs < POW10.length) {
        const pow = POW10[abs]!;
        if (exponent >= 0) {
          f *= pow;
          if (!Number.isFinite(f)) throw new OutOfRange(text);
        } else {
          f /= pow;
        }
        break;
      }
      if (f === 0) break;
      if (exponent >= 0) throw new OutOfRange(text);
      f /= 1e308;
      exponent += 308;
    }
    return positive ? f : -f;
  };

  const exponentPart = (significand: bigint, startingExp: number): number => {
    i++; // e or E
    let positiveExp = true;
    if (text[i] === "+") {
      i++;
    } else if (text[i] === "-") {
      positiveExp = false;
      i++;
    }
    let exp = digit(i++);
    for (let d = digit(i); d >= 0; d = digit(i)) {
      i++;
      if (exp >= 214748364 && (exp > 214748364 || d > 7)) {
        // parse_exponent_overflow
        if (significand !== 0n && positiveExp) throw new OutOfRange(text);
        return positive ? 0 : -0;
      }
      exp = exp * 10 + d;
    }
    const finalExp = positiveExp
      ? Math.min(startingExp + exp, I32_MAX)
      : Math.max(startingExp - exp, I32_MIN);
    return fromParts(significand, finalExp);
  };

  const decimal = (significand: bigint, exponentBefore: number): number => {
    i++; // .
    let exponentAfter = 0;
    for (let d = digit(i); d >= 0; d = digit(i)) {
      if (overflows(significand, d)) {
        // parse_decimal_overflow: ignore the remaining digits
        while (digit(i) >= 0) i++;
        const exponent = exponentBefore + exponentAfter;
        return text[i] === "e" || text[i] === "E" ? exponentPart(significand, exponent) : fromParts(significand, exponent);
      }
      i++;
      significand = significand * 10n + BigInt(d);
      exponentAfter--;
    }
    const exponent = exponentBefore + exponentAfter;
    return text[i] === "e" || text[i] === "E" ? exponentPart(significand, exponent) : fromParts(significand, exponent);
  };

  const afterInteger = (significand: bigint): SerdeNumber => {
    if (text[i] === ".") return { kind: "f64", value: decimal(significand, 0) };
    if (text[i] === "e" || text[i] === "E") return { kind: "f64", value: exponentPart(significand, 0) };
    if (positive) return { kind: "u64", value: significand };
    const neg = BigInt.asIntN(64, -BigInt.asIntN(64, significand));
    // A float on underflow, or for `-0`.
    return neg >= 0n ? { kind: "f64", value: -Number(significand) } : { kind: "i64", value: neg };
  };

  const first = digit(i++);
  if (first === 0) return afterInteger(0n);
  let significand = BigInt(first);
  for (let d = digit(i); d >= 0; d = digit(i)) {
    if (overflows(significand, d)) {
      // parse_long_integer: the remaining integer digits only scale it
      let exponent = 0;
      while (digit(i) >= 0) {
        i++;
        exponent++;
      }
      let value: number;
      if (text[i] === ".") value = decimal(significand, exponent);
      else if (text[i] === "e" || text[i] === "E") value = exponentPart(significand, exponent);
      else value = fromParts(significand, exponent);
      return { kind: "f64", value };
    }
    i++;
    significand = significand * 10n + BigInt(d);
  }
  return afterInteger(significand);
}

/**
 * An `f64` as serde_json prints it (zmij, the shortest digits that read back
 * as the same double): `1.0`, `0.001`, `1e-7`, `1.5e+16`, `-0.0`.
 */
export function formatF64(f: number): string {
  if (f === 0) return Object.is(f, -0) ? "-0.0" : "0.0";
  const sign = f < 0 ? "-" : "";
  // The shortest round-trip digits and the exponent of the first one.
  const s = String(Math.abs(f));
  let digits: string;
  let exp: number;
  const e = s.indexOf("e");
  if (e >= 0) {
    digits = s.slice(0, e).replace(".", "");
    exp = Number(s.slice(e + 1));
  } else {
    const dot = s.indexOf(".");
    const int = dot < 0 ? s : s.slice(0, dot);
    const frac = dot < 0 ? "" : s.slice(dot + 1);
    if (int !== "0") {
      digits = int + frac;
      exp = int.length - 1;
    } else {
      const zeros = frac.length - frac.replace(/^0+/, "").length;
      digits = frac.slice(zeros);
      exp = -(zeros + 1);
    }
  }
  digits = digits.replace(/0+$/, "") || "0";
  const n = digits.length;
  if (exp >= -5 && exp <= 15) {
    if (n - 1 <= exp) return `${sign}${digits}${"0".repeat(exp + 1 - n)}.0`;
    if (exp >= 0) return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
    return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  }
  const mantissa = n > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${mantissa}e${exp < 0 ? "-" : "+"}${Math.abs(exp)}`;
}

/** A number as serde_json prints it. */
export function formatNumber(n: SerdeNumber): string {
  return n.kind === "f64" ? formatF64(n.value) : n.value.toString();
}

/**
 * `node` as `serde_json::Value::to_string()` writes it after parsing it:
 * compact, the last of repeated keys kept, keys sorted (a `BTreeMap`: by
 * UTF-8 bytes, i.e. code points), numbers as serde_json reads and prints them.
 *
 * @throws {OutOfRange} when serde_json refuses a number anywhere in it (the
 *   hidden members of repeated keys included: serde_json parses them too)
 */
export function serdeString(node: JsonNode): string {
  if (node === null) return "null";
  if (typeof node === "boolean") return node ? "true" : "false";
  if (typeof node === "string") return JSON.stringify(node);
  if (node instanceof JsonNumber) return formatNumber(serdeNumber(node.text));
  if (node instanceof JsonElements) return `[${node.items.map(serdeString).join(",")}]`;
  const members = new Map<string, string>();
  for (let i = 0; i < node.keys.length; i++) members.set(node.keys[i]!, serdeString(node.values[i]!));
  const keys = [...members.keys()].sort(compareCodePoints);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${members.get(k)!}`).join(",")}}`;
}

/**
 * Checks that serde_json can parse `node` (every number in range).
 *
 * @throws {OutOfRange} otherwise
 */
export function checkNumbers(node: JsonNode): void {
  if (node instanceof JsonNumber) serdeNumber(node.text);
  else if (node instanceof JsonElements) node.items.forEach(checkNumbers);
  else if (node instanceof JsonMembers) node.values.forEach(checkNumbers);
}

/** The members of an object as `serde_json::Map` keeps them: the last of repeated keys. */
export function lastWins(node: JsonMembers): Map<string, JsonNode> {
  const map = new Map<string, JsonNode>();
  for (let i = 0; i < node.keys.length; i++) map.set(node.keys[i]!, node.values[i]!);
  return map;
}

/** Whether `a` and `b` are equal `serde_json::Value`s (numbers: same kind and value). */
export function serdeEqual(a: JsonNode, b: JsonNode): boolean {
  if (a === null || typeof a !== "object" || b === null || typeof b !== "object") return a === b;
  if (a instanceof JsonNumber) {
    if (!(b instanceof JsonNumber)) return false;
    const x = serdeNumber(a.text);
    const y = serdeNumber(b.text);
    return x.kind === y.kind && x.value === y.value;
  }
  if (a instanceof JsonElements) {
    return (
      b instanceof JsonElements && a.items.length === b.items.length && a.items.every((x, i) => serdeEqual(x, b.items[i]!))
    );
  }
  if (!(b instanceof JsonMembers) || !(a instanceof JsonMembers)) return false;
  const x = lastWins(a);
  const y = lastWins(b);
  if (x.size !== y.size) return false;
  for (const [key, value] of x) {
    const other = y.get(key);
    if (other === undefined || !serdeEqual(value, other)) return false;
  }
  return true;
}

/** Orders strings by code points (as Rust orders `String`s: by UTF-8 bytes). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (code points past U+FFFF) sort after U+E000..U+FFFF.
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}
