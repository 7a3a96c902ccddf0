// @ts-check
// The submitter's receipt (docs/protocol.md, "Receipts"), exactly as
// crypto/receipt.go: 16 random bytes and a 4-bit SHA-256 checksum, spelled as
// 12 words of BIP-39's English list, 11 bits a word; or the same 16 bytes as
// 45 digits: a 39-digit number, 5 digits from SHA-256 and a Damm check digit. From the 16 bytes HKDF
// derives the mailbox lookup token and the seed of the age identity that
// opens the desk's replies.
//
// The receipt is the submitter's only key to the conversation: its words are
// shown to them and never leave the page; only the derived token is sent.

import { bech32, base64urlnopad } from "@scure/base";
import { identityToRecipient } from "age-encryption";
import { hex } from "./bundle.js";

export const RECEIPT_WORDS = 12;
export const RECEIPT_DIGITS = 45;
const VALUE_DIGITS = 39;
const HASH_DIGITS = 5;
const DIGIT_GROUP = 5;

// DAMM is H. Michael Damm's totally anti-symmetric quasigroup of order 10
// (crypto/receipt.go's dammTable): one check digit catches every single
// wrong digit and every swap of two different neighbouring digits.
const DAMM = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

// damm is the Damm check digit of the ASCII digits d; 0 for digits that end
// in their own check digit.
/** @param {string} d */
function damm(d) {
  let i = 0;
  for (const c of d) {
    i = DAMM[i][c.charCodeAt(0) - 0x30];
  }
  return i;
}
export const LABEL_LOOKUP_TOKEN = "amana/v1 receipt lookup token";
export const LABEL_REPLY_KEY = "amana/v1 receipt reply key";
const MAILBOX_DOMAIN = "amana mailbox v1\n";
const ENTROPY_LEN = 16;

const utf8 = new TextEncoder();

// ReceiptError: the words are not a receipt (a word is unknown, one is
// missing, or the checksum fails because of a typo).
export class ReceiptError extends Error {
    /** @param {string} message */
  constructor(message) {
    super(`not a valid receipt: ${message}`);
    this.name = "ReceiptError";
  }
}

// Wordlist is the published list receipts are written in (the text of
// crypto/receipt-words.txt, one word a line): 2048 words, each identified by
// its first four letters.
export class Wordlist {
    /** @param {unknown} text */
  constructor(text) {
    if (typeof text !== "string") {
      throw new TypeError("word list must be text");
    }
    const words = text.split(/\s+/).filter((w) => w !== "");
    if (words.length !== 2048) {
      throw new Error(`word list has ${words.length} words, not 2048`);
    }
    // As crypto/receipt.go's wordIndex: each word, and its first four
    // letters if it is longer, in list order (a later entry wins).
    /** @type {Map<string, number>} */
    const index = new Map();
    words.forEach((w, i) => {
      index.set(w, i);
      if (w.length > 4) {
        index.set(w.slice(0, 4), i);
      }
    });
    this.words = Object.freeze(words);
    this.index = index;
    Object.freeze(this);
  }
}

/** @param {Uint8Array<ArrayBuffer>} bytes */
async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// hkdf is HKDF-SHA256 with an empty salt and 32 bytes of output (Go's
// hkdf.Key(sha256.New, ikm, nil, info, 32)).
/**
 * @param {Uint8Array<ArrayBuffer>} ikm
 * @param {string} info
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function hkdf(ikm, info) {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8.encode(info) },
    key,
    256,
  );
  return new Uint8Array(bits);
}

// checksums are the words' 4-bit checksum (the high half of SHA-256's first
// byte) and the digits' 5 hash digits (the first 8 bytes of SHA-256, as a
// big-endian integer, modulo 10^5, zero-padded).
/** @param {Uint8Array<ArrayBuffer>} entropy @returns {Promise<{nibble: number, check: string}>} */
async function checksums(entropy) {
  const sum = await sha256(entropy);
  let h = 0n;
  for (const b of sum.subarray(0, 8)) {
    h = (h << 8n) | BigInt(b);
  }
  return { nibble: sum[0] & 0xf0, check: String(h % 100000n).padStart(HASH_DIGITS, "0") };
}

// Receipt holds the 16 entropy bytes. Make one with newReceipt,
// receiptFromEntropy or parseReceipt.
// The entropy is kept out of the object's own properties, so that it is not
// printed, serialized or copied by accident.
/** @type {WeakMap<Receipt, {entropy: Uint8Array<ArrayBuffer>, nibble: number, check: string}>} */
const secrets = new WeakMap();

// secretOf is what a Receipt holds; every Receipt has it from its
// constructor on.
/** @param {Receipt} r */
function secretOf(r) {
  const s = secrets.get(r);
  if (!s) {
    throw new TypeError("not a receipt");
  }
  return s;
}

export class Receipt {
    /**
     * @param {Uint8Array<ArrayBuffer>} entropy
     * @param {{nibble: number, check: string}} sums
     */
  constructor(entropy, sums) {
    secrets.set(this, { entropy, nibble: sums.nibble, check: sums.check });
    Object.freeze(this);
  }

