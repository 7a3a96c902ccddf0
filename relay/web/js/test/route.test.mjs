// Where a follow-up goes (src/route.js): the three attacks of a relay that
// lies in its mailbox answer or serves replies of its own, played against
// followupRecipients, and the honest cases.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { ed25519 } from "@noble/curves/ed25519.js";
import { base64urlnopad } from "@scure/base";
import { newReceipt } from "../src/lib/receipt.js";
import { signReply, signingKey, keyID, CARD_PREFIX } from "../src/lib/reply.js";
import { FollowupRefused, RouteRefused, followupRecipients, replySigner, replyBelongs, routeRecipients } from "../src/lib/route.js";
import { encrypt } from "../src/lib/seal.js";
import { decrypt } from "./lib/vectors.mjs";

// person makes a handler: an age identity and a self-signed card line, as
// crypto/card.go writes them.
async function person(name) {
  const secret = await generateX25519Identity();
  const age = await identityToRecipient(secret);
  const seed = await signingKey(secret);
  const signed = `${CARD_PREFIX} name=${name} age=${age} ed25519=${keyID(seed)} onion-auth=${"A".repeat(52)}`;
  const sig = base64urlnopad.encode(ed25519.sign(new TextEncoder().encode(signed), seed));
  return { name, secret, age, seed, card: `${signed} sig=${sig}` };
}

const [alice, carol, bob, mallory] = await Promise.all(["alice", "carol", "bob", "mallory"].map(person));
const rc = await newReceipt();
const mailboxId = await rc.mailboxId();

// The page's desks, as relay/checkpages.go lists them: helpdesk (alice and
// carol; "sea" is carol's only) and other (bob's), one admin key.
const desks = new Map([
  [
    "helpdesk",
    {
      handlers: [alice.card, carol.card],
      routes: { "": [alice.age, carol.age], incident: [alice.age, carol.age], sea: [carol.age] },
    },
  ],
  ["other", { handlers: [bob.card], routes: { "": [bob.age] } }],
]);

// reply is report.json of a reply by who, as the desk sends it to this
// receipt in "sea", changed by edit before it is signed.
function reply(who, edit = () => {}) {
  const r = {
    schema: 1,
    desk: "helpdesk",
    category: "sea",
    language: "en",
    submitted: "2026-12-01T10:00:00Z",
    answers: [{ field: "message", value: "Are you safe?" }],
    attachments: [],
    reply_recipient: "",
    mailbox: mailboxId,
    recipients: [carol.age],
  };
  edit(r);
  return signReply(r, who.seed);
}

const sea = { desk: "helpdesk", category: "sea" };
const none = { desk: "", category: "" };

function refused(args, code, what) {
  assert.throws(
    () => followupRecipients({ mailboxId, desks, ...args }),
    (err) => err instanceof FollowupRefused && err.code === code,
    `${what}: want ${code}`,
  );
}

function goes(args, want, what) {
  const got = followupRecipients({ mailboxId, desks, ...args });
  assert.deepEqual(
    { desk: got.desk, category: got.category, recipients: [...got.recipients].sort() },
    { desk: want.desk, category: want.category, recipients: [...want.recipients].sort() },
    what,
  );
  assert.equal(got.postQuantum, false);
}

test("attack 1, the category widened: refused before and after a reply", () => {
  const widened = { desk: "helpdesk", category: "" };
  refused({ chosen: sea, mailbox: widened }, "relay_disagrees", "a sea follow-up, the relay says the whole desk");
  refused({ chosen: sea, mailbox: widened, reply: reply(carol) }, "relay_disagrees", "after carol's reply, the relay says the whole desk");
  refused({ chosen: { desk: "helpdesk", category: "incident" }, mailbox: sea }, "relay_disagrees", "incident chosen, the thread is sea");
  // The relay's word never stands in for the submitter's choice.
  refused({ chosen: null, mailbox: widened }, "choose_route", "no choice, the relay names a route");
  refused({ chosen: null, mailbox: sea }, "choose_route", "no choice, the relay names the right route");
  try {
    followupRecipients({ chosen: sea, mailbox: widened, mailboxId, desks });
  } catch (err) {
    assert.deepEqual(err.detail.claim, widened, "the refusal says what the relay claims");
  }
});

