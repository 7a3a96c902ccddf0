// @ts-check
// Replies from the desk (crypto/reply.go): a handler signs report.json, with
// an empty signature, after the line "amana-reply/v1", with the Ed25519 key
// derived from their age identity; the submitter's page checks the
// signature against the desk's handler cards.

import { ed25519 } from "@noble/curves/ed25519.js";
import { base64urlnopad } from "@scure/base";
import { marshalReport, SEALED_BY_HANDLER, BUNDLE_SCHEMA } from "./bundle.js";
import { hkdf } from "./receipt.js";

export const REPLY_DOMAIN = "amana-reply/v1";
export const CARD_PREFIX = "amana-card/v1";
export const LABEL_SIGNING_KEY = "amana/v1 ed25519 signing key";
const MAX_CARD_LEN = 4096;
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/**
 * A handler card, its self-signature checked: the handler's name, age
 * recipient, Ed25519 key ID (base64url) and key.
 * @typedef {{name: string, age: string, ed25519: string, key: Uint8Array}} Card
 */

/** @typedef {import("./bundle.js").Report} Report */
const utf8 = new TextEncoder();

// ReplySignatureError: a reply's signature is missing, malformed, not by a
// handler of the desk, or does not verify.
export class ReplySignatureError extends Error {
    /** @param {string} message */
  constructor(message) {
    super(`reply signature does not verify${message ? ": " + message : ""}`);
    this.name = "ReplySignatureError";
  }
}

// b64 decodes strict base64url without padding, as Go's
// base64.RawURLEncoding.Strict(), or returns null.
/** @param {string} s */
function b64(s) {
  try {
    return base64urlnopad.decode(s);
  } catch {
    return null;
  }
}

// parseCard reads a handler card line ("amana-card/v1 name=… age=…
// ed25519=KEY onion-auth=… sig=…") and checks its self-signature, as
// crypto.ParseCard does for what a reply needs. It returns {name, age,
// ed25519 (the key ID: base64url), key (the 32 bytes)} or null.
/** @param {unknown} line @returns {Card | null} */
export function parseCard(line) {
  if (typeof line !== "string") {
    return null;
  }
  const s = line.trim();
  if (s.length > MAX_CARD_LEN) {
    return null;
  }
  const f = s.split(" ");
  const keys = ["name", "age", "ed25519", "onion-auth", "sig"];
  if (f.length !== keys.length + 1 || f[0] !== CARD_PREFIX) {
    return null;
  }
  /** @type {Record<string, string>} */
  const v = {};
  for (let i = 0; i < keys.length; i++) {
    if (!f[i + 1].startsWith(keys[i] + "=")) {
      return null;
    }
    v[keys[i]] = f[i + 1].slice(keys[i].length + 1);
  }
  if (!NAME_RE.test(v.name) || !v.age.startsWith("age1")) {
    return null;
  }
  const key = b64(v.ed25519);
  const sig = b64(v.sig);
  if (!key || key.length !== 32 || !sig || sig.length !== 64) {
    return null;
  }
  const signed = s.slice(0, s.lastIndexOf(" sig="));
  try {
    if (!ed25519.verify(sig, utf8.encode(signed), key, { zip215: false })) {
      return null;
    }
  } catch {
    return null;
  }
  return { name: v.name, age: v.age, ed25519: v.ed25519, key };
}

// replySigned is the text a reply's signature covers.
/** @param {Report} report */
function replySigned(report) {
  const body = marshalReport(Object.assign({}, report, { signature: "" }));
  const head = utf8.encode(REPLY_DOMAIN + "\n");
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

// verifyReply checks that a reply was signed by one of the handlers in cards
// (card lines, or cards from parseCard) and returns that handler's card, as
// crypto.VerifyReply does. Throws ReplySignatureError.
/**
 * @param {Report | null | undefined} report
 * @param {Array<string | Card> | null | undefined} cards
 * @returns {Card}
 */
export function verifyReply(report, cards) {
  if (!report || report.sealed_by !== SEALED_BY_HANDLER || !report.from || !report.signature) {
    throw new ReplySignatureError("not a signed reply");
  }
  const sig = typeof report.signature === "string" ? b64(report.signature) : null;
  if (!sig || sig.length !== 64) {
    throw new ReplySignatureError("malformed signature");
  }
  let signer = null;
  for (const c of cards || []) {
    const card = typeof c === "string" ? parseCard(c) : c;
    if (card && card.ed25519 === report.from) {
      signer = card; // the last match, as Go's loop
    }
  }
  if (!signer) {
    throw new ReplySignatureError("signed by a key that is not a handler of the desk");
  }
  let ok = false;
  try {
    ok = ed25519.verify(sig, replySigned(report), signer.key, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new ReplySignatureError("");
  }
  return signer;
}

// signingKey derives a handler's Ed25519 seed from their age identity
// string, as crypto/identity.go does: HKDF-SHA256, IKM the identity, empty
// salt, info "amana/v1 ed25519 signing key", 32 bytes.
/** @param {string} identity @returns {Promise<Uint8Array<ArrayBuffer>>} */
export async function signingKey(identity) {
  return hkdf(utf8.encode(identity), LABEL_SIGNING_KEY);
}

// keyID is the key ID of a signing seed: the base64url Ed25519 public key.
/** @param {Uint8Array} seed @returns {string} */
export function keyID(seed) {
  return base64urlnopad.encode(ed25519.getPublicKey(seed));
}

// signReply marks report as a reply by the handler whose signing seed is
// given and signs it (crypto.SignReply). Fill report.attachments first
// (writeBundle would refill them from the files, identically).
/**
 * @param {Report} report
 * @param {Uint8Array} seed
 * @returns {Report}
 */
export function signReply(report, seed) {
  report.schema = BUNDLE_SCHEMA;
  report.sealed_by = SEALED_BY_HANDLER;
  report.from = keyID(seed);
  report.signature = "";
  report.signature = base64urlnopad.encode(ed25519.sign(replySigned(report), seed));
  return report;
}
