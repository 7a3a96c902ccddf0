// The streamed bundle and its streamed encryption (docs/protocol.md §10.13):
// the same bytes as writeBundle and the Go reference, read lazily from Blobs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { streamBundle, writeBundle, hashBlob, readBundle, SUBTLE_MAX, READ_SIZE } from "../src/lib/bundle.js";
import { encryptStream, encrypt, ciphertextSize } from "../src/lib/seal.js";
import { parseVector, vectorFiles, sha256, decrypt } from "./lib/vectors.mjs";

const classic = parseVector("identity-classic.txt");
const pq = parseVector("identity-pq.txt");

async function readAll(stream) {
  const parts = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    parts.push(value);
  }
  return new Uint8Array(Buffer.concat(parts));
}

function bytes(n, seed = 7) {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

// countingBlob is a Blob that records every slice read from it.
class CountingBlob extends Blob {
  constructor(parts, reads) {
    super(parts);
    this.reads = reads;
  }
  slice(start, end) {
    this.reads.push([start, end]);
    return super.slice(start, end);
  }
}

// A vector with an "unhashed" file (sealed by amana submit in one read,
// §8.7.1) has no streamBundle counterpart: this page always writes sha256.
const bundleVectors = vectorFiles()
  .map(parseVector)
  .filter((v) => v.get("kind") === "bundle" && v.get("input") !== "")
  .filter((v) => !JSON.parse(v.get("input")).files.some((f) => f.unhashed));

test("bundle vectors are there", () => assert.ok(bundleVectors.length >= 2));

for (const v of bundleVectors) {
  test(`bundle vector ${v.name}: streamBundle gives the same bytes`, async () => {
    const input = JSON.parse(v.get("input"));
    const files = input.files.map((f) => ({ name: f.name, type: f.type, blob: new Blob([Buffer.from(f.content_base64, "base64")]) }));
    const report = input.report;
    const hashed = [];
    const b = await streamBundle(report, files, { onHash: (n, total) => hashed.push([n, total]) });
    assert.equal(b.size, v.body.length);
    const got = await readAll(b.stream());
    assert.ok(Buffer.from(got).equals(Buffer.from(v.body)), "bytes differ");
    // A second stream gives the same bytes again.
    assert.ok(Buffer.from(await readAll(b.stream())).equals(Buffer.from(v.body)));
    const total = files.reduce((n, f) => n + f.blob.size, 0);
    assert.deepEqual(hashed.at(-1), [total, total]);
    assert.equal(report.schema, 1);
  });
}

test("streamBundle equals writeBundle with files above SUBTLE_MAX, empty and odd-sized", async () => {
  const contents = [bytes(SUBTLE_MAX + 3 * READ_SIZE + 17), new Uint8Array(0), bytes(513, 3), bytes(100000, 9)];
  const names = ["clip.mp4", "empty", "a\uD800b.txt", "../x y.pdf"];
  const mk = () => ({ schema: 1, desk: "d", category: "", language: "en", submitted: "2026-01-01T00:00:00Z", sealed_by: "client", answers: [{ field: "what", value: "x" }], attachments: [], reply_recipient: "", mailbox: "" });
  const r1 = mk();
  const want = await writeBundle(r1, contents.map((c, i) => ({ name: names[i], type: "video/mp4", bytes: c })));
  const r2 = mk();
  const reads = [];
  const s = await streamBundle(r2, contents.map((c, i) => ({ name: names[i], type: "video/mp4", blob: new CountingBlob([c], reads) })));
  assert.deepEqual(r2, r1);
  assert.equal(s.size, want.length);
  // Pass 1 read the large file in READ_SIZE pieces, the small ones whole.
  assert.ok(reads.every(([a, b]) => b - a <= Math.max(READ_SIZE, 100000) || (a === 0 && b <= SUBTLE_MAX)));
  reads.length = 0;
  let read = 0;
  const got = await readAll(s.stream({ onRead: (n) => (read += n) }));
  assert.equal(read, want.length);
  assert.ok(Buffer.from(got).equals(Buffer.from(want)));
  // Pass 2 reads in pieces of at most 256 KiB.
  assert.ok(reads.length > 0 && reads.every(([a, b]) => b - a <= 256 * 1024));
  const back = await readBundle(got);
  assert.equal(back.attachments[0].sha256, sha256(contents[0]));
});

test("the plaintext stream reads a file only as it is pulled", async () => {
  const reads = [];
  const data = bytes(4 * READ_SIZE);
  const report = { schema: 1, desk: "d", category: "", language: "", submitted: "", sealed_by: "client", answers: [], attachments: [], reply_recipient: "", mailbox: "" };
  const s = await streamBundle(report, [{ name: "f", type: "", blob: new CountingBlob([data], reads) }]);
  reads.length = 0;
  const reader = s.stream().getReader();
  await reader.read(); // the header of report.json
  await new Promise((r) => setTimeout(r, 20));
  const ahead = reads.reduce((n, [a, b]) => n + (b - a), 0);
  assert.ok(ahead <= 2 * 256 * 1024, `read ${ahead} bytes ahead`);
  await reader.cancel();
});

test("hashBlob: incremental above SUBTLE_MAX, one read below", async () => {
  for (const n of [0, 1, SUBTLE_MAX, SUBTLE_MAX + 1, SUBTLE_MAX + READ_SIZE + 5]) {
    const b = bytes(n, n);
    let seen = 0;
    assert.equal(await hashBlob(new Blob([b]), (k) => (seen += k)), createHash("sha256").update(b).digest("hex"), `n=${n}`);
    assert.equal(seen, n);
  }
});

for (const [label, id] of [["classic", classic], ["post-quantum", pq]]) {
  test(`encryptStream to the ${label} test recipient: typage opens it, same length as encrypt`, async () => {
    const plain = bytes(3 * 65536 + 4097);
    const recipients = [id.get("recipient")];
    let pos = 0;
    const input = new ReadableStream({
      pull(c) {
        if (pos >= plain.length) {
          c.close();
          return;
        }
        c.enqueue(plain.slice(pos, pos + 10000));
        pos += 10000;
      },
    });
    const sealed = await encryptStream(input, plain.length, recipients);
    assert.equal(sealed.size, ciphertextSize(plain.length, recipients));
    const ct = await readAll(sealed.stream);
    assert.equal(ct.length, sealed.size);
    assert.ok(Buffer.from(await decrypt(ct, id.get("secret"))).equals(Buffer.from(plain)));
    assert.equal((await encrypt(plain, recipients)).length, ct.length);
  });
}

test("encryptStream: a plaintext of another length than announced errors the stream", async () => {
  const recipients = [classic.get("recipient")];
  for (const [n, said] of [[1000, 2000], [200000, 1000]]) {
    const input = new ReadableStream({
      start(c) {
        c.enqueue(bytes(n));
        c.close();
      },
    });
    const sealed = await encryptStream(input, said, recipients);
    await assert.rejects(readAll(sealed.stream), /ciphertext is/);
  }
});

test("encryptStream refuses mixed, unknown or no recipients before reading", async () => {
  let pulled = false;
  const input = () => new ReadableStream({ pull: () => { pulled = true; } }, { highWaterMark: 0 });
  await assert.rejects(encryptStream(input(), 10, []));
  await assert.rejects(encryptStream(input(), 10, [classic.get("recipient"), pq.get("recipient")]));
  await assert.rejects(encryptStream(input(), 10, ["age1tag1xyz"]));
  assert.equal(pulled, false);
});

// noByteStream is a Blob whose stream() is not a byte stream, as in a
// browser without BYOB readers on Blobs: hashBlob reads slices then.
class NoByteStream extends CountingBlob {
  stream() {
    const s = super.stream();
    return new ReadableStream({
      async pull(c) {
        const r = await s.getReader().read();
        if (r.done) c.close();
        else c.enqueue(r.value);
      },
    });
  }
}

test("hashBlob without a byte stream reads READ_SIZE slices", async () => {
  const b = bytes(SUBTLE_MAX + 2 * READ_SIZE + 3);
  const reads = [];
  assert.equal(await hashBlob(new NoByteStream([b], reads)), createHash("sha256").update(b).digest("hex"));
  assert.equal(reads.length, Math.ceil(b.length / READ_SIZE));
  assert.ok(reads.every(([a, e]) => e - a <= READ_SIZE));
});

test("a file that gives fewer bytes than its size fails, in either pass", async () => {
  class Shrinking extends Blob {
    slice(start, end) {
      return super.slice(start, this.shrunk ? Math.max(start, end - 1) : end);
    }
    stream() {
      return this.shrunk ? new Blob([new Uint8Array(this.size - 1)]).stream() : super.stream();
    }
  }
  for (const n of [1000, SUBTLE_MAX + 10]) {
    const f = new Shrinking([new Uint8Array(n)]);
    f.shrunk = true;
    await assert.rejects(hashBlob(f), /changed or moved after it was chosen/, `pass 1, ${n} bytes`);
    const g = new Shrinking([new Uint8Array(n)]);
    const report = { schema: 1, desk: "d", category: "", language: "", submitted: "", sealed_by: "client", answers: [], attachments: [], reply_recipient: "", mailbox: "" };
    const s = await streamBundle(report, [{ name: "f", type: "", blob: g }]);
    g.shrunk = true; // between the passes
    await assert.rejects(readAll(s.stream()), /changed or moved after it was chosen/, `pass 2, ${n} bytes`);
  }
});
