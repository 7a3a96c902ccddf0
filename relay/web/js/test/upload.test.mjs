// upload.js against a fake relay behind a fake fetch: no network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { upload, RelayError, retryable } from "../src/lib/upload.js";

const MiB = 1 << 20;

function bytes(n, seed = 1) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    b[i] = (i * 131 + seed) & 0xff;
  }
  return b;
}

const hex = (b) => createHash("sha256").update(b).digest("hex");

// fakeRelay implements §10.4's upload routes in memory. hooks.patch(call, req)
// may return "drop" (the connection breaks before an answer; keep says how
// many bytes of the piece were stored first), a [status, body] answer, or
// undefined for the normal behaviour.
function fakeRelay({ maxPiece = 64 * MiB, hooks = {} } = {}) {
  const r = {
    calls: [],
    length: 0,
    stored: new Uint8Array(0),
    offset: 0,
    token: "tok_-123",
    completed: false,
  };
  const json = (status, body) =>
    new Response(JSON.stringify(body) + "\n", { status, headers: { "Content-Type": "application/json" } });
  const err = (status, code, message, hint, extra = {}) => json(status, { error: { code, message, hint, ...extra } });
  let patches = 0;
  r.fetch = async (url, init = {}) => {
    const method = init.method || "GET";
    const headers = init.headers || {};
    r.calls.push({ method, url, headers, body: init.body });
    assert.ok(!(init.body instanceof ReadableStream), "never a stream body");
    if (method === "POST" && url === "/api/v1/desks/help%20desk/uploads") {
      const req = JSON.parse(init.body);
      assert.deepEqual(Object.keys(req).sort(), ["category", "length"]);
      r.length = req.length;
      r.category = req.category;
      r.stored = new Uint8Array(req.length);
      return json(201, { upload: r.token, offset: 0, length: req.length, max_piece: maxPiece });
    }
    if (url === `/api/v1/uploads/${r.token}` && method === "GET") {
      if (hooks.get) {
        const a = hooks.get(r);
        if (a === "drop") {
          throw new TypeError("NetworkError when attempting to fetch resource.");
        }
      }
      return json(200, { offset: r.offset, length: r.length, max_piece: maxPiece });
    }
    if (url === `/api/v1/uploads/${r.token}` && method === "PATCH") {
      const call = patches++;
      const off = headers["Upload-Offset"];
      assert.match(off, /^(0|[1-9][0-9]*)$/);
      assert.equal(headers["Content-Type"], "application/octet-stream");
      assert.ok(init.body instanceof Uint8Array);
      if (init.body.length > maxPiece) {
        return err(413, "piece_too_large", "Piece too large.");
      }
      if (Number(off) !== r.offset) {
        return err(409, "offset_mismatch", "Upload-Offset is not the upload's offset.", "", { offset: r.offset });
      }
      const h = hooks.patch && hooks.patch(call, r, init.body);
      if (h && h.drop) {
        const keep = h.keep || 0;
        r.stored.set(init.body.subarray(0, keep), r.offset);
        r.offset += keep;
        throw new TypeError("NetworkError when attempting to fetch resource.");
      }
      if (Array.isArray(h)) {
        return json(h[0], h[1]);
      }
      if (r.offset + init.body.length > r.length) {
        return err(400, "too_long", "Too long.");
      }
      r.stored.set(init.body, r.offset);
      r.offset += init.body.length;
      if (h && h.lose) {
        throw new TypeError("connection lost after the relay stored the piece");
      }
      return json(200, { offset: r.offset, length: r.length, max_piece: maxPiece });
    }
    if (url === `/api/v1/uploads/${r.token}/complete` && method === "POST") {
      if (hooks.complete) {
        const a = hooks.complete(r);
        if (a === "drop") {
          r.completed = true;
          throw new TypeError("connection lost");
        }
        if (a) {
          return json(a[0], a[1]);
        }
      }
      if (r.offset !== r.length) {
        return err(409, "incomplete", "Incomplete.");
      }
      r.completed = true;
      return json(201, {
        id: "0123456789abcdef0123456789abcdef",
        desk: "help desk",
        size: r.length,
        sha256: hex(r.stored),
        received: "2026-11-25T11:00:00Z",
      });
    }
    return err(404, "not_found", "No such route.");
  };
  return r;
}

