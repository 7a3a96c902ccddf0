// lib/sha256.js against node:crypto: every length around the block and
// padding boundaries, split at every kind of place, and a few large inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Sha256 } from "../src/lib/sha256.js";

const want = (b) => createHash("sha256").update(b).digest("hex");
const got = (parts) => {
  const h = new Sha256();
  for (const p of parts) {
    h.update(p);
  }
  return Buffer.from(h.digest()).toString("hex");
};

test("sha256: the FIPS 180-4 examples", () => {
  const enc = (s) => new TextEncoder().encode(s);
  assert.equal(got([enc("abc")]), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(got([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(
    got([enc("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")]),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

test("sha256: every length to 300 bytes, whole and split in three", () => {
  const b = new Uint8Array(randomBytes(300));
  for (let n = 0; n <= 300; n++) {
    const m = b.subarray(0, n);
    assert.equal(got([m]), want(m), `length ${n}`);
    const a = Math.floor(n / 3);
    const c = Math.floor((2 * n) / 3);
    assert.equal(got([m.subarray(0, a), m.subarray(a, c), m.subarray(c)]), want(m), `length ${n} split`);
  }
});

test("sha256: large inputs in uneven pieces", () => {
  for (const n of [1 << 20, (3 << 20) + 17]) {
    const b = new Uint8Array(randomBytes(n));
    const parts = [];
    for (let off = 0, k = 1; off < n; k = (k * 7 + 13) % 100003) {
      parts.push(b.subarray(off, Math.min(n, off + k)));
      off += k;
    }
    assert.equal(got(parts), want(b), `n=${n}`);
  }
});

test("sha256: spent after digest", () => {
  const h = new Sha256();
  h.digest();
  assert.throws(() => h.update(new Uint8Array(1)));
  assert.throws(() => h.digest());
});
