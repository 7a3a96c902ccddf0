// The follow-up channel: receipts, the bundle reader and reply signatures
// against the shared vectors (crypto/testdata/vectors: receipt.txt,
// reply-signed.txt, bundle-*.txt), and round trips through typage.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { identityToRecipient } from "age-encryption";
import { writeBundle, readBundle, marshalReport, BundleError, threadSeq, MAX_SEQ } from "../src/lib/bundle.js";
import { encrypt, stanzaType } from "../src/lib/seal.js";
import { Wordlist, ReceiptError, newReceipt, parseReceipt, receiptFromEntropy, mailboxOf } from "../src/lib/receipt.js";
import { verifyReply, parseCard, signReply, signingKey, keyID, ReplySignatureError } from "../src/lib/reply.js";
import { buildFollowup } from "../src/lib/followup.js";
import { followupRecipients, FollowupRefused } from "../src/lib/route.js";
import { formatWhen } from "../src/pages/ui.js";
import { TooLarge } from "../src/lib/size.js";
import { CRYPTO, parseVector, vectorFiles, sha256, decrypt } from "./lib/vectors.mjs";

const WORDS = new Wordlist(readFileSync(join(CRYPTO, "receipt-words.txt"), "utf8"));

const fromHex = (s) => new Uint8Array(Buffer.from(s, "hex"));
const text = (b) => Buffer.from(b).toString("utf8");

// --- receipts ---

const rv = parseVector("receipt.txt");

test("word list: 2048 words, unique four-letter prefixes", () => {
  assert.equal(WORDS.words.length, 2048);
  assert.equal(WORDS.words[0], "abandon");
  assert.equal(WORDS.words[2047], "zoo");
  assert.equal(new Set(WORDS.words.map((w) => w.slice(0, 4))).size, 2048);
  assert.throws(() => new Wordlist("a b c"));
});

test("receipt vector: words, token, mailbox, reply identities", async () => {
  const r = await receiptFromEntropy(fromHex(rv.get("entropy")));
  assert.equal(r.words(WORDS), rv.get("words"));
  assert.equal(r.digits(), rv.get("digits"));
  assert.equal(await r.tokenString(), rv.get("lookup-token"));
  assert.equal(await r.mailboxId(), rv.get("mailbox"));
  assert.equal(await mailboxOf(await r.token()), rv.get("mailbox"));
  assert.equal(await r.replyIdentity(false), rv.get("reply-classic"));
  assert.equal(await r.replyRecipient(false), rv.get("reply-classic-pub"));
  assert.equal(await r.replyIdentity(true), rv.get("reply-pq"));
  assert.equal(await r.replyRecipient(true), rv.get("reply-pq-pub"));
  // The post-quantum recipient is longer than bech32's 90 characters.
  assert.equal(stanzaType(await r.replyRecipient(true)), "mlkem768x25519");
  assert.equal(stanzaType(await r.replyRecipient(false)), "X25519");
});

test("receipt vector: every parse line", async () => {
  const lines = text(rv.body).replace(/\n$/, "").split("\n");
  assert.ok(lines.length >= 25);
  assert.ok(lines.some((l) => /[\u0660-\u0669]/.test(l)) && lines.some((l) => /[\u06f0-\u06f9]/.test(l)), "Arabic-Indic and Persian digits");
  for (const line of lines) {
    const tab = line.indexOf("\t");
    const input = line.slice(0, tab);
    const want = line.slice(tab + 1);
    let got = "invalid";
    try {
      got = (await parseReceipt(input, WORDS)).words(WORDS);
    } catch (err) {
      assert.ok(err instanceof ReceiptError, String(err));
    }
    assert.equal(got, want, `parseReceipt(${JSON.stringify(input)})`);
  }
});

