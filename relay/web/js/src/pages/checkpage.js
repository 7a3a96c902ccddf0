// @ts-check
// What the check page's two halves share (pages/check.js, the receipt and
// the replies; pages/checkfollowup.js, the follow-up): the page's strings,
// its nodes and state, and how a request that failed is told.

import { RelayError } from "../lib/upload.js";

/** @typedef {import("../lib/receipt.js").Wordlist} Wordlist */
/** @typedef {import("../lib/receipt.js").Receipt} Receipt */
/** @typedef {import("../lib/bundle.js").Report} Report */
/** @typedef {import("../lib/route.js").PageDesk} PageDesk */
/** @typedef {import("../lib/route.js").Route} Route */

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
  status_line: "Status: {status}",
  status_updated: "Updated {when}, signed by the desk.",
  survey_sent: "Thank you. Your answer was received.",
  survey_choose: "Choose one answer from 1 to 5, then send again. Nothing was sent.",
  survey_comment_long: "Your comment is too long: it can be at most 2000 bytes. Shorten it and send again. Nothing was sent.",
  survey_answered: "You answered: {score} of 5. Thank you.",
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
 * @property {number} seq the next follow-up's place in the thread: after every verified reply read, and after the follow-ups sent in this session
 * @property {boolean} ask the latest verified status message asks the satisfaction question, and it is not answered in this session
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
 * @property {HTMLElement | null} caseStatus the status section
 * @property {HTMLElement | null} statusLine
 * @property {HTMLElement | null} statusWhen
 * @property {HTMLElement | null} survey the satisfaction question's section
 * @property {HTMLFormElement | null} surveyForm
 * @property {HTMLTextAreaElement | null} surveyComment
 * @property {HTMLElement | null} surveyAnswered
 * @property {HTMLButtonElement | null} surveyButton
 * @property {Array<[string, string]>} allRoutes the route choices the page came with: [value, label]
 * @property {import("./ui.js").Say} say
 * @property {import("./ui.js").Progress} progress
 * @property {Session | null} session
 * @property {string[]} blobURLs the downloads of the replies shown
 * @property {boolean} busy
 */

/**
 * exclusive runs task unless one already runs, with button disabled while it
 * does; failed handles what task throws.
 * @param {CheckPage} p
 * @param {HTMLButtonElement | null} button
 * @param {() => Promise<void>} task
 * @param {(err: unknown) => void} failed
 */
export function exclusive(p, button, task, failed) {
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
export function relayFailure(T, err, lead) {
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
