// @ts-check
// The submission page: when the browser can encrypt, the report and its files
// are bundled, padded and encrypted here, and only ciphertext reaches the
// relay. Each report gets a fresh receipt (lib/receipt.js): report.json carries
// the reply recipient and mailbox derived from it, and its 12 words and 45
// digits are shown with the relay's receipt, never sent. Without JavaScript
// (Tor Browser at "Safest") the form posts to the relay, which seals it;
// this script never sends plaintext by itself: the relay-sealed path is only
// offered, visibly, after browser encryption failed.
//
// Every text shown comes from the page's #amana-text, the relay or the user,
// and is set with textContent, never as HTML. DOM contract:
// relay/web/templates/layout.html.

import { streamBundle, submittedAt, SEALED_BY_CLIENT, CLIENT_BROWSER } from "../lib/bundle.js";
import { available, encryptStream, stanzaType } from "../lib/seal.js";
import { TooLarge, fileType, sealedSize } from "../lib/size.js";
import { upload, RelayError } from "../lib/upload.js";
import { newReceipt } from "../lib/receipt.js";
import { routeRecipients } from "../lib/route.js";
import {
  readJSON,
  loadText,
  apiPath,
  statusLine,
  progressBar,
  progressText,
  setText,
  showScriptMode,
  cryptoTrouble,
  showCryptoTrouble,
  DEFAULT_SIZE_TEXT,
  DEFAULT_CRYPTO_TEXT,
  formatWhen,
} from "./ui.js";

/** @typedef {import("../lib/receipt.js").Wordlist} Wordlist */
/** @typedef {import("../lib/receipt.js").Receipt} Receipt */
/** @typedef {import("../lib/bundle.js").Report} Report */

export const DEFAULT_TEXT = {
  encrypting: "Encrypting in your browser…",
  uploading: "Sending the encrypted report…",
  retrying: "The connection broke; trying again…",
  done: "Your report was received.",
  failed: "Encryption failed.",
  upload_failed: "Sending failed.",
  nothing_sent: "Nothing was sent.",
  receipt_title: "Receipt",
  receipt_id: "Technical ID",
  receipt_sha256: "SHA-256",
  receipt_received: "Received",
  receipt_keep: "These identify what the relay stored; they are not your receipt.",
  receipt_technical: "Technical details",
  receipt_first: "words",
  receipt_words_label: "As 12 words",
  receipt_digits_label: "As 45 digits",
  too_large: "Your report is too large for this desk. Remove some files and try again. Nothing was sent.",
  offer_server:
    "You can instead send the report to the relay unencrypted over Tor, and the relay encrypts it: the relay then sees its contents.",
  ...DEFAULT_SIZE_TEXT,
  ...DEFAULT_CRYPTO_TEXT,
};

/**
 * A desk as #amana-desk describes it.
 * @typedef {object} Desk
 * @property {string} desk the desk's ID
 * @property {string} api the same-origin API path
 * @property {Record<string, unknown>} routes recipients by category
 * @property {unknown} default_route the category a report without one goes to, "" for every handler
 * @property {number} maxBytes the largest sealed report the relay takes, 0 for no limit known
 */

/**
 * The page's state: its nodes, its strings and whether a submission runs.
 * @typedef {object} DeskPage
 * @property {Document} doc
 * @property {HTMLFormElement} form
 * @property {Desk} desk
 * @property {Wordlist} words
 * @property {typeof DEFAULT_TEXT} T
 * @property {HTMLButtonElement | null} send
 * @property {HTMLButtonElement | null} sendServer
 * @property {HTMLElement | null} status
 * @property {import("./ui.js").Say} say
 * @property {import("./ui.js").Progress} progress
 * @property {boolean} busy
 */

/**
 * A report being sealed in the browser, ready to upload: its ciphertext is
 * a stream that reads the files again and encrypts them as it is read.
 * @typedef {object} Sealed
 * @property {import("../lib/seal.js").SealedStream} ciphertext
 * @property {string} category
 * @property {Receipt} receipt
 */

/**
 * loadDesk reads and checks #amana-desk. The API must be on the page's own
 * origin: the relay sends no CORS headers, and the page talks to nobody else.
 * @param {Document} doc
 * @param {Location} loc
 * @returns {Desk | null}
 */
