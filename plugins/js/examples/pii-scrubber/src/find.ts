/**
 * Finding email and IP addresses in a string: a port of the Rust plugin's
 * `find.rs`, including Rust's `Ipv4Addr` / `Ipv6Addr` parsers. Rust works
 * on UTF-8 bytes and this on UTF-16 code units; every rule looks at ASCII
 * characters only (anything else is "other"), so both find the same
 * addresses. Ranges are `[start, end)` indices into the string.
 */

export type Span = [start: number, end: number];

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isAlnum = (c: number): boolean => isDigit(c) || isAlpha(c);
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** `[A-Za-z0-9._%+-]` */
const isLocal = (c: number): boolean =>
  isAlnum(c) || c === 0x2e || c === 0x5f || c === 0x25 || c === 0x2b || c === 0x2d;
/** `[A-Za-z0-9.-]` */
const isDomain = (c: number): boolean => isAlnum(c) || c === 0x2e || c === 0x2d;
/** `[A-Za-z0-9_]` */
const isWord = (c: number): boolean => isAlnum(c) || c === 0x5f;

/**
 * Whether `text` can hold an address at all: an email needs an `@`, an
 * IPv4 address three dots, an IPv6 address two colons.
 */
export function mayHoldAddress(text: string): boolean {
  if (text.includes("@")) return true;
  let dots = 0;
  let colons = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) dots++;
    else if (c === 0x3a) colons++;
  }
  return dots >= 3 || colons >= 2;
}

/** The email and IP addresses in `text`: sorted, not overlapping (an email wins over an IP inside it). */
export function findPii(text: string): Span[] {
  const spans = findEmails(text);
  for (const ip of findIps(text)) {
    if (!spans.some((s) => s[0] < ip[1] && ip[0] < s[1])) spans.push(ip);
  }
  return spans.sort((a, b) => a[0] - b[0]);
}

/**
 * `local@domain.tld`: local part of `[A-Za-z0-9._%+-]`, domain labels of
 * `[A-Za-z0-9-]` (not starting or ending with `-`), an alphabetic TLD of two
 * or more letters.
 */
export function findEmails(text: string): Span[] {
  const found: Span[] = [];
  let searchFrom = 0;
  for (;;) {
    const at = text.indexOf("@", searchFrom);
    if (at < 0) return found;
    searchFrom = at + 1;
    let start = at;
    while (start > 0 && isLocal(text.charCodeAt(start - 1))) start--;
    while (start < at && text.charCodeAt(start) === 0x2e) start++;
    let end = at + 1;
    while (end < text.length && isDomain(text.charCodeAt(end))) end++;
    while (end > at + 1 && (text.charCodeAt(end - 1) === 0x2e || text.charCodeAt(end - 1) === 0x2d)) end--;
    const last = found[found.length - 1];
    if (start === at || (last !== undefined && last[1] > start)) continue;
    const labels = text.slice(at + 1, end).split(".");
    const validLabels = labels.every((l) => l !== "" && !l.startsWith("-") && !l.endsWith("-"));
    const tld = labels[labels.length - 1]!;
    const tldOk = tld.length >= 2 && [...tld].every((ch) => isAlpha(ch.charCodeAt(0)));
    if (labels.length >= 2 && validLabels && tldOk) {
      found.push([start, end]);
      searchFrom = end;
    }
  }
}

/** Maximal runs of characters matching `inRun`. */
function runs(text: string, inRun: (c: number) => boolean): Span[] {
  const out: Span[] = [];
  let i = 0;
  while (i < text.length) {
    if (inRun(text.charCodeAt(i))) {
      const start = i;
      while (i < text.length && inRun(text.charCodeAt(i))) i++;
      out.push([start, i]);
    } else {
      i++;
    }
  }
  return out;
}

/**
 * IPv4 (dotted quad) and IPv6 addresses standing on their own (not glued to
 * letters, digits or `_`), except unspecified and loopback addresses.
 */
export function findIps(text: string): Span[] {
  const standalone = ([start, end]: Span): boolean =>
    (start === 0 || !isWord(text.charCodeAt(start - 1))) && (end === text.length || !isWord(text.charCodeAt(end)));
  const found: Span[] = [];

  // IPv6 first: its runs may contain an embedded IPv4 (`::ffff:10.0.0.1`).
  for (const run of runs(text, (c) => isHex(c) || c === 0x3a || c === 0x2e)) {
    let candidate = run;
    // Trailing punctuation (`…fe80::1.` or `…::1:`) is not part of it.
    const lastChar = text.charCodeAt(run[1] - 1);
    if (run[1] - run[0] > 2 && (lastChar === 0x2e || lastChar === 0x3a)) {
      const trimmed: Span = [run[0], run[1] - 1];
      if (parseIpv6(text.slice(trimmed[0], trimmed[1])) !== null) candidate = trimmed;
    }
    const candidateText = text.slice(candidate[0], candidate[1]);
    if (countOf(candidateText, 0x3a) >= 2 && standalone(candidate)) {
      const ip = parseIpv6(candidateText);
      if (ip !== null && isPersonalIpv6(ip)) found.push(candidate);
    }
  }

  for (const run of runs(text, (c) => isDigit(c) || c === 0x2e)) {
    let [start, end] = run;
    while (end > start && text.charCodeAt(end - 1) === 0x2e) end--;
    while (start < end && text.charCodeAt(start) === 0x2e) start++;
    if (start === end || found.some((r) => r[0] < end && start < r[1])) continue;
    // Not a piece of a longer token such as `v1.2.3.4` (`10.0.0.1:8080` is fine).
    if (standalone([start, end])) {
      const ip = parseIpv4(text.slice(start, end));
      if (ip !== null && isPersonalIpv4(ip)) found.push([start, end]);
    }
  }
  return found.sort((a, b) => a[0] - b[0]);
}

