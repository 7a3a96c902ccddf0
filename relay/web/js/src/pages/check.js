// @ts-check
// The check page (relay/web/templates/layout.html, "check"): the submitter
// types their receipt; this page derives the lookup token and the reply key
// from it, fetches the desk's replies, decrypts and verifies them here, and
// sends follow-ups encrypted here. The receipt's words never leave the page:
// only the derived token is sent, in a request body or the Amana-Token
// header, never in a URL.
//
// Every text shown comes from the page's #amana-text, the relay, a reply or
// the user, and is set with textContent, never as HTML.

import { available } from "../lib/seal.js";
import { TooLarge } from "../lib/size.js";
import { parseReceipt } from "../lib/receipt.js";
import { FollowupRefused, followupRecipients } from "../lib/route.js";
import { RelayError } from "../lib/upload.js";
import { buildFollowup, openReply } from "../lib/followup.js";
import { lookUp, fetchReply, postFollowup } from "../lib/mailbox.js";
import { readJSON, loadText, apiPath, fill, formatWhen, statusLine, progressBar, element, showScriptMode } from "./ui.js";

/** @typedef {import("../lib/receipt.js").Wordlist} Wordlist */
/** @typedef {import("../lib/receipt.js").Receipt} Receipt */
/** @typedef {import("../lib/bundle.js").Report} Report */
/** @typedef {import("../lib/route.js").PageDesk} PageDesk */
/** @typedef {import("../lib/route.js").Route} Route */
/** @typedef {import("../lib/mailbox.js").Mailbox} Mailbox */
/** @typedef {import("../lib/followup.js").OpenedReply & {info: import("../lib/mailbox.js").ReplyInfo}} Opened */

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

/** @typedef {typeof DEFAULT_CHECK_TEXT} CheckText */

/**
 * What #amana-check gives: the same-origin API path and the desks the page
 * lists, with their handler cards and routes.
 * @typedef {{api: string, desks: Map<string, PageDesk>}} CheckData
 */

/**
 * What the last check found; replaced by the next one.
 * @typedef {object} Session
 * @property {Receipt} receipt
 * @property {string} token the lookup token, the only thing derived from the receipt that is sent
 * @property {string} mailboxId
 * @property {Route} mailbox the route the relay's mailbox answer names: only compared, never followed
 * @property {Report | null} reply the latest reply whose signature verifies
 */

/**
 * The page's nodes, strings and state.
 * @typedef {object} CheckPage
 * @property {Document} doc
 * @property {CheckData} data
 * @property {Wordlist} words
 * @property {CheckText} T
 * @property {string} language
 * @property {HTMLInputElement | null} receiptField
 * @property {HTMLElement | null} thread
 * @property {HTMLElement | null} followup
 * @property {HTMLFormElement | null} followupForm
 * @property {HTMLElement | null} routeField
 * @property {HTMLSelectElement | null} routeSelect
 * @property {HTMLTextAreaElement | null} followupText
 * @property {HTMLInputElement | null} followupFiles
 * @property {HTMLButtonElement | null} checkButton
 * @property {HTMLButtonElement | null} sendButton
 * @property {Array<[string, string]>} allRoutes the route choices the page came with: [value, label]
 * @property {import("./ui.js").Say} say
 * @property {import("./ui.js").Progress} progress
 * @property {Session | null} session
 * @property {string[]} blobURLs the downloads of the replies shown
 * @property {boolean} busy
 */

/**
 * loadCheck reads and checks #amana-check. The API must be on the page's own
 * origin.
 * @param {Document} doc
 * @param {Location} loc
 * @returns {CheckData | null}
 */
function loadCheck(doc, loc) {
  const d = /** @type {{desks?: unknown, api?: unknown} | null} */ (readJSON(doc, "amana-check"));
  if (!d || typeof d !== "object" || !d.desks || typeof d.desks !== "object") {
    return null;
  }
  const api = apiPath(d.api, loc);
  if (api === null) {
    return null;
  }
  /** @type {Map<string, PageDesk>} */
  const desks = new Map();
  for (const [id, v] of Object.entries(d.desks)) {
    if (!v || typeof v !== "object") {
      continue;
    }
    desks.set(id, {
      handlers: Array.isArray(v.handlers) ? v.handlers.filter((/** @type {unknown} */ h) => typeof h === "string") : [],
      routes: v.routes && typeof v.routes === "object" ? v.routes : {},
      pq: v.pq === true,
    });
  }
  return { api, desks };
}

