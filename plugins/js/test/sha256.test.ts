// The SDK's SHA-256 (sdk/sha256.ts) against known vectors and Node's.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";

import { Sha256, sha256, sha256Hex, toHex, utf8Encode, utf8Length } from "sluice-plugin";

const node = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

describe("sha256", () => {
  test("FIPS 180 vectors", () => {
    assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(
      sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
    assert.equal(
      sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    );
  });

  test("one million times `a` (1 MB)", () => {
    const input = new Uint8Array(1_000_000).fill(0x61);
    assert.equal(sha256Hex(input), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // the same in uneven pieces
    const h = new Sha256();
    for (let at = 0; at < input.length; ) {
      const n = Math.min(1 + ((at * 7) % 131), input.length - at);
      h.update(input.subarray(at, at + n));
      at += n;
    }
    assert.equal(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  test("a 1 MiB input with every byte value, as Node hashes it", () => {
    const input = new Uint8Array(1 << 20);
    for (let i = 0; i < input.length; i++) input[i] = (i * 31 + (i >> 8)) & 0xff;
    assert.equal(sha256Hex(input), node(input));
  });

  test("every length around the block and padding boundaries", () => {
    for (let n = 0; n <= 300; n++) {
      const input = new Uint8Array(n);
      for (let i = 0; i < n; i++) input[i] = (i * 13 + n) & 0xff;
      assert.equal(sha256Hex(input), node(input), `length ${n}`);
      assert.deepEqual(sha256(input), new Uint8Array(createHash("sha256").update(input).digest()));
      // split in two updates at every point for a few lengths
      if (n % 37 === 0) {
        for (let k = 0; k <= n; k++) {
          assert.equal(new Sha256().update(input.subarray(0, k)).update(input.subarray(k)).hex(), node(input));
        }
      }
    }
  });

  test("text is hashed as UTF-8, a lone surrogate as U+FFFD", () => {
    for (const text of ["é", "日本", "🦀 crab", "a\u0000b", "\u07ff\u0800\uffff"]) {
      assert.equal(sha256Hex(text), node(Buffer.from(text, "utf8")), text);
      assert.deepEqual(utf8Encode(text), new Uint8Array(Buffer.from(text, "utf8")));
      assert.equal(utf8Length(text), Buffer.byteLength(text, "utf8"));
    }
    for (const lone of ["\ud800", "a\udc00b", "\ud83d", "\ud83d\ud83d\ude00"]) {
      assert.deepEqual(utf8Encode(lone), new Uint8Array(new TextEncoder().encode(lone)), JSON.stringify(lone));
      assert.equal(utf8Length(lone), new TextEncoder().encode(lone).length);
    }
    assert.equal(new Sha256().update("sal").update("t@x").hex(), sha256Hex("salt@x"));
  });

  test("digest once", () => {
    const h = new Sha256().update("x");
    assert.equal(toHex(h.digest()), sha256Hex("x"));
    assert.throws(() => h.digest());
    assert.throws(() => h.update("y"));
  });
});
