// The shared test vectors (crypto/testdata/vectors, docs/protocol.md §11)
// and small helpers every test file of the browser client uses.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Decrypter } from "age-encryption";

// CRYPTO is the Go crypto package's directory, which holds the vectors and
// the receipt word list.
export const CRYPTO = fileURLToPath(new URL("../../../../../crypto/", import.meta.url));
export const VECTORS = join(CRYPTO, "testdata/vectors");

// parseVector splits a vector file into "key: value" headers (a key may
// repeat; get gives the first) and the body bytes after the first blank
// line.
export function parseVector(name) {
  const data = readFileSync(join(VECTORS, name));
  const header = new Map();
  let pos = 0;
  for (;;) {
    const nl = data.indexOf(0x0a, pos);
    assert.ok(nl >= 0, `${name}: header not terminated`);
    const line = data.subarray(pos, nl).toString("utf8");
    pos = nl + 1;
    if (line === "") {
      break;
    }
    const sep = line.indexOf(": ");
    assert.ok(sep > 0, `${name}: bad header line`);
    const k = line.slice(0, sep);
    header.set(k, [...(header.get(k) || []), line.slice(sep + 2)]);
  }
  return { name, get: (k) => (header.get(k) || [""])[0], body: new Uint8Array(data.subarray(pos)) };
}

// vectorFiles lists the vector files, sorted, whose names pass keep.
export const vectorFiles = (keep = () => true) =>
  readdirSync(VECTORS)
    .filter((f) => f.endsWith(".txt") && keep(f))
    .sort();

export const sha256 = (b) => createHash("sha256").update(b).digest("hex");

// decrypt opens age ciphertext with one identity string, through typage.
export async function decrypt(ct, secret) {
  const d = new Decrypter();
  d.addIdentity(secret);
  return d.decrypt(ct);
}