  // entropy returns a copy of the 16 bytes (tests and vectors).
  get entropy() {
    return secretOf(this).entropy.slice();
  }

  // words spells the receipt: 12 words, separated by single spaces.
    /** @param {Wordlist} list @returns {string} */
  words(list) {
    if (!(list instanceof Wordlist)) {
      throw new TypeError("words needs the Wordlist");
    }
    const { entropy, nibble } = secretOf(this);
    const bits = new Uint8Array(ENTROPY_LEN + 1);
    bits.set(entropy);
    bits[ENTROPY_LEN] = nibble;
    /** @type {string[]} */
    const out = [];
    for (let i = 0; i < RECEIPT_WORDS; i++) {
      let idx = 0;
      for (let j = 0; j < 11; j++) {
        const bit = i * 11 + j;
        idx = (idx << 1) | ((bits[bit >> 3] >> (7 - (bit & 7))) & 1);
      }
      out.push(list.words[idx]);
    }
    return out.join(" ");
  }

  // digits spells the receipt as 45 ASCII digits, 9 groups of 5 separated by
  // single spaces: the 16 bytes as a 39-digit number, 5 hash digits, then
  // the Damm digit of the 44 before it.
    /** @returns {string} */
  digits() {
    const { entropy, check } = secretOf(this);
    let d = BigInt("0x" + hex(entropy)).toString().padStart(VALUE_DIGITS, "0") + check;
    d += String(damm(d));
    /** @type {string[]} */
    const groups = [];
    for (let i = 0; i < d.length; i += DIGIT_GROUP) {
      groups.push(d.slice(i, i + DIGIT_GROUP));
    }
    return groups.join(" ");
  }

  // token is the mailbox lookup token (32 bytes): what the relay is shown.
    /** @returns {Promise<Uint8Array<ArrayBuffer>>} */
  async token() {
    return hkdf(secretOf(this).entropy, LABEL_LOOKUP_TOKEN);
  }

  // tokenString is the token as the API takes it: base64url, no padding.
    /** @returns {Promise<string>} */
  async tokenString() {
    return base64urlnopad.encode(await this.token());
  }

  // mailboxId is the ID of the receipt's mailbox, what report.json names in
  // "mailbox".
    /** @returns {Promise<string>} */
  async mailboxId() {
    return mailboxOf(await this.token());
  }

  // replyIdentity is the age identity string that opens the desk's replies:
  // the derived seed as a hybrid ML-KEM-768+X25519 key for a post-quantum
  // desk (AGE-SECRET-KEY-PQ-1…), or as an X25519 key (AGE-SECRET-KEY-1…).
    /** @param {boolean} postQuantum @returns {Promise<string>} */
  async replyIdentity(postQuantum) {
    const seed = await hkdf(secretOf(this).entropy, LABEL_REPLY_KEY);
    return bech32Upper(postQuantum ? "AGE-SECRET-KEY-PQ-" : "AGE-SECRET-KEY-", seed);
  }

  // replyRecipient is the age recipient of replyIdentity: what report.json
  // names in "reply_recipient".
    /** @param {boolean} postQuantum @returns {Promise<string>} */
  async replyRecipient(postQuantum) {
    return identityToRecipient(await this.replyIdentity(postQuantum));
  }
}

// bech32Upper encodes data under hrp, upper-case, without bech32's
// 90-character limit (crypto/bech32.go, as age spells its keys).
/**
 * @param {string} hrp
 * @param {Uint8Array} data
 * @returns {string}
 */
export function bech32Upper(hrp, data) {
  return bech32.encode(hrp.toLowerCase(), bech32.toWords(data), false).toUpperCase();
}

// mailboxOf is the mailbox ID of a lookup token (crypto.MailboxOf): hex of
// the first 16 bytes of SHA-256("amana mailbox v1\n" || token).
/** @param {Uint8Array} token @returns {Promise<string>} */
export async function mailboxOf(token) {
  const msg = new Uint8Array(MAILBOX_DOMAIN.length + token.length);
  msg.set(utf8.encode(MAILBOX_DOMAIN));
  msg.set(token, MAILBOX_DOMAIN.length);
  return hex((await sha256(msg)).subarray(0, 16));
}

// receiptFromEntropy builds the receipt of 16 entropy bytes.
/** @param {unknown} entropy @returns {Promise<Receipt>} */
export async function receiptFromEntropy(entropy) {
  if (!(entropy instanceof Uint8Array) || entropy.length !== ENTROPY_LEN) {
    throw new TypeError("a receipt is 16 bytes");
  }
  const e = entropy.slice();
  return new Receipt(e, await checksums(e));
}

// newReceipt makes a fresh receipt from crypto.getRandomValues.
/** @returns {Promise<Receipt>} */
export async function newReceipt() {
  const e = new Uint8Array(ENTROPY_LEN);
  crypto.getRandomValues(e);
  return receiptFromEntropy(e);
}

const SEPARATORS = /[ \-,.\n\r\t]+/;

