// @ts-check
// The mailbox API of the check page (docs/protocol.md §10.12): a token's
// listing, its replies' ciphertexts, and follow-ups. The token goes in a
// request body or the Amana-Token header, never in a URL.

import { sha256Hex } from "./bundle.js";
import { RelayError, request } from "./upload.js";

/** @typedef {import("./upload.js").RequestOptions} RequestOptions */
/** @typedef {import("./route.js").Route} Route */

/**
 * A reply as the mailbox lists it: received is the relay's RFC 3339 time.
 * @typedef {{id: string, size: number, sha256: string, received?: unknown}} ReplyInfo
 */

/**
 * A mailbox listing: the route the relay says the conversation has (desk
 * "" for none), its replies, and how many days it is kept.
 * @typedef {{desk: string, category: string, replies: ReplyInfo[], keepDays: number}} Mailbox
 */

/** @param {unknown} v @returns {v is ReplyInfo} */
function isReplyInfo(v) {
  if (v === null || typeof v !== "object") {
    return false;
  }
  const r = /** @type {Record<string, unknown>} */ (v);
  return typeof r.id === "string" && r.id !== "" && Number.isSafeInteger(r.size) && typeof r.sha256 === "string";
}
// fetchRelay sends one request to the relay and returns the answer's bytes,
// or throws a RelayError ({"error": {code, message, hint}}; status 0 when
// the relay cannot be reached).
/**
 * @param {string} url
 * @param {RequestOptions} init
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
async function fetchRelay(url, { headers, body }) {
  let resp;
  /** @type {Uint8Array<ArrayBuffer>} */
  let data;
  try {
    resp = await fetch(url, {
      method: "POST",
      headers,
      body,
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
      referrerPolicy: "no-referrer",
    });
    data = new Uint8Array(await resp.arrayBuffer());
  } catch (err) {
    throw new RelayError(0, null, err);
  }
  if (resp.status < 200 || resp.status >= 300) {
    /** @type {unknown} */
    let json = null;
    try {
      json = JSON.parse(new TextDecoder().decode(data));
    } catch {
      json = null;
    }
    throw new RelayError(resp.status, json);
  }
  return data;
}

// fetchJSON posts to the relay and returns its JSON answer.
/** @type {(url: string, init: RequestOptions) => Promise<Record<string, unknown>>} */
const fetchJSON = (url, init) => request(globalThis.fetch.bind(globalThis), "POST", url, init);

/** @type {(token: string) => RequestOptions} */
const tokenBody = (token) => ({ headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });

// lookUp lists the mailbox of a token: {desk, replies: [{id, size, sha256,
// received}], keep_days}.
/** @param {string} api @param {string} token @returns {Promise<Mailbox>} */
export async function lookUp(api, token) {
  const box = await fetchJSON(`${api}/mailbox`, tokenBody(token));
  /** @type {unknown[]} */
  const listed = Array.isArray(box.replies) ? box.replies : [];
  const replies = listed.filter(isReplyInfo);
  return {
    desk: typeof box.desk === "string" ? box.desk : "",
    category: typeof box.category === "string" ? box.category : "",
    replies,
    keepDays: typeof box.keep_days === "number" && Number.isSafeInteger(box.keep_days) ? box.keep_days : 0,
  };
}

// fetchReply downloads one reply's ciphertext and checks it against the
// listing.
/**
 * @param {string} api
 * @param {string} token
 * @param {ReplyInfo} info
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function fetchReply(api, token, info) {
  const ct = await fetchRelay(`${api}/mailbox/replies/${encodeURIComponent(info.id)}`, tokenBody(token));
  if (ct.length !== info.size || (await sha256Hex(ct)) !== info.sha256) {
    throw new Error(`reply ${info.id} is not what the mailbox lists`);
  }
  return ct;
}

// postFollowup sends a follow-up's ciphertext and returns the relay's
// receipt, checked against what was sent.
/**
 * @param {string} api
 * @param {string} token
 * @param {Route} target
 * @param {Uint8Array<ArrayBuffer>} ciphertext
 * @returns {Promise<Record<string, unknown>>}
 */
export async function postFollowup(api, token, target, ciphertext) {
  const q = `desk=${encodeURIComponent(target.desk)}&category=${encodeURIComponent(target.category)}`;
  const receipt = await fetchJSON(`${api}/mailbox/followups?${q}`, {
    headers: { "Content-Type": "application/octet-stream", "Amana-Token": token },
    body: ciphertext,
  });
  const sum = await sha256Hex(ciphertext);
  if (receipt.size !== ciphertext.length || receipt.sha256 !== sum) {
    throw new Error("the relay's receipt does not match what was sent");
  }
  return receipt;
}