function run(ct, relay, extra = {}) {
  const waits = [];
  const progress = [];
  const retries = [];
  const p = upload(ct, {
    api: "/api/v1/",
    desk: "help desk",
    category: "sea",
    fetch: relay.fetch,
    sleep: async (ms) => waits.push(ms),
    onProgress: (n, total) => progress.push([n, total]),
    onRetry: (attempt, ms, err) => retries.push([attempt, ms, err.code]),
    ...extra,
  });
  return { p, waits, progress, retries };
}

const patches = (relay) => relay.calls.filter((c) => c.method === "PATCH");

test("pieces of 1 MiB, offsets, progress, receipt", async () => {
  const ct = bytes(2 * MiB + 12345);
  const relay = fakeRelay();
  const { p, progress, waits } = run(ct, relay);
  const receipt = await p;
  assert.equal(receipt.size, ct.length);
  assert.equal(receipt.sha256, hex(ct));
  assert.equal(relay.category, "sea");
  assert.equal(relay.length, ct.length);
  assert.ok(relay.completed);
  assert.ok(Buffer.from(relay.stored).equals(Buffer.from(ct)));
  const ps = patches(relay);
  assert.deepEqual(
    ps.map((c) => [c.headers["Upload-Offset"], c.body.length]),
    [
      ["0", MiB],
      [String(MiB), MiB],
      [String(2 * MiB), 12345],
    ],
  );
  assert.deepEqual(progress, [
    [0, ct.length],
    [MiB, ct.length],
    [2 * MiB, ct.length],
    [ct.length, ct.length],
  ]);
  assert.deepEqual(waits, []);
  assert.deepEqual(
    relay.calls.map((c) => c.method),
    ["POST", "PATCH", "PATCH", "PATCH", "POST"],
  );
});

test("pieces no larger than the relay's max_piece", async () => {
  const ct = bytes(1000000);
  const relay = fakeRelay({ maxPiece: 300000 });
  await run(ct, relay).p;
  assert.deepEqual(
    patches(relay).map((c) => c.body.length),
    [300000, 300000, 300000, 100000],
  );
});

test("a dropped piece resumes from the relay's offset without restarting", async () => {
  const ct = bytes(3 * MiB);
  const relay = fakeRelay({
    hooks: { patch: (call) => (call === 1 ? { drop: true, keep: 500000 } : undefined) },
  });
  const { p, waits, progress, retries } = run(ct, relay);
  const receipt = await p;
  assert.equal(receipt.sha256, hex(ct));
  assert.ok(Buffer.from(relay.stored).equals(Buffer.from(ct)));
  assert.deepEqual(
    relay.calls.map((c) => [c.method, c.headers && c.headers["Upload-Offset"]]),
    [
      ["POST", undefined],
      ["PATCH", "0"],
      ["PATCH", String(MiB)], // broken after 500000 bytes were stored
      ["GET", undefined],
      ["PATCH", String(MiB + 500000)], // from the relay's offset, a full piece
      ["PATCH", String(2 * MiB + 500000)],
      ["POST", undefined],
    ],
  );
  assert.equal(patches(relay)[2].body.length, MiB);
  assert.deepEqual(waits, [1000]);
  assert.deepEqual(retries, [[1, 1000, "network"]]);
  assert.deepEqual(progress[2], [MiB + 500000, ct.length]);
  assert.deepEqual(progress.at(-1), [ct.length, ct.length]);
  assert.equal(relay.calls.filter((c) => c.url.endsWith("/uploads") && c.method === "POST").length, 1);
});