/**
 * initCheck wires the check page when the browser can do the work itself;
 * otherwise the page stays in its no-JavaScript mode, where the form posts
 * the receipt to the relay.
 * @param {Wordlist} words
 * @param {Window} win
 */
export function initCheck(words, win) {
  const doc = win.document;
  const checkForm = /** @type {HTMLFormElement | null} */ (doc.getElementById("check-form"));
  const data = loadCheck(doc, win.location);
  if (!checkForm || !data || !win.isSecureContext || !available(win)) {
    return;
  }
  const p = checkPage(doc, checkForm, data, words);
  showScriptMode(doc);
  checkForm.addEventListener("submit", (ev) => onCheck(p, ev));
  if (p.followupForm) {
    p.followupForm.addEventListener("submit", (ev) => onFollowup(p, ev));
  }
}

/**
 * checkPage finds the page's nodes and reads its strings.
 * @param {Document} doc
 * @param {HTMLFormElement} checkForm
 * @param {CheckData} data
 * @param {Wordlist} words
 * @returns {CheckPage}
 */
function checkPage(doc, checkForm, data, words) {
  /**
   * @template {HTMLElement} E
   * @param {string} id
   * @returns {E | null}
   */
  const $ = (id) => /** @type {E | null} */ (doc.getElementById(id));
  /** @type {HTMLInputElement | null} */
  const langInput = checkForm.querySelector('input[name="lang"]');
  /** @type {HTMLSelectElement | null} */
  const routeSelect = $("followup-route");
  return {
    doc,
    data,
    words,
    T: loadText(doc, DEFAULT_CHECK_TEXT),
    language: langInput && typeof langInput.value === "string" ? langInput.value : doc.documentElement.lang || "",
    receiptField: $("receipt"),
    thread: $("thread"),
    followup: $("followup"),
    followupForm: $("followup-form"),
    routeField: $("followup-route-field"),
    routeSelect,
    followupText: $("followup-text"),
    followupFiles: $("followup-files"),
    checkButton: $("check"),
    sendButton: $("followup-send"),
    allRoutes: routeSelect ? Array.from(routeSelect.options).map((o) => [o.value, o.textContent ?? ""]) : [],
    say: statusLine($("status")),
    progress: progressBar($("progress")),
    session: null,
    blobURLs: [],
    busy: false,
  };
}

/**
 * exclusive runs task unless one already runs, with button disabled while it
 * does; failed handles what task throws.
 * @param {CheckPage} p
 * @param {HTMLButtonElement | null} button
 * @param {() => Promise<void>} task
 * @param {(err: unknown) => void} failed
 */
function exclusive(p, button, task, failed) {
  p.busy = true;
  if (button) {
    button.disabled = true;
  }
  task()
    .catch((err) => {
      console.error(err);
      failed(err);
    })
    .finally(() => {
      p.busy = false;
      if (button) {
        button.disabled = false;
      }
    });
}

/**
 * relayFailure is what the page says when a request to the relay failed,
 * lead first.
 * @param {CheckText} T
 * @param {unknown} err
 * @param {string} lead
 * @returns {string[]}
 */
function relayFailure(T, err, lead) {
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
}

/**
 * onCheck opens the replies of the receipt typed.
 * @param {CheckPage} p
 * @param {SubmitEvent} ev
 */
function onCheck(p, ev) {
  ev.preventDefault();
  if (p.busy) {
    return;
  }
  exclusive(p, p.checkButton, () => check(p), (err) => p.say(...relayFailure(p.T, err, p.T.upload_failed)));
}

/**
 * check replaces what the last check showed with the replies of the
 * receipt typed, and shows the follow-up form.
 * @param {CheckPage} p
 */
async function check(p) {
  clearSession(p);
  let rc;
  try {
    rc = await parseReceipt(p.receiptField ? p.receiptField.value : "", p.words);
  } catch (err) {
    p.say(p.T.receipt_bad);
    return;
  }
  p.say(p.T.checking);
  const token = await rc.tokenString();
  const mailboxId = await rc.mailboxId();
  const box = await lookUp(p.data.api, token);
  const opened = await openReplies(p, rc, token, mailboxId, box);
  p.session = {
    receipt: rc,
    token,
    mailboxId,
    mailbox: { desk: box.desk, category: box.category },
    reply: latestVerified(opened),
  };
  render(p, opened, box);
  setUpFollowup(p);
  p.say("");
}

