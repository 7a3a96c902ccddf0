// @ts-check
// Follow-ups written and replies opened in the submitter's browser: a
// follow-up is a bundle encrypted to the route followupRecipients (route.js)
// decided; a reply is decrypted with the receipt's reply identities and its
// signature checked against the desk's handler cards.

import { Decrypter } from "age-encryption";
import { writeBundle, readBundle, submittedAt, SEALED_BY_CLIENT, CLIENT_BROWSER } from "./bundle.js";
import { encrypt } from "./seal.js";
import { TooLarge, fileType, sealedSize } from "./size.js";
import { replySigner, replyBelongs } from "./route.js";

/** @typedef {import("./bundle.js").Report} Report */
/** @typedef {import("./bundle.js").ReadAttachment} ReadAttachment */
/** @typedef {import("./receipt.js").Receipt} Receipt */
/** @typedef {import("./reply.js").Card} Card */
/** @typedef {import("./route.js").Target} Target */
/** @typedef {import("./route.js").Desks} Desks */

/**
 * A follow-up's file whose bytes are already read.
 * @typedef {{name: string, type?: string, bytes: Uint8Array<ArrayBuffer>}} GivenFile
 */

/**
 * A reply decrypted and read: its report and attachments, the handler's
 * card when its signature verifies (else null), and whether it is signed for
 * this receipt's mailbox.
 * @typedef {{report: Report, attachments: ReadAttachment[], signer: Card | null, belongs: boolean}} OpenedReply
 */
// MAX_FOLLOWUP bounds a follow-up's ciphertext (relay/api: MaxReply): the
// relay reads it whole.
export const MAX_FOLLOWUP = 16 << 20;

// followupReport is report.json of a follow-up, before writeBundle fills
// schema and attachments.
/**
 * @param {Receipt} receipt
 * @param {Target} target
 * @param {string} language
 * @param {string} text
 * @param {Date} now
 * @param {number} seq
 * @returns {Promise<Report>}
 */
async function followupReport(receipt, target, language, text, now, seq) {
  /** @type {Report} */
  const report = {
    schema: 1,
    desk: target.desk,
    category: target.category,
    language,
    submitted: submittedAt(now),
    sealed_by: SEALED_BY_CLIENT,
    client: CLIENT_BROWSER,
    answers: [{ field: "message", value: text }],
    attachments: [],
    reply_recipient: await receipt.replyRecipient(target.postQuantum),
    mailbox: await receipt.mailboxId(),
  };
  if (seq > 0) {
    report.seq = seq;
  }
  return report;
}

// buildFollowup makes a follow-up: report.json with the receipt's reply
// recipient and mailbox, the bundle, encrypted to target. files are either
// {name, type, bytes} or File objects (read only after the size check).
// seq is its place in the thread: threadSeq (bundle.js) of the verified
// replies the page read; 0 leaves it out. Throws TooLarge past MAX_FOLLOWUP.
/**
 * @param {object} args
 * @param {Receipt} args.receipt
 * @param {Target} args.target
 * @param {string} [args.language]
 * @param {string} args.text
 * @param {Array<GivenFile | File>} [args.files]
 * @param {Date} [args.now]
 * @param {number} [args.seq]
 * @param {(done: number, total: number) => void} [args.onProgress]
 * @returns {Promise<{ciphertext: Uint8Array<ArrayBuffer>, report: Report}>}
 */
export async function buildFollowup({ receipt, target, language = "", text, files = [], now = new Date(), seq = 0, onProgress }) {
  const report = await followupReport(receipt, target, language, text, now, seq);
  // Blob has a bytes() method in recent browsers: only a Uint8Array member
  // counts as given bytes.
  /** @type {(f: GivenFile | File) => f is GivenFile} */
  const given = (f) => f.bytes instanceof Uint8Array;
  const meta = files.map((f) => ({ name: f.name, type: fileType(f), size: given(f) ? f.bytes.length : f.size }));
  if (sealedSize(report, meta, target.recipients) > MAX_FOLLOWUP) {
    throw new TooLarge();
  }
  const parts = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    parts.push({ name: meta[i].name, type: meta[i].type, bytes: given(f) ? f.bytes : new Uint8Array(await f.arrayBuffer()) });
  }
  const bundle = await writeBundle(report, parts);
  parts.length = 0;
  const ciphertext = await encrypt(bundle, target.recipients, { onProgress });
  bundle.fill(0);
  if (ciphertext.length > MAX_FOLLOWUP) {
    throw new TooLarge();
  }
  return { ciphertext, report };
}

// openReply decrypts a reply with the receipt's reply identities, reads its
// bundle and checks its signature against the handler cards the page lists
// for the desk the reply names. It returns {report, attachments, signer,
// belongs}: signer is the handler's card, or null when the signature does
// not verify; belongs says the reply is signed for this receipt's mailbox.
/**
 * @param {Uint8Array} ciphertext
 * @param {string[]} identities
 * @param {Desks} desks
 * @param {string} mailboxId
 * @returns {Promise<OpenedReply>}
 */
export async function openReply(ciphertext, identities, desks, mailboxId) {
  const d = new Decrypter();
  for (const id of identities) {
    d.addIdentity(id);
  }
  // typage's plaintext is a fresh Uint8Array on an ArrayBuffer; its types
  // say only ArrayBufferLike.
  const plain = /** @type {Uint8Array<ArrayBuffer>} */ (await d.decrypt(ciphertext));
  const { report, attachments } = await readBundle(plain);
  const signer = replySigner(report, desks);
  return { report, attachments, signer, belongs: signer !== null && replyBelongs(report, mailboxId) };
}