function loadDesk(doc, loc) {
  const d = /** @type {{desk?: unknown, routes?: unknown, default_route?: unknown, api?: unknown, max_bytes?: unknown} | null} */ (
    readJSON(doc, "amana-desk")
  );
  if (!d || typeof d !== "object" || typeof d.desk !== "string" || d.desk === "") {
    return null;
  }
  if (!d.routes || typeof d.routes !== "object") {
    return null;
  }
  const api = apiPath(d.api, loc);
  if (api === null) {
    return null;
  }
  const max = Number.isSafeInteger(d.max_bytes) && /** @type {number} */ (d.max_bytes) > 0 ? /** @type {number} */ (d.max_bytes) : 0;
  return {
    desk: d.desk,
    api,
    routes: /** @type {Record<string, unknown>} */ (d.routes),
    default_route: d.default_route ?? "",
    maxBytes: max,
  };
}

const ANSWER_PREFIX = "f.";

/**
 * readForm collects the report from the form, in the order the browser
 * itself would submit it: answers are the non-empty values of the "f.ID"
 * fields, one answer per value (a checkbox group can give several), in
 * document order, as the relay does for the no-JavaScript path.
 * @param {HTMLFormElement} form
 * @param {Desk} desk
 * @param {Date} [now]
 * @returns {{report: Report, files: File[]}}
 */
function readForm(form, desk, now = new Date()) {
  const data = new FormData(form);
  /** @type {Array<{field: string, value: string}>} */
  const answers = [];
  /** @type {File[]} */
  const files = [];
  for (const [name, value] of data) {
    if (name === "files") {
      // An empty file input submits one nameless, empty file: skip it.
      if (typeof value !== "string" && !(value.name === "" && value.size === 0)) {
        files.push(value);
      }
      continue;
    }
    if (name.startsWith(ANSWER_PREFIX) && typeof value === "string" && value !== "") {
      answers.push({ field: name.slice(ANSWER_PREFIX.length), value });
    }
  }
  /** @param {string} k */
  const str = (k) => {
    const v = data.get(k);
    return typeof v === "string" ? v : "";
  };
  const report = {
    schema: 1,
    desk: desk.desk,
    category: str("category"),
    language: str("lang"),
    submitted: submittedAt(now),
    sealed_by: SEALED_BY_CLIENT,
    client: CLIENT_BROWSER,
    answers,
    attachments: [],
    reply_recipient: "",
    mailbox: "",
  };
  return { report, files };
}

/**
 * initDesk wires the submission page when the browser can encrypt;
 * otherwise the page stays in its no-JavaScript mode.
 * @param {Wordlist} words
 * @param {Window} win
 */
export function initDesk(words, win) {
  const doc = win.document;
  const form = /** @type {HTMLFormElement | null} */ (doc.getElementById("submit-form"));
  const desk = loadDesk(doc, win.location);
  const ok = available(win);
  if (form && desk && !ok) {
    // JavaScript is on: say why the page does not encrypt.
    showCryptoTrouble(doc, cryptoTrouble(win, ok), loadText(doc, DEFAULT_TEXT));
  }
  if (!form || !desk || !ok) {
    return; // the page stays in its no-JavaScript mode
  }
  const status = doc.getElementById("status");
  /** @type {DeskPage} */
  const p = {
    doc,
    form,
    desk,
    words,
    T: loadText(doc, DEFAULT_TEXT),
    send: /** @type {HTMLButtonElement | null} */ (doc.getElementById("send")),
    sendServer: /** @type {HTMLButtonElement | null} */ (doc.getElementById("send-server")),
    status,
    say: statusLine(status),
    progress: progressBar(/** @type {HTMLProgressElement | null} */ (doc.getElementById("progress")), doc.getElementById("progress-text")),
    busy: false,
  };
  form.addEventListener("submit", (ev) => onSubmit(p, ev));
  showScriptMode(doc);
}

/**
 * onSubmit seals and sends the report, unless the submitter chose the
 * relay-sealed path once it was offered: then the browser submits the form
 * itself.
 * @param {DeskPage} p
 * @param {SubmitEvent} ev
 */