test("a lost answer to a stored piece: the offset says it arrived", async () => {
  const ct = bytes(2 * MiB);
  const relay = fakeRelay({ hooks: { patch: (call) => (call === 0 ? { lose: true } : undefined) } });
  const { p, waits } = run(ct, relay);
  await p;
  assert.deepEqual(
    patches(relay).map((c) => c.headers["Upload-Offset"]),
    ["0", String(MiB)],
  );
  assert.deepEqual(waits, [1000]);
});

test("409 offset_mismatch, 5xx and timeouts are retried after asking for the offset", async () => {
  const ct = bytes(MiB + 10);
  const answers = {
    0: [503, { error: { code: "unavailable", message: "Busy." } }],
    1: [409, { error: { code: "offset_mismatch", message: "Mismatch.", offset: 0 } }],
    2: [408, { error: { code: "timeout", message: "No progress." } }],
  };
  const relay = fakeRelay({ hooks: { patch: (call) => answers[call] } });
  const { p, waits, retries } = run(ct, relay);
  await p;
  assert.deepEqual(waits, [1000, 2000, 4000]);
  assert.deepEqual(
    retries.map((r) => r[2]),
    ["unavailable", "offset_mismatch", "timeout"],
  );
  assert.equal(relay.calls.filter((c) => c.method === "GET").length, 3);
});

test("the retry count resets after each confirmed piece", async () => {
  const ct = bytes(3 * MiB);
  // Each piece fails 5 times before it goes through: 15 failures in all,
  // more than 8, but never more than 8 for one piece.
  let fails = 0;
  const relay = fakeRelay({
    hooks: {
      patch: () => {
        if (fails < 5) {
          fails++;
          return [502, null];
        }
        fails = 0;
        return undefined;
      },
    },
  });
  const { p, waits } = run(ct, relay);
  await p;
  const w = [1000, 2000, 4000, 8000, 16000];
  assert.deepEqual(waits, [...w, ...w, ...w]);
});

test("gives up after 8 retries of one piece", async () => {
  const ct = bytes(100);
  const relay = fakeRelay({ hooks: { patch: () => [503, { error: { code: "x", message: "Down.", hint: "Try later." } }] } });
  const { p, waits } = run(ct, relay);
  await assert.rejects(p, (e) => e instanceof RelayError && e.status === 503 && e.hint === "Try later.");
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(patches(relay).length, 9);
});

test("any other 4xx stops at once with the relay's message and hint", async () => {
  const ct = bytes(2 * MiB);
  const relay = fakeRelay({
    hooks: {
      patch: () => [
        400,
        {
          error: {
            code: "wrong_recipients",
            message: "The age header's recipients are not this category's.",
            hint: "Reload the desk's page and send again.",
          },
        },
      ],
    },
  });
  const { p, waits } = run(ct, relay);
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof RelayError);
    assert.equal(e.status, 400);
    assert.equal(e.code, "wrong_recipients");
    assert.equal(e.relayMessage, "The age header's recipients are not this category's.");
    assert.equal(e.hint, "Reload the desk's page and send again.");
    assert.match(e.message, /wrong_recipients/);
    return true;
  });
  assert.deepEqual(waits, []);
  assert.equal(patches(relay).length, 1);
  assert.equal(relay.calls.filter((c) => c.method === "GET").length, 0);
  assert.ok(!relay.completed);
});

test("507 storage_full is not retried", async () => {
  const relay = fakeRelay({ hooks: { patch: () => [507, { error: { code: "storage_full", message: "Full." } }] } });
  const { p, waits } = run(bytes(10), relay);
  await assert.rejects(p, (e) => e.code === "storage_full");
  assert.deepEqual(waits, []);
});

