// The check page's satisfaction answer (src/lib/followup.js): the page's
// score and comment become a survey follow-up that crypto.ParseSurvey
// accepts, sealed by the client as the browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readBundle, parseSurvey } from "../src/lib/bundle.js";
import { newReceipt } from "../src/lib/receipt.js";
import { buildFollowup, pageSurveyAnswers, SurveyRefused, KIND_SURVEY } from "../src/lib/followup.js";
import { parseVector, decrypt } from "./lib/vectors.mjs";

const classic = parseVector("identity-classic.txt");

test("pageSurveyAnswers takes a score from 1 to 5 and a comment of at most 2000 bytes", () => {
  for (const [score, comment, want] of [
    ["4", "They listened.", [{ field: "satisfaction", value: "4" }, { field: "comment", value: "They listened." }]],
    ["1", " \n ", [{ field: "satisfaction", value: "1" }]],
    ["5", "é".repeat(1000), [{ field: "satisfaction", value: "5" }, { field: "comment", value: "é".repeat(1000) }]],
  ]) {
    assert.deepEqual(pageSurveyAnswers(score, comment), want);
  }
  for (const [score, comment, code] of [
    ["", "", "score"],
    ["0", "", "score"],
    ["6", "", "score"],
    ["x", "", "score"],
    ["04", "", "score"],
    ["3", "é".repeat(1000) + "x", "comment"],
  ]) {
    assert.throws(() => pageSurveyAnswers(score, comment), (err) => err instanceof SurveyRefused && err.code === code, `${score} ${comment.length}`);
  }
});

test("a survey answer is a follow-up of kind survey, client browser, that parseSurvey reads", async () => {
  const rc = await newReceipt();
  const target = { desk: "helpdesk", category: "sea", recipients: [classic.get("recipient")], postQuantum: false };
  const { ciphertext } = await buildFollowup({ receipt: rc, target, kind: KIND_SURVEY, answers: pageSurveyAnswers("2", "slow"), seq: 3 });
  const { report, attachments } = await readBundle(await decrypt(ciphertext, classic.get("secret")));
  assert.equal(report.kind, "survey");
  assert.equal(report.client, "browser");
  assert.equal(report.sealed_by, "client");
  assert.equal(report.mailbox, await rc.mailboxId());
  assert.equal(report.seq, 3);
  assert.equal(attachments.length, 0);
  assert.deepEqual(parseSurvey(report), { score: 2, comment: "slow" });
  // Files, or no answers, are not a survey answer.
  await assert.rejects(buildFollowup({ receipt: rc, target, kind: KIND_SURVEY }), SurveyRefused);
  await assert.rejects(
    buildFollowup({ receipt: rc, target, kind: KIND_SURVEY, answers: pageSurveyAnswers("2", ""), files: [{ name: "a", bytes: new Uint8Array(1) }] }),
    SurveyRefused,
  );
});