// A digit of the three scripts a receipt's digits may be typed in: ASCII,
// Arabic-Indic (U+0660–U+0669) and Extended Arabic-Indic, or Persian
// (U+06F0–U+06F9).
const DIGIT = /[0-9\u0660-\u0669\u06f0-\u06f9]/u;
const DIGITS = /[0-9\u0660-\u0669\u06f0-\u06f9]/gu;
const LETTER = /\p{L}/u;
// What may stand between digits (crypto/receipt.go's digitSeparator).
const DIGIT_SEPARATOR = /^[\p{White_Space}\p{Pd}\p{Cf}.,/_\u060c\u066b\u066c\u06d4]$/u;

// parseReceipt reads a receipt as people type it (crypto.ParseReceipt), in
// either form: input with a letter in it as words, input with digits and no
// letters as digits. Throws ReceiptError.
/**
 * @param {unknown} s
 * @param {Wordlist} list
 * @returns {Promise<Receipt>}
 */
export async function parseReceipt(s, list) {
  if (typeof s !== "string") {
    throw new ReceiptError("not text");
  }
  if (!(list instanceof Wordlist)) {
    throw new TypeError("parseReceipt needs the Wordlist");
  }
  const digits = DIGIT.test(s);
  if (digits && LETTER.test(s)) {
    throw new ReceiptError(`it mixes letters and digits; give either the ${RECEIPT_WORDS} words or the ${RECEIPT_DIGITS} digits`);
  }
  return digits ? parseDigits(s) : parseWords(s, list);
}

// digitValue is the value of a digit DIGIT matches.
/** @param {string} c */
function digitValue(c) {
  const n = c.codePointAt(0) || 0;
  return n >= 0x6f0 ? n - 0x6f0 : n >= 0x660 ? n - 0x660 : n - 0x30;
}

// parseDigits reads a receipt's digits: ASCII, Arabic-Indic or Persian
// digits, mixed freely, with separators anywhere. The Damm digit catches
// every mistyped digit and every swap of neighbours; the 5 hash digits what
// else goes wrong, save one time in 100,000.
/** @param {string} s @returns {Promise<Receipt>} */
async function parseDigits(s) {
  for (const c of s.replace(DIGITS, "")) {
    if (!DIGIT_SEPARATOR.test(c)) {
      throw new ReceiptError(`${JSON.stringify(c)} is not a digit`);
    }
  }
  const d = (s.match(DIGITS) || []).map(digitValue).join("");
  if (d.length !== RECEIPT_DIGITS) {
    throw new ReceiptError(`it has ${d.length} digits, not ${RECEIPT_DIGITS}`);
  }
  if (damm(d) !== 0) {
    throw new ReceiptError("check the digits; one of them is mistyped, or two next to each other are swapped");
  }
  const n = BigInt(d.slice(0, VALUE_DIGITS));
  if (n >> 128n !== 0n) {
    throw new ReceiptError("check the digits; some of them are mistyped");
  }
  const entropy = new Uint8Array(ENTROPY_LEN);
  let v = n;
  for (let i = ENTROPY_LEN - 1; i >= 0; i--) {
    entropy[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  const sums = await checksums(entropy);
  if (sums.check !== d.slice(VALUE_DIGITS, VALUE_DIGITS + HASH_DIGITS)) {
    throw new ReceiptError("check the digits; some of them are mistyped");
  }
  return new Receipt(entropy, sums);
}

// parseWords reads a receipt's words: any case, words separated by spaces,
// hyphens, commas, periods, new lines or tabs, each word whole or its first
// four letters. A typo anywhere makes the checksum fail.
/**
 * @param {string} s
 * @param {Wordlist} list
 * @returns {Promise<Receipt>}
 */
async function parseWords(s, list) {
  // Go's strings.ToLower maps U+0130 to "i"; JavaScript gives "i̇".
  const f = s.replace(/\u0130/g, "i").toLowerCase().split(SEPARATORS).filter((w) => w !== "");
  if (f.length !== RECEIPT_WORDS) {
    throw new ReceiptError(`it has ${f.length} words, not ${RECEIPT_WORDS}`);
  }
  const bits = new Uint8Array(ENTROPY_LEN + 1);
  f.forEach((w, i) => {
    let idx = list.index.get(w);
    if (idx === undefined && w.length > 4) {
      idx = list.index.get(w.slice(0, 4));
    }
    if (idx === undefined) {
      throw new ReceiptError(`word ${i + 1} is not in the list`);
    }
    for (let j = 0; j < 11; j++) {
      if ((idx >> (10 - j)) & 1) {
        const bit = i * 11 + j;
        bits[bit >> 3] |= 1 << (7 - (bit & 7));
      }
    }
  });
  const entropy = bits.slice(0, ENTROPY_LEN);
  const sums = await checksums(entropy);
  if (sums.nibble !== bits[ENTROPY_LEN]) {
    throw new ReceiptError("check the words; one of them is mistyped");
  }
  return new Receipt(entropy, sums);
}