test("parseReceipt: separators, case, prefixes, the Go-specific lower case", async () => {
  const w = rv.get("words").split(" ");
  const ok = async (s) => (await parseReceipt(s, WORDS)).words(WORDS);
  assert.equal(await ok(w.join(",\r\n\t.")), rv.get("words"));
  assert.equal(await ok(w.map((x) => (x.length >= 4 ? x.slice(0, 4) + "xyz" : x)).join(" ")), rv.get("words"), "the first four letters decide");
  assert.equal(await ok(w.map((x) => x.toUpperCase()).join("--")), rv.get("words"));
  // Go lower-cases U+0130 to "i": "İ" stands for "i" as it does there.
  const withI = w.map((x) => x.replace(/i/g, "\u0130"));
  assert.equal(await ok(withI.join(" ")), rv.get("words"));
  await assert.rejects(parseReceipt(w.join(" ") + " zoo", WORDS), ReceiptError);
  await assert.rejects(parseReceipt(w.join("_"), WORDS), ReceiptError);
  await assert.rejects(parseReceipt("", WORDS), ReceiptError);
  await assert.rejects(parseReceipt(w.map((x) => x.slice(0, 3)).join(" "), WORDS), ReceiptError);
});

test("parseReceipt: digits in every script give the words' secret; mistakes say what to check", async () => {
  const d = rv.get("digits");
  const script = (s, zero) => s.replace(/[0-9]/g, (c) => String.fromCodePoint(zero + Number(c)));
  for (let i = 0; i < 50; i++) {
    const r = await newReceipt();
    const digits = r.digits();
    assert.match(digits, /^\d{5}( \d{5}){8}$/);
    for (const input of [digits, script(digits, 0x660), script(digits, 0x6f0), "\u2067" + digits.replace(/ /g, "\n") + "\u2069"]) {
      const p = await parseReceipt(input, WORDS);
      assert.equal(p.words(WORDS), r.words(WORDS), JSON.stringify(input));
      assert.equal(p.digits(), digits);
    }
  }
  const refused = async (input, msg) => {
    await assert.rejects(parseReceipt(input, WORDS), (err) => err instanceof ReceiptError && err.message.includes(msg), `${JSON.stringify(input)}: ${msg}`);
  };
  await refused(d.slice(0, -1), "it has 44 digits, not 45");
  await refused(d + " 0", "it has 46 digits, not 45");
  await refused("2" + d.slice(1), "one of them is mistyped");
  await refused(d.slice(0, -1) + "0", "one of them is mistyped");
  await refused(d + " wool", "mixes letters and digits");
  await refused(d + " #", '"#" is not a digit');
  await refused("99999 ".repeat(9), "some of them are mistyped");
  await refused(d.slice(0, 1) + d.slice(2, 3) + d.slice(1, 2) + d.slice(3), "two next to each other are swapped");
});

test("receipt digits: every wrong digit and every swap of neighbours is refused", async () => {
  for (let i = 0; i < 5; i++) {
    const flat = (await newReceipt()).digits().replace(/ /g, "");
    for (let j = 0; j < flat.length; j++) {
      for (let k = 1; k < 10; k++) {
        const wrong = flat.slice(0, j) + String((Number(flat[j]) + k) % 10) + flat.slice(j + 1);
        await assert.rejects(parseReceipt(wrong, WORDS), ReceiptError, `digit ${j + 1} changed`);
      }
      if (j + 1 < flat.length && flat[j] !== flat[j + 1]) {
        const swapped = flat.slice(0, j) + flat[j + 1] + flat[j] + flat.slice(j + 2);
        await assert.rejects(parseReceipt(swapped, WORDS), ReceiptError, `digits ${j + 1} and ${j + 2} swapped`);
      }
    }
  }
});

test("newReceipt: fresh, 12 words, parses back", async () => {
  const a = await newReceipt();
  const b = await newReceipt();
  assert.notEqual(a.words(WORDS), b.words(WORDS));
  assert.equal(a.words(WORDS).split(" ").length, 12);
  const back = await parseReceipt(a.words(WORDS), WORDS);
  assert.equal(await back.tokenString(), await a.tokenString());
  assert.match(await a.tokenString(), /^[A-Za-z0-9_-]{43}$/);
  assert.match(await a.mailboxId(), /^[0-9a-f]{32}$/);
  assert.equal(JSON.stringify(a), "{}", "the entropy is not a property");
});

