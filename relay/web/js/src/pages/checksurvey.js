// @ts-check
// The check page's satisfaction question (pages/check.js shows it when the
// latest status message the page verified asks it): the answer is a
// follow-up of its own kind (lib/followup.js, surveyAnswers), sealed here,
// in the browser, to the thread's recipients exactly as a follow-up is,
// and sent the same way.

import { FollowupRefused, followupRecipients } from "../lib/route.js";
import { buildFollowup, pageSurveyAnswers, SurveyRefused, KIND_SURVEY } from "../lib/followup.js";
import { threadSeq } from "../lib/bundle.js";
import { postFollowup } from "../lib/mailbox.js";
import { fill } from "./ui.js";
import { exclusive, relayFailure } from "./checkpage.js";

/** @typedef {import("./checkpage.js").CheckPage} CheckPage */
/** @typedef {import("./checkpage.js").Session} Session */

/**
 * setUpSurvey shows the question when the session's latest status message
 * asks it, and hides it otherwise.
 * @param {CheckPage} p
 */
export function setUpSurvey(p) {
  if (!p.survey) {
    return;
  }
  const ask = p.session !== null && p.session.ask;
  p.survey.hidden = !ask;
  if (p.surveyForm) {
    p.surveyForm.hidden = false;
    p.surveyForm.reset();
  }
  if (p.surveyAnswered) {
    p.surveyAnswered.hidden = true;
  }
}

/**
 * onSurvey sends the answer chosen, once a check has opened a session
 * whose status message asks the question.
 * @param {CheckPage} p
 * @param {SubmitEvent} ev
 */
export function onSurvey(p, ev) {
  ev.preventDefault();
  if (p.busy || !p.session || !p.session.ask) {
    return;
  }
  const session = p.session;
  exclusive(p, p.surveyButton, () => sendSurvey(p, session), () => {
    p.progress.hide();
    p.say(p.T.failed, p.T.nothing_sent);
  });
}

/**
 * chosenScore is the value of the choice checked, or "".
 * @param {CheckPage} p
 * @returns {string}
 */
function chosenScore(p) {
  if (!p.surveyForm) {
    return "";
  }
  /** @type {HTMLInputElement | null} */
  const checked = p.surveyForm.querySelector('input[name="satisfaction"]:checked');
  return checked ? checked.value : "";
}

/**
 * sendSurvey encrypts the answer to the thread's recipients, decided as
 * for a follow-up, and, only if that worked, sends it.
 * @param {CheckPage} p
 * @param {Session} s
 */
async function sendSurvey(p, s) {
  const { T } = p;
  let target;
  let ciphertext;
  const score = chosenScore(p);
  try {
    const answers = pageSurveyAnswers(score, p.surveyComment ? p.surveyComment.value : "");
    p.say(T.encrypting);
    // A verified reply decides the route: the status message is one.
    target = followupRecipients({ chosen: null, mailbox: s.mailbox, reply: s.reply, mailboxId: s.mailboxId, desks: p.data.desks });
    ({ ciphertext } = await buildFollowup({ receipt: s.receipt, target, language: p.language, kind: KIND_SURVEY, answers, seq: s.seq }));
  } catch (err) {
    p.progress.hide();
    if (err instanceof SurveyRefused) {
      p.say(err.code === "comment" ? T.survey_comment_long : T.survey_choose);
    } else if (err instanceof FollowupRefused) {
      p.say(err.code === "reply_mismatch" ? T.followup_reply_mismatch : T.followup_choose);
    } else {
      console.error(err);
      p.say(T.failed, T.nothing_sent);
    }
    return;
  }
  try {
    p.say(T.uploading);
    await postFollowup(p.data.api, s.token, target, ciphertext);
  } catch (err) {
    console.error(err);
    p.say(...relayFailure(T, err, T.upload_failed));
    return;
  }
  s.seq = threadSeq([s.seq]);
  s.ask = false;
  if (p.surveyForm) {
    p.surveyForm.reset();
    p.surveyForm.hidden = true;
  }
  if (p.surveyAnswered) {
    p.surveyAnswered.textContent = fill(T.survey_answered, { score });
    p.surveyAnswered.hidden = false;
  }
  p.say(T.survey_sent);
}
