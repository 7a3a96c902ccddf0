// @ts-check
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

/** @typedef {import("./bundle.js").Report} Report */
/** @typedef {import("./reply.js").Card} Card */

/**
 * A route: a desk and one of its categories ("" for none).
 * @typedef {{desk: string, category: string}} Route
 */

/**
 * A desk as a page lists it: its handler cards (lines, or cards from
 * parseCard), its recipients by category, the category a report without
 * one goes to ("" or absent for every handler), and whether its keys are
 * post-quantum.
 * @typedef {{handlers: Array<string | Card>, routes: Record<string, unknown>, default_route?: unknown, pq?: boolean}} PageDesk
 */

/** @typedef {Map<string, PageDesk> | Record<string, PageDesk>} Desks */

/**
 * Where a follow-up goes: a route, its recipients, and whether they are
 * post-quantum (the reply key follows).
 * @typedef {Route & {recipients: string[], postQuantum: boolean}} Target
 */

/** @typedef {"choose_route" | "no_route" | "relay_disagrees" | "reply_mismatch"} RefusalCode */
// FollowupRefused: the page will not send this follow-up. code is one of
//   "choose_route"     no route chosen, and no verified reply decides;
//   "no_route"         the route chosen is not one the page lists;
//   "relay_disagrees"  the relay's mailbox answer names another route
//                      (detail.claim: {desk, category});
//   "reply_mismatch"   the reply does not verify, or is signed for another
//                      desk or mailbox, or names a key that is not a
//                      handler of its desk.
export class FollowupRefused extends Error {
    /**
     * @param {RefusalCode} code
     * @param {{claim?: Route}} [detail]
     */
  constructor(code, detail = {}) {
    super(`follow-up refused: ${code}`);
    this.name = "FollowupRefused";
    this.code = code;
    this.detail = detail;
  }
}

/** @type {(o: unknown, k: string) => boolean} */
const hasOwn = (o, k) => o !== null && typeof o === "object" && Object.prototype.hasOwnProperty.call(o, k);

/**
 * @param {Desks} desks
 * @param {unknown} id
 * @returns {PageDesk | null}
 */
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
/** @param {PageDesk} desk @returns {Set<string>} */
function handlerRecipients(desk) {
  /** @type {Set<string>} */
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
/**
 * @param {Report | null} report
 * @param {Desks} desks
 * @returns {Card | null}
 */
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
/** @param {Report} report @param {unknown} mailboxId @returns {boolean} */
export function replyBelongs(report, mailboxId) {
  return typeof mailboxId === "string" && mailboxId !== "" && report.mailbox === mailboxId;
}

// RouteRefused: the page's desk routes a report without a category
// inconsistently: its default route names no category it lists, or the
// recipients it gives for "" are not that category's.
export class RouteRefused extends Error {
  /** @param {string} category */
  constructor(category) {
    super(`no consistent route for category ${JSON.stringify(category)}`);
    this.name = "RouteRefused";
    this.category = category;
  }
}

// routeRecipients returns the recipients a report in category ("" for
// none) is sealed to, as a desk's manifest routes it (crypto.Manifest.Route):
// a category's own, and for none those of the desk's default route when it
// names one, else of every handler. It throws RouteRefused for a category
// the desk does not list, for a default route that names no listed
// category, and when the page's recipients for "" differ from the default
// route's: the report goes to exactly the route the desk chose, or nowhere.
/**
 * @param {{routes: Record<string, unknown>, default_route?: unknown}} desk
 * @param {string} category
 * @returns {string[]}
 */
export function routeRecipients(desk, category) {
  /** @param {string} c @returns {string[]} */
  const listed = (c) => {
    const r = hasOwn(desk.routes, c) ? desk.routes[c] : null;
    if (!Array.isArray(r) || r.length === 0 || r.some((x) => typeof x !== "string")) {
      throw new RouteRefused(c);
    }
    return r;
  };
  const def = desk.default_route;
  if (category !== "" || def === undefined || def === null || def === "") {
    return listed(category);
  }
  if (typeof def !== "string") {
    throw new RouteRefused(category);
  }
  const chosen = listed(def);
  if (hasOwn(desk.routes, "")) {
    const none = listed("");
    const want = new Set(chosen);
    if (none.length !== chosen.length || !none.every((r) => want.has(r))) {
      throw new RouteRefused(category);
    }
  }
  return chosen;
}

/** @type {(a: Route, b: Route) => boolean} */
const sameRoute = (a, b) => a.desk === b.desk && a.category === b.category;

// allKnown reports whether recipients is not empty and names only
// recipients of known.
/**
 * @param {unknown[]} recipients
 * @param {Set<string>} known
 * @returns {recipients is string[]}
 */
function allKnown(recipients, known) {
  return recipients.length > 0 && recipients.every((r) => typeof r === "string" && known.has(r));
}

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
/**
 * @param {object} args
 * @param {Route | null} [args.chosen]
 * @param {Route | null} [args.mailbox]
 * @param {Report | null} [args.reply]
 * @param {string} args.mailboxId
 * @param {Desks} args.desks
 * @returns {Target}
 */
export function followupRecipients({ chosen = null, mailbox = null, reply = null, mailboxId, desks }) {
  const claim =
    mailbox && typeof mailbox.desk === "string" && mailbox.desk !== ""
      ? { desk: mailbox.desk, category: typeof mailbox.category === "string" ? mailbox.category : "" }
      : null;
  let route;
  /** @type {string[]} */
  let recipients;
  if (reply) {
    // The desk's own word, checked here rather than taken from the caller.
    const desk = deskOf(desks, reply.desk);
    if (!desk || replySigner(reply, desks) === null || !replyBelongs(reply, mailboxId) || typeof reply.category !== "string") {
      throw new FollowupRefused("reply_mismatch");
    }
    const known = handlerRecipients(desk);
    const listed = Array.isArray(reply.recipients) ? reply.recipients : [];
    if (!allKnown(listed, known)) {
      throw new FollowupRefused("reply_mismatch");
    }
    recipients = listed;
    route = { desk: reply.desk, category: reply.category };
  } else {
    if (!chosen || typeof chosen.desk !== "string" || chosen.desk === "") {
      throw new FollowupRefused("choose_route");
    }
    route = { desk: chosen.desk, category: typeof chosen.category === "string" ? chosen.category : "" };
    const desk = deskOf(desks, route.desk);
    /** @type {string[] | null} */
    let routed = null;
    try {
      routed = desk ? routeRecipients(desk, route.category) : null;
    } catch {
      routed = null;
    }
    if (!desk || !routed) {
      throw new FollowupRefused("no_route");
    }
    const known = handlerRecipients(desk);
    if (!allKnown(routed, known)) {
      throw new FollowupRefused("no_route");
    }
    recipients = routed;
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
