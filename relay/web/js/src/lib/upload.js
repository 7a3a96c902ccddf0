// @ts-check
// The resumable upload (docs/protocol.md §10.4, §10.6), as the Go client's
// Submit does it (relay/client/client.go), in pieces of at most 1 MiB sent as
// plain byte bodies: onion services speak HTTP/1.1, where fetch cannot stream
// a request body. The ciphertext is either in memory or a stream read as the
// pieces go out (lib/seal.js encryptStream), holding at most the piece not yet
// confirmed.

import { Sha256 } from "./sha256.js";
import { hex, sha256Hex } from "./bundle.js";

export const PIECE_SIZE = 1 << 20;
export const RETRIES = 8;
export const BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 30000;

/**
 * The relay's storage receipt, {id, desk, size, sha256, received}: upload
 * has checked size and sha256 against what was sent.
 * @typedef {Record<string, unknown> & {size: number, sha256: string}} StorageReceipt
 */

/**
 * upload's options (see upload).
 * @typedef {object} UploadOptions
 * @property {string} [api]
 * @property {string} desk
 * @property {string} [category]
 * @property {(confirmed: number, total: number) => void} [onProgress]
 * @property {(attempt: number, waitMs: number, err: unknown) => void} [onRetry]
 * @property {typeof fetch} [fetch]
 * @property {AbortSignal} [signal]
 * @property {number} [retries]
 * @property {number} [backoffMs]
 * @property {number} [pieceSize]
 * @property {(ms: number) => Promise<void>} [sleep]
 */

/**
 * request's options: what fetch is given besides the method.
 * @typedef {{headers?: Record<string, string>, body?: BodyInit, signal?: AbortSignal}} RequestOptions
 */

/** @type {(v: unknown) => v is number} */
const isInt = (v) => Number.isSafeInteger(v);
// RelayError is an error answer of the relay ({"error": {code, message,
// hint}}) or a failure to reach it (status 0, code "network"). message and
// hint are the relay's text: display them only as text.
export class RelayError extends Error {
    /**
     * @param {number} status the HTTP status, 0 when the relay was not reached
     * @param {unknown} body the relay's JSON answer, read defensively: any member may be missing or of another type
     * @param {unknown} [cause] what broke, when the relay was not reached
     */
  constructor(status, body, cause) {
    const b = /** @type {{error?: unknown} | null | undefined} */ (body);
    const e = /** @type {{code?: unknown, message?: unknown, hint?: unknown, offset?: unknown}} */ ((b && b.error) || {});
    const code = typeof e.code === "string" ? e.code : status === 0 ? "network" : "http_" + status;
    const message = typeof e.message === "string" ? e.message : "";
    super(
      status === 0
        ? `cannot reach the relay${cause ? ": " + /** @type {{message?: unknown}} */ (cause).message : ""}`
        : `relay refused the request: ${message.replace(/\.$/, "") || "status " + status} (${code})`,
    );
    this.name = "RelayError";
    this.status = status;
    this.code = code;
    this.relayMessage = message;
    this.hint = typeof e.hint === "string" ? e.hint : "";
    if (isInt(e.offset)) {
      this.offset = e.offset;
    }
    if (cause) {
      this.cause = cause;
    }
  }
}

/**
 * @param {number} ms
 * @param {AbortSignal | undefined} signal
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(signal.reason || new Error("aborted"));
      return;
    }
    const t = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(t);
          reject(signal.reason || new Error("aborted"));
        },
        { once: true },
      );
    }
  });
}

// retryable reports whether a failed piece may be sent again after asking
// for the offset: the connection broke, the relay timed the piece out or saw
// it break off (408 timeout, 400 bad_request), the offset was not the
// relay's (409 offset_mismatch), or the relay failed for a moment (5xx other
// than 507 storage_full, which the Go client does not retry either).
/** @param {unknown} err @returns {boolean} */
export function retryable(err) {
  if (!(err instanceof RelayError)) {
    return false;
  }
  if (err.status === 0) {
    return true;
  }
  if (err.code === "offset_mismatch" || err.code === "timeout" || err.code === "bad_request") {
    return true;
  }
  return err.status >= 500 && err.status !== 507;
}

