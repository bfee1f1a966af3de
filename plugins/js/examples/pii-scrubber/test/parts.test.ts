// The pieces ported from Rust, checked against what Rust does: the address
// parsers (`core::net`), the finders' edges, and serde_json's numbers.
import assert from "node:assert/strict";
import { test } from "node:test";

import { findEmails, findIps, mayHoldAddress, parseIpv4, parseIpv6 } from "../src/index.ts";
import { compareCodePoints, formatF64, serdeNumber, OutOfRange } from "../src/serde.ts";

test("Ipv4Addr parsing", () => {
  assert.deepEqual(parseIpv4("1.2.3.4"), [1, 2, 3, 4]);
  assert.deepEqual(parseIpv4("255.255.255.255"), [255, 255, 255, 255]);
  assert.deepEqual(parseIpv4("0.0.0.0"), [0, 0, 0, 0]);
  for (const bad of ["256.0.0.0", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "00.1.2.3", "1..2.3", "1.2.3.", ".1.2.3.4", "1234.1.1.1", "", "1.2.3.4 "]) {
    assert.equal(parseIpv4(bad), null, bad);
  }
});

test("Ipv6Addr parsing", () => {
  const ok: [string, number[]][] = [
    ["::", [0, 0, 0, 0, 0, 0, 0, 0]],
    ["::1", [0, 0, 0, 0, 0, 0, 0, 1]],
    ["1::", [1, 0, 0, 0, 0, 0, 0, 0]],
    ["1:2:3:4:5:6:7:8", [1, 2, 3, 4, 5, 6, 7, 8]],
    ["1:2:3:4:5:6:7::", [1, 2, 3, 4, 5, 6, 7, 0]],
    ["::2:3:4:5:6:7:8", [0, 2, 3, 4, 5, 6, 7, 8]],
    ["2001:DB8::ffff", [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xffff]],
    ["::ffff:10.1.2.3", [0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203]],
    ["::1.2.3.4", [0, 0, 0, 0, 0, 0, 0x0102, 0x0304]],
    ["1:2:3:4:5:6:1.2.3.4", [1, 2, 3, 4, 5, 6, 0x0102, 0x0304]],
    ["0001:2::", [1, 2, 0, 0, 0, 0, 0, 0]],
  ];
  for (const [text, groups] of ok) assert.deepEqual(parseIpv6(text), groups, text);
  for (const bad of [
    ":",
    ":::",
    "1::2::3",
    "12345::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1.2.3.4::",
    "::1.2.3.4:5",
    "::01.2.3.4",
    "1:2",
    "g::",
    "1::2:",
    "",
  ]) {
    assert.equal(parseIpv6(bad), null, bad);
  }
});

test("finders: boundaries, trimming and loopback forms", () => {
  const ips = (t: string) => findIps(t).map(([a, b]) => t.slice(a, b));
  assert.deepEqual(ips("fe80::1:"), ["fe80::1"]);
  assert.deepEqual(ips("a 1::2: b"), ["1::2"]);
  assert.deepEqual(ips("x::1"), []); // glued to a letter
  assert.deepEqual(ips("::ffff:127.0.0.1"), ["::ffff:127.0.0.1"]); // only ::1 is the IPv6 loopback
  assert.deepEqual(ips("_10.0.0.1"), []);
  assert.deepEqual(ips("é10.0.0.1é"), ["10.0.0.1"]); // not ASCII: not part of a word
  assert.deepEqual(ips("...10.0.0.1..."), ["10.0.0.1"]);
  assert.deepEqual(ips("127.1.2.3 0.0.0.0 10.0.0.256"), []);
  const emails = (t: string) => findEmails(t).map(([a, b]) => t.slice(a, b));
  assert.deepEqual(emails("a@b.io@c.io"), ["a@b.io"]);
  assert.deepEqual(emails("..a@b.io.."), ["a@b.io"]);
  assert.deepEqual(emails("a@b-.io"), []);
  assert.deepEqual(emails("a@b.io- x@y.org"), ["a@b.io", "x@y.org"]);
  assert.deepEqual(emails("ü@b.io"), []);
  assert.deepEqual(emails("x+ü@b.io"), []);
  assert.equal(mayHoldAddress("a.b.c"), false);
  assert.equal(mayHoldAddress("a.b.c.d"), true);
  assert.equal(mayHoldAddress("a:b:"), true);
  assert.equal(mayHoldAddress("@"), true);
});

test("serde_json numbers", () => {
  const n = (t: string) => serdeNumber(t);
  assert.deepEqual(n("0"), { kind: "u64", value: 0n });
  assert.deepEqual(n("18446744073709551615"), { kind: "u64", value: 18446744073709551615n });
  assert.deepEqual(n("18446744073709551616"), { kind: "f64", value: 18446744073709551616 });
  assert.deepEqual(n("-1"), { kind: "i64", value: -1n });
  assert.deepEqual(n("-9223372036854775808"), { kind: "i64", value: -9223372036854775808n });
  assert.deepEqual(n("-9223372036854775809"), { kind: "f64", value: -9223372036854775808 });
  assert.ok(Object.is(n("-0").value, -0));
  assert.ok(Object.is(n("-0.0").value, -0));
  assert.deepEqual(n("1e3"), { kind: "f64", value: 1000 });
  assert.deepEqual(n("1.0"), { kind: "f64", value: 1 });
  assert.deepEqual(n("0.1"), { kind: "f64", value: 0.1 });
  assert.deepEqual(n("1e-400"), { kind: "f64", value: 0 });
  assert.deepEqual(n("1e-99999999999"), { kind: "f64", value: 0 });
  assert.deepEqual(n("0e99999999999"), { kind: "f64", value: 0 });
  assert.deepEqual(n("1.7976931348623157e308"), { kind: "f64", value: 1.7976931348623157e308 });
  for (const out of ["1e309", "1e400", "-1e400", "1e99999999999", "2e308"]) {
    assert.throws(() => n(out), OutOfRange, out);
  }
  // not correctly rounded past 2^64 (the digits beyond the 20th only scale it)
  assert.equal(n("123456789012345678901").value, 123456789012345670000);
  assert.notEqual(n("123456789012345678901").value, Number("123456789012345678901"));
});

test("serde_json prints floats as zmij does", () => {
  for (const [value, text] of [
    [0, "0.0"],
    [-0, "-0.0"],
    [1, "1.0"],
    [1.5, "1.5"],
    [-2.25, "-2.25"],
    [100, "100.0"],
    [1e15, "1000000000000000.0"],
    [1e16, "1e+16"],
    [1.5e16, "1.5e+16"],
    [123456.789, "123456.789"],
    [0.0001, "0.0001"],
    [0.00001, "0.00001"],
    [0.000001, "1e-6"],
    [1.5e-7, "1.5e-7"],
    [5e-324, "5e-324"],
    [1.7976931348623157e308, "1.7976931348623157e+308"],
    [6.62607015e-34, "6.62607015e-34"],
    [5.444310685350916e14, "544431068535091.6"],
    [43210, "43210.0"],
    [-5942736479622170, "-5942736479622170.0"],
    [2.9802322387695312e-8, "2.9802322387695312e-8"],
    [3.439070283483335e35, "3.439070283483335e+35"],
  ] as const) {
    assert.equal(formatF64(value), text, String(value));
  }
});

test("keys sort by code points, as Rust's BTreeMap<String> does", () => {
  const keys = ["\ud83d\ude00", "\uffff", "z", "é", "", "a", "ab"];
  assert.deepEqual([...keys].sort(compareCodePoints), ["", "a", "ab", "z", "é", "\uffff", "\ud83d\ude00"]);
});
