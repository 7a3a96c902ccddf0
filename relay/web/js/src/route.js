// Where a follow-up goes, decided in the submitter's browser by the rules
// `amana followup` follows (docs/cli.md; cmd/internal/cli/check.go):
//
//   - before a verified reply, the route the submitter chose on the page
//     decides, and nothing else: no choice, no follow-up;
//   - after one, that reply decides, if it verifies against the handlers of
//     its desk as the page lists them, is signed for that desk and for this
//     receipt's mailbox, and names only handlers of that desk;
//   - the relay's mailbox answer decides nothing: when it names another desk
//     or category than the one that decides, the follow-up is refused.
//
// The page's desks (their handler cards and routes) come from the relay
// too: a browser cannot check them against anything else. What this
// guards against is a relay that lies in its API answers.

import { parseCard, verifyReply } from "./reply.js";
import { stanzaType } from "./seal.js";

// FollowupRefused: the page will not send this follow-up. code is one of
//   "choose_route"     no route chosen, and no verified reply decides;
//   "no_route"         the route chosen is not one the page lists;
//   "relay_disagrees"  the relay's mailbox answer names another route
//                      (detail.claim: {desk, category});
//   "reply_mismatch"   the reply does not verify, or is signed for another
//                      desk or mailbox, or names a key that is not a
//                      handler of its desk.
export class FollowupRefused extends Error {
  constructor(code, detail = {}) {
    super(`follow-up refused: ${code}`);
    this.name = "FollowupRefused";
    this.code = code;
    this.detail = detail;
  }
}

const hasOwn = (o, k) => o !== null && typeof o === "object" && Object.prototype.hasOwnProperty.call(o, k);

function deskOf(desks, id) {
  if (typeof id !== "string" || id === "") {
    return null;
  }
  if (desks instanceof Map) {
    return desks.get(id) || null;
  }
  return hasOwn(desks, id) ? desks[id] : null;
}

// handlerRecipients is the set of age recipients of a desk's handler cards
// whose self-signature verifies.
function handlerRecipients(desk) {
  const out = new Set();
  for (const line of Array.isArray(desk.handlers) ? desk.handlers : []) {
    const card = typeof line === "string" ? parseCard(line) : line;
    if (card && typeof card.age === "string") {
      out.add(card.age);
    }
  }
  return out;
}

// replySigner returns the handler card whose signature on report verifies,
// among the handlers the page lists for the desk the report names, or null.
// It says nothing about whether the reply belongs to this conversation:
// followupRecipients checks that.
export function replySigner(report, desks) {
  const desk = report && typeof report === "object" ? deskOf(desks, report.desk) : null;
  if (!desk) {
    return null;
  }
  try {
    return verifyReply(report, desk.handlers);
  } catch {
    return null;
  }
}

// replyBelongs reports whether a reply whose signature verifies is signed for
// this receipt's mailbox.
export function replyBelongs(report, mailboxId) {
  return typeof mailboxId === "string" && mailboxId !== "" && report.mailbox === mailboxId;
}

const sameRoute = (a, b) => a.desk === b.desk && a.category === b.category;

// followupRecipients decides where a follow-up goes and returns {desk,
// category, recipients, postQuantum}, or throws FollowupRefused.
//
//   chosen     {desk, category}: the route the submitter chose, or null
//   mailbox    {desk, category}: the relay's mailbox answer; desk "" when it
//              names no thread
//   reply      report.json of the latest reply whose signature verifies
//              (replySigner), or null
//   mailboxId  this receipt's mailbox ID
//   desks      the page's desks, by ID (a Map or an object): {handlers: [card
//              lines], routes: {category: [recipients]}}
export function followupRecipients({ chosen = null, mailbox = null, reply = null, mailboxId, desks }) {
  const claim =
    mailbox && typeof mailbox.desk === "string" && mailbox.desk !== ""
      ? { desk: mailbox.desk, category: typeof mailbox.category === "string" ? mailbox.category : "" }
      : null;
  let route;
  let recipients;
  if (reply) {
    // The desk's own word, checked here rather than taken from the caller.
    const desk = deskOf(desks, reply.desk);
    if (!desk || replySigner(reply, desks) === null || !replyBelongs(reply, mailboxId) || typeof reply.category !== "string") {
      throw new FollowupRefused("reply_mismatch");
    }
    const known = handlerRecipients(desk);
    recipients = Array.isArray(reply.recipients) ? reply.recipients : [];
    if (recipients.length === 0 || recipients.some((r) => typeof r !== "string" || !known.has(r))) {
      throw new FollowupRefused("reply_mismatch");
    }
    route = { desk: reply.desk, category: reply.category };
  } else {
    if (!chosen || typeof chosen.desk !== "string" || chosen.desk === "") {
      throw new FollowupRefused("choose_route");
    }
    route = { desk: chosen.desk, category: typeof chosen.category === "string" ? chosen.category : "" };
    const desk = deskOf(desks, route.desk);
    if (!desk || !hasOwn(desk.routes, route.category) || !Array.isArray(desk.routes[route.category])) {
      throw new FollowupRefused("no_route");
    }
    recipients = desk.routes[route.category];
    const known = handlerRecipients(desk);
    if (recipients.length === 0 || recipients.some((r) => typeof r !== "string" || !known.has(r))) {
      throw new FollowupRefused("no_route");
    }
  }
  if (claim && !sameRoute(claim, route)) {
    throw new FollowupRefused("relay_disagrees", { claim });
  }
  recipients = [...new Set(recipients)];
  let types;
  try {
    types = new Set(recipients.map(stanzaType));
  } catch {
    types = new Set();
  }
  if (types.size !== 1) {
    // Unknown key types, or post-quantum and classic keys together: age
    // cannot encrypt to those in one file.
    throw new FollowupRefused(reply ? "reply_mismatch" : "no_route");
  }
  return { desk: route.desk, category: route.category, recipients, postQuantum: types.has("mlkem768x25519") };
}
