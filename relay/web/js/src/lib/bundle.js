// @ts-check
// The submission bundle (docs/protocol.md §8), byte for byte as the Go
// reference writes it (crypto/bundle.go): report.json in canonical form, a
// restricted USTAR archive, Padmé padding; and the reader of a bundle's
// plaintext. Pure functions, except that writeBundle and readBundle hash the
// files with crypto.subtle, and streamBundle reads and hashes Blobs.

import { Sha256 } from "./sha256.js";
import { ticker } from "./pause.js";

export const BUNDLE_SCHEMA = 1;
export const SEALED_BY_CLIENT = "client";
export const SEALED_BY_SERVER = "server";
export const SEALED_BY_HANDLER = "handler";
// Which client sealed a client-sealed item (crypto.ClientCLI, ClientBrowser):
// these pages write CLIENT_BROWSER.
export const CLIENT_CLI = "cli";
export const CLIENT_BROWSER = "browser";
// What kind of item a reply or follow-up is (crypto.KindStatus, KindSurvey).
export const KIND_STATUS = "status";
export const KIND_SURVEY = "survey";
export const MAX_STATUS_TEXT = 200;
export const MAX_SURVEY_COMMENT = 2000;

export const BLOCK_SIZE = 512;
export const MAX_REPORT_LEN = 1 << 20;
export const MAX_ATTACHMENTS = 100;
export const MAX_ATTACHMENT_SIZE = 2 ** 33 - 1;
const REPORT_NAME = "report.json";

/**
 * An answer of report.json: a form field's ID and one of its values.
 * @typedef {{field: string, value: string}} Answer
 */

/**
 * An attachment as report.json lists it. sha256 is absent only in a bundle
 * the submitter's own client sealed in one read (amana submit, §8.7.1);
 * this page always writes it.
 * @typedef {{name: string, size: number, sha256?: string, type: string}} Attachment
 */

/**
 * report.json (§8.2, crypto.Report). from, recipients and signature are a
 * desk's reply's, absent from a submission.
 * @typedef {object} Report
 * @property {number} schema
 * @property {string} desk
 * @property {string} category
 * @property {string} language
 * @property {string} submitted
 * @property {string} sealed_by
 * @property {Answer[]} answers
 * @property {Attachment[]} attachments
 * @property {string} reply_recipient
 * @property {string} mailbox
 * @property {number} [seq]
 * @property {string} [client]
 * @property {string} [kind]
 * @property {string} [status]
 * @property {boolean} [survey]
 * @property {string} [from]
 * @property {string[]} [recipients]
 * @property {string} [signature]
 */

/**
 * A file to bundle: its name, its declared media type and its bytes.
 * @typedef {{name: string, type: string, bytes: Uint8Array<ArrayBuffer>}} BundleFile
 */

/**
 * An attachment read from a bundle, its bytes a view into the plaintext:
 * sha256 is the one report.json gave, checked, or, when it gave none
 * (computed true), the one readBundle computed.
 * @typedef {{name: string, size: number, sha256: string, type: string, computed: boolean, bytes: Uint8Array<ArrayBuffer>}} ReadAttachment
 */
const utf8 = new TextEncoder();

/**
 * @param {number} n
 * @param {string} what
 */