test("attack 2, another desk signed by the same admin: refused", () => {
  const other = { desk: "other", category: "" };
  refused({ chosen: sea, mailbox: other }, "relay_disagrees", "sea chosen, the relay says desk other");
  refused({ chosen: null, mailbox: other }, "choose_route", "no choice, the relay says desk other");
  refused({ chosen: sea, mailbox: other, reply: reply(carol) }, "relay_disagrees", "after carol's reply, the relay says desk other");
  // carol's reply re-filed under desk other: carol is no handler there.
  refused({ mailbox: other, reply: reply(carol, (r) => (r.desk = "other")) }, "reply_mismatch", "carol's reply signed for desk other");
  // bob's genuine reply in another conversation of desk other.
  refused(
    { mailbox: other, reply: reply(bob, (r) => Object.assign(r, { desk: "other", category: "", mailbox: "0".repeat(32), recipients: [bob.age] })) },
    "reply_mismatch",
    "a reply of desk other to another mailbox",
  );
});

test("attack 3, the relay's own key: refused", () => {
  const evil = { desk: "evil", category: "" };
  refused({ chosen: sea, mailbox: evil }, "relay_disagrees", "sea chosen, the relay names a desk the page does not list");
  // Replies signed by the relay's key, for its desk or for the real one.
  refused({ mailbox: evil, reply: reply(mallory, (r) => Object.assign(r, { desk: "evil", recipients: [mallory.age] })) }, "reply_mismatch", "evil's reply");
  refused({ mailbox: sea, reply: reply(mallory, (r) => (r.recipients = [mallory.age])) }, "reply_mismatch", "mallory's reply in desk helpdesk");
  // A handler's genuine signature over something that is not this
  // conversation's, or that names the relay's key.
  refused({ mailbox: sea, reply: reply(carol, (r) => r.recipients.push(mallory.age)) }, "reply_mismatch", "carol's reply naming mallory");
  refused({ mailbox: sea, reply: reply(carol, (r) => (r.mailbox = "0".repeat(32))) }, "reply_mismatch", "carol's reply to another mailbox");
  refused({ mailbox: sea, reply: reply(carol, (r) => (r.recipients = [])) }, "reply_mismatch", "carol's reply naming no one");
  // A reply altered after carol signed it.
  const altered = reply(carol);
  altered.recipients = [carol.age, mallory.age];
  refused({ mailbox: sea, reply: altered }, "reply_mismatch", "carol's reply altered");
  // A route on the page whose recipients are not the desk's handlers.
  const page = new Map(desks);
  page.set("helpdesk", { handlers: [alice.card, carol.card], routes: { sea: [mallory.age] } });
  refused({ chosen: sea, mailbox: none, desks: page }, "no_route", "a route naming a key that is no handler card");
});

test("the honest cases: the submitter's choice, then the desk's reply", () => {
  goes({ chosen: sea, mailbox: none }, { ...sea, recipients: [carol.age] }, "the first follow-up, in sea");
  goes({ chosen: sea, mailbox: sea }, { ...sea, recipients: [carol.age] }, "the next one, the thread agrees");
  goes({ chosen: { desk: "helpdesk", category: "" }, mailbox: none }, { desk: "helpdesk", category: "", recipients: [alice.age, carol.age] }, "no category, chosen");
  goes({ chosen: null, mailbox: sea, reply: reply(carol) }, { ...sea, recipients: [carol.age] }, "after carol's reply");
  goes({ chosen: null, mailbox: none, reply: reply(carol) }, { ...sea, recipients: [carol.age] }, "after carol's reply, the relay names no thread");
  // The signed reply, the desk's own word, wins over a stale choice.
  goes({ chosen: { desk: "other", category: "" }, mailbox: sea, reply: reply(carol) }, { ...sea, recipients: [carol.age] }, "the reply over the choice");
  // The desk may widen the thread itself, in a signed reply.
  const wide = reply(alice, (r) => Object.assign(r, { category: "incident", recipients: [alice.age, carol.age] }));
  goes({ chosen: null, mailbox: { desk: "helpdesk", category: "incident" }, reply: wide }, { desk: "helpdesk", category: "incident", recipients: [alice.age, carol.age] }, "widened by the desk");
  // desks as a plain object, as JSON gives it.
  goes({ chosen: sea, mailbox: none, desks: Object.fromEntries(desks) }, { ...sea, recipients: [carol.age] }, "desks as an object");
  refused({ chosen: { desk: "helpdesk", category: "nope" }, mailbox: none }, "no_route", "an unknown category");
  refused({ chosen: { desk: "helpdesk", category: "" }, mailbox: none, desks: new Map() }, "no_route", "an unknown desk");
});

