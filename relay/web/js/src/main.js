// The submission page: when the browser can encrypt, the report and its files
// are bundled, padded and encrypted here, and only ciphertext reaches the
// relay. Each report gets a fresh receipt (receipt.js): report.json carries
// the reply recipient and mailbox derived from it, and its 12 words are shown
// with the relay's receipt, never sent. The check page (check.js) is wired
// from here too. Without JavaScript (Tor Browser at "Safest") the form posts to the
// relay, which seals it; this script never sends plaintext by itself: the
// relay-sealed path is only offered, visibly, after browser encryption failed.
//
// Every text shown comes from the page's #amana-text, the relay or the user,
// and is set with textContent, never as HTML.

import { writeBundle, submittedAt, SEALED_BY_CLIENT } from "./bundle.js";
import { available, encrypt, stanzaType } from "./seal.js";
import { TooLarge, readJSON, loadText, apiPath, fileType, sealedSize } from "./page.js";
import { upload, RelayError } from "./upload.js";
import { newReceipt } from "./receipt.js";
import { wordlist } from "./words.js";
import { initCheck } from "./check.js";

const DEFAULT_TEXT = {
  encrypting: "Encrypting in your browser…",
  uploading: "Sending the encrypted report…",
  retrying: "The connection broke; trying again…",
  done: "Your report was received.",
  failed: "Encryption failed.",
  upload_failed: "Sending failed.",
  nothing_sent: "Nothing was sent.",
  receipt_title: "Receipt",
  receipt_id: "Receipt ID",
  receipt_sha256: "SHA-256",
  receipt_received: "Received",
  receipt_keep: "Keep this receipt somewhere safe.",
  too_large: "Your report is too large for this desk. Remove some files and try again. Nothing was sent.",
  offer_server:
    "You can instead send the report to the relay unencrypted over Tor, and the relay encrypts it: the relay then sees its contents.",
};

// loadDesk reads and checks #amana-desk. The API must be on the page's own
// origin: the relay sends no CORS headers, and the page talks to nobody else.
function loadDesk() {
  const d = readJSON(document, "amana-desk");
  if (!d || typeof d !== "object" || typeof d.desk !== "string" || d.desk === "") {
    return null;
  }
  if (!d.routes || typeof d.routes !== "object") {
    return null;
  }
  const api = apiPath(d.api, location);
  if (api === null) {
    return null;
  }
  const max = Number.isSafeInteger(d.max_bytes) && d.max_bytes > 0 ? d.max_bytes : 0;
  return { desk: d.desk, api, routes: d.routes, maxBytes: max };
}

// recipientsFor returns the recipients routed for a category ("" for none).
function recipientsFor(desk, category) {
  if (!Object.prototype.hasOwnProperty.call(desk.routes, category)) {
    throw new Error(`no route for category ${JSON.stringify(category)}`);
  }
  const r = desk.routes[category];
  if (!Array.isArray(r) || r.length === 0 || r.some((x) => typeof x !== "string")) {
    throw new Error(`bad route for category ${JSON.stringify(category)}`);
  }
  return r;
}

const ANSWER_PREFIX = "f.";

// readForm collects the report from the form, in the order the browser
// itself would submit it: answers are the non-empty values of the "f.ID"
// fields, one answer per value (a checkbox group can give several), in
// document order, as the relay does for the no-JavaScript path.
function readForm(form, desk, now = new Date()) {
  const data = new FormData(form);
  const answers = [];
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
    answers,
    attachments: [],
    reply_recipient: "",
    mailbox: "",
  };
  return { report, files };
}