// --- the bundle reader ---

for (const v of vectorFiles((f) => f.startsWith("bundle-")).map(parseVector)) {
  test(`readBundle on ${v.name}: ${v.get("expect") || "ok"}`, async () => {
    const want = v.get("expect") || "ok";
    if (want !== "ok") {
      await assert.rejects(readBundle(v.body), (err) => err instanceof BundleError && err.code === want);
      return;
    }
    const { report, attachments } = await readBundle(v.body);
    if (v.get("desk") !== "") {
      assert.equal(report.desk, v.get("desk"));
    }
    if (v.get("attachments") !== "") {
      assert.equal(String(attachments.length), v.get("attachments"));
    }
    if (v.get("input") !== "") {
      const input = JSON.parse(v.get("input"));
      assert.equal(attachments.length, input.files.length);
      input.files.forEach((f, i) => {
        assert.ok(Buffer.from(attachments[i].bytes).equals(Buffer.from(f.content_base64, "base64")));
        assert.equal(attachments[i].name, report.attachments[i].name);
        assert.equal(attachments[i].sha256, sha256(attachments[i].bytes));
        // Computed exactly when report.json gave none (§8.3).
        assert.equal(attachments[i].computed, report.attachments[i].sha256 === undefined);
        assert.equal(attachments[i].computed, Boolean(f.unhashed));
      });
    }
  });
}

test("readBundle: what writeBundle writes, and damage to it", async () => {
  const report = { desk: "d", category: "c", language: "fr", submitted: "2026-01-01T00:00:00Z", sealed_by: "client",
    answers: [{ field: "message", value: "é\n<b>" }], reply_recipient: "", mailbox: "" };
  const files = [
    { name: "a.txt", type: "text/plain", bytes: new Uint8Array([1, 2, 3]) },
    { name: "../b", type: "", bytes: new Uint8Array(600).fill(7) },
  ];
  const plain = await writeBundle(report, files);
  const got = await readBundle(plain);
  assert.equal(text(marshalReport(got.report)), text(marshalReport(report)));
  assert.deepEqual(got.attachments.map((a) => [a.name, a.size, a.type]), [["a.txt", 3, "text/plain"], ["../b", 600, ""]]);
  const damaged = async (mutate, code) => {
    const b = plain.slice();
    mutate(b);
    await assert.rejects(readBundle(b), (err) => err instanceof BundleError && err.code === code, code);
  };
  await damaged((b) => (b[1024 + 512] ^= 1), "digest"); // a byte of a.txt
  await damaged((b) => (b[b.length - 1] = 1), "padding");
  await readBundle(plain.subarray(0, plain.length - 512)).then(
    () => assert.fail("a short bundle was read"),
    (err) => assert.ok(err instanceof BundleError),
  );
});

// --- reply signatures ---

const reply = parseVector("reply-signed.txt");
const classic = parseVector("identity-classic.txt");
const pqID = parseVector("identity-pq.txt");

test("identity vectors: the signing key derived as crypto/identity.go does", async () => {
  assert.equal(keyID(await signingKey(classic.get("secret"))), classic.get("ed25519-public"));
  assert.equal(keyID(await signingKey(pqID.get("secret"))), pqID.get("ed25519-public"));
  const card = parseCard(classic.get("card"));
  assert.equal(card.name, classic.get("name"));
  assert.equal(card.ed25519, classic.get("ed25519-public"));
  assert.equal(card.age, classic.get("recipient"));
  assert.ok(parseCard(pqID.get("card")));
  // A card whose text was altered no longer carries a valid self-signature.
  assert.equal(parseCard(classic.get("card").replace("name=bob", "name=eve")), null);
  assert.equal(parseCard("amana-card/v1 name=x"), null);
});

