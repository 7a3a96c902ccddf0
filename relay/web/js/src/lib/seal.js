// @ts-check
// Encryption of a padded bundle with typage (docs/protocol.md §9.1): one
// stanza per recipient and no other, so the relay's header check (§9.2)
// accepts it.

import { Encrypter } from "age-encryption";
import { agePayloadSize } from "./bundle.js";
import { SLICE_MS, yielder } from "./pause.js";

const BECH32 = "[02-9ac-hj-np-z]";
const X25519_RE = new RegExp(`^age1${BECH32}{58}$`);
const PQ_RE = new RegExp(`^age1pq1${BECH32}+$`);

// stanzaType is the age stanza type a recipient string produces, or throws
// for anything the relay would not accept (tag recipients, plugins, typos).
/** @param {unknown} recipient @returns {"mlkem768x25519" | "X25519"} */
export function stanzaType(recipient) {
  if (typeof recipient !== "string") {
    throw new TypeError("recipient must be a string");
  }
  if (PQ_RE.test(recipient)) {
    return "mlkem768x25519";
  }
  if (X25519_RE.test(recipient)) {
    return "X25519";
  }
  throw new Error(`unsupported recipient ${JSON.stringify(recipient.slice(0, 16) + "…")}`);
}

// available reports whether this page can encrypt: typage needs WebCrypto,
// which a browser offers only in a secure context (an onion counts as one in
// Tor Browser). typage throws rather than falling back when it is missing.
/**
 * @param {{isSecureContext?: boolean, crypto?: Crypto, ReadableStream?: unknown, TransformStream?: unknown}} [g]
 * @returns {boolean}
 */
export function available(g = globalThis) {
  return Boolean(
    g.isSecureContext !== false &&
      g.crypto &&
      g.crypto.subtle &&
      typeof g.crypto.subtle.digest === "function" &&
      typeof g.crypto.getRandomValues === "function" &&
      typeof g.ReadableStream === "function" &&
      typeof g.TransformStream === "function",
  );
}

// parseHeader reads the age header at the start of ct: the stanza types in
// order and the header length (through the MAC line's LF). It checks only the
// framing, which is all the caller needs to compare with what it asked for.
/** @param {Uint8Array} ct @returns {{types: string[], length: number}} */
export function parseHeader(ct) {
  /** @type {string[]} */
  const lines = [];
  let start = 0;
  for (;;) {
    const nl = ct.indexOf(0x0a, start);
    if (nl < 0 || nl - start > 2048) {
      throw new Error("age header: line not terminated");
    }
    let line = "";
    for (let k = start; k < nl; k++) {
      line += String.fromCharCode(ct[k]);
    }
    start = nl + 1;
    lines.push(line);
    if (line.startsWith("--- ")) {
      break;
    }
  }
  if (lines[0] !== "age-encryption.org/v1") {
    throw new Error("age header: bad version line");
  }
  /** @type {string[]} */
  const types = [];
  for (let k = 1; k < lines.length - 1; k++) {
    const line = lines[k];
    if (line.startsWith("-> ")) {
      types.push(line.slice(3).split(" ")[0]);
    } else if (line.length > 64) {
      throw new Error("age header: body line too long");
    }
  }
  return { types, length: start };
}

// HEADER_PER_STANZA is the header bytes each stanza takes in age's encoding
// (§9.1): "-> TYPE ARG" LF and one body line of 43 characters LF.
const HEADER_PER_STANZA = { X25519: 98, mlkem768x25519: 1557 };
// HEADER_FIXED is the version line (22 bytes) and the MAC line (48 bytes).
const HEADER_FIXED = 70;

// ciphertextSize is the exact length of the age file that encrypting n bytes
// to these recipients gives (§9.1), known before encrypting.
/**
 * @param {number} n
 * @param {string[]} recipients
 * @returns {number}
 */
export function ciphertextSize(n, recipients) {
  let h = HEADER_FIXED;
  for (const r of recipients) {
    h += HEADER_PER_STANZA[stanzaType(r)];
  }
  return h + agePayloadSize(n);
}

const CHUNK = 64 * 1024;

/**
 * A bundle being encrypted: the exact ciphertext length, and the ciphertext
 * as a stream, its age header already produced and checked.
 * @typedef {{size: number, stream: ReadableStream<Uint8Array<ArrayBuffer>>}} SealedStream
 */