function checkSize(n, what) {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${what}: ${n} is not a non-negative integer`);
  }
}

// bitLen is Go's bits.Len64 for a non-negative safe integer.
/** @param {number} n */
function bitLen(n) {
  return n === 0 ? 0 : n.toString(2).length;
}

// padme returns the Padmé padded length of n (crypto.Padme).
/** @param {number} n @returns {number} */
export function padme(n) {
  checkSize(n, "padme");
  if (n < 2) {
    return n;
  }
  const e = bitLen(n) - 1; // floor(log2 n)
  const s = bitLen(e); // floor(log2 e) + 1
  // (n + mask) &^ mask with mask = 2^(e-s) - 1, in exact float arithmetic
  // (JavaScript's bitwise operators are 32-bit).
  const step = 2 ** (e - s);
  return Math.ceil(n / step) * step;
}

/** @param {number} n @returns {number} */
export function roundBlock(n) {
  return Math.ceil(n / BLOCK_SIZE) * BLOCK_SIZE;
}

// paddedSize is the plaintext size of a bundle whose archive is n bytes.
/** @param {number} n @returns {number} */
export function paddedSize(n) {
  return roundBlock(padme(n));
}

// tarSize is the archive size for a report.json of reportLen bytes and
// attachments of the given sizes, end-of-archive blocks included.
/**
 * @param {number} reportLen
 * @param {number[]} sizes
 * @returns {number}
 */
export function tarSize(reportLen, sizes) {
  checkSize(reportLen, "report length");
  let n = BLOCK_SIZE + roundBlock(reportLen);
  for (const s of sizes) {
    checkSize(s, "attachment size");
    n += BLOCK_SIZE + roundBlock(s);
  }
  return n + 2 * BLOCK_SIZE;
}

// agePayloadSize is the size of an age body (nonce and STREAM chunks, header
// excluded) for a plaintext of n bytes (crypto.AgePayloadSize).
/** @param {number} n @returns {number} */
export function agePayloadSize(n) {
  checkSize(n, "plaintext size");
  const chunk = 64 * 1024;
  const chunks = Math.max(1, Math.ceil(n / chunk));
  return 16 + n + 16 * chunks;
}

// toBytes gives the UTF-8 bytes of a string; TextEncoder replaces every lone
// surrogate by U+FFFD, as wellFormed does.
/** @param {string | Uint8Array} name */
function toBytes(name) {
  return name instanceof Uint8Array ? name : utf8.encode(name);
}

const ALLOWED = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  ALLOWED[c] = /[A-Za-z0-9._-]/.test(ch) ? 1 : 0;
}
const UNDERSCORE = 0x5f;
const DOT = 0x2e;

// entryName is the tar entry name of the i-th attachment (from 1), computed
// from the UTF-8 bytes of name exactly as crypto.EntryName does.
/**
 * @param {number} i
 * @param {string | Uint8Array} name
 * @returns {string}
 */
export function entryName(i, name) {
  if (!Number.isInteger(i) || i < 1 || i > 999) {
    throw new RangeError(`attachment number ${i} out of range`);
  }
  const b = toBytes(name);
  const out = [];
  for (let j = 0; j < b.length; j++) {
    let c = b[j];
    let ok = ALLOWED[c] === 1;
    if (out.length === 0 && c === DOT) {
      ok = false;
    }
    if (!ok) {
      c = UNDERSCORE;
    }
    if (c === UNDERSCORE && out.length > 0 && out[out.length - 1] === UNDERSCORE) {
      continue;
    }
    if (out.length === 80) {
      break;
    }
    out.push(c);
  }
  let s = String.fromCharCode(...out); // ASCII only
  if (s === "" || s === "_") {
    s = "file";
  }
  return `files/${String(i).padStart(3, "0")}-${s}`;
}

/**
 * @param {Uint8Array} h
 * @param {number} off
 * @param {string} s
 */
function putASCII(h, off, s) {
  for (let k = 0; k < s.length; k++) {
    h[off + k] = s.charCodeAt(k);
  }
}

// tarHeader is the 512-byte USTAR header Amana writes (§8.4). name is an
// entry name (ASCII) or bytes.
/**
 * @param {string | Uint8Array} name
 * @param {number} size
 * @returns {Uint8Array}
 */
export function tarHeader(name, size) {
  if (size > MAX_ATTACHMENT_SIZE) {
    throw new RangeError(`size ${size} does not fit a USTAR header`);
  }
  checkSize(size, "entry size");
  const h = new Uint8Array(BLOCK_SIZE);
  h.set(toBytes(name).subarray(0, 100), 0);
  putASCII(h, 100, "0000600\0");
  putASCII(h, 108, "0000000\0");
  putASCII(h, 116, "0000000\0");
  putASCII(h, 124, size.toString(8).padStart(11, "0") + "\0");
  putASCII(h, 136, "00000000000\0");
  h[156] = 0x30; // '0'
  putASCII(h, 257, "ustar\0");
  putASCII(h, 263, "00");
  putASCII(h, 329, "0000000\0");
  putASCII(h, 337, "0000000\0");
  putASCII(h, 148, "        ");
  let sum = 0;
  for (const c of h) {
    sum += c;
  }
  putASCII(h, 148, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

// wellFormed replaces every lone surrogate with U+FFFD: what TextEncoder and
// a browser's form submission do, and the JavaScript counterpart of Go's
// strings.ToValidUTF8(s, "\uFFFD").
/** @param {string} s @returns {string} */
export function wellFormed(s) {
  if (typeof s !== "string") {
    throw new TypeError(`expected a string, got ${typeof s}`);
  }
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/** @type {Record<number, string>} */
const SHORT_ESCAPES = { 0x22: '\\"', 0x5c: "\\\\", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t", 0x08: "\\b", 0x0c: "\\f" };

// jsonString encodes a well-formed string as Go's encoder does with
// SetEscapeHTML(false) (§8.2).
/** @param {string} s @returns {string} */
export function jsonString(s) {
  s = wellFormed(s);
  let out = '"';
  let start = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x2028 && c !== 0x2029) {
      continue;
    }
    out += s.slice(start, k);
    const short = SHORT_ESCAPES[c];
    out += short !== undefined ? short : "\\u" + c.toString(16).padStart(4, "0");
    start = k + 1;
  }
  return out + s.slice(start) + '"';
}

/**
 * @param {unknown} v
 * @param {string} what
 */
function str(v, what) {
  if (v === undefined || v === null) {
    return '""';
  }
  if (typeof v !== "string") {
    throw new TypeError(`${what} must be a string`);
  }
  return jsonString(v);
}

/**
 * @param {unknown} v
 * @param {string} what
 */
function int(v, what) {
  if (v === undefined || v === null) {
    return "0";
  }
  if (!Number.isSafeInteger(v)) {
    throw new TypeError(`${what} must be an integer`);
  }
  return String(v);
}

// MAX_SEQ is the largest seq (crypto.MaxSeq): writers stop there, readers
// refuse more.
export const MAX_SEQ = 2 ** 31 - 1;

// threadSeq is the seq of a new item in a thread whose items the writer has
// read carry seen (crypto.ThreadSeq): one more than the highest, at most
// MAX_SEQ. Items without a seq count as 0.
/** @param {Array<number | undefined>} seen @returns {number} */
export function threadSeq(seen) {
  let top = 0;
  for (const s of seen) {
    if (Number.isSafeInteger(s) && /** @type {number} */ (s) > top) {
      top = /** @type {number} */ (s);
    }
  }
  return Math.min(top + 1, MAX_SEQ);
}

// seqMember encodes seq, a follow-up's or reply's place in its thread,
// which Go omits when 0 (json:",omitempty").
/** @param {Partial<Report>} r */
function seqMember(r) {
  if (r.seq === undefined || r.seq === null || r.seq === 0) {
    return "";
  }
  return `,"seq":${int(r.seq, "seq")}`;
}

// kindMembers encodes client, kind, status and survey, which Go omits when
// empty or false (json:",omitempty").
/** @param {Partial<Report>} r */
function kindMembers(r) {
  let out = "";
  for (const k of /** @type {const} */ (["client", "kind", "status"])) {
    const v = r[k];
    if (v !== undefined && v !== null && v !== "") {
      out += `,"${k}":${str(v, k)}`;
    }
  }
  if (r.survey !== undefined && r.survey !== null && r.survey !== false) {
    if (r.survey !== true) {
      throw new TypeError("survey must be a boolean");
    }
    out += `,"survey":true`;
  }
  return out;
}

// optional encodes the members of a desk's reply, which Go omits when empty
// (json:",omitempty"): from, recipients, signature.
/** @param {Partial<Report>} r */
function optional(r) {
  let out = "";
  if (r.from !== undefined && r.from !== null && r.from !== "") {
    out += `,"from":${str(r.from, "from")}`;
  }
  if (r.recipients !== undefined && r.recipients !== null) {
    if (!Array.isArray(r.recipients)) {
      throw new TypeError("recipients must be an array");
    }
    if (r.recipients.length > 0) {
      out += `,"recipients":[${r.recipients.map((x) => str(x, "recipient")).join(",")}]`;
    }
  }
  if (r.signature !== undefined && r.signature !== null && r.signature !== "") {
    out += `,"signature":${str(r.signature, "signature")}`;
  }
  return out;
}

// marshalReport encodes a report canonically (crypto.MarshalReport): the
// struct's member order, no insignificant white space, no HTML escaping, lone
// surrogates replaced by U+FFFD. It returns the UTF-8 bytes and leaves report
// unchanged. Missing strings are "", missing arrays [] (Go's zero values);
// seq, client, kind, status, survey, from, recipients and signature appear
// only when not empty (survey: when true).
/**
 * @param {Partial<Report> | null | undefined} report
 * @returns {Uint8Array}
 */
export function marshalReport(report) {
  /** @type {Partial<Report>} */
  const r = report || {};
  const answers = (r.answers || []).map(
    (a) => `{"field":${str(a.field, "answer field")},"value":${str(a.value, "answer value")}}`,
  );
  const attachments = (r.attachments || []).map(
    (a) =>
      `{"name":${str(a.name, "attachment name")},"size":${int(a.size, "attachment size")},` +
      // An absent or empty sha256 is left out, as Go's omitempty does (§8.7.1).
      (a.sha256 === undefined || a.sha256 === "" ? "" : `"sha256":${str(a.sha256, "attachment sha256")},`) +
      `"type":${str(a.type, "attachment type")}}`,
  );
  const json =
    `{"schema":${int(r.schema, "schema")},"desk":${str(r.desk, "desk")},"category":${str(r.category, "category")},` +
    `"language":${str(r.language, "language")},"submitted":${str(r.submitted, "submitted")},` +
    `"sealed_by":${str(r.sealed_by, "sealed_by")},"answers":[${answers.join(",")}],` +
    `"attachments":[${attachments.join(",")}],"reply_recipient":${str(r.reply_recipient, "reply_recipient")},` +
    `"mailbox":${str(r.mailbox, "mailbox")}` +
    seqMember(r) +
    kindMembers(r) +
    optional(r) +
    "}";
  const out = utf8.encode(json);
  if (out.length > MAX_REPORT_LEN) {
    throw new RangeError(`report is larger than ${MAX_REPORT_LEN} bytes`);
  }
  return out;
}

// submittedAt is the time t rounded down to the hour, in UTC, as Go's
// time.RFC3339 writes it (crypto.SubmittedAt).
/** @param {Date} [t] @returns {string} */
export function submittedAt(t = new Date()) {
  const d = new Date(Math.floor(t.getTime() / 3600000) * 3600000);
  /** @type {(n: number, w?: number) => string} */
  const p = (n, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) {
    throw new RangeError("year out of range");
  }
  return `${p(y, 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:00:00Z`;
}

// hex is bytes in lower-case hexadecimal.
/** @param {Uint8Array} bytes @returns {string} */
export function hex(bytes) {
  let s = "";
  for (const b of bytes) {
    s += (b < 16 ? "0" : "") + b.toString(16);
  }
  return s;
}

// sha256Hex is the SHA-256 of bytes, in hexadecimal.
/** @param {Uint8Array<ArrayBuffer>} bytes @returns {Promise<string>} */
export async function sha256Hex(bytes) {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

// writeBundle returns the padded plaintext of a bundle: the tar archive of
// report.json and the files, then zero padding to paddedSize. files are
// {name, type, bytes: Uint8Array}. Like crypto.WriteBundle it sets
// report.schema and fills report.attachments from the files.
/**
 * @param {Report} report
 * @param {BundleFile[]} [files]
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function writeBundle(report, files = []) {
  if (files.length > MAX_ATTACHMENTS) {
    throw new RangeError(`at most ${MAX_ATTACHMENTS} attachments`);
  }
  /** @type {Attachment[]} */
  const attachments = [];
  for (const f of files) {
    if (!(f.bytes instanceof Uint8Array)) {
      throw new TypeError(`attachment ${JSON.stringify(f.name)}: bytes must be a Uint8Array`);
    }
    if (f.bytes.length > MAX_ATTACHMENT_SIZE) {
      throw new RangeError(`attachment ${JSON.stringify(f.name)}: size out of range`);
    }
    attachments.push({
      name: f.name ?? "",
      size: f.bytes.length,
      sha256: await sha256Hex(f.bytes),
      type: f.type ?? "",
    });
  }
  report.schema = BUNDLE_SCHEMA;
  report.attachments = attachments;
  const rep = marshalReport(report);
  const total = paddedSize(tarSize(rep.length, attachments.map((a) => a.size)));
  const out = new Uint8Array(total); // zero-filled: fills and padding are free
  let off = 0;
  for (const seg of layout(rep, attachments, files.map((f) => f.bytes), total)) {
    if (typeof seg === "number") {
      off += seg;
    } else {
      out.set(/** @type {Uint8Array} */ (seg), off);
      off += /** @type {Uint8Array} */ (seg).length;
    }
  }
  if (off !== total) {
    throw new Error(`bundle layout error: ${off} != ${total}`);
  }
  return out;
}

/**
 * A piece of a bundle's plaintext, in order: bytes, a file's body (a Blob,
 * or bytes), or a number of zero bytes.
 * @typedef {Uint8Array | Blob | number} Segment
 */

// layout yields the bundle's plaintext as segments (§8.4): report.json's
// header and body, each attachment's header and body, the zero fill to the
// next block after each body, the two end-of-archive blocks and the zero
// padding to total. writeBundle and streamBundle both write from it, so the
// two give the same bytes.
/**
 * @param {Uint8Array} rep the canonical report.json
 * @param {Attachment[]} attachments as report.json lists them
 * @param {Array<Uint8Array | Blob>} bodies the attachments' bytes, in the same order
 * @param {number} total the padded size
 * @returns {Generator<Segment>}
 */
function* layout(rep, attachments, bodies, total) {
  let off = 0;
  /** @type {(name: string, size: number) => Generator<Segment>} */
  const head = function* (name, size) {
    yield tarHeader(name, size);
    off += BLOCK_SIZE + roundBlock(size);
  };
  yield* head(REPORT_NAME, rep.length);
  yield rep;
  if (roundBlock(rep.length) > rep.length) {
    yield roundBlock(rep.length) - rep.length;
  }
  for (let i = 0; i < attachments.length; i++) {
    const a = attachments[i];
    yield* head(entryName(i + 1, wellFormed(a.name)), a.size);
    if (a.size > 0) {
      yield bodies[i];
    }
    if (roundBlock(a.size) > a.size) {
      yield roundBlock(a.size) - a.size;
    }
  }
  off += 2 * BLOCK_SIZE;
  if (off > total) {
    throw new Error(`bundle layout error: ${off} > ${total}`);
  }
  yield total - off + 2 * BLOCK_SIZE;
}

// READ_SIZE is how much of a file is read at a time, in both passes of
// streamBundle.
export const READ_SIZE = 1 << 20;
// SUBTLE_MAX: a file up to this size is hashed with WebCrypto in one read
// (fast even without JIT); a larger one incrementally, in READ_SIZE pieces,
// so that no more than READ_SIZE of it is held at a time.
export const SUBTLE_MAX = 8 << 20;
// HASH_SLICE is how much is hashed between two chances for the page to draw.
const HASH_SLICE = 128 * 1024;

/**
 * A file to bundle as the page has it: a Blob (a File), read in pieces.
 * @typedef {{name: string, type: string, blob: Blob}} BlobFile
 */

// FileChanged: a file gave other than the bytes it had when it was chosen.
// Its message says what to do; the page shows it.
export class FileChanged extends Error {
  /**
   * @param {number} got
   * @param {number} want
   */
  constructor(got, want) {
    super("A file changed or moved after it was chosen: choose it again and send again.");
    this.name = "FileChanged";
    this.got = got;
    this.want = want;
  }
}

// readBlob reads blob's bytes from start to end, and checks that it got them
// all: a file changed or removed after it was chosen fails to read.
/**
 * @param {Blob} blob
 * @param {number} start
 * @param {number} end
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
async function readBlob(blob, start, end) {
  const b = new Uint8Array(await blob.slice(start, end).arrayBuffer());
  if (b.length !== end - start) {
    throw new FileChanged(b.length, end - start);
  }
  return b;
}

// hashBlob returns the SHA-256 of blob in hexadecimal, calling onRead(n)
// after each n bytes read.
/**
 * @param {Blob} blob
 * @param {(n: number) => void} [onRead]
 * @returns {Promise<string>}
 */
export async function hashBlob(blob, onRead = () => {}) {
  if (blob.size <= SUBTLE_MAX) {
    const h = await sha256Hex(await readBlob(blob, 0, blob.size));
    onRead(blob.size);
    return h;
  }
  const h = new Sha256();
  const tick = ticker();
  // hash feeds the hasher a slice at a time, letting the page draw its
  // progress between slices (without JIT a MiB takes about half a second).
  /** @param {Uint8Array} b */
  const hash = async (b) => {
    for (let k = 0; k < b.length; k += HASH_SLICE) {
      h.update(b.subarray(k, Math.min(k + HASH_SLICE, b.length)));
      await tick();
    }
    onRead(b.length);
  };
  try {
    /** @type {ReadableStreamBYOBReader | null} */
    let byob = null;
    try {
      byob = blob.stream().getReader({ mode: "byob" });
    } catch {
      byob = null; // not a byte stream here: read slices
    }
    if (byob) {
      // One buffer, read into again and again: no garbage for the collector
      // to catch up with.
      let buf = new ArrayBuffer(READ_SIZE);
      let n = 0;
      for (;;) {
        const { done, value } = await byob.read(new Uint8Array(buf, 0, READ_SIZE));
        if (done || !value) {
          break;
        }
        await hash(value);
        n += value.length;
        buf = value.buffer;
      }
      if (n !== blob.size) {
        throw new FileChanged(n, blob.size);
      }
      return hex(h.digest());
    }
    for (let off = 0; off < blob.size; off += READ_SIZE) {
      await hash(await readBlob(blob, off, Math.min(off + READ_SIZE, blob.size)));
    }
    return hex(h.digest());
  } finally {
    tick.close();
  }
}

/**
 * A bundle ready to stream: its padded plaintext size, and a function that
 * returns a new stream of its bytes each time it is called.
 * @typedef {{size: number, stream: (opts?: {onRead?: (n: number) => void}) => ReadableStream<Uint8Array<ArrayBuffer>>}} StreamedBundle
 */

// STREAM_CHUNK is the largest piece the plaintext stream hands over.
const STREAM_CHUNK = 256 * 1024;

// streamBundle is writeBundle for files read from Blobs, in bounded memory.
// Pass 1 hashes each file (report.json comes first and carries the
// digests), calling onHash(done, total) in bytes as it goes; it fills
// report as writeBundle does. The returned stream (pass 2) reads the files
// again, in pieces, as the reader pulls: at most one piece of a file is
// held at a time. The bytes are exactly writeBundle's.
/**
 * @param {Report} report
 * @param {BlobFile[]} files
 * @param {{onHash?: (done: number, total: number) => void}} [opts]
 * @returns {Promise<StreamedBundle>}
 */
export async function streamBundle(report, files, { onHash = () => {} } = {}) {
  if (files.length > MAX_ATTACHMENTS) {
    throw new RangeError(`at most ${MAX_ATTACHMENTS} attachments`);
  }
  let total = 0;
  for (const f of files) {
    if (!(f.blob instanceof Blob)) {
      throw new TypeError(`attachment ${JSON.stringify(f.name)}: blob must be a Blob`);
    }
    if (f.blob.size > MAX_ATTACHMENT_SIZE) {
      throw new RangeError(`attachment ${JSON.stringify(f.name)}: size out of range`);
    }
    total += f.blob.size;
  }
  let done = 0;
  onHash(0, total);
  /** @type {Attachment[]} */
  const attachments = [];
  for (const f of files) {
    const sha256 = await hashBlob(f.blob, (n) => onHash((done += n), total));
    attachments.push({ name: f.name ?? "", size: f.blob.size, sha256, type: f.type ?? "" });
  }
  report.schema = BUNDLE_SCHEMA;
  report.attachments = attachments;
  const rep = marshalReport(report);
  const size = paddedSize(tarSize(rep.length, attachments.map((a) => a.size)));
  const bodies = files.map((f) => f.blob);
  return {
    size,
    stream({ onRead = () => {} } = {}) {
      const segs = layout(rep, attachments, bodies, size);
      /** @type {Segment | null} */
      let cur = null;
      let pos = 0; // within cur
      const tick = ticker();
      return new ReadableStream(
        {
          async pull(c) {
            await tick();
            for (;;) {
              if (cur === null) {
                const next = segs.next();
                if (next.done) {
                  tick.close();
                  c.close();
                  return;
                }
                cur = next.value;
                pos = 0;
              }
              const len = typeof cur === "number" ? cur : cur instanceof Blob ? cur.size : cur.length;
              if (pos >= len) {
                cur = null;
                continue;
              }
              const end = Math.min(pos + STREAM_CHUNK, len);
              /** @type {Uint8Array<ArrayBuffer>} */
              let chunk;
              if (typeof cur === "number") {
                chunk = new Uint8Array(end - pos);
              } else if (cur instanceof Blob) {
                try {
                  chunk = await readBlob(cur, pos, end);
                } catch (err) {
                  tick.close();
                  throw err;
                }
              } else {
                chunk = cur.slice(pos, end);
              }
              pos = end;
              onRead(chunk.length);
              c.enqueue(chunk);
              return;
            }
          },
          cancel() {
            tick.close();
          },
        },
        { highWaterMark: 1 },
      );
    },
  };
}

// BundleError: the plaintext is not a bundle as Amana writes it. code is one
// of crypto/bundle.go's errors: unsafe_name, not_first, digest, padding,
// truncated, bad_tar_header, unexpected_entry, not_canonical, invalid.
export class BundleError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(`invalid bundle: ${message}`);
    this.name = "BundleError";
    this.code = code;
  }
}

const strictUTF8 = new TextDecoder("utf-8", { fatal: true });

/** @param {Uint8Array} b */
function allZero(b) {
  for (let k = 0; k < b.length; k++) {
    if (b[k] !== 0) {
      return false;
    }
  }
  return true;
}

/** @param {Uint8Array} b */
function latin1(b) {
  let s = "";
  for (let k = 0; k < b.length; k++) {
    s += String.fromCharCode(b[k]);
  }
  return s;
}

// parseOctal reads a USTAR number field as crypto/bundle.go does: trimmed of
// spaces and NULs, 1 to 11 octal digits.
/** @param {Uint8Array} b */
function parseOctal(b) {
  const s = latin1(b).replace(/^[ \0]+|[ \0]+$/g, "");
  if (s === "" || s.length > 11 || !/^[0-7]+$/.test(s)) {
    return -1;
  }
  return parseInt(s, 8);
}

/** @param {Uint8Array} h */
function checksumOK(h) {
  const want = parseOctal(h.subarray(148, 156));
  if (want < 0) {
    return false;
  }
  let sum = 0;
  for (let k = 0; k < BLOCK_SIZE; k++) {
    sum += k >= 148 && k < 156 ? 0x20 : h[k];
  }
  return sum === want;
}

// entryNameOf is the NUL-trimmed name field, or null if it is not UTF-8.
/** @param {Uint8Array} h */
function entryNameOf(h) {
  let end = 100;
  while (end > 0 && h[end - 1] === 0) {
    end--;
  }
  try {
    return strictUTF8.decode(h.subarray(0, end));
  } catch {
    return null;
  }
}

// safeEntryName rejects absolute names, "." and ".." components, empty
// components, backslashes and control characters (crypto/bundle.go).
/** @param {unknown} name @returns {boolean} */
export function safeEntryName(name) {
  if (typeof name !== "string" || name === "" || name.startsWith("/") || name.includes("\\")) {
    return false;
  }
  if (name.split("/").some((p) => p === "" || p === "." || p === "..")) {
    return false;
  }
  return !/[\u0000-\u001f\u007f]/.test(name);
}

// readHeader checks the 512-byte header at off and returns its name and size.
/**
 * @param {Uint8Array} b
 * @param {number} off
 */
function readHeader(b, off) {
  if (off + BLOCK_SIZE > b.length) {
    throw new BundleError("truncated", "truncated");
  }
  const h = b.subarray(off, off + BLOCK_SIZE);
  if (allZero(h)) {
    throw new BundleError("truncated", "archive ends before every attachment in report.json");
  }
  const name = entryNameOf(h);
  if (name === null || !safeEntryName(name)) {
    throw new BundleError("unsafe_name", "unsafe entry name");
  }
  if (!checksumOK(h)) {
    throw new BundleError("bad_tar_header", "bad tar header");
  }
  if (h[156] !== 0x30 && h[156] !== 0) {
    throw new BundleError("unexpected_entry", `${JSON.stringify(name)}: not a regular file`);
  }
  if (latin1(h.subarray(257, 263)) !== "ustar\0" || (h.subarray(0, 100).indexOf(0) < 0 && name.length >= 100) || !allZero(h.subarray(345, 500))) {
    throw new BundleError("bad_tar_header", "bad tar header");
  }
  const size = parseOctal(h.subarray(124, 136));
  if (size < 0 || size > MAX_ATTACHMENT_SIZE) {
    throw new BundleError("bad_tar_header", "bad tar header");
  }
  return { name, size };
}

// body returns the size bytes after the header at off and checks the block's
// zero padding; it returns the offset of the next header too.
/**
 * @param {Uint8Array<ArrayBuffer>} b
 * @param {number} off
 * @param {number} size
 */
function body(b, off, size) {
  const start = off + BLOCK_SIZE;
  const end = start + roundBlock(size);
  if (end > b.length) {
    throw new BundleError("truncated", "truncated");
  }
  if (!allZero(b.subarray(start + size, end))) {
    throw new BundleError("padding", "non-zero or mis-sized padding");
  }
  return { bytes: b.subarray(start, start + size), next: end };
}

/** @param {unknown} v @returns {v is string} */
const isStr = (v) => typeof v === "string";
/** @param {unknown} v @returns {v is Record<string, unknown>} */
const isObject = (v) => v !== null && typeof v === "object";

// checkShape checks the JSON types of report.json's members that
// marshalReport reads, as Go's decoder would refuse the wrong ones.
/**
 * @param {unknown} r
 * @returns {asserts r is Report}
 */
function checkShape(r) {
  const ok =
    isObject(r) &&
    !Array.isArray(r) &&
    Array.isArray(r.answers) &&
    r.answers.every((a) => isObject(a) && isStr(a.field) && isStr(a.value)) &&
    Array.isArray(r.attachments) &&
    r.attachments.every(
      (a) =>
        isObject(a) && isStr(a.name) && Number.isSafeInteger(a.size) && (a.sha256 === undefined || isStr(a.sha256)) && isStr(a.type),
    ) &&
    (r.recipients === undefined || (Array.isArray(r.recipients) && r.recipients.every(isStr))) &&
    (r.seq === undefined || Number.isSafeInteger(r.seq)) &&
    [r.client, r.kind, r.status].every((v) => v === undefined || isStr(v)) &&
    (r.survey === undefined || typeof r.survey === "boolean");
  if (!ok) {
    throw new BundleError("invalid", "report.json has members of the wrong type");
  }
}

// readBundle reads a bundle's plaintext (the whole of it, decrypted) as
// crypto.BundleReader does: report.json first and in canonical form, then
// exactly the attachments it lists, under the names entryName gives, each
// checked against its size and SHA-256 (or, one a client sealed without a
// SHA-256, §8.7.1, its SHA-256 computed), then the end of the archive and zero
// padding of exactly the right length. It returns {report, attachments:
// [{name, size, sha256, type, computed, bytes}]}, bytes being views into
// plain. Throws BundleError.
/**
 * @param {Uint8Array<ArrayBuffer>} plain
 * @returns {Promise<{report: Report, attachments: ReadAttachment[]}>}
 */
export async function readBundle(plain) {
  if (!(plain instanceof Uint8Array)) {
    throw new TypeError("bundle must be a Uint8Array");
  }
  const first = readHeader(plain, 0);
  if (first.name !== REPORT_NAME) {
    throw new BundleError("not_first", "report.json is not the first entry");
  }
  if (first.size > MAX_REPORT_LEN) {
    throw new BundleError("invalid", `report.json larger than ${MAX_REPORT_LEN} bytes`);
  }
  const rep = body(plain, 0, first.size);
  /** @type {unknown} */
  let report;
  try {
    report = JSON.parse(strictUTF8.decode(rep.bytes));
  } catch {
    throw new BundleError("invalid", "report.json is not JSON");
  }
  checkShape(report);
  let canon;
  try {
    canon = marshalReport(report);
  } catch {
    throw new BundleError("not_canonical", "report.json is not in canonical form");
  }
  if (canon.length !== rep.bytes.length || canon.some((c, k) => c !== rep.bytes[k])) {
    throw new BundleError("not_canonical", "report.json is not in canonical form");
  }
  if (report.schema !== BUNDLE_SCHEMA) {
    throw new BundleError("invalid", `unsupported report schema ${report.schema}`);
  }
  if (report.seq !== undefined && (report.seq < 0 || report.seq > MAX_SEQ)) {
    throw new BundleError("invalid", "seq out of range");
  }
  if (report.attachments.length > MAX_ATTACHMENTS) {
    throw new BundleError("invalid", `more than ${MAX_ATTACHMENTS} attachments`);
  }
  for (const a of report.attachments) {
    if (a.size < 0 || a.size > MAX_ATTACHMENT_SIZE || (a.sha256 !== undefined && a.sha256.length !== 64)) {
      throw new BundleError("invalid", "report.json lists an invalid attachment");
    }
    if (a.sha256 === undefined && report.sealed_by !== SEALED_BY_CLIENT) {
      throw new BundleError("no_digest", "attachment without its SHA-256 in an item not sealed by the client");
    }
  }
  checkMembers(report);
  let off = rep.next;
  /** @type {ReadAttachment[]} */
  const attachments = [];
  for (let i = 0; i < report.attachments.length; i++) {
    const a = report.attachments[i];
    const h = readHeader(plain, off);
    if (h.name !== entryName(i + 1, a.name) || h.size !== a.size) {
      throw new BundleError("unexpected_entry", `${JSON.stringify(h.name)}: does not match report.json`);
    }
    const f = body(plain, off, h.size);
    const sum = await sha256Hex(f.bytes);
    if (a.sha256 !== undefined && sum !== a.sha256) {
      throw new BundleError("digest", "attachment SHA-256 mismatch");
    }
    attachments.push({ name: a.name, size: a.size, sha256: sum, type: a.type, computed: a.sha256 === undefined, bytes: f.bytes });
    off = f.next;
  }
  // The end of the archive: two zero blocks, then zeros to the padded size.
  for (let k = 0; k < 2; k++) {
    if (off + BLOCK_SIZE > plain.length) {
      throw new BundleError("truncated", "truncated");
    }
    const blk = plain.subarray(off, off + BLOCK_SIZE);
    if (!allZero(blk)) {
      if (!checksumOK(blk)) {
        throw new BundleError("padding", "non-zero or mis-sized padding");
      }
      const name = entryNameOf(blk);
      if (name === null || !safeEntryName(name)) {
        throw new BundleError("unsafe_name", "unsafe entry name");
      }
      throw new BundleError("unexpected_entry", `${JSON.stringify(name)}: not listed in report.json`);
    }
    off += BLOCK_SIZE;
  }
  if (!allZero(plain.subarray(off)) || plain.length !== paddedSize(off)) {
    throw new BundleError("padding", "non-zero or mis-sized padding");
  }
  return { report, attachments };
}

// A name (crypto.ValidName).
const NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const utf8Length = (/** @type {string} */ s) => utf8.encode(s).length;

// checkMembers checks the rules of report.json's client, kind, status and
// survey members (crypto.Report.CheckMembers, §8.2): client only in a
// client-sealed item and one this version knows; kind status only in a
// signed reply with a status name and one one-line message; kind survey only
// in a follow-up whose answers parseSurvey accepts; status and survey only in
// a status message. Throws BundleError "members".
/** @param {Partial<Report>} r */
export function checkMembers(r) {
  /** @param {string} m */
  const bad = (m) => new BundleError("members", `report.json breaks a rule of its members: ${m}`);
  const client = r.client || "";
  if (client !== "") {
    if (client !== CLIENT_CLI && client !== CLIENT_BROWSER) {
      throw bad("unknown client");
    }
    if (r.sealed_by !== SEALED_BY_CLIENT) {
      throw bad("client in an item not sealed by the client");
    }
  }
  const kind = r.kind || "";
  const attachments = r.attachments || [];
  if (kind === KIND_STATUS) {
    if (r.sealed_by !== SEALED_BY_HANDLER || !r.from || !r.signature) {
      throw bad("a status message is a signed reply");
    }
    if (!NAME.test(r.status || "")) {
      throw bad("a status message names a status");
    }
    const a = r.answers || [];
    if (a.length !== 1 || a[0].field !== "message" || !validStatusText(a[0].value)) {
      throw bad(`a status message is one line of 1 to ${MAX_STATUS_TEXT} bytes`);
    }
    if (attachments.length > 0) {
      throw bad("a status message has no attachments");
    }
  } else if (kind === KIND_SURVEY) {
    if (r.sealed_by !== SEALED_BY_CLIENT && r.sealed_by !== SEALED_BY_SERVER) {
      throw bad("a survey answer is a follow-up");
    }
    if (parseSurvey(r) === null) {
      throw bad("not a valid survey answer");
    }
  } else if (kind !== "") {
    throw bad("unknown kind");
  }
  if (kind !== KIND_STATUS && ((r.status || "") !== "" || r.survey === true)) {
    throw bad("status and survey only in a status message");
  }
}

/** @param {string} s */
function validStatusText(s) {
  return s !== "" && utf8Length(s) <= MAX_STATUS_TEXT && !/[\r\n]/.test(s) && wellFormed(s) === s;
}

// surveyAnswers are the answers of a survey follow-up (crypto.SurveyAnswers):
// the score, an integer 1 to 5, then the comment when it is not empty (at
// most MAX_SURVEY_COMMENT bytes of UTF-8). Throws RangeError otherwise.
/**
 * @param {number} score
 * @param {string} [comment]
 * @returns {Answer[]}
 */
export function surveyAnswers(score, comment = "") {
  if (!Number.isInteger(score) || score < 1 || score > 5) {
    throw new RangeError("the score is 1 to 5");
  }
  if (typeof comment !== "string" || utf8Length(wellFormed(comment)) > MAX_SURVEY_COMMENT) {
    throw new RangeError(`the comment is at most ${MAX_SURVEY_COMMENT} bytes`);
  }
  /** @type {Answer[]} */
  const a = [{ field: "satisfaction", value: String(score) }];
  if (comment !== "") {
    a.push({ field: "comment", value: comment });
  }
  return a;
}

// parseSurvey reads a survey follow-up's {score, comment} (crypto.ParseSurvey),
// or returns null unless r is of kind survey with exactly the answers
// surveyAnswers writes and no attachments.
/**
 * @param {Partial<Report>} r
 * @returns {{score: number, comment: string} | null}
 */
export function parseSurvey(r) {
  if (r.kind !== KIND_SURVEY || (r.attachments || []).length > 0) {
    return null;
  }
  const a = r.answers || [];
  if (a.length < 1 || a.length > 2 || a[0].field !== "satisfaction" || (a.length === 2 && a[1].field !== "comment")) {
    return null;
  }
  if (!/^[1-5]$/.test(a[0].value)) {
    return null;
  }
  const comment = a.length === 2 ? a[1].value : "";
  if (a.length === 2 && (comment === "" || utf8Length(comment) > MAX_SURVEY_COMMENT)) {
    return null;
  }
  return { score: Number(a[0].value), comment };
}