test("reply vector: canonical, verifies with the signer's card, fails otherwise", async () => {
  assert.equal(reply.get("signer-secret"), classic.get("secret"));
  const body = text(reply.body).replace(/\n$/, "");
  const rep = JSON.parse(body);
  assert.equal(text(marshalReport(rep)), body, "marshalReport keeps from, recipients, signature in Go's order");
  const signer = classic.get("card");
  const other = pqID.get("card");
  assert.equal(verifyReply(rep, [other, signer]).name, classic.get("name"));
  assert.equal(verifyReply(rep, [parseCard(signer)]).ed25519, rep.from);
  assert.throws(() => verifyReply(rep, [other]), ReplySignatureError);
  assert.throws(() => verifyReply(rep, []), ReplySignatureError);
  for (const alter of [
    (r) => (r.answers[0].value += "!"),
    (r) => (r.recipients = [pqID.get("recipient")]),
    (r) => (r.recipients = []),
    (r) => (r.mailbox = "0".repeat(32)),
    (r) => (r.category = ""),
    (r) => (r.attachments = [{ name: "x", size: 1, sha256: "0".repeat(64), type: "" }]),
    (r) => (r.signature = r.signature.slice(0, -2) + (r.signature.endsWith("BA") ? "CA" : "BA")),
    (r) => (r.signature = r.signature + "A"),
    (r) => (r.sealed_by = "client"),
    (r) => (r.from = pqID.get("ed25519-public")),
    (r) => (r.signature = ""),
  ]) {
    const r = JSON.parse(body);
    alter(r);
    assert.throws(() => verifyReply(r, [other, signer]), ReplySignatureError, alter.toString());
  }
});

test("marshalReport: from, recipients, signature only when not empty", () => {
  const base = '{"schema":1,"desk":"","category":"","language":"","submitted":"","sealed_by":"","answers":[],"attachments":[],"reply_recipient":"","mailbox":""';
  assert.equal(text(marshalReport({ schema: 1, from: "", recipients: [], signature: "" })), base + "}");
  assert.equal(text(marshalReport({ schema: 1, recipients: ["a", "b\u2028"] })), base + ',"recipients":["a","b\\u2028"]}');
  assert.equal(text(marshalReport({ schema: 1, signature: "s", from: "f" })), base + ',"from":"f","signature":"s"}');
  assert.throws(() => marshalReport({ recipients: "age1x" }), TypeError);
});

// --- a thread item's place: seq ---

test("reply vector with seq: canonical with seq before from, and the signature covers seq", () => {
  const v = parseVector("reply-signed-seq.txt");
  const body = text(v.body).replace(/\n$/, "");
  const rep = JSON.parse(body);
  assert.equal(rep.seq, 3);
  assert.equal(text(marshalReport(rep)), body);
  assert.match(body, /"mailbox":"[0-9a-f]{32}","seq":3,"from":/);
  assert.equal(verifyReply(rep, [classic.get("card")]).name, classic.get("name"));
  rep.seq = 2;
  assert.throws(() => verifyReply(rep, [classic.get("card")]), ReplySignatureError);
});

test("threadSeq and marshalReport's seq: as crypto.ThreadSeq, and left out when 0", async () => {
  assert.equal(threadSeq([]), 1);
  assert.equal(threadSeq([undefined, 0]), 1);
  assert.equal(threadSeq([3, 1, undefined, 2]), 4);
  assert.equal(threadSeq([MAX_SEQ]), MAX_SEQ);
  const base = '{"schema":1,"desk":"","category":"","language":"","submitted":"","sealed_by":"","answers":[],"attachments":[],"reply_recipient":"","mailbox":""';
  assert.equal(text(marshalReport({ schema: 1, seq: 0 })), base + "}");
  assert.equal(text(marshalReport({ schema: 1, seq: 7, from: "f" })), base + ',"seq":7,"from":"f"}');
  assert.throws(() => marshalReport({ schema: 1, seq: 1.5 }), TypeError);
  for (const [seq, ok] of [[MAX_SEQ, true], [MAX_SEQ + 1, false], [-1, false]]) {
    const plain = await writeBundle({ schema: 1, desk: "d", seq }, []);
    if (ok) {
      assert.equal((await readBundle(plain)).report.seq, seq);
    } else {
      await assert.rejects(readBundle(plain), (err) => err instanceof BundleError && err.code === "invalid");
    }
  }
});