// transient reports whether a request broke on the way or the relay was
// briefly unavailable (502, 503, 504).
/** @param {unknown} err */
function transient(err) {
  return err instanceof RelayError && (err.status === 0 || (err.status >= 502 && err.status <= 504));
}

/**
 * @param {unknown} err
 * @param {AbortSignal | undefined} signal
 */
function isAbort(err, signal) {
  const e = /** @type {{name?: unknown} | null | undefined} */ (err);
  return (signal && signal.aborted) || (e && e.name === "AbortError");
}

// request sends one request and returns the parsed JSON answer, or throws a
// RelayError.
/**
 * @param {typeof fetch} fetchFn
 * @param {string} method
 * @param {string} url
 * @param {RequestOptions} [opts]
 * @returns {Promise<Record<string, unknown>>}
 */
export async function request(fetchFn, method, url, { headers, body, signal } = {}) {
  let resp;
  try {
    resp = await fetchFn(url, {
      method,
      headers,
      body,
      signal,
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
      referrerPolicy: "no-referrer",
    });
  } catch (err) {
    if (isAbort(err, signal)) {
      throw err;
    }
    throw new RelayError(0, null, err);
  }
  let text;
  try {
    text = await resp.text();
  } catch (err) {
    if (isAbort(err, signal)) {
      throw err;
    }
    throw new RelayError(0, null, err);
  }
  let json = null;
  try {
    json = text === "" ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  if (resp.status < 200 || resp.status >= 300) {
    throw new RelayError(resp.status, json);
  }
  if (json === null || typeof json !== "object") {
    // A 2xx without a JSON answer: a proxy or a broken connection.
    throw new RelayError(0, null, new Error(`unreadable answer to ${method} (status ${resp.status})`));
  }
  return json;
}

/**
 * @param {unknown} v
 * @param {string} what
 * @returns {number}
 */
function checkOffset(v, what) {
  if (!isInt(v) || v < 0) {
    throw new Error(`relay sent an invalid ${what}`);
  }
  return v;
}

/**
 * The ciphertext as upload reads it: its length, the bytes from off to end
 * (off never before an earlier call's off), its SHA-256 once every piece
 * was read, and a way to stop reading.
 * @typedef {object} Source
 * @property {number} length
 * @property {(off: number, end: number) => Promise<Uint8Array<ArrayBuffer>>} piece
 * @property {() => Promise<string>} digest
 * @property {(reason: unknown) => void} cancel
 */

// bytesSource reads a ciphertext held in memory; its digest runs while the
// first piece is on its way.
/** @param {Uint8Array<ArrayBuffer>} ct @returns {Source} */
function bytesSource(ct) {
  const digest = sha256Hex(ct);
  digest.catch(() => {});
  return { length: ct.length, piece: async (off, end) => ct.slice(off, end), digest: () => digest, cancel: () => {} };
}

// streamSource reads a ciphertext of length bytes from stream as pieces are
// asked for, hashing it as it comes. It keeps the bytes from the last piece
// asked for on: a piece sent again after a cut starts at or after the
// offset the relay confirmed, which is never before the current piece. A
// piece asked for before that is an error (the bytes are gone), never sent
// wrong.
/**
 * @param {number} length
 * @param {ReadableStream<Uint8Array<ArrayBuffer>>} stream
 * @returns {Source}
 */
function streamSource(length, stream) {
  const reader = stream.getReader();
  const h = new Sha256();
  /** @type {Uint8Array<ArrayBuffer>[]} */
  let chunks = [];
  let start = 0; // the offset of chunks[0][0]
  let held = 0; // bytes in chunks
  let read = 0; // bytes read from the stream
  /** @type {Uint8Array<ArrayBuffer> | null} */
  let spare = null;
  return {
    length,
    async piece(off, end) {
      if (off < start || end > length || end <= off) {
        throw new Error(`cannot send the ciphertext from ${off} to ${end}: ${start} to ${start + held} is held`);
      }
      // Drop what is before off.
      while (chunks.length > 0 && start + chunks[0].length <= off) {
        start += chunks[0].length;
        held -= chunks[0].length;
        chunks.shift();
      }
      if (chunks.length === 0) {
        start = read;
      }
      while (start + held < end) {
        const { done, value } = await reader.read();
        if (done) {
          throw new Error(`the ciphertext ended after ${read} bytes, expected ${length}`);
        }
        read += value.length;
        if (read > length) {
          throw new Error(`the ciphertext is longer than the ${length} bytes expected`);
        }
        h.update(value);
        chunks.push(value);
        held += value.length;
      }
      // One buffer for every piece: fetch copies a body as the request is
      // made (Fetch, "extract a body"), so the next piece may overwrite it.
      if (!spare || spare.length < end - off) {
        spare = new Uint8Array(end - off);
      }
      const out = spare.subarray(0, end - off);
      let k = 0;
      let pos = start;
      for (const c of chunks) {
        const a = Math.max(off - pos, 0);
        const b = Math.min(end - pos, c.length);
        if (b > a) {
          out.set(c.subarray(a, b), k);
          k += b - a;
        }
        pos += c.length;
        if (pos >= end) {
          break;
        }
      }
      return out;
    },
    async digest() {
      if (read !== length) {
        throw new Error(`only ${read} of the ${length} bytes of ciphertext were read`);
      }
      const { done } = await reader.read();
      if (!done) {
        throw new Error(`the ciphertext is longer than the ${length} bytes expected`);
      }
      chunks = [];
      return hex(h.digest());
    },
    cancel(reason) {
      chunks = [];
      reader.cancel(reason).catch(() => {});
    },
  };
}

// upload sends ciphertext to desk through a resumable upload and returns
// the relay's receipt {id, desk, size, sha256, received} after checking its
// size and SHA-256 against what was sent.
//
// Options: api (the API prefix, "/api/v1"), desk, category ("" for none),
// onProgress(confirmedBytes, total), onRetry(attempt, waitMs, err), fetch
// (defaults to globalThis.fetch), signal (an AbortSignal), retries,
// backoffMs, pieceSize (tests), sleep (tests).
//
// ciphertext is the bytes, or {size, stream} as encryptStream gives it: then
// the stream is read as the pieces go out, and cancelled if the upload
// fails.
/**
 * @param {Uint8Array<ArrayBuffer> | import("./seal.js").SealedStream} ciphertext
 * @param {UploadOptions} opts
 * @returns {Promise<StorageReceipt>}
 */
export async function upload(ciphertext, opts) {
  let src;
  if (ciphertext instanceof Uint8Array) {
    if (ciphertext.length === 0) {
      throw new TypeError("ciphertext must be a non-empty Uint8Array");
    }
    src = bytesSource(ciphertext);
  } else if (ciphertext && ciphertext.stream instanceof ReadableStream && isInt(ciphertext.size) && ciphertext.size > 0) {
    src = streamSource(ciphertext.size, ciphertext.stream);
  } else {
    throw new TypeError("ciphertext must be a non-empty Uint8Array or {size, stream}");
  }
  try {
    return await uploadFrom(src, opts);
  } catch (err) {
    src.cancel(err);
    throw err;
  }
}

/**
 * @param {Source} src
 * @param {UploadOptions} opts
 * @returns {Promise<StorageReceipt>}
 */
async function uploadFrom(src, opts) {
  const {
    api = "/api/v1",
    desk,
    category = "",
    onProgress = () => {},
    onRetry = () => {},
    signal,
    retries = RETRIES,
    backoffMs = BACKOFF_MS,
    pieceSize = PIECE_SIZE,
  } = opts;
  const fetchFn = opts.fetch || globalThis.fetch.bind(globalThis);
  const wait = opts.sleep || ((/** @type {number} */ ms) => sleep(ms, signal));
  if (typeof desk !== "string" || desk === "") {
    throw new TypeError("no desk");
  }
  const base = api.replace(/\/+$/, "");
  const length = src.length;
  /** @param {number} attempt */
  const backoff = (attempt) => Math.min(backoffMs * 2 ** attempt, MAX_BACKOFF_MS);

  // againOnTransient asks again, with backoff, after a broken answer.
  /**
   * @template T
   * @param {() => Promise<T>} send
   * @returns {Promise<T>}
   */
  const againOnTransient = async (send) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        if (!transient(err) || attempt >= retries) {
          throw err;
        }
        const ms = backoff(attempt);
        onRetry(attempt + 1, ms, err);
        await wait(ms);
      }
    }
  };

  // Creating an upload is asked again after a broken answer: an upload
  // made by an attempt whose answer was lost holds no bytes and expires.
  const st = await againOnTransient(() =>
    request(fetchFn, "POST", `${base}/desks/${encodeURIComponent(desk)}/uploads`, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ category, length }),
      signal,
    }),
  );
  const token = st.upload;
  if (typeof token !== "string" || token === "") {
    throw new Error("relay sent no upload token");
  }
  const tokenPath = `${base}/uploads/${encodeURIComponent(token)}`;
  let piece = pieceSize;
  if (isInt(st.max_piece) && st.max_piece > 0) {
    piece = Math.min(piece, st.max_piece);
  }
  if (isInt(st.length) && st.length !== length) {
    throw new Error(`relay expects ${st.length} bytes, not ${length}`);
  }
  let off = checkOffset(st.offset ?? 0, "offset");
  let confirmed = off;
  onProgress(confirmed, length);

  let attempt = 0;
  while (off < length) {
    const end = Math.min(off + piece, length);
    try {
      const res = await request(fetchFn, "PATCH", tokenPath, {
        headers: { "Content-Type": "application/octet-stream", "Upload-Offset": String(off) },
        body: await src.piece(off, end),
        signal,
      });
      const got = checkOffset(res.offset, "offset");
      if (got <= off || got > length) {
        throw new Error(`relay reports offset ${got} after a piece from ${off} to ${end}`);
      }
      off = got;
      confirmed = got;
      attempt = 0;
      onProgress(confirmed, length);
      continue;
    } catch (err) {
      if (!retryable(err) || attempt >= retries) {
        throw err;
      }
      const ms = backoff(attempt);
      attempt++;
      onRetry(attempt, ms, err);
      await wait(ms);
    }
    // Ask where the relay stands; it may have kept part of the piece.
    let cur;
    try {
      const s = await request(fetchFn, "GET", tokenPath, { signal });
      cur = checkOffset(s.offset, "offset");
    } catch (err) {
      // The relay is unreachable or failing for a moment: resend from where
      // we were (an offset_mismatch will tell us better). Any other answer
      // (404: the upload expired) ends the upload.
      if (!(err instanceof RelayError) || !(err.status === 0 || (err.status >= 500 && err.status !== 507))) {
        throw err;
      }
      continue;
    }
    if (cur < confirmed || cur > length) {
      throw new Error(`relay reports offset ${cur}, outside what was sent (${confirmed} to ${length})`);
    }
    off = cur;
    if (cur > confirmed) {
      confirmed = cur;
      onProgress(confirmed, length);
    }
  }

  // Every byte is read (a stream's end checked) before completing. Completion
  // is idempotent (§10.4): ask again after a broken answer.
  const sum = await src.digest();
  const receipt = await againOnTransient(() => request(fetchFn, "POST", `${tokenPath}/complete`, { signal }));
  if (receipt.size !== length || receipt.sha256 !== sum) {
    throw new Error(
      `the relay's receipt does not match what was sent (size ${receipt.size}, expected ${length}; SHA-256 ${receipt.sha256}, expected ${sum})`,
    );
  }
  return /** @type {StorageReceipt} */ (receipt); // size and sha256: just checked
}
