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
//
// This file is the receipt and the replies; pages/checkfollowup.js is the
// follow-up, and pages/checkpage.js what both share.

import { available } from "../lib/seal.js";
import { parseReceipt } from "../lib/receipt.js";
import { openReply, KIND_STATUS } from "../lib/followup.js";
import { threadSeq } from "../lib/bundle.js";
import { lookUp, fetchReply } from "../lib/mailbox.js";
import {
  readJSON,
  loadText,
  apiPath,
  fill,
  fillIsolated,
  formatWhen,
  statusLine,
  progressBar,
  element,
  showScriptMode,
  cryptoTrouble,
  showCryptoTrouble,
  DEFAULT_CRYPTO_TEXT,
} from "./ui.js";
import { DEFAULT_CHECK_TEXT, exclusive, relayFailure } from "./checkpage.js";
import { setUpFollowup, onFollowup } from "./checkfollowup.js";
import { setUpSurvey, onSurvey } from "./checksurvey.js";

/** @typedef {import("../lib/receipt.js").Wordlist} Wordlist */
/** @typedef {import("../lib/receipt.js").Receipt} Receipt */
/** @typedef {import("../lib/bundle.js").Report} Report */
/** @typedef {import("../lib/route.js").PageDesk} PageDesk */
/** @typedef {import("../lib/mailbox.js").Mailbox} Mailbox */
/** @typedef {import("../lib/followup.js").OpenedReply & {info: import("../lib/mailbox.js").ReplyInfo}} Opened */
/** @typedef {import("./checkpage.js").CheckPage} CheckPage */
/** @typedef {import("./checkpage.js").CheckData} CheckData */

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
      default_route: v.default_route ?? "",
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
  const ok = win.isSecureContext === true && available(win);
  if (checkForm && data && !ok) {
    // JavaScript is on: say why the page does not open the replies itself.
    showCryptoTrouble(doc, cryptoTrouble(win, ok), loadText(doc, DEFAULT_CRYPTO_TEXT));
  }
  if (!checkForm || !data || !ok) {
    return;
  }
  const p = checkPage(doc, checkForm, data, words);
  showScriptMode(doc);
  checkForm.addEventListener("submit", (ev) => onCheck(p, ev));
  if (p.followupForm) {
    p.followupForm.addEventListener("submit", (ev) => onFollowup(p, ev));
  }
  if (p.surveyForm) {
    p.surveyForm.addEventListener("submit", (ev) => onSurvey(p, ev));
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
    caseStatus: $("case-status"),
    statusLine: $("status-line"),
    statusWhen: $("status-when"),
    survey: $("survey"),
    surveyForm: $("survey-form"),
    surveyComment: $("survey-comment"),
    surveyAnswered: $("survey-answered"),
    surveyButton: $("survey-send"),
    allRoutes: routeSelect ? Array.from(routeSelect.options).map((o) => [o.value, o.textContent ?? ""]) : [],
    say: statusLine($("status")),
    progress: progressBar($("progress"), $("progress-text")),
    session: null,
    blobURLs: [],
    busy: false,
  };
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
  const status = latestStatus(opened);
  p.session = {
    receipt: rc,
    token,
    mailboxId,
    mailbox: { desk: box.desk, category: box.category },
    reply: latestVerified(opened),
    seq: threadSeq(opened.filter((r) => r.signer && r.belongs).map((r) => r.report.seq)),
    ask: status !== null && status.report.survey === true,
  };
  renderStatus(p, status);
  render(p, opened.filter((r) => !isStatus(r)), box);
  setUpFollowup(p);
  setUpSurvey(p);
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
  if (p.caseStatus) {
    p.caseStatus.hidden = true;
  }
  if (p.survey) {
    p.survey.hidden = true;
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
 * isStatus says a reply is a status message the page can trust: signed by
 * a handler of the desk, for this mailbox. One that is not is never the
 * status: it is shown as a message, marked as unverified.
 * @param {Opened} r
 * @returns {boolean}
 */
function isStatus(r) {
  return r.signer !== null && r.belongs && r.report.kind === KIND_STATUS;
}

/**
 * latestStatus is the status message the page can trust with the highest
 * seq, which the handler signed, so that the relay's order cannot make an
 * older one current (ties: the later in the mailbox), or null.
 * @param {Opened[]} opened
 * @returns {Opened | null}
 */
function latestStatus(opened) {
  /** @type {Opened | null} */
  let s = null;
  for (const r of opened) {
    if (isStatus(r) && (s === null || (r.report.seq ?? 0) >= (s.report.seq ?? 0))) {
      s = r;
    }
  }
  return s;
}

/**
 * renderStatus shows the case's status, apart from the messages, or hides
 * it when no status message verifies.
 * @param {CheckPage} p
 * @param {Opened | null} s
 */
function renderStatus(p, s) {
  const { caseStatus, statusLine, statusWhen, T } = p;
  if (!caseStatus) {
    return;
  }
  caseStatus.hidden = s === null;
  if (s === null) {
    return;
  }
  const message = s.report.answers.find((a) => a.field === "message");
  if (statusLine) {
    fillIsolated(statusLine, T.status_line, { status: message ? message.value : "" });
  }
  if (statusWhen) {
    fillIsolated(statusWhen, T.status_updated, { when: formatWhen(s.info.received) }, ["when"]);
  }
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
  if (opened.length === 0 && (!p.caseStatus || p.caseStatus.hidden)) {
    thread.append(element(doc, "p", T.no_replies));
  } else if (opened.length > 0) {
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
  art.append(fillIsolated(element(doc, "h3"), T.reply_from, { name, when: formatWhen(r.info.received) }, ["when"]));
  if (!verified) {
    art.append(element(doc, "p", T.reply_unverified, { class: "notice error", role: "alert" }));
  }
  for (const a of r.report.answers) {
    art.append(element(doc, "p", a.value, { class: "desc", dir: "auto" }));
  }
  if (r.attachments.length > 0) {
    art.append(element(doc, "p", T.reply_files));
    const ul = element(doc, "ul");
    for (const f of r.attachments) {
      const li = element(doc, "li", undefined, { dir: "auto" });
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