test("creation refused: no piece is sent", async () => {
  const relay = fakeRelay();
  const fetch = async (url, init) => {
    if (url.endsWith("/uploads")) {
      return new Response(JSON.stringify({ error: { code: "too_large", message: "Too large.", hint: "Send fewer files." } }), { status: 413 });
    }
    return relay.fetch(url, init);
  };
  const { p } = run(bytes(10), relay, { fetch });
  await assert.rejects(p, (e) => e.code === "too_large" && e.hint === "Send fewer files.");
  assert.equal(relay.calls.length, 0);
});

test("creation is asked again after a broken answer or 503, not after a 4xx", async () => {
  for (const [first, retried] of [
    ["drop", true],
    [503, true],
    [400, false],
  ]) {
    const relay = fakeRelay();
    let n = 0;
    const fetch = async (url, init) => {
      if (url.endsWith("/uploads") && n++ === 0) {
        if (first === "drop") {
          await relay.fetch(url, init); // the relay made it; the answer is lost
          throw new TypeError("NetworkError when attempting to fetch resource.");
        }
        return new Response(JSON.stringify({ error: { code: "x", message: "No." } }), { status: first });
      }
      return relay.fetch(url, init);
    };
    const ct = bytes(5000);
    const { p, waits } = run(ct, relay, { fetch });
    if (retried) {
      assert.equal((await p).sha256, hex(ct), `after ${first}`);
      assert.deepEqual(waits, [1000], `after ${first}`);
    } else {
      await assert.rejects(p, (e) => e.status === first);
      assert.deepEqual(waits, []);
    }
  }
});

test("a GET that reports an offset before what was confirmed stops the upload", async () => {
  const ct = bytes(2 * MiB);
  const relay = fakeRelay({
    hooks: {
      patch: (call, r) => {
        if (call === 1) {
          r.offset = 10; // the relay lost confirmed bytes
          return { drop: true };
        }
        return undefined;
      },
    },
  });
  await assert.rejects(run(ct, relay).p, /offset 10/);
});

test("complete is asked again after a broken answer", async () => {
  let n = 0;
  const relay = fakeRelay({ hooks: { complete: () => (n++ === 0 ? "drop" : undefined) } });
  const ct = bytes(5000);
  const { p, waits } = run(ct, relay);
  const receipt = await p;
  assert.equal(receipt.sha256, hex(ct));
  assert.deepEqual(waits, [1000]);
});

test("a receipt that does not match what was sent is refused", async () => {
  const relay = fakeRelay({
    hooks: {
      complete: (r) => [201, { id: "x", desk: "help desk", size: r.length, sha256: "00".repeat(32), received: "2026-11-25T11:00:00Z" }],
    },
  });
  await assert.rejects(run(bytes(5000), relay).p, /receipt does not match/);
});

test("retryable", () => {
  assert.ok(retryable(new RelayError(0, null, new Error("x"))));
  assert.ok(retryable(new RelayError(409, { error: { code: "offset_mismatch" } })));
  assert.ok(retryable(new RelayError(500, null)));
  assert.ok(!retryable(new RelayError(507, { error: { code: "storage_full" } })));
  assert.ok(!retryable(new RelayError(404, { error: { code: "not_found" } })));
  assert.ok(!retryable(new RelayError(409, { error: { code: "incomplete" } })));
  assert.ok(!retryable(new Error("x")));
});

// --- a ciphertext read from a stream as the pieces go out ---

// asStream hands ct out as {size, stream} in chunks of chunk bytes and
// records in log how far it was read and whether it was cancelled. extra
// bytes are appended beyond size; fail (an offset) makes the stream error
// there.
function asStream(ct, { chunk = 64 * 1024, size = ct.length, fail = -1 } = {}) {
  const log = { pulled: 0, cancelled: null };
  const stream = new ReadableStream(
    {
      pull(c) {
        if (fail >= 0 && log.pulled >= fail) {
          c.error(new Error("the file could not be read"));
          return;
        }
        if (log.pulled >= ct.length) {
          c.close();
          return;
        }
        const end = Math.min(log.pulled + chunk, ct.length);
        c.enqueue(ct.slice(log.pulled, end));
        log.pulled = end;
      },
      cancel(reason) {
        log.cancelled = reason;
      },
    },
    { highWaterMark: 0 },
  );
  return { src: { size, stream }, log };
}