test("replySigner and replyBelongs: the page's check of a reply", () => {
  assert.equal(replySigner(reply(carol), desks).name, "carol");
  assert.equal(replySigner(reply(mallory), desks), null);
  assert.equal(replySigner(reply(carol, (r) => (r.desk = "other")), desks), null);
  assert.equal(replySigner(reply(carol, (r) => (r.desk = "nowhere")), desks), null);
  assert.equal(replySigner(null, desks), null);
  assert.equal(replyBelongs(reply(carol), mailboxId), true);
  assert.equal(replyBelongs(reply(carol, (r) => (r.mailbox = "")), ""), false);
  assert.equal(replyBelongs(reply(carol), "0".repeat(32)), false);
});

// A desk whose default route is "sea": a report without a category goes to
// carol alone, as relay/pages.go lists it (routes[""] the same as sea's).
const seaDefault = {
  handlers: [alice.card, carol.card],
  routes: { "": [carol.age], incident: [alice.age, carol.age], sea: [carol.age] },
  default_route: "sea",
};

test("a report without a category is sealed to exactly the desk's default route", async () => {
  const to = routeRecipients(seaDefault, "");
  assert.deepEqual(to, [carol.age]);
  assert.deepEqual(routeRecipients(seaDefault, "incident"), [alice.age, carol.age]);
  // Without a default route, every handler.
  assert.deepEqual(routeRecipients({ routes: { "": [alice.age, carol.age] } }, ""), [alice.age, carol.age]);
  assert.deepEqual(routeRecipients({ routes: { "": [alice.age, carol.age] }, default_route: "" }, ""), [alice.age, carol.age]);
  // Sealed as the page seals it: carol opens it, alice cannot.
  const plain = new TextEncoder().encode("a report without a category");
  const ct = await encrypt(plain, to);
  assert.deepEqual(await decrypt(ct, carol.secret), plain);
  await assert.rejects(decrypt(ct, alice.secret), "alice, outside the default route, opens it");
  // The follow-up path follows the same route.
  goes(
    { chosen: { desk: "helpdesk", category: "" }, mailbox: none, desks: new Map([["helpdesk", seaDefault]]) },
    { desk: "helpdesk", category: "", recipients: [carol.age] },
    "a follow-up without a category, default route sea",
  );
});

test("a desk naming an unknown default route, or disagreeing with it, is refused", () => {
  const bad = [
    ["an unknown default route", { ...seaDefault, default_route: "sex" }],
    ["a default route that is not a name", { ...seaDefault, default_route: 7 }],
    ["the whole desk under \"\" against the default route", { ...seaDefault, routes: { ...seaDefault.routes, "": [alice.age, carol.age] } }],
    ["a default route with no recipients", { ...seaDefault, routes: { ...seaDefault.routes, sea: [] } }],
  ];
  for (const [what, desk] of bad) {
    assert.throws(() => routeRecipients(desk, ""), RouteRefused, what);
    refused({ chosen: { desk: "helpdesk", category: "" }, mailbox: none, desks: new Map([["helpdesk", desk]]) }, "no_route", what);
  }
  assert.throws(() => routeRecipients(seaDefault, "fraud"), RouteRefused, "an unknown category");
});