test("buildFollowup writes the seq it is given inside the ciphertext, and none for 0", async () => {
  const rc = await newReceipt();
  const target = { desk: "helpdesk", category: "", recipients: [classic.get("recipient")], postQuantum: false };
  for (const [seq, want] of [[4, 4], [0, undefined]]) {
    const { ciphertext } = await buildFollowup({ receipt: rc, target, text: "x", seq });
    const got = await readBundle(await decrypt(ciphertext, classic.get("secret")));
    assert.equal(got.report.seq, want);
  }
});

// --- round trips ---

test("a follow-up made in JS opens with the desk's identity and carries the receipt", async () => {
  const rc = await newReceipt();
  for (const [id, pq] of [
    [classic, false],
    [pqID, true],
  ]) {
    const desks = { helpdesk: { handlers: [id.get("card")], routes: { sea: [id.get("recipient")] } } };
    const target = followupRecipients({ chosen: { desk: "helpdesk", category: "sea" }, mailboxId: await rc.mailboxId(), desks });
    assert.deepEqual(target, { desk: "helpdesk", category: "sea", recipients: [id.get("recipient")], postQuantum: pq });
    const { ciphertext, report } = await buildFollowup({
      receipt: rc,
      target,
      language: "ar",
      text: "مزيد من المعلومات",
      files: [{ name: "photo.jpg", type: "image/jpeg", bytes: new Uint8Array([0xff, 0xd8, 0xff]) }],
      now: new Date("2026-11-25T13:45:00Z"),
    });
    assert.equal(report.sealed_by, "client");
    const plain = await decrypt(ciphertext, id.get("secret"));
    const got = await readBundle(plain);
    assert.equal(got.report.desk, "helpdesk");
    assert.equal(got.report.category, "sea");
    assert.equal(got.report.language, "ar");
    assert.equal(got.report.submitted, "2026-11-25T13:00:00Z");
    assert.equal(got.report.sealed_by, "client");
    assert.deepEqual(got.report.answers, [{ field: "message", value: "مزيد من المعلومات" }]);
    assert.equal(got.report.mailbox, await rc.mailboxId());
    assert.equal(got.report.reply_recipient, await rc.replyRecipient(pq));
    assert.equal(stanzaType(got.report.reply_recipient), pq ? "mlkem768x25519" : "X25519");
    assert.equal(got.report.from, undefined);
    assert.equal(got.attachments[0].name, "photo.jpg");
    assert.deepEqual([...got.attachments[0].bytes], [0xff, 0xd8, 0xff]);
  }
});