function countOf(text: string, code: number): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === code) n++;
  return n;
}

/** Not `0.0.0.0`, not `127.x.x.x`. */
export function isPersonalIpv4(octets: number[]): boolean {
  return octets[0] !== 127 && !octets.every((o) => o === 0);
}

/** Not `::`, not `::1` (as Rust's `Ipv6Addr::is_unspecified` / `is_loopback`). */
export function isPersonalIpv6(groups: number[]): boolean {
  const head = groups.slice(0, 7).every((g) => g === 0);
  return !(head && (groups[7] === 0 || groups[7] === 1));
}

/** Rust's `str::parse::<Ipv4Addr>`: the four octets, or `null`. */
export function parseIpv4(text: string): number[] | null {
  if (text.length > 15) return null;
  const p = new AddrParser(text);
  const ip = p.ipv4();
  return ip !== null && p.pos === text.length ? ip : null;
}

/** Rust's `str::parse::<Ipv6Addr>`: the eight groups, or `null`. */
export function parseIpv6(text: string): number[] | null {
  const p = new AddrParser(text);
  const ip = p.ipv6();
  return ip !== null && p.pos === text.length ? ip : null;
}

/** A port of `core::net::parser::Parser` (what `Ipv4Addr` / `Ipv6Addr` parsing uses). */
class AddrParser {
  pos = 0;

  constructor(readonly text: string) {}

  /** Runs `f`; on failure (`null`) puts the position back. */
  private atomically<T>(f: () => T | null): T | null {
    const saved = this.pos;
    const result = f();
    if (result === null) this.pos = saved;
    return result;
  }

  private readGivenChar(code: number): true | null {
    return this.atomically(() => {
      if (this.text.charCodeAt(this.pos) !== code) return null;
      this.pos++;
      return true;
    });
  }

  private readSeparator<T>(sep: number, index: number, inner: () => T | null): T | null {
    return this.atomically(() => {
      if (index > 0 && this.readGivenChar(sep) === null) return null;
      return inner();
    });
  }

  /** `read_number`: up to `maxDigits` digits of `radix`, at most `max`. */
  private readNumber(radix: 10 | 16, maxDigits: number, allowZeroPrefix: boolean, max: number): number | null {
    return this.atomically(() => {
      let result = 0;
      let digits = 0;
      const hasLeadingZero = this.text.charCodeAt(this.pos) === 0x30;
      for (;;) {
        const c = this.text.charCodeAt(this.pos);
        const d = isDigit(c) ? c - 0x30 : radix === 16 && isHex(c) ? (c | 0x20) - 0x57 : -1;
        if (d < 0) break;
        this.pos++;
        result = result * radix + d;
        if (result > max) return null;
        digits++;
        if (digits > maxDigits) return null;
      }
      if (digits === 0) return null;
      if (!allowZeroPrefix && hasLeadingZero && digits > 1) return null;
      return result;
    });
  }

  ipv4(): number[] | null {
    return this.atomically(() => {
      const octets: number[] = [];
      for (let i = 0; i < 4; i++) {
        // No octal: a leading zero only alone.
        const octet = this.readSeparator(0x2e, i, () => this.readNumber(10, 3, false, 255));
        if (octet === null) return null;
        octets.push(octet);
      }
      return octets;
    });
  }

  /**
   * `read_groups`: colon-separated groups into `groups`, an embedded IPv4
   * address allowed when two groups are left: how many were read, and
   * whether the last were an IPv4 address.
   */
  private groups(groups: number[]): [number, boolean] {
    const limit = groups.length;
    for (let i = 0; i < limit; i++) {
      if (i < limit - 1) {
        const v4 = this.readSeparator(0x3a, i, () => this.ipv4());
        if (v4 !== null) {
          groups[i] = (v4[0]! << 8) | v4[1]!;
          groups[i + 1] = (v4[2]! << 8) | v4[3]!;
          return [i + 2, true];
        }
      }
      const group = this.readSeparator(0x3a, i, () => this.readNumber(16, 4, true, 0xffff));
      if (group === null) return [i, false];
      groups[i] = group;
    }
    return [limit, false];
  }

  ipv6(): number[] | null {
    return this.atomically(() => {
      const head = [0, 0, 0, 0, 0, 0, 0, 0];
      const [headSize, headIpv4] = this.groups(head);
      if (headSize === 8) return head;
      // IPv4 part is not allowed before `::`.
      if (headIpv4) return null;
      if (this.readGivenChar(0x3a) === null || this.readGivenChar(0x3a) === null) return null;
      // `::` stands for at least one group of zeros: at most 7 after it.
      const tail = new Array<number>(8 - (headSize + 1)).fill(0);
      const [tailSize] = this.groups(tail);
      for (let i = 0; i < tailSize; i++) head[8 - tailSize + i] = tail[i]!;
      return head;
    });
  }
}