function init() {
  const words = wordlist();
  if (document.getElementById("check-form")) {
    initCheck(words, window);
    return;
  }
  const form = document.getElementById("submit-form");
  const desk = loadDesk();
  if (!form || !desk || !available(window)) {
    return; // the page stays in its no-JavaScript mode
  }
  const T = loadText(document, DEFAULT_TEXT);
  const $ = (id) => document.getElementById(id);
  const send = $("send");
  const sendServer = $("send-server");
  const status = $("status");
  const progress = $("progress");
  let busy = false;

  const say = (...parts) => {
    if (status) {
      status.textContent = parts.filter((p) => typeof p === "string" && p !== "").join(" ");
    }
  };
  const setProgress = (fraction) => {
    if (!progress) {
      return;
    }
    progress.hidden = false;
    if (fraction === null) {
      progress.removeAttribute("value"); // indeterminate
      progress.textContent = "";
    } else {
      const pct = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
      progress.value = pct;
      progress.textContent = `${pct}%`;
    }
  };
  const offerServer = () => {
    if (sendServer) {
      sendServer.hidden = false;
      sendServer.disabled = false;
      if (status && status.id) {
        sendServer.setAttribute("aria-describedby", status.id);
      }
    }
  };
  const finish = () => {
    busy = false;
    if (send) {
      send.disabled = false;
    }
  };

  form.addEventListener("submit", (ev) => {
    // The relay-sealed path, only once it has been offered and chosen: the
    // browser submits the form itself.
    if (ev.submitter && sendServer && ev.submitter === sendServer && !sendServer.hidden) {
      return;
    }
    ev.preventDefault();
    if (busy) {
      return;
    }
    busy = true;
    if (send) {
      send.disabled = true;
    }
    submit().catch((err) => {
      // Unexpected: nothing has been sent unless upload() was reached, and it
      // reports its own failures.
      console.error(err);
      say(T.failed);
      finish();
    });
  });

  async function submit() {
    let ct;
    let category = "";
    let receipt = null;
    try {
      say(T.encrypting);
      setProgress(null);
      const { report, files } = readForm(form, desk);
      category = report.category;
      const recipients = recipientsFor(desk, category);
      // The receipt: its reply key follows the desk's keys, post-quantum
      // when the handlers' are.
      receipt = await newReceipt();
      const postQuantum = recipients.every((r) => stanzaType(r) === "mlkem768x25519");
      report.reply_recipient = await receipt.replyRecipient(postQuantum);
      report.mailbox = await receipt.mailboxId();
      if (desk.maxBytes && sealedSize(report, files, recipients) > desk.maxBytes) {
        throw new TooLarge();
      }
      const parts = [];
      for (const f of files) {
        parts.push({ name: f.name, type: fileType(f), bytes: new Uint8Array(await f.arrayBuffer()) });
      }
      const bundle = await writeBundle(report, parts);
      parts.length = 0;
      ct = await encrypt(bundle, recipients, { onProgress: (n, total) => setProgress(n / total) });
      if (desk.maxBytes && ct.length > desk.maxBytes) {
        throw new TooLarge();
      }
    } catch (err) {
      if (progress) {
        progress.hidden = true;
      }
      if (err instanceof TooLarge) {
        say(T.too_large);
      } else {
        console.error(err);
        say(T.failed, T.nothing_sent, sendServer ? T.offer_server : "");
        offerServer();
      }
      finish();
      return;
    }

    try {
      say(T.uploading);
      setProgress(0);
      const stored = await upload(ct, {
        api: desk.api,
        desk: desk.desk,
        category,
        onProgress: (n, total) => {
          setProgress(n / total);
          say(T.uploading);
        },
        onRetry: () => say(T.retrying),
      });
      showReceipt(stored, receipt.words(words));
    } catch (err) {
      console.error(err);
      if (progress) {
        progress.hidden = true;
      }
      // The relay's message and hint are in English (§10.1).
      if (err instanceof RelayError && err.status !== 0) {
        say(T.upload_failed, err.relayMessage, err.hint);
      } else {
        say(T.upload_failed, err instanceof Error ? err.message : "");
      }
      finish();
    }
  }

  function showReceipt(receipt, receiptWords) {
    const section = ensureReceipt(T);
    for (const [id, v] of [
      ["receipt-words", receiptWords],
      ["receipt-id", receipt.id],
      ["receipt-sha256", receipt.sha256],
      ["receipt-received", receipt.received],
    ]) {
      const el = $(id);
      if (el) {
        el.textContent = typeof v === "string" ? v : String(v);
      }
    }
    // Nothing of the report stays in the page (nor in the browser's form
    // restore on Back).
    form.reset();
    form.hidden = true;
    if (progress) {
      progress.value = 100;
      progress.hidden = true;
    }
    say(T.done);
    section.hidden = false;
    section.tabIndex = -1;
    section.focus();
    busy = false;
  }

  const modeJS = $("mode-js");
  const modeServer = $("mode-server");
  if (modeJS) {
    modeJS.hidden = false;
  }
  if (modeServer) {
    modeServer.hidden = true;
  }
}

// ensureReceipt returns #receipt, building it from the page's strings if the
// page has none or lacks its fields.
function ensureReceipt(T) {
  let section = document.getElementById("receipt");
  if (!section) {
    section = document.createElement("section");
    section.id = "receipt";
    section.hidden = true;
    const h = document.createElement("h2");
    h.textContent = T.receipt_title;
    section.append(h);
    const form = document.getElementById("submit-form");
    form.parentNode.insertBefore(section, form.nextSibling);
  }
  if (!document.getElementById("receipt-words")) {
    // Without its words, the receipt could never open the replies.
    const p = document.createElement("p");
    p.id = "receipt-words";
    p.className = "words";
    section.append(p);
  }
  let dl = null;
  for (const [id, label] of [
    ["receipt-id", T.receipt_id],
    ["receipt-sha256", T.receipt_sha256],
    ["receipt-received", T.receipt_received],
  ]) {
    if (document.getElementById(id)) {
      continue;
    }
    if (!dl) {
      dl = document.createElement("dl");
      section.append(dl);
    }
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.id = id;
    dl.append(dt, dd);
  }
  if (dl) {
    const p = document.createElement("p");
    p.textContent = T.receipt_keep;
    section.append(p);
  }
  return section;
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init, { once: true });
  } else {
    init();
  }
}