function onSubmit(p, ev) {
  if (ev.submitter && p.sendServer && ev.submitter === p.sendServer && !p.sendServer.hidden) {
    return;
  }
  ev.preventDefault();
  if (p.busy) {
    return;
  }
  p.busy = true;
  if (p.send) {
    p.send.disabled = true;
  }
  submit(p).catch((err) => {
    // Unexpected: nothing has been sent unless upload() was reached, and it
    // reports its own failures.
    console.error(err);
    p.say(p.T.failed);
    finish(p);
  });
}

/**
 * submit seals the report and, only if that worked, sends it.
 * @param {DeskPage} p
 */
async function submit(p) {
  let sealed;
  try {
    sealed = await seal(p);
  } catch (err) {
    sealFailed(p, err);
    return;
  }
  await send(p, sealed);
}

/**
 * seal reads the form, hashes the files (the first pass over them: the
 * progress bar runs once over their bytes) and sets up the bundle's
 * encryption with a fresh receipt. Nothing is sent yet: the second pass,
 * which reads the files again through the encryption, runs as the upload
 * reads the ciphertext. It throws TooLarge when the relay would refuse the
 * result.
 * @param {DeskPage} p
 * @returns {Promise<Sealed>}
 */
async function seal(p) {
  const { T, desk } = p;
  p.say(T.encrypting);
  p.progress.set(null);
  const { report, files } = readForm(p.form, desk);
  const category = report.category;
  const recipients = routeRecipients(desk, category);
  // The receipt: its reply key follows the desk's keys, post-quantum
  // when the handlers' are.
  const receipt = await newReceipt();
  const postQuantum = recipients.every((r) => stanzaType(r) === "mlkem768x25519");
  report.reply_recipient = await receipt.replyRecipient(postQuantum);
  report.mailbox = await receipt.mailboxId();
  if (desk.maxBytes && sealedSize(report, files, recipients) > desk.maxBytes) {
    throw new TooLarge();
  }
  const start = Date.now();
  const bundle = await streamBundle(
    report,
    files.map((f) => ({ name: f.name, type: fileType(f), blob: f })),
    { onHash: (n, total) => p.progress.set(total > 0 ? n / total : null, progressText(n, total, Date.now() - start, T)) },
  );
  const ciphertext = await encryptStream(bundle.stream(), bundle.size, recipients);
  if (desk.maxBytes && ciphertext.size > desk.maxBytes) {
    ciphertext.stream.cancel().catch(() => {});
    throw new TooLarge();
  }
  return { ciphertext, category, receipt };
}

/**
 * sealFailed says that nothing was sent and, unless the report is only too
 * large, offers the relay-sealed path.
 * @param {DeskPage} p
 * @param {unknown} err
 */
function sealFailed(p, err) {
  const { T } = p;
  p.progress.hide();
  if (err instanceof TooLarge) {
    p.say(T.too_large);
  } else {
    console.error(err);
    p.say(T.failed, T.nothing_sent, p.sendServer ? T.offer_server : "");
    offerServer(p);
  }
  finish(p);
}

/**
 * send uploads the sealed report and shows the relay's receipt.
 * @param {DeskPage} p
 * @param {Sealed} sealed
 */
async function send(p, sealed) {
  const { T, desk } = p;
  try {
    p.say(T.uploading);
    const total = sealed.ciphertext.size;
    p.progress.set(0, progressText(0, total, 0, T));
    const start = Date.now();
    const stored = await upload(sealed.ciphertext, {
      api: desk.api,
      desk: desk.desk,
      category: sealed.category,
      onProgress: (n, total) => {
        p.progress.set(n / total, progressText(n, total, Date.now() - start, T));
        p.say(T.uploading);
      },
      onRetry: () => p.say(T.retrying),
    });
    showReceipt(p, stored, sealed.receipt.words(p.words), sealed.receipt.digits());
  } catch (err) {
    console.error(err);
    p.progress.hide();
    // The relay's message and hint are in English (§10.1).
    if (err instanceof RelayError && err.status !== 0) {
      p.say(T.upload_failed, err.relayMessage, err.hint);
    } else {
      p.say(T.upload_failed, err instanceof Error ? err.message : "");
    }
    finish(p);
  }
}

/**
 * offerServer shows the second button, which has the relay seal the report.
 * @param {DeskPage} p
 */
function offerServer(p) {
  const { sendServer, status } = p;
  if (sendServer) {
    sendServer.hidden = false;
    sendServer.disabled = false;
    if (status && status.id) {
      sendServer.setAttribute("aria-describedby", status.id);
    }
  }
}

