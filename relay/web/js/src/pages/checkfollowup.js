// @ts-check
// The check page's follow-up (pages/check.js is the rest): the route is
// chosen by the submitter, as far as the replies the page verified allow
// (lib/route.js), and the follow-up is sealed here, in the browser, before
// it is sent.

import { TooLarge } from "../lib/size.js";
import { FollowupRefused, followupRecipients } from "../lib/route.js";
import { buildFollowup } from "../lib/followup.js";
import { threadSeq } from "../lib/bundle.js";
import { postFollowup } from "../lib/mailbox.js";
import { fill, element } from "./ui.js";
import { exclusive, relayFailure } from "./checkpage.js";

/** @typedef {import("../lib/route.js").Route} Route */
/** @typedef {import("./checkpage.js").CheckPage} CheckPage */
/** @typedef {import("./checkpage.js").Session} Session */

/**
 * setUpFollowup shows the follow-up form. Until a reply verifies, the
 * submitter chooses desk and category among all the page lists, starting
 * from no choice: the relay's word neither chooses nor narrows it.
 * @param {CheckPage} p
 */
export function setUpFollowup(p) {
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
  // Each ID isolated (U+2068 … U+2069), as the relay isolates the labels.
  return found ? found[1] : r.category === "" ? `\u2068${r.desk}\u2069` : `\u2068${r.desk}\u2069: \u2068${r.category}\u2069`;
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
export function onFollowup(p, ev) {
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
      seq: s.seq,
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
  // A second follow-up from this page comes after this one.
  s.seq = threadSeq([s.seq]);
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