/**
 * clearSession forgets the last check and hides what it showed.
 * @param {CheckPage} p
 */
function clearSession(p) {
  p.session = null;
  revokeDownloads(p);
  if (p.thread) {
    p.thread.hidden = true;
    p.thread.replaceChildren();
  }
  if (p.followup) {
    p.followup.hidden = true;
  }
}

/**
 * revokeDownloads drops the downloads of the replies shown.
 * @param {CheckPage} p
 */
function revokeDownloads(p) {
  for (const u of p.blobURLs) {
    URL.revokeObjectURL(u);
  }
  p.blobURLs = [];
}

/**
 * openReplies fetches, decrypts and verifies the replies the mailbox lists.
 * @param {CheckPage} p
 * @param {Receipt} rc
 * @param {string} token
 * @param {string} mailboxId
 * @param {Mailbox} box
 * @returns {Promise<Opened[]>}
 */
async function openReplies(p, rc, token, mailboxId, box) {
  // The reply key follows the desk's keys. Which desk replied is only
  // known once a reply is open, and the relay's word does not choose it:
  // try both.
  const identities = [await rc.replyIdentity(true), await rc.replyIdentity(false)];
  /** @type {Opened[]} */
  const opened = [];
  for (const info of box.replies) {
    try {
      const ct = await fetchReply(p.data.api, token, info);
      opened.push(Object.assign({ info }, await openReply(ct, identities, p.data.desks, mailboxId)));
    } catch (err) {
      // As the no-JavaScript page does, a reply that cannot be opened is
      // left out.
      console.error(err);
    }
  }
  return opened;
}

/**
 * latestVerified is the latest reply whose signature verifies: it decides
 * where follow-ups go, once followupRecipients has checked it belongs here.
 * @param {Opened[]} opened
 * @returns {Report | null}
 */
function latestVerified(opened) {
  let reply = null;
  for (const r of opened) {
    if (r.signer) {
      reply = r.report;
    }
  }
  return reply;
}

/**
 * render shows the replies opened, or that there are none.
 * @param {CheckPage} p
 * @param {Opened[]} opened
 * @param {Mailbox} box
 */
function render(p, opened, box) {
  const { doc, thread, T } = p;
  revokeDownloads(p);
  if (!thread) {
    return;
  }
  thread.replaceChildren();
  if (opened.length === 0) {
    thread.append(element(doc, "p", T.no_replies));
  } else {
    thread.append(element(doc, "h2", T.replies_title));
  }
  for (const r of opened) {
    thread.append(renderReply(p, r));
  }
  thread.append(element(doc, "p", fill(T.mailbox_keep, { days: String(box.keepDays) })));
  thread.hidden = false;
}

/**
 * renderReply is one reply's article; one that does not verify is marked,
 * and its files are listed but not offered.
 * @param {CheckPage} p
 * @param {Opened} r
 * @returns {HTMLElement}
 */
function renderReply(p, r) {
  const { doc, T } = p;
  const art = element(doc, "article", undefined, { class: "reply" });
  const verified = r.signer !== null && r.belongs;
  const name = verified && r.signer ? r.signer.name : "?";
  art.append(element(doc, "h3", fill(T.reply_from, { name, when: formatWhen(r.info.received) })));
  if (!verified) {
    art.append(element(doc, "p", T.reply_unverified, { class: "notice error", role: "alert" }));
  }
  for (const a of r.report.answers) {
    art.append(element(doc, "p", a.value, { class: "desc" }));
  }
  if (r.attachments.length > 0) {
    art.append(element(doc, "p", T.reply_files));
    const ul = element(doc, "ul");
    for (const f of r.attachments) {
      const li = element(doc, "li");
      if (verified) {
        // A download, never shown in the page: the type is not trusted.
        const url = URL.createObjectURL(new Blob([f.bytes], { type: "application/octet-stream" }));
        p.blobURLs.push(url);
        li.append(element(doc, "a", f.name, { href: url, download: f.name }));
      } else {
        li.textContent = f.name;
      }
      ul.append(li);
    }
    art.append(ul);
  }
  return art;
}

/**
 * setUpFollowup shows the follow-up form. Until a reply verifies, the
 * submitter chooses desk and category among all the page lists, starting
 * from no choice: the relay's word neither chooses nor narrows it.
 * @param {CheckPage} p
 */