/**
 * finish lets the submitter try again.
 * @param {DeskPage} p
 */
function finish(p) {
  p.busy = false;
  if (p.send) {
    p.send.disabled = false;
  }
}

/**
 * showReceipt shows the receipt's words and digits with the relay's
 * storage receipt, and clears the form.
 * @param {DeskPage} p
 * @param {import("../lib/upload.js").StorageReceipt} stored
 * @param {string} receiptWords
 * @param {string} receiptDigits
 */
function showReceipt(p, stored, receiptWords, receiptDigits) {
  const { doc, form } = p;
  const section = ensureReceipt(doc, form, p.T);
  /** @type {Array<[string, unknown]>} */
  const fields = [
    ["receipt-words", receiptWords],
    ["receipt-digits", receiptDigits],
    ["receipt-id", stored.id],
    ["receipt-sha256", stored.sha256],
    ["receipt-received", formatWhen(stored.received)],
  ];
  for (const [id, v] of fields) {
    setText(doc, id, v);
  }
  // Nothing of the report stays in the page (nor in the browser's form
  // restore on Back).
  form.reset();
  form.hidden = true;
  p.progress.complete();
  p.say(p.T.done);
  section.hidden = false;
  section.tabIndex = -1;
  section.focus();
  p.busy = false;
}

/**
 * ensureReceipt returns #receipt, building it from the page's strings if the
 * page has none or lacks its fields.
 * @param {Document} doc
 * @param {HTMLFormElement} form
 * @param {typeof DEFAULT_TEXT} T
 * @returns {HTMLElement}
 */
function ensureReceipt(doc, form, T) {
  let section = doc.getElementById("receipt");
  if (!section) {
    section = doc.createElement("section");
    section.id = "receipt";
    section.hidden = true;
    const h = doc.createElement("h2");
    h.textContent = T.receipt_title;
    section.append(h);
    form.parentNode?.insertBefore(section, form.nextSibling);
  }
  receiptForms(doc, section, T);
  receiptFields(doc, section, T);
  return section;
}

/**
 * receiptForms adds to section the receipt's words and digits if the page
 * lacks them (without them the receipt could never open the replies), the
 * one that suits the page's language first, each isolated left-to-right.
 * @param {Document} doc
 * @param {HTMLElement} section
 * @param {typeof DEFAULT_TEXT} T
 */
function receiptForms(doc, section, T) {
  /** @type {Array<[string, string, string]>} */
  const forms = [
    ["receipt-words", "words", T.receipt_words_label],
    ["receipt-digits", "words digits", T.receipt_digits_label],
  ];
  if (T.receipt_first === "digits") {
    forms.reverse();
  }
  for (const [id, className, label] of forms) {
    if (doc.getElementById(id)) {
      continue;
    }
    const l = doc.createElement("p");
    l.className = "receipt-label";
    l.textContent = label;
    const v = doc.createElement("p");
    v.id = id;
    v.className = className;
    v.dir = "ltr";
    v.translate = false;
    section.append(l, v);
  }
}

/**
 * receiptFields adds to section the fields of the relay's receipt the page
 * lacks, with the advice to keep it.
 * @param {Document} doc
 * @param {HTMLElement} section
 * @param {typeof DEFAULT_TEXT} T
 */
function receiptFields(doc, section, T) {
  /** @type {HTMLElement | null} */
  let dl = null;
  for (const [id, label] of [
    ["receipt-id", T.receipt_id],
    ["receipt-sha256", T.receipt_sha256],
    ["receipt-received", T.receipt_received],
  ]) {
    if (doc.getElementById(id)) {
      continue;
    }
    if (!dl) {
      const details = doc.createElement("details");
      const summary = doc.createElement("summary");
      summary.textContent = T.receipt_technical;
      dl = doc.createElement("dl");
      details.append(summary, dl);
      section.append(details);
    }
    const dt = doc.createElement("dt");
    dt.textContent = label;
    const dd = doc.createElement("dd");
    dd.id = id;
    dd.dir = "ltr";
    dl.append(dt, dd);
  }
  if (dl) {
    const keep = doc.createElement("p");
    keep.textContent = T.receipt_keep;
    dl.after(keep);
  }
}
