// The check page (relay/web/templates/layout.html, "check"): the submitter
// types their receipt; this page derives the lookup token and the reply key
// from it, fetches the desk's replies, decrypts and verifies them here, and
// sends follow-ups encrypted here. The receipt's words never leave the page:
// only the derived token is sent, in a request body or the Amana-Token
// header, never in a URL.
//
// Every text shown comes from the page's #amana-text, the relay, a reply or
// the user, and is set with textContent, never as HTML.

import { Decrypter } from "age-encryption";
import { writeBundle, readBundle, submittedAt, sha256Hex, SEALED_BY_CLIENT } from "./bundle.js";
import { available, encrypt } from "./seal.js";
import { TooLarge, readJSON, loadText, apiPath, fileType, sealedSize } from "./page.js";
import { parseReceipt } from "./receipt.js";
import { FollowupRefused, followupRecipients, replySigner, replyBelongs } from "./route.js";
import { RelayError, request } from "./upload.js";

// MAX_FOLLOWUP bounds a follow-up's ciphertext (relay/api: MaxReply): the
// relay reads it whole.
export const MAX_FOLLOWUP = 16 << 20;

export const DEFAULT_CHECK_TEXT = {
  checking: "Opening the replies…",
  receipt_bad: "This receipt is not valid: a word is misspelled or missing. Check the 12 words and try again.",
  no_replies: "No replies yet. They appear here when the desk answers.",
  replies_title: "Replies from the desk",
  reply_from: "From the desk ({name}), received {when}",
  reply_unverified: "WARNING: this reply is not signed by a handler of the desk. Do not trust it.",
  reply_files: "Files attached to this reply:",
  followup_sent: "Your message was received. The desk will see it with your report.",
  mailbox_keep: "A conversation is kept for {days} days after its last message.",
  encrypting: "Encrypting in your browser…",
  uploading: "Sending the encrypted report…",
  failed: "Encryption failed.",
  upload_failed: "Sending failed.",
  nothing_sent: "Nothing was sent.",
  too_large: "Your message is too large. Remove some files and try again. Nothing was sent.",
  busy: "This server is busy. Please wait a minute and try again.",
  followup_choose: "Choose who should receive your message: where you sent your report. Nothing was sent.",
  followup_relay_disagrees:
    "This server says your conversation belongs to “{route}”, not to what this page would send it to. If that is where you sent your report, choose it and send again; otherwise do not send, and tell the desk another way. Nothing was sent.",
  followup_reply_mismatch:
    "The desk's latest reply does not match this conversation, or names someone who is not one of the desk's handlers, so this page will not send to it. Nothing was sent. Tell the desk another way.",
};

const hasOwn = (o, k) => o !== null && typeof o === "object" && Object.prototype.hasOwnProperty.call(o, k);

export { FollowupRefused, followupRecipients } from "./route.js";

// followupReport is report.json of a follow-up, before writeBundle fills
// schema and attachments.
async function followupReport(receipt, target, language, text, now) {
  return {
    schema: 1,
    desk: target.desk,
    category: target.category,
    language,
    submitted: submittedAt(now),
    sealed_by: SEALED_BY_CLIENT,
    answers: [{ field: "message", value: text }],
    attachments: [],
    reply_recipient: await receipt.replyRecipient(target.postQuantum),
    mailbox: await receipt.mailboxId(),
  };
}