// checkRecipients returns the stanza types the recipients must give, in
// order, or throws.
/** @param {unknown} recipients @returns {string[]} */
function checkRecipients(recipients) {
  if (!Array.isArray(recipients) || recipients.length === 0) {
    throw new Error("no recipients");
  }
  const want = recipients.map(stanzaType);
  if (new Set(want).size !== 1) {
    throw new Error("cannot encrypt to post-quantum and classic recipients together");
  }
  return want;
}

// encryptStream encrypts a plaintext of n bytes, read from input as the
// returned stream is read, to the recipients with typage's streaming
// encryption: memory stays bounded whatever n is. It resolves once the age
// header is made and checked (exactly one stanza per recipient, of the
// recipient's type, and the length age's format predicts), so that a
// failure to encrypt shows before anything is sent; the stream errors if
// the ciphertext ends at any other length than size.
/**
 * @param {ReadableStream<Uint8Array<ArrayBuffer>>} input
 * @param {number} n
 * @param {string[]} recipients
 * @returns {Promise<SealedStream>}
 */
export async function encryptStream(input, n, recipients) {
  if (!(input instanceof ReadableStream)) {
    throw new TypeError("input must be a ReadableStream");
  }
  const want = checkRecipients(recipients);
  const size = ciphertextSize(n, recipients);
  const headerLen = size - agePayloadSize(n);
  const e = new Encrypter();
  for (const r of recipients) {
    e.addRecipient(r);
  }
  // typage's stream carries Uint8Arrays of its own ArrayBuffers.
  const reader = /** @type {ReadableStreamDefaultReader<Uint8Array<ArrayBuffer>>} */ ((await e.encrypt(input)).getReader());
  /** @type {Uint8Array<ArrayBuffer>[]} */
  const head = [];
  let got = 0;
  try {
    while (got < headerLen) {
      const { done, value } = await reader.read();
      if (done) {
        throw new Error(`ciphertext ended after ${got} bytes, within its header`);
      }
      head.push(value);
      got += value.length;
    }
    const first = new Uint8Array(got);
    let k = 0;
    for (const b of head) {
      first.set(b, k);
      k += b.length;
    }
    const h = parseHeader(first);
    if (h.types.length !== want.length || h.types.some((t, i) => t !== want[i])) {
      throw new Error(`age header has stanzas [${h.types}], expected [${want}]`);
    }
    if (h.length !== headerLen) {
      throw new Error(`age header is ${h.length} bytes, not as expected`);
    }
  } catch (err) {
    reader.cancel(err).catch(() => {});
    throw err;
  }
  let sent = 0;
  const stream = new ReadableStream(
    {
      start(c) {
        for (const b of head) {
          c.enqueue(b);
        }
        sent = got;
        head.length = 0;
      },
      async pull(c) {
        const { done, value } = await reader.read();
        if (done) {
          if (sent !== size) {
            throw new Error(`ciphertext is ${sent} bytes, expected ${size}`);
          }
          c.close();
          return;
        }
        sent += value.length;
        if (sent > size) {
          throw new Error(`ciphertext is longer than the ${size} bytes expected`);
        }
        c.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return { size, stream };
}

// encrypt encrypts bundle (the padded plaintext, in memory) to the
// recipients, checked as encryptStream does, and returns the ciphertext. The
// plaintext is fed to typage in 64 KiB chunks; onProgress(bytesEncrypted,
// total), if given, is called as it goes.
/**
 * @param {Uint8Array} bundle
 * @param {string[]} recipients
 * @param {{onProgress?: (done: number, total: number) => void}} [opts]
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function encrypt(bundle, recipients, { onProgress } = {}) {
  if (!(bundle instanceof Uint8Array)) {
    throw new TypeError("bundle must be a Uint8Array");
  }
  checkRecipients(recipients);
  const pause = yielder();
  try {
    let pos = 0;
    let last = Date.now();
    /** @type {ReadableStream<Uint8Array<ArrayBuffer>>} */
    const input = new ReadableStream({
      async pull(c) {
        if (Date.now() - last >= SLICE_MS) {
          if (onProgress) {
            onProgress(pos, bundle.length);
          }
          await pause();
          last = Date.now();
        }
        if (pos >= bundle.length) {
          c.close();
          return;
        }
        const end = Math.min(pos + CHUNK, bundle.length);
        c.enqueue(bundle.slice(pos, end));
        pos = end;
      },
    });
    const { size, stream } = await encryptStream(input, bundle.length, recipients);
    const ct = new Uint8Array(size);
    let n = 0;
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      ct.set(value, n);
      n += value.length;
    }
    if (onProgress) {
      onProgress(bundle.length, bundle.length);
    }
    return ct;
  } finally {
    pause.close();
  }
}
