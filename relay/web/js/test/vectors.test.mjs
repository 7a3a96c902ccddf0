// Checks the browser client against the shared vectors in
// crypto/testdata/vectors (docs/protocol.md §11) and against outputs of the
// Go reference, and round-trips encryption with typage.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Decrypter, identityToRecipient } from "age-encryption";
import {
  padme,
  paddedSize,
  tarSize,
  tarHeader,
  entryName,
  marshalReport,
  writeBundle,
  submittedAt,
  agePayloadSize,
  wellFormed,
} from "../src/bundle.js";
import { encrypt, parseHeader, ciphertextSize, stanzaType } from "../src/seal.js";

const VECTORS = fileURLToPath(new URL("../../../../crypto/testdata/vectors/", import.meta.url));

// parseVector splits a vector file into "key: value" headers (a key may
// repeat) and the body bytes after the first blank line.
function parseVector(name) {
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

const vectors = readdirSync(VECTORS)
  .filter((f) => f.endsWith(".txt"))
  .sort()
  .map(parseVector);
const byKind = (k) => vectors.filter((v) => v.get("kind") === k);
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

test("vectors are there", () => {
  assert.ok(byKind("padding").length >= 1);
  assert.ok(byKind("bundle").filter((v) => v.get("input") !== "").length >= 2);
  assert.ok(byKind("identity").length >= 2);
});

for (const v of byKind("padding")) {
  test(`padding vector ${v.name}`, () => {
    const lines = Buffer.from(v.body).toString("utf8").trim().split("\n");
    assert.ok(lines.length > 10);
    for (const line of lines) {
      const [n, p, s] = line.trim().split(/\s+/).map(Number);
      assert.equal(padme(n), p, `padme(${n})`);
      assert.equal(paddedSize(n), s, `paddedSize(${n})`);
    }
  });
}

for (const v of byKind("bundle").filter((v) => v.get("input") !== "")) {
  test(`bundle vector ${v.name}: writeBundle gives the same bytes`, async () => {
    const input = JSON.parse(v.get("input"));
    const files = input.files.map((f) => ({
      name: f.name,
      type: f.type,
      bytes: new Uint8Array(Buffer.from(f.content_base64, "base64")),
    }));
    const report = input.report;
    const got = await writeBundle(report, files);
    assert.equal(got.length, v.body.length, "length");
    assert.ok(Buffer.from(got).equals(Buffer.from(v.body)), "bytes differ");
    // writeBundle fills the report as Go's WriteBundle does.
    assert.equal(report.schema, 1);
    assert.equal(report.attachments.length, files.length);
    files.forEach((f, i) => {
      assert.equal(report.attachments[i].sha256, sha256(f.bytes));
      assert.equal(report.attachments[i].size, f.bytes.length);
    });
  });
}

test("padme and paddedSize: small values, powers of two, limits", () => {
  assert.equal(padme(0), 0);
  assert.equal(padme(1), 1);
  assert.equal(paddedSize(0), 0);
  assert.equal(paddedSize(1), 512);
  for (let e = 1; e <= 52; e++) {
    assert.equal(padme(2 ** e), 2 ** e, `padme(2^${e})`);
  }
  // 2^49 - 1: E = 48, S = 6, m = 2^42 - 1.
  assert.equal(padme(2 ** 49 - 1), 2 ** 49);
  assert.equal(padme(2 ** 48 + 1), 2 ** 48 + 2 ** 42);
  assert.throws(() => padme(-1));
  assert.throws(() => padme(1.5));
  assert.throws(() => padme(2 ** 53));
});

test("tarSize and agePayloadSize", () => {
  assert.equal(tarSize(0, []), 512 + 1024);
  assert.equal(tarSize(1, [0, 513]), 512 + 512 + 512 + 0 + 512 + 1024 + 1024);
  assert.equal(agePayloadSize(0), 32);
  assert.equal(agePayloadSize(1), 16 + 1 + 16);
  assert.equal(agePayloadSize(65536), 16 + 65536 + 16);
  assert.equal(agePayloadSize(65537), 16 + 65537 + 32);
});

test("tarHeader: fields, checksum, largest size", () => {
  const h = tarHeader("report.json", 2 ** 33 - 1);
  const s = (a, b) => Buffer.from(h.subarray(a, b)).toString("latin1");
  assert.equal(h.length, 512);
  assert.equal(s(0, 12), "report.json\0");
  assert.equal(s(100, 108), "0000600\0");
  assert.equal(s(124, 136), "77777777777\0");
  assert.equal(s(136, 148), "00000000000\0");
  assert.equal(s(156, 157), "0");
  assert.equal(s(257, 265), "ustar\x0000");
  assert.equal(s(329, 345), "0000000\x000000000\0");
  let sum = 0;
  h.forEach((c, i) => (sum += i >= 148 && i < 156 ? 0x20 : c));
  assert.equal(s(148, 156), sum.toString(8).padStart(6, "0") + "\0 ");
  assert.throws(() => tarHeader("x", 2 ** 33));
});

// Generated by running Go's crypto.MarshalReport on each string (made well formed).
const REPORT_CASES = [
  ["every control character", "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f", "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\""],
  ["JSON and HTML specials, DEL, C1, NBSP, BOM", "\"\\/<>&\u007f\u0080\u0085\u009f\u00a0\ufeff", "\"\\\"\\\\/<>&\u007f\u0080\u0085\u009f\u00a0\ufeff\""],
  ["line and paragraph separators", "a\u2028b\u2029c", "\"a\\u2028b\\u2029c\""],
  ["script-like text", "</script><!-- &amp; -->", "\"</script><!-- &amp; -->\""],
  ["Arabic, emoji and a ZWJ sequence", "\u0648\u0635\u0641 \u0645\u0627 \u062d\u062f\u062b \ud83d\ude00 \ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67", "\"\u0648\u0635\u0641 \u0645\u0627 \u062d\u062f\u062b \ud83d\ude00 \ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67\""],
  ["CR LF TAB", "one\u000d\u000atwo\u0009three", "\"one\\r\\ntwo\\tthree\""],
  ["empty", "", "\"\""],
  ["lone high surrogate", "a\ud800b", "\"a\ufffdb\""],
  ["lone low surrogate", "\udc00", "\"\ufffd\""],
  ["reversed pair", "\udc00\ud800", "\"\ufffd\ufffd\""],
  ["two lone high surrogates", "\ud800\ud800", "\"\ufffd\ufffd\""],
  ["high surrogate at the end", "x\ud83d", "\"x\ufffd\""],
  ["pair after a lone high", "\ud800\ud83d\ude00", "\"\ufffd\ud83d\ude00\""],
  ["U+FFFD, U+FFFE, U+FFFF", "\ufffd\ufffe\uffff", "\"\ufffd\ufffe\uffff\""],
  ["zero-width and bidi marks", "\u200b\u200e\u202e\u2066", "\"\u200b\u200e\u202e\u2066\""],
];
// Go's whole output for the separators case, to check the report's shape.
const REPORT_FULL = "{\"schema\":1,\"desk\":\"a\\u2028b\\u2029c\",\"category\":\"a\\u2028b\\u2029c\",\"language\":\"a\\u2028b\\u2029c\",\"submitted\":\"a\\u2028b\\u2029c\",\"sealed_by\":\"a\\u2028b\\u2029c\",\"answers\":[{\"field\":\"a\\u2028b\\u2029c\",\"value\":\"a\\u2028b\\u2029c\"},{\"field\":\"x\",\"value\":\"\"}],\"attachments\":[{\"name\":\"a\\u2028b\\u2029c\",\"size\":8589934591,\"sha256\":\"ab\",\"type\":\"a\\u2028b\\u2029c\"}],\"reply_recipient\":\"a\\u2028b\\u2029c\",\"mailbox\":\"a\\u2028b\\u2029c\"}";

// expectedReport is REPORT_FULL's shape with enc, a JSON string as Go
// encodes it, in every string member.
const expectedReport = (enc) =>
  `{"schema":1,"desk":${enc},"category":${enc},"language":${enc},"submitted":${enc},"sealed_by":${enc},` +
  `"answers":[{"field":${enc},"value":${enc}},{"field":"x","value":""}],` +
  `"attachments":[{"name":${enc},"size":8589934591,"sha256":"ab","type":${enc}}],"reply_recipient":${enc},"mailbox":${enc}}`;

const reportWith = (s) => ({
  schema: 1,
  desk: s,
  category: s,
  language: s,
  submitted: s,
  sealed_by: s,
  answers: [
    { field: s, value: s },
    { field: "x", value: "" },
  ],
  attachments: [{ name: s, size: 2 ** 33 - 1, sha256: "ab", type: s }],
  reply_recipient: s,
  mailbox: s,
});

test("marshalReport: the report's shape is Go's", () => {
  assert.equal(expectedReport(REPORT_CASES[2][2]), REPORT_FULL);
});

for (const [desc, input, enc] of REPORT_CASES) {
  test(`marshalReport escapes like Go: ${desc}`, () => {
    const r = reportWith(input);
    const before = JSON.stringify(r);
    const got = marshalReport(r);
    assert.equal(Buffer.from(got).toString("utf8"), expectedReport(enc));
    assert.ok(Buffer.from(got).equals(Buffer.from(expectedReport(enc), "utf8")));
    assert.equal(JSON.stringify(r), before, "marshalReport must not change its argument");
    // A reader gets back the well-formed strings.
    assert.equal(JSON.parse(Buffer.from(got).toString("utf8")).desk, wellFormed(input));
  });
}

test("marshalReport: Go's zero values for missing members", () => {
  assert.equal(
    Buffer.from(marshalReport({})).toString(),
    '{"schema":0,"desk":"","category":"","language":"","submitted":"","sealed_by":"","answers":[],"attachments":[],"reply_recipient":"","mailbox":""}',
  );
  assert.throws(() => marshalReport({ desk: 5 }), TypeError);
  assert.throws(() => marshalReport({ answers: [{ field: "a", value: "x".repeat(1 << 20) }] }), RangeError);
});

// Generated by running Go's crypto.EntryName(7, name) on each name (made well formed).
const ENTRY_CASES = [
  ["\u0635\u0648\u0631\u0629 1.jpg", "files/007-_1.jpg"],
  ["../../etc/passwd", "files/007-_._.._etc_passwd"],
  [".hidden", "files/007-_hidden"],
  ["a__b", "files/007-a_b"],
  ["", "files/007-file"],
  ["..", "files/007-_."],
  [".", "files/007-file"],
  ["_", "files/007-file"],
  ["__", "files/007-file"],
  ["...", "files/007-_.."],
  ["._x", "files/007-_x"],
  ["C:\\Users\\me\\\u0631\u0633\u0627\u0644\u0629.pdf", "files/007-C_Users_me_.pdf"],
  ["/abs/path/file.txt", "files/007-_abs_path_file.txt"],
  ["a/b/../c", "files/007-a_b_.._c"],
  ["-rf", "files/007--rf"],
  ["report 2026 (final).docx", "files/007-report_2026_final_.docx"],
  ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "files/007-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
  ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9b", "files/007-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_"],
  ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9", "files/007-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
  ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa__z", "files/007-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_"],
  ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9\u00e9\u00e9z", "files/007-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_z"],
  ["\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", "files/007-file"],
  ["\ud800.txt", "files/007-_.txt"],
  ["file\u0000name", "files/007-file_name"],
  ["\ud83d\ude00.png", "files/007-_.png"],
  ["\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48.txt", "files/007-_.txt"],
  ["\u202egnp.exe", "files/007-_gnp.exe"],
  ["a\u0009b\u000ac", "files/007-a_b_c"],
  ["\u0645\u0633\u062a\u0646\u062f.tar.gz", "files/007-_.tar.gz"],
];

test("entryName: the examples of protocol.md §8.5", () => {
  assert.equal(entryName(1, "صورة 1.jpg"), "files/001-_1.jpg");
  assert.equal(entryName(2, "../../etc/passwd"), "files/002-_._.._etc_passwd");
  assert.equal(entryName(3, ".hidden"), "files/003-_hidden");
  assert.equal(entryName(4, "a__b"), "files/004-a_b");
  assert.equal(entryName(5, ""), "files/005-file");
  assert.equal(entryName(100, "x"), "files/100-x");
});

for (const [name, want] of ENTRY_CASES) {
  test(`entryName like Go: ${JSON.stringify(name).slice(0, 40)}`, () => {
    const i = Number(want.slice(6, 9));
    assert.equal(entryName(i, name), want);
    assert.ok(want.length <= 90);
    // The same from the UTF-8 bytes.
    assert.equal(entryName(i, new TextEncoder().encode(name)), want);
  });
}

test("submittedAt rounds down to the hour in UTC", () => {
  assert.equal(submittedAt(new Date("2026-11-25T11:59:59.999Z")), "2026-11-25T11:00:00Z");
  assert.equal(submittedAt(new Date("2026-11-25T13:30:00+02:00")), "2026-11-25T11:00:00Z");
  assert.equal(submittedAt(new Date("0999-01-01T00:00:00Z")), "0999-01-01T00:00:00Z");
});

test("writeBundle: a lone surrogate in a file name", async () => {
  const report = { desk: "d", answers: [] };
  const out = await writeBundle(report, [{ name: "a\uD800.txt", type: "", bytes: new Uint8Array([1, 2, 3]) }]);
  const name = Buffer.from(out.subarray(1024, 1124)).toString("latin1").replace(/\0+$/, "");
  assert.equal(name, "files/001-a_.txt");
  const rep = JSON.parse(Buffer.from(out.subarray(512, 1024)).toString("utf8").replace(/\0+$/, ""));
  assert.equal(rep.attachments[0].name, "a\uFFFD.txt");
  assert.equal(out.length, paddedSize(tarSize(Buffer.from(marshalReport(report)).length, [3])));
});

// --- encryption ---

const classic = parseVector("identity-classic.txt");
const pq = parseVector("identity-pq.txt");

async function decrypt(ct, secret) {
  const d = new Decrypter();
  d.addIdentity(secret);
  return d.decrypt(ct);
}

test("identity vectors: typage derives the same recipients", async () => {
  assert.equal(await identityToRecipient(classic.get("secret")), classic.get("recipient"));
  assert.equal(await identityToRecipient(pq.get("secret")), pq.get("recipient"));
  assert.equal(stanzaType(classic.get("recipient")), "X25519");
  assert.equal(stanzaType(pq.get("recipient")), "mlkem768x25519");
  assert.throws(() => stanzaType("age1tag1qqqq"));
  assert.throws(() => stanzaType("AGE-SECRET-KEY-1TC97H5XWKNUS38AL2YWX47J6RRDT6Q7Y227FERATU45K67EYR2NS7Q5ST4"));
});

for (const v of byKind("sealed")) {
  test(`sealed vector ${v.name}: typage reads what Go wrote`, async () => {
    if (v.get("expect") === "ok") {
      const plain = await decrypt(v.body, v.get("identity"));
      assert.equal(sha256(plain), v.get("plaintext-sha256"));
    } else {
      await assert.rejects(decrypt(v.body, v.get("identity")));
    }
  });
}

async function basicBundle() {
  const v = parseVector("bundle-basic.txt");
  const input = JSON.parse(v.get("input"));
  const files = input.files.map((f) => ({ name: f.name, type: f.type, bytes: new Uint8Array(Buffer.from(f.content_base64, "base64")) }));
  return writeBundle(input.report, files);
}

for (const [label, ids, type, perStanza] of [
  ["classic", [classic], "X25519", 98],
  ["post-quantum", [pq], "mlkem768x25519", 1557],
]) {
  test(`encrypt to the ${label} test recipient and decrypt with typage`, async () => {
    const bundle = await basicBundle();
    const recipients = ids.map((id) => id.get("recipient"));
    let calls = 0;
    const ct = await encrypt(bundle, recipients, { onProgress: () => calls++ });
    assert.ok(calls >= 1);
    const h = parseHeader(ct);
    assert.deepEqual(h.types, recipients.map(() => type));
    const text = Buffer.from(ct.subarray(0, h.length)).toString("latin1");
    assert.equal(text.split("\n").filter((l) => l.startsWith("-> ")).length, recipients.length);
    assert.equal(h.length, 70 + perStanza * recipients.length);
    assert.equal(ct.length, h.length + agePayloadSize(bundle.length));
    assert.equal(ct.length, ciphertextSize(bundle.length, recipients));
    for (const id of ids) {
      const plain = await decrypt(ct, id.get("secret"));
      assert.ok(Buffer.from(plain).equals(Buffer.from(bundle)));
    }
  });
}

test("encrypt to two classic recipients, several chunks", async () => {
  const admin = "AGE-SECRET-KEY-1F44DK6RUGPFMGWUHSHETMRXHV0SQ670XN2SJKAR2ZZQMAYATJQHQH3FF7Q";
  const recipients = [classic.get("recipient"), await identityToRecipient(admin)];
  const bundle = new Uint8Array(paddedSize(3 * 65536 + 1000));
  for (let i = 0; i < bundle.length; i++) {
    bundle[i] = (i * 31) & 0xff;
  }
  const ct = await encrypt(bundle, recipients);
  const h = parseHeader(ct);
  assert.deepEqual(h.types, ["X25519", "X25519"]);
  assert.equal(ct.length, 70 + 2 * 98 + agePayloadSize(bundle.length));
  for (const secret of [classic.get("secret"), admin]) {
    assert.ok(Buffer.from(await decrypt(ct, secret)).equals(Buffer.from(bundle)));
  }
});

test("encrypt refuses mixed, unknown or no recipients", async () => {
  const b = new Uint8Array(2048);
  await assert.rejects(encrypt(b, []));
  await assert.rejects(encrypt(b, [classic.get("recipient"), pq.get("recipient")]));
  await assert.rejects(encrypt(b, ["age1tag1xyz"]));
  await assert.rejects(encrypt(b, ["ssh-ed25519 AAAA"]));
});