// buildFollowup makes a follow-up: report.json with the receipt's reply
// recipient and mailbox, the bundle, encrypted to target. files are either
// {name, type, bytes} or File objects (read only after the size check).
// Throws TooLarge past MAX_FOLLOWUP.
export async function buildFollowup({ receipt, target, language = "", text, files = [], now = new Date(), onProgress }) {
  const report = await followupReport(receipt, target, language, text, now);
  // Blob has a bytes() method in recent browsers: only a Uint8Array member
  // counts as given bytes.
  const given = (f) => (f.bytes instanceof Uint8Array ? f.bytes : null);
  const meta = files.map((f) => ({ name: f.name, type: fileType(f), size: given(f) ? given(f).length : f.size }));
  if (sealedSize(report, meta, target.recipients) > MAX_FOLLOWUP) {
    throw new TooLarge();
  }
  const parts = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    parts.push({ name: meta[i].name, type: meta[i].type, bytes: given(f) || new Uint8Array(await f.arrayBuffer()) });
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
export async function openReply(ciphertext, identities, desks, mailboxId) {
  const d = new Decrypter();
  for (const id of identities) {
    d.addIdentity(id);
  }
  const plain = await d.decrypt(ciphertext);
  const { report, attachments } = await readBundle(plain);
  const signer = replySigner(report, desks);
  return { report, attachments, signer, belongs: signer !== null && replyBelongs(report, mailboxId) };
}

// fetchRelay sends one request to the relay and returns the answer's bytes,
// or throws a RelayError ({"error": {code, message, hint}}; status 0 when
// the relay cannot be reached).
async function fetchRelay(url, { headers, body }) {
  let resp;
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
const fetchJSON = (url, init) => request(globalThis.fetch.bind(globalThis), "POST", url, init);

const tokenBody = (token) => ({ headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });

// lookUp lists the mailbox of a token: {desk, replies: [{id, size, sha256,
// received}], keep_days}.
export async function lookUp(api, token) {
  const box = await fetchJSON(`${api}/mailbox`, tokenBody(token));
  const replies = Array.isArray(box.replies)
    ? box.replies.filter(
        (r) => r && typeof r.id === "string" && r.id !== "" && Number.isSafeInteger(r.size) && typeof r.sha256 === "string",
      )
    : [];
  return {
    desk: typeof box.desk === "string" ? box.desk : "",
    category: typeof box.category === "string" ? box.category : "",
    replies,
    keepDays: Number.isSafeInteger(box.keep_days) ? box.keep_days : 0,
  };
}

// fetchReply downloads one reply's ciphertext and checks it against the
// listing.
export async function fetchReply(api, token, info) {
  const ct = await fetchRelay(`${api}/mailbox/replies/${encodeURIComponent(info.id)}`, tokenBody(token));
  if (ct.length !== info.size || (await sha256Hex(ct)) !== info.sha256) {
    throw new Error(`reply ${info.id} is not what the mailbox lists`);
  }
  return ct;
}

// postFollowup sends a follow-up's ciphertext and returns the relay's
// receipt, checked against what was sent.
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

// formatWhen shows an RFC 3339 time as the no-JavaScript page does:
// "2006-01-02 15:00 UTC".
export function formatWhen(s) {
  const t = new Date(s);
  if (typeof s !== "string" || Number.isNaN(t.getTime())) {
    return String(s);
  }
  const p = (n) => String(n).padStart(2, "0");
  return `${String(t.getUTCFullYear()).padStart(4, "0")}-${p(t.getUTCMonth() + 1)}-${p(t.getUTCDate())} ${p(t.getUTCHours())}:00 UTC`;
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (hasOwn(values, k) ? values[k] : m));
}

// loadCheck reads and checks #amana-check. The API must be on the page's own
// origin.
function loadCheck(doc) {
  const d = readJSON(doc, "amana-check");
  if (!d || typeof d !== "object" || !d.desks || typeof d.desks !== "object") {
    return null;
  }
  const api = apiPath(d.api, location);
  if (api === null) {
    return null;
  }
  const desks = new Map();
  for (const [id, v] of Object.entries(d.desks)) {
    if (!v || typeof v !== "object") {
      continue;
    }
    desks.set(id, {
      handlers: Array.isArray(v.handlers) ? v.handlers.filter((h) => typeof h === "string") : [],
      routes: v.routes && typeof v.routes === "object" ? v.routes : {},
      pq: v.pq === true,
    });
  }
  return { api, desks };
}

// initCheck wires the check page when the browser can do the work itself;
// otherwise the page stays in its no-JavaScript mode, where the form posts
// the receipt to the relay.
export function initCheck(words, win = window) {
  const doc = win.document;
  const $ = (id) => doc.getElementById(id);
  const checkForm = $("check-form");
  const data = loadCheck(doc);
  if (!checkForm || !data || !win.isSecureContext || !available(win)) {
    return;
  }
  const T = loadText(doc, DEFAULT_CHECK_TEXT);
  const receiptField = $("receipt");
  const status = $("status");
  const thread = $("thread");
  const followup = $("followup");
  const followupForm = $("followup-form");
  const routeField = $("followup-route-field");
  const routeSelect = $("followup-route");
  const followupText = $("followup-text");
  const followupFiles = $("followup-files");
  const sendButton = $("followup-send");
  const checkButton = $("check");
  const progress = $("progress");
  const langInput = checkForm.querySelector('input[name="lang"]');
  const language = langInput && typeof langInput.value === "string" ? langInput.value : doc.documentElement.lang || "";

  // What the last check found; replaced by the next one.
  let session = null;
  let blobURLs = [];
  let busy = false;
  const allRoutes = routeSelect ? Array.from(routeSelect.options).map((o) => [o.value, o.textContent]) : [];

  const say = (...parts) => {
    if (status) {
      status.textContent = parts.filter((p) => typeof p === "string" && p !== "").join(" ");
    }
  };
  const setProgress = (fraction) => {
    if (!progress) {
      return;
    }
    progress.hidden = fraction === false;
    if (fraction === null) {
      progress.removeAttribute("value");
      progress.textContent = "";
    } else if (fraction !== false) {
      const pct = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
      progress.value = pct;
      progress.textContent = `${pct}%`;
    }
  };
  const el = (tag, text, attrs = {}) => {
    const e = doc.createElement(tag);
    if (text !== undefined) {
      e.textContent = text;
    }
    for (const [k, v] of Object.entries(attrs)) {
      e.setAttribute(k, v);
    }
    return e;
  };
  const relayFailure = (err, lead) => {
    if (err instanceof RelayError && err.status === 429) {
      return [T.busy];
    }
    if (err instanceof RelayError && err.status === 413) {
      return [T.too_large];
    }
    if (err instanceof RelayError && err.status !== 0) {
      // The relay's message and hint are in English (§10.1); the relay
      // refused, so nothing was stored.
      return [lead, err.relayMessage, err.hint, T.nothing_sent];
    }
    return [lead, err instanceof Error ? err.message : ""];
  };

  const modeJS = $("mode-js");
  const modeServer = $("mode-server");
  if (modeJS) {
    modeJS.hidden = false;
  }
  if (modeServer) {
    modeServer.hidden = true;
  }

  checkForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (busy) {
      return;
    }
    busy = true;
    if (checkButton) {
      checkButton.disabled = true;
    }
    check()
      .catch((err) => {
        console.error(err);
        say(...relayFailure(err, T.upload_failed));
      })
      .finally(() => {
        busy = false;
        if (checkButton) {
          checkButton.disabled = false;
        }
      });
  });

  async function check() {
    // A new check replaces what the last one showed.
    session = null;
    for (const u of blobURLs) {
      URL.revokeObjectURL(u);
    }
    blobURLs = [];
    if (thread) {
      thread.hidden = true;
      thread.replaceChildren();
    }
    if (followup) {
      followup.hidden = true;
    }
    let rc;
    try {
      rc = await parseReceipt(receiptField ? receiptField.value : "", words);
    } catch (err) {
      say(T.receipt_bad);
      return;
    }
    say(T.checking);
    const token = await rc.tokenString();
    const mailboxId = await rc.mailboxId();
    const box = await lookUp(data.api, token);
    // The reply key follows the desk's keys. Which desk replied is only
    // known once a reply is open, and the relay's word does not choose it:
    // try both.
    const identities = [await rc.replyIdentity(true), await rc.replyIdentity(false)];
    const opened = [];
    for (const info of box.replies) {
      try {
        const ct = await fetchReply(data.api, token, info);
        opened.push(Object.assign({ info }, await openReply(ct, identities, data.desks, mailboxId)));
      } catch (err) {
        // As the no-JavaScript page does, a reply that cannot be opened is
        // left out.
        console.error(err);
      }
    }
    // The latest reply whose signature verifies decides where follow-ups
    // go, once followupRecipients has checked it belongs here.
    let reply = null;
    for (const r of opened) {
      if (r.signer) {
        reply = r.report;
      }
    }
    session = { receipt: rc, token, mailboxId, mailbox: { desk: box.desk, category: box.category }, reply };
    render(opened, box);
    setUpFollowup();
    say("");
  }

  function render(opened, box) {
    for (const u of blobURLs) {
      URL.revokeObjectURL(u);
    }
    blobURLs = [];
    if (!thread) {
      return;
    }
    thread.replaceChildren();
    if (opened.length === 0) {
      thread.append(el("p", T.no_replies));
    } else {
      thread.append(el("h2", T.replies_title));
    }
    for (const r of opened) {
      const art = el("article", undefined, { class: "reply" });
      const verified = r.signer !== null && r.belongs;
      art.append(el("h3", fill(T.reply_from, { name: verified ? r.signer.name : "?", when: formatWhen(r.info.received) })));
      if (!verified) {
        art.append(el("p", T.reply_unverified, { class: "notice error", role: "alert" }));
      }
      for (const a of r.report.answers) {
        art.append(el("p", a.value, { class: "desc" }));
      }
      if (r.attachments.length > 0) {
        art.append(el("p", T.reply_files));
        const ul = el("ul");
        for (const f of r.attachments) {
          const li = el("li");
          if (verified) {
            // A download, never shown in the page: the type is not trusted.
            const url = URL.createObjectURL(new Blob([f.bytes], { type: "application/octet-stream" }));
            blobURLs.push(url);
            li.append(el("a", f.name, { href: url, download: f.name }));
          } else {
            li.textContent = f.name;
          }
          ul.append(li);
        }
        art.append(ul);
      }
      thread.append(art);
    }
    thread.append(el("p", fill(T.mailbox_keep, { days: String(box.keepDays) })));
    thread.hidden = false;
  }

  // setUpFollowup shows the follow-up form. Until a reply verifies, the
  // submitter chooses desk and category among all the page lists, starting
  // from no choice: the relay's word neither chooses nor narrows it.
  function setUpFollowup() {
    if (!followup || !followupForm) {
      return;
    }
    if (routeField && routeSelect) {
      const keep = routeSelect.value;
      routeSelect.replaceChildren();
      for (const [value, label] of allRoutes) {
        routeSelect.append(el("option", label, { value }));
      }
      routeSelect.value = allRoutes.some(([v]) => v === keep) ? keep : "";
      const decided = session.reply !== null;
      routeField.hidden = decided;
      // A hidden, required and empty select would block the form.
      routeSelect.disabled = decided;
    }
    followup.hidden = false;
  }

  // chosenRoute is the route selected on the page, or null.
  function chosenRoute() {
    const v = routeSelect && !routeSelect.disabled ? routeSelect.value : "";
    const bar = v.indexOf("|");
    return bar <= 0 ? null : { desk: v.slice(0, bar), category: v.slice(bar + 1) };
  }

  // routeLabel names a route as the page's choices do, or by its IDs.
  function routeLabel(r) {
    const found = allRoutes.find(([v]) => v === `${r.desk}|${r.category}`);
    return found ? found[1] : r.category === "" ? r.desk : `${r.desk}: ${r.category}`;
  }

  function chosenTarget() {
    const s = session;
    return followupRecipients({ chosen: chosenRoute(), mailbox: s.mailbox, reply: s.reply, mailboxId: s.mailboxId, desks: data.desks });
  }

  // refusal is what the page says when followupRecipients refuses.
  function refusal(err) {
    switch (err.code) {
      case "relay_disagrees":
        return [fill(T.followup_relay_disagrees, { route: routeLabel(err.detail.claim) })];
      case "reply_mismatch":
        return [T.followup_reply_mismatch];
      default:
        return [T.followup_choose];
    }
  }

  if (followupForm) {
    followupForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (busy || !session) {
        return;
      }
      busy = true;
      if (sendButton) {
        sendButton.disabled = true;
      }
      sendFollowup()
        .catch((err) => {
          console.error(err);
          setProgress(false);
          say(T.failed, T.nothing_sent);
        })
        .finally(() => {
          busy = false;
          if (sendButton) {
            sendButton.disabled = false;
          }
        });
    });
  }

  async function sendFollowup() {
    const s = session;
    let target;
    let ciphertext;
    try {
      say(T.encrypting);
      setProgress(null);
      target = chosenTarget();
      const files = followupFiles && followupFiles.files ? Array.from(followupFiles.files) : [];
      ({ ciphertext } = await buildFollowup({
        receipt: s.receipt,
        target,
        language,
        text: followupText ? followupText.value : "",
        files,
        onProgress: (n, total) => setProgress(n / total),
      }));
    } catch (err) {
      setProgress(false);
      if (err instanceof TooLarge) {
        say(T.too_large);
      } else if (err instanceof FollowupRefused) {
        say(...refusal(err));
      } else {
        console.error(err);
        say(T.failed, T.nothing_sent);
      }
      return;
    }
    try {
      say(T.uploading);
      setProgress(null);
      await postFollowup(data.api, s.token, target, ciphertext);
    } catch (err) {
      console.error(err);
      setProgress(false);
      say(...relayFailure(err, T.upload_failed));
      return;
    }
    setProgress(false);
    // The message goes; the route chosen stays chosen for the next one.
    const keep = routeSelect ? routeSelect.value : "";
    followupForm.reset();
    if (routeSelect) {
      routeSelect.value = keep;
    }
    say(T.followup_sent);
  }
}