test("a stream: pieces read as they go out, never more than a piece ahead of the relay", async () => {
  const ct = bytes(5 * MiB + 777);
  const { src, log } = asStream(ct, { chunk: 100000 });
  const relay = fakeRelay();
  const ahead = [];
  const f = relay.fetch;
  relay.fetch = async (url, init = {}) => {
    if (init.method === "PATCH") {
      ahead.push(log.pulled - relay.offset);
    }
    return f(url, init);
  };
  const { p, progress } = run(src, relay);
  const receipt = await p;
  assert.equal(receipt.sha256, hex(ct));
  assert.ok(Buffer.from(relay.stored).equals(Buffer.from(ct)));
  assert.equal(patches(relay).length, 6);
  assert.ok(patches(relay).every((c) => c.body.length <= MiB));
  for (const a of ahead) {
    assert.ok(a <= MiB + 100000, `read ${a} bytes ahead of the relay`);
  }
  assert.deepEqual(progress.at(-1), [ct.length, ct.length]);
  assert.equal(log.cancelled, null);
});

test("a stream: a dropped piece resumes from the relay's offset, from the bytes held", async () => {
  const ct = bytes(3 * MiB + 5);
  const { src } = asStream(ct, { chunk: 70000 });
  const relay = fakeRelay({
    hooks: { patch: (call) => (call === 1 ? { drop: true, keep: 500000 } : call === 3 ? { lose: true } : undefined) },
  });
  const { p, retries } = run(src, relay);
  const receipt = await p;
  assert.equal(receipt.sha256, hex(ct));
  assert.ok(Buffer.from(relay.stored).equals(Buffer.from(ct)));
  assert.deepEqual(
    patches(relay).map((c) => c.headers["Upload-Offset"]),
    // broken after 500000 bytes of the second piece; the fourth stored
    // but its answer lost
    ["0", String(MiB), String(MiB + 500000), String(2 * MiB + 500000)],
  );
  assert.deepEqual(
    retries.map((r) => r[2]),
    ["network", "network"],
  );
});

test("a stream shorter or longer than its size is never completed", async () => {
  for (const [ct, size, want, cancelled] of [
    [bytes(2 * MiB), 2 * MiB + 10, /ended after 2097152 bytes/, false], // ended: nothing to cancel
    [bytes(2 * MiB + 10), 2 * MiB, /longer than the 2097152 bytes/, true],
  ]) {
    const { src, log } = asStream(ct, { size });
    const relay = fakeRelay();
    await assert.rejects(run(src, relay).p, want);
    assert.equal(relay.completed, false);
    assert.equal(relay.calls.filter((c) => c.url.endsWith("/complete")).length, 0);
    assert.equal(Boolean(log.cancelled), cancelled, "the stream is cancelled");
  }
});

test("a stream that fails (a file unreadable) stops the upload, not retried", async () => {
  const ct = bytes(3 * MiB);
  const { src } = asStream(ct, { fail: MiB + 65536 });
  const relay = fakeRelay();
  const { p, retries } = run(src, relay);
  await assert.rejects(p, /could not be read/);
  assert.equal(relay.completed, false);
  assert.deepEqual(retries, []);
  assert.equal(patches(relay).length, 1);
});

test("a stream: a relay offset before the bytes held stops the upload", async () => {
  const ct = bytes(3 * MiB);
  const { src, log } = asStream(ct);
  const relay = fakeRelay({
    hooks: {
      patch: (call, r) => {
        if (call === 1) {
          r.offset = 1000; // the relay forgets what it confirmed
          return { drop: true };
        }
        return undefined;
      },
    },
  });
  await assert.rejects(run(src, relay).p, /outside what was sent/);
  assert.equal(relay.completed, false);
  assert.ok(log.cancelled);
});