function setUpFollowup(p) {
  const { routeField, routeSelect, session } = p;
  if (!p.followup || !p.followupForm || !session) {
    return;
  }
  if (routeField && routeSelect) {
    const keep = routeSelect.value;
    routeSelect.replaceChildren();
    for (const [value, label] of p.allRoutes) {
      routeSelect.append(element(p.doc, "option", label, { value }));
    }
    routeSelect.value = p.allRoutes.some(([v]) => v === keep) ? keep : "";
    const decided = session.reply !== null;
    routeField.hidden = decided;
    // A hidden, required and empty select would block the form.
    routeSelect.disabled = decided;
  }
  p.followup.hidden = false;
}

/**
 * chosenRoute is the route selected on the page, or null.
 * @param {CheckPage} p
 * @returns {Route | null}
 */
function chosenRoute(p) {
  const v = p.routeSelect && !p.routeSelect.disabled ? p.routeSelect.value : "";
  const bar = v.indexOf("|");
  return bar <= 0 ? null : { desk: v.slice(0, bar), category: v.slice(bar + 1) };
}

/**
 * routeLabel names a route as the page's choices do, or by its IDs.
 * @param {CheckPage} p
 * @param {Route} r
 * @returns {string}
 */
function routeLabel(p, r) {
  const found = p.allRoutes.find(([v]) => v === `${r.desk}|${r.category}`);
  return found ? found[1] : r.category === "" ? r.desk : `${r.desk}: ${r.category}`;
}

/**
 * refusal is what the page says when followupRecipients refuses.
 * @param {CheckPage} p
 * @param {FollowupRefused} err
 * @returns {string[]}
 */
function refusal(p, err) {
  switch (err.code) {
    case "relay_disagrees":
      return [fill(p.T.followup_relay_disagrees, { route: routeLabel(p, /** @type {Route} */ (err.detail.claim)) })];
    case "reply_mismatch":
      return [p.T.followup_reply_mismatch];
    default:
      return [p.T.followup_choose];
  }
}

/**
 * onFollowup sends the follow-up written, once a check has opened a session.
 * @param {CheckPage} p
 * @param {SubmitEvent} ev
 */
function onFollowup(p, ev) {
  ev.preventDefault();
  if (p.busy || !p.session) {
    return;
  }
  const session = p.session;
  exclusive(p, p.sendButton, () => sendFollowup(p, session), () => {
    p.progress.hide();
    p.say(p.T.failed, p.T.nothing_sent);
  });
}

/**
 * sendFollowup encrypts the follow-up to the recipients followupRecipients
 * decides and, only if that worked, sends it.
 * @param {CheckPage} p
 * @param {Session} s
 */
async function sendFollowup(p, s) {
  const { T } = p;
  let target;
  let ciphertext;
  try {
    p.say(T.encrypting);
    p.progress.set(null);
    target = followupRecipients({ chosen: chosenRoute(p), mailbox: s.mailbox, reply: s.reply, mailboxId: s.mailboxId, desks: p.data.desks });
    const files = p.followupFiles && p.followupFiles.files ? Array.from(p.followupFiles.files) : [];
    ({ ciphertext } = await buildFollowup({
      receipt: s.receipt,
      target,
      language: p.language,
      text: p.followupText ? p.followupText.value : "",
      files,
      onProgress: (n, total) => p.progress.set(n / total),
    }));
  } catch (err) {
    sealFailed(p, err);
    return;
  }
  try {
    p.say(T.uploading);
    p.progress.set(null);
    await postFollowup(p.data.api, s.token, target, ciphertext);
  } catch (err) {
    console.error(err);
    p.progress.hide();
    p.say(...relayFailure(T, err, T.upload_failed));
    return;
  }
  followupSent(p);
}

/**
 * sealFailed says why a follow-up was not encrypted; nothing was sent.
 * @param {CheckPage} p
 * @param {unknown} err
 */
function sealFailed(p, err) {
  const { T } = p;
  p.progress.hide();
  if (err instanceof TooLarge) {
    p.say(T.too_large);
  } else if (err instanceof FollowupRefused) {
    p.say(...refusal(p, err));
  } else {
    console.error(err);
    p.say(T.failed, T.nothing_sent);
  }
}

/**
 * followupSent clears the message; the route chosen stays chosen for the
 * next one.
 * @param {CheckPage} p
 */
function followupSent(p) {
  p.progress.hide();
  const keep = p.routeSelect ? p.routeSelect.value : "";
  p.followupForm?.reset();
  if (p.routeSelect) {
    p.routeSelect.value = keep;
  }
  p.say(p.T.followup_sent);
}