test("a signed reply made in JS: the submitter opens and verifies it; the follow-up goes to its recipients", async () => {
  const rc = await newReceipt();
  const handlerSeed = await signingKey(classic.get("secret"));
  const rep = {
    desk: "helpdesk",
    category: "sea",
    language: "en",
    submitted: "2026-11-25T12:00:00Z",
    answers: [{ field: "message", value: "We got your report. Are you safe?" }],
    reply_recipient: "",
    mailbox: await rc.mailboxId(),
    recipients: [classic.get("recipient")],
  };
  const files = [{ name: "form.pdf", type: "application/pdf", bytes: new Uint8Array([37, 80, 68, 70]) }];
  // Sign over the attachments writeBundle will list.
  rep.attachments = files.map((f) => ({ name: f.name, size: f.bytes.length, sha256: sha256(f.bytes), type: f.type }));
  signReply(rep, handlerSeed);
  const plain = await writeBundle(rep, files);
  const ct = await encrypt(plain, [classic.get("recipient"), await rc.replyRecipient(false)]);

  // The submitter's side, as the check page does it.
  const opened = await readBundle(await decrypt(ct, await rc.replyIdentity(false)));
  const card = verifyReply(opened.report, [pqID.get("card"), classic.get("card")]);
  assert.equal(card.name, "bob");
  assert.equal(opened.attachments[0].name, "form.pdf");
  const target = followupRecipients({
    chosen: { desk: "other", category: "x" },
    reply: opened.report,
    mailboxId: await rc.mailboxId(),
    desks: { helpdesk: { handlers: [pqID.get("card"), classic.get("card")], routes: {} } },
  });
  assert.deepEqual(target, { desk: "helpdesk", category: "sea", recipients: [classic.get("recipient")], postQuantum: false });

  // Tampering inside the encryption is caught by the signature.
  const forged = Object.assign({}, opened.report, { answers: [{ field: "message", value: "Send us your address." }] });
  assert.throws(() => verifyReply(forged, [classic.get("card")]), ReplySignatureError);
  // The same reply signed by a key that is not the desk's.
  const eve = Object.assign({}, rep);
  signReply(eve, await signingKey("AGE-SECRET-KEY-1F44DK6RUGPFMGWUHSHETMRXHV0SQ670XN2SJKAR2ZZQMAYATJQHQH3FF7Q"));
  assert.throws(() => verifyReply(eve, [classic.get("card"), pqID.get("card")]), ReplySignatureError);
});

test("buildFollowup reads File objects, even where Blob has a bytes() method", async () => {
  const rc = await newReceipt();
  const target = followupRecipients({
    chosen: { desk: "classic", category: "" },
    desks: { classic: { handlers: [classic.get("card")], routes: { "": [classic.get("recipient")] } } },
  });
  const file = new File([new Uint8Array([1, 2, 3, 4])], "a b.bin", { type: "" });
  // Recent browsers give Blob a bytes() method: it must not be taken for the bytes.
  file.bytes = async () => new Uint8Array(await file.arrayBuffer());
  const { ciphertext } = await buildFollowup({ receipt: rc, target, language: "en", text: "x", files: [file] });
  const got = await readBundle(await decrypt(ciphertext, classic.get("secret")));
  assert.deepEqual(got.report.attachments.map((a) => [a.name, a.size, a.type]), [["a b.bin", 4, "application/octet-stream"]]);
  assert.deepEqual([...got.attachments[0].bytes], [1, 2, 3, 4]);
  // Past 16 MiB nothing is read or encrypted.
  const big = { name: "big", type: "", size: 16 << 20, arrayBuffer: () => assert.fail("read a file that is too large") };
  await assert.rejects(buildFollowup({ receipt: rc, target, text: "x", files: [big] }), TooLarge);
});

test("followupRecipients refuses what cannot be encrypted", async () => {
  const refused = (code) => (err) => err instanceof FollowupRefused && err.code === code;
  const handlers = [classic.get("card"), pqID.get("card")];
  assert.throws(() => followupRecipients({ chosen: { desk: "d", category: "nope" }, desks: { d: { handlers, routes: { "": [classic.get("recipient")] } } } }), refused("no_route"));
  // Post-quantum and classic keys cannot be mixed in one age file.
  const mixed = { d: { handlers, routes: { "": [classic.get("recipient"), pqID.get("recipient")] } } };
  assert.throws(() => followupRecipients({ chosen: { desk: "d", category: "" }, desks: mixed }), refused("no_route"));
  assert.equal(await identityToRecipient(classic.get("secret")), classic.get("recipient"));
});

test("formatWhen: as the no-JavaScript page shows times", () => {
  assert.equal(formatWhen("2026-11-25T13:00:00Z"), "2026-11-25 13:00 UTC");
  assert.equal(formatWhen("2026-11-25T14:59:00+02:00"), "2026-11-25 12:00 UTC");
  assert.equal(formatWhen("soon"), "soon");
});
