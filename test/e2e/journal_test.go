package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// TestJournalWeek is a week at the desk with the commands alone: reports
// arrive over several days; the handlers triage, assign, note, reply,
// refer, link a duplicate, close and reopen; the list filters show what
// they should; and at the end every reader of a case agrees on its state.
// Nothing typed in a note, a tag or a referral is on the relay's disk, in
// its log, in its backup, or in plain text on any handler's machine.
func TestJournalWeek(t *testing.T) {
	w := newJournalWorld(t, false)
	const (
		reportMarker   = "MARKER-sea-report-5b1c"
		fileMarker     = "MARKER-sea-attachment-88aa"
		noteMarker     = "MARKER-note-3d7f0e"
		tagMarker      = "marker-tag-9a4c21"
		referralMarker = "MARKER-referral-org-71b2"
		outcomeMarker  = "MARKER-referral-outcome-c0de"
		generalNote    = "MARKER-general-note-2e2e"
	)
	markers := []string{reportMarker, fileMarker, noteMarker, tagMarker, referralMarker, outcomeMarker, generalNote}

	// Day 1: three reports, one of them restricted, one without a category.
	attachment := w.file("evidence.txt", "photo description "+fileMarker+"\n")
	sea := w.submit("sea", "what happened to me at the distribution point "+reportMarker, attachment)
	g1 := w.submit("general", "the water point has been broken for a week")
	g2 := w.submit("", "no category: a question about the registration")
	w.pullAll()

	// Who holds what: sea only on its route.
	ids, _ := w.list("carol")
	wantIDs(t, "carol's cases", ids, sea, g1, g2)
	ids, _ = w.list("bob")
	wantIDs(t, "bob's cases", ids, g1, g2)

	// carol triages: everything is new and unassigned.
	r := w.ok("carol", "triage")
	for _, id := range []string{sea, g1, g2} {
		if !strings.Contains(r.stdout, id[:8]) {
			t.Errorf("carol's triage lacks %s:\n%s", id[:8], r.stdout)
		}
	}
	ids, _ = w.list("carol", "--status", "new")
	wantIDs(t, "carol: new", ids, sea, g1, g2)
	ids, _ = w.list("carol", "--unassigned")
	wantIDs(t, "carol: unassigned", ids, sea, g1, g2)

	w.ok("carol", "case", "set", sea, "--status", "acknowledged", "--severity", "high", "--assign", "me", "--tag", tagMarker)
	w.ok("alice", "case", "set", g1, "--status", "acknowledged", "--severity", "medium", "--assign", "bob")

	// Day 2: bob finds his case, notes it, replies to the submitter, waits.
	w.syncAll()
	ids, _ = w.list("bob", "--assignee", "me")
	wantIDs(t, "bob: assigned to me", ids, g1)
	ids, _ = w.list("alice", "--assignee", "bob")
	wantIDs(t, "alice: assigned to bob", ids, g1)
	w.ok("bob", "case", "note", g1, "--message-file", w.file("note-g1.txt", "called the water office "+generalNote+"\n"))
	w.ok("bob", "reply", g1, "--message-file", w.file("reply-g1.txt", "We have passed this on; can you tell us which tap?\n"))
	w.ok("bob", "case", "set", g1, "--status", "waiting")
	g3 := w.submit("general", "the water point is broken (sent again)")
	w.pullAll()
	w.ok("alice", "case", "link", g3, "--duplicate-of", g1)
	w.ok("alice", "case", "close", g3, "--reason", "duplicate")

	// Day 3: carol notes and refers the restricted case.
	w.ok("carol", "case", "note", sea, "--message-file", w.file("note-sea.txt", "spoke with the protection officer "+noteMarker+"\n"))
	w.ok("carol", "case", "refer", sea, "--to", referralMarker, "--consent", "yes")
	w.ok("carol", "case", "set", sea, "--status", "referred")
	w.syncAll()
	for _, f := range []struct {
		name    string
		filters []string
		want    []string
	}{
		{"referred", []string{"--status", "referred"}, []string{sea}},
		{"tag", []string{"--tag", tagMarker}, []string{sea}},
		{"category sea", []string{"--category", "sea"}, []string{sea}},
		{"severity high", []string{"--severity", "high"}, []string{sea}},
		{"unassigned", []string{"--unassigned"}, []string{g2, g3}},
		{"closed", []string{"--status", "closed"}, []string{g3}},
		{"waiting, assigned to bob", []string{"--status", "waiting", "--assignee", "bob"}, []string{g1}},
		{"older than a day", []string{"--older-than", "24h"}, nil},
	} {
		ids, _ := w.list("alice", f.filters...)
		wantIDs(t, "alice: "+f.name, ids, f.want...)
	}
	ids, _ = w.list("bob", "--tag", tagMarker)
	wantIDs(t, "bob: the sea case's tag", ids)
	// Triage: new and unassigned first, then by severity; closed cases left out.
	if got := w.triage("alice"); !slices.Equal(got, []string{g2, sea, g1}) {
		t.Errorf("alice's triage order: %v, want %v", short(got), short([]string{g2, sea, g1}))
	}
	if got := w.triage("bob"); !slices.Equal(got, []string{g2, g1}) {
		t.Errorf("bob's triage order: %v, want %v", short(got), short([]string{g2, g1}))
	}

	// Day 4: bob closes his case; the submitter writes again and alice reopens it.
	w.ok("bob", "case", "close", g1, "--reason", "completed")
	w.syncAll("alice")
	w.ok("alice", "case", "reopen", g1)
	w.ok("alice", "case", "set", g1, "--unassign", "bob", "--assign", "me", "--severity", "low")

	// Day 5: the referral's outcome; carol closes the restricted case.
	w.ok("carol", "case", "refer", sea, "--to", referralMarker, "--consent", "yes", "--outcome", outcomeMarker)
	w.ok("carol", "case", "close", sea, "--reason", "referred")
	w.ok("dana", "case", "set", g2, "--assign", "me", "--status", "open", "--severity", "low")
	w.syncAll()

	// What each case came to, by alice's reading.
	s := w.show("alice", sea)
	if s.Status != "closed" || s.CloseReason != "referred" || s.Severity != "high" || s.Referral == nil ||
		s.Referral.To != referralMarker || !s.Referral.Consent || s.Referral.Outcome != outcomeMarker ||
		!slices.Contains(s.Tags, tagMarker) || len(s.Notes) != 1 || !strings.Contains(s.Notes[0].Text, noteMarker) ||
		!slices.Equal(s.assigned(), []string{"carol"}) {
		t.Errorf("the sea case as alice reads it: %+v", s)
	}
	c1 := w.show("alice", g1)
	if c1.Status != "open" || c1.Severity != "low" || c1.Reopened != 1 || len(c1.Replies) != 1 || c1.FirstResponse == "" ||
		len(c1.Notes) != 1 || c1.Closed == "" {
		t.Errorf("g1 as alice reads it: %+v", c1)
	}
	c3 := w.show("bob", g3)
	if c3.Status != "closed" || c3.CloseReason != "duplicate" || len(c3.Links) != 1 || c3.Links[0] != (crypto.Link{Rel: "duplicate-of", Case: g1}) {
		t.Errorf("g3 as bob reads it: %+v", c3)
	}
	ids, _ = w.list("alice", "--assignee", "me")
	wantIDs(t, "alice: assigned to me at the end", ids, g1)
	ids, _ = w.list("alice", "--status", "closed")
	wantIDs(t, "alice: closed at the end", ids, sea, g3)

	// Every reader agrees on every case.
	readers := map[string][]string{sea: {"alice", "carol"}, g1: journalPeople, g2: journalPeople, g3: journalPeople}
	for id, who := range readers {
		want := w.show(who[0], id).agreed()
		for _, h := range who[1:] {
			if got := w.show(h, id).agreed(); got != want {
				t.Errorf("case %s: %s and %s disagree:\n%s\n%s", id[:8], who[0], h, want, got)
			}
		}
	}

	// Markers: the relay's disk, its log and its backup; every handler's
	// machine. The relay and the handlers' stores hold only ciphertext.
	markersIn(t, "relay data", w.path("data"), markers...)
	if !strings.Contains(w.relayLog.String(), "amana-relay") {
		t.Errorf("the relay's log is empty or not its own: the marker check would prove nothing:\n%s", w.relayLog.String())
	}
	markersInText(t, "the relay's log", w.relayLog.String(), markers...)
	op, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	w.file("operator.key", op.String()+"\n")
	must(t, run(t, nil, nil, "amana-relay", "backup", "--data", w.path("data"), "--recipient", op.Recipient().String(), "--out", w.path("relay.backup")))
	markersIn(t, "the backup", w.path("relay.backup"), markers...)
	must(t, run(t, nil, nil, "amana-relay", "restore", "--data", w.path("restored"), "--from", w.path("relay.backup"), "-i", w.path("operator.key")))
	markersIn(t, "the restored backup", w.path("restored"), markers...)
	for _, h := range journalPeople {
		markersIn(t, h+"'s home", w.home(h), markers...)
	}
	markersIn(t, "the submitter's home", w.home("submitter"), markers...)
}

// TestJournalConcurrentEdits: alice and bob change the same case without
// seeing each other's change; once both have synced they hold the same
// state, and the conflict is shown, naming whose change stands.
func TestJournalConcurrentEdits(t *testing.T) {
	w := newJournalWorld(t, false)
	g := w.submit("general", "a report two handlers pick up at once")
	w.pullAll("alice", "bob", "carol")
	w.ok("alice", "case", "set", g, "--assign", "carol")
	w.syncAll("alice", "bob")

	// Offline from each other: neither syncs before changing it. alice
	// takes the case over from carol; bob keeps carol on it and joins her.
	w.ok("alice", "case", "set", g, "--unassign", "carol", "--assign", "alice", "--status", "open")
	w.ok("bob", "case", "set", g, "--assign", "carol", "--assign", "bob", "--status", "escalated")
	w.syncAll("alice", "bob")

	a, b := w.show("alice", g), w.show("bob", g)
	if a.agreed() != b.agreed() {
		t.Fatalf("alice and bob disagree after syncing:\n%s\n%s", a.agreed(), b.agreed())
	}
	if len(a.Conflicts) < 2 {
		t.Errorf("want conflicts on the status and on carol's assignment, got %+v", a.Conflicts)
	}
	line := regexp.MustCompile(`(?m)^\s*(alice|bob)(?: \(you\))? and (alice|bob)(?: \(you\))? both changed the (status|assignee)[^;\n]*; (alice|bob)(?: \(you\))?'s change stands$`)
	for _, who := range []string{"alice", "bob"} {
		out := w.ok(who, "case", "show", g).stdout
		winner := map[string]string{}
		for _, m := range line.FindAllStringSubmatch(out, -1) {
			if m[1] != m[2] {
				winner[m[3]] = m[4]
			}
		}
		if winner["status"] == "" || winner["assignee"] == "" {
			t.Errorf("%s's case show does not show both conflicts:\n%s", who, out)
			continue
		}
		if want := map[string]string{"alice": "open", "bob": "escalated"}[winner["status"]]; a.Status != want {
			t.Errorf("%s's case show has %s's status change stand, but the status is %q", who, winner["status"], a.Status)
		}
		want := []string{"alice", "bob"}
		if winner["assignee"] == "bob" {
			want = []string{"alice", "bob", "carol"}
		}
		if got := a.assigned(); !slices.Equal(got, want) {
			t.Errorf("%s's case show has %s's assignment stand; the assignees are %v, want %v", who, winner["assignee"], got, want)
		}
	}
	// carol, who saw neither as it happened, replays to the same state.
	w.syncAll("carol")
	if c := w.show("carol", g); c.agreed() != a.agreed() {
		t.Errorf("carol disagrees:\n%s\n%s", a.agreed(), c.agreed())
	}

	// A change made after seeing another stands, whatever the clocks say
	// and however the authors' keys sort: the first closes the case with a
	// clock a minute ahead, the second (the one whose key sorts first) sees
	// it closed and reopens it. It is not a conflict.
	first, second := "alice", "bob"
	if w.keyID(first) < w.keyID(second) {
		first, second = second, first
	}
	w.syncAll(first)
	closed := w.craftEvent(first, g, crypto.Change{Status: "closed", CloseReason: "completed"}, nil, time.Now().Add(time.Minute))
	route, _ := w.manifest().Route("general")
	c, err := client.New(w.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Key = w.ids[first].SigningKey()
	if _, err := c.PostEvent(context.Background(), journalDesk, "general", "case", "", sealTo(t, route, closed)); err != nil {
		t.Fatal(err)
	}
	w.syncAll(second)
	if s := w.show(second, g); s.Status != "closed" {
		t.Fatalf("%s's close did not reach %s: %+v", first, second, s)
	}
	w.ok(second, "case", "reopen", g)
	w.syncAll("carol")
	for _, who := range []string{second, "carol"} {
		s := w.show(who, g)
		if s.Status != "open" || s.Reopened != 1 {
			t.Errorf("%s: %s reopened the case after seeing %s close it, but it is %q (reopened %d)", who, second, first, s.Status, s.Reopened)
		}
		for _, cf := range s.Conflicts {
			if cf.Field == "status" && cf.Winner.Key == w.keyID(first) {
				t.Errorf("%s: the reopening is shown as losing a conflict: %+v", who, cf)
			}
		}
	}
}

// TestJournalCoordinatorFacts: dana coordinates the desk but is not on the
// sea route. She sees a sea case's status, severity, assignees and times,
// never its text: not its report, notes, tags, referral or attachments.
func TestJournalCoordinatorFacts(t *testing.T) {
	w := newJournalWorld(t, false)
	const (
		reportMarker   = "MARKER-coord-report-a1"
		fileMarker     = "MARKER-coord-file-b2"
		noteMarker     = "MARKER-coord-note-c3"
		tagMarker      = "marker-coord-tag-d4"
		referralMarker = "MARKER-coord-referral-e5"
		outcomeMarker  = "MARKER-coord-outcome-f6"
	)
	markers := []string{reportMarker, fileMarker, noteMarker, tagMarker, referralMarker, outcomeMarker}
	sea := w.submit("sea", "restricted report "+reportMarker, w.file("proof.txt", fileMarker))
	sea2 := w.submit("sea", "a second restricted report "+reportMarker)
	g := w.submit("general", "a general report")
	w.pullAll()
	w.ok("carol", "case", "set", sea, "--status", "escalated", "--severity", "critical", "--assign", "me", "--tag", tagMarker)
	w.ok("carol", "case", "note", sea, "--message-file", w.file("n.txt", noteMarker))
	w.ok("carol", "case", "refer", sea, "--to", referralMarker, "--consent", "no", "--outcome", outcomeMarker)
	w.ok("alice", "case", "close", sea2, "--reason", "spam")
	var danaOut strings.Builder
	for _, args := range [][]string{{"pull"}, {"sync"}, {"list"}, {"triage"}} {
		r := w.ok("dana", args...)
		danaOut.WriteString(r.stdout + r.stderr)
	}
	w.syncAll("alice", "carol")

	// What dana's machine holds of the sea case: its facts, no case part.
	held, _ := filepath.Glob(filepath.Join(w.home("dana"), "cases", "journal", sea, "*"))
	facts := 0
	for _, p := range held {
		switch {
		case strings.HasSuffix(p, ".facts.age"):
			facts++
		case strings.HasSuffix(p, ".age"):
			t.Errorf("dana holds a case part of the sea case: %s", filepath.Base(p))
		}
	}
	if facts == 0 {
		t.Errorf("dana holds no facts of the sea case: %v", held)
	}

	ids, byID := w.list("dana")
	wantIDs(t, "dana's list", ids, sea, sea2, g)
	if e := byID[sea]; e != nil {
		assignees, _ := json.Marshal(e["assignees"])
		if e["status"] != "escalated" || e["severity"] != "critical" || e["category"] != "sea" || e["received"] == "" ||
			!strings.Contains(string(assignees), `"name":"carol"`) {
			t.Errorf("dana's list entry of the sea case: %v", e)
		}
	}
	ids, _ = w.list("dana", "--category", "sea")
	wantIDs(t, "dana: sea cases", ids, sea, sea2)
	ids, _ = w.list("dana", "--status", "closed")
	wantIDs(t, "dana: closed", ids, sea2)
	ids, _ = w.list("dana", "--severity", "critical")
	wantIDs(t, "dana: critical", ids, sea)

	if d, c := w.tryShow("dana", sea), w.show("carol", sea); d != nil {
		if !d.FactsOnly || d.Status != c.Status || d.Severity != c.Severity || !slices.Equal(d.assigned(), c.assigned()) ||
			d.Category != "sea" || d.Acknowledged != c.Acknowledged || d.Updated != c.Updated {
			t.Errorf("dana's facts of the sea case do not match carol's state:\ndana:  %+v\ncarol: %+v", d, c)
		}
		if len(d.Notes) != 0 || len(d.Tags) != 0 || d.Referral != nil && (d.Referral.To != "" || d.Referral.Outcome != "") || len(d.Links) != 0 {
			t.Errorf("dana's facts of the sea case carry text: %+v", d)
		}
	}
	if d2, a2 := w.tryShow("dana", sea2), w.show("alice", sea2); d2 != nil && (d2.Status != "closed" || d2.CloseReason != "spam" || d2.Closed != a2.Closed) {
		t.Errorf("dana's facts of the closed sea case: %+v, alice has %+v", d2, a2)
	}
	// dana cannot open the report itself.
	if r := w.amana("dana", "show", sea); r.code == 0 {
		t.Errorf("dana opened the sea report:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"list", "--json"}, {"case", "show", sea, "--json"}, {"case", "show", sea}, {"case", "show", sea2}, {"triage"}} {
		r := w.amana("dana", args...)
		danaOut.WriteString(r.stdout + r.stderr)
	}
	markersInText(t, "dana's outputs", danaOut.String(), markers...)
	markersIn(t, "dana's home", w.home("dana"), markers...)
	// The check can fail: carol's outputs do show them.
	if out := w.ok("carol", "case", "show", sea).stdout; !strings.Contains(out, noteMarker) || !strings.Contains(out, tagMarker) {
		t.Errorf("carol's case show lacks the note or the tag:\n%s", out)
	}
}

// TestJournalOutsider: bob is not on the sea route. His client refuses to
// change a sea case, the relay refuses a sea event he crafts, and nothing
// of the sea case reaches him.
func TestJournalOutsider(t *testing.T) {
	w := newJournalWorld(t, false)
	const noteMarker = "MARKER-outsider-note-77"
	sea := w.submit("sea", "restricted")
	g := w.submit("general", "general")
	w.pullAll()
	w.ok("carol", "case", "note", sea, "--message-file", w.file("n.txt", noteMarker))
	w.ok("alice", "case", "set", g, "--status", "open")

	if r := w.amana("bob", "case", "set", sea, "--status", "closed"); r.code == 0 {
		t.Errorf("bob's client changed a sea case: %s", r.stderr)
	}
	if r := w.amana("bob", "case", "show", sea); r.code == 0 {
		t.Errorf("bob's client shows a sea case:\n%s", r.stdout)
	}

	// A post straight to the relay, as bob: refused for sea, accepted for
	// general (so the refusal is the route's, not the crafting's).
	m := w.manifest()
	c, err := client.New(w.relay.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Key = w.ids["bob"].SigningKey()
	ctx := context.Background()
	for _, tc := range []struct {
		category, part string
		ok             bool
	}{{"sea", "case", false}, {"sea", "facts", false}, {"general", "case", true}, {"general", "facts", true}} {
		cards, err := m.Route(tc.category)
		if err != nil {
			t.Fatal(err)
		}
		if tc.part == "facts" {
			cards = m.CoordinatorCards()
		}
		_, err = c.PostEvent(ctx, journalDesk, tc.category, tc.part, "", sealTo(t, cards, []byte("not an event: the relay cannot tell")))
		if tc.ok && err != nil {
			t.Errorf("bob's post of a %s %s part was refused: %v", tc.category, tc.part, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("the relay accepted bob's post of a %s %s part", tc.category, tc.part)
		}
	}
	items, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Category == "sea" {
			t.Errorf("the relay lists a sea event to bob: %+v", it)
		}
	}
	for _, h := range journalPeople {
		w.amana(h, "sync") // the junk event is refused
	}
	if s := w.show("alice", g); s.Status != "open" {
		t.Errorf("alice's general case after bob's junk event: %+v", s)
	}
	markersIn(t, "bob's home", w.home("bob"), noteMarker)
	if held, _ := filepath.Glob(filepath.Join(w.home("bob"), "cases", "journal", sea, "*")); len(held) > 0 {
		t.Errorf("bob holds parts of the sea case's journal: %v", held)
	}
	if s := w.show("alice", sea); len(s.Notes) != 1 {
		t.Errorf("alice lacks carol's note: %+v", s)
	}
}

// manifest is the desk's manifest of the current serial, as published.
func (w *jworld) manifest() *crypto.Manifest {
	w.t.Helper()
	raw, err := os.ReadFile(w.path(fmt.Sprintf("desk-%d.json", w.serial)))
	if err != nil {
		w.t.Fatal(err)
	}
	m, _, err := crypto.OpenManifest(raw, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// sealTo age-encrypts plaintext to cards, in order.
func sealTo(t *testing.T, cards []*crypto.Card, plaintext []byte) []byte {
	t.Helper()
	b, err := crypto.SealEvent(cards, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJournalRemovedHandler: once the desk drops bob, an event of his is
// refused by the relay, and by the others' clients when it reaches them
// anyway, while his earlier changes stand.
func TestJournalRemovedHandler(t *testing.T) {
	w := newJournalWorld(t, true)
	g := w.submit("general", "a case bob worked on before he left")
	w.pullAll()
	w.ok("bob", "case", "set", g, "--tag", "before-removal")
	// Crafted in the test as bob, chained to his last event: accepted
	// while bob is a handler, so the crafting is sound.
	before := w.craftEvent("bob", g, crypto.Change{Tag: []string{"crafted-while-member"}}, nil, time.Now())
	c, err := client.New(w.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Key = w.ids["bob"].SigningKey()
	route, _ := w.manifest().Route("general")
	if _, err := c.PostEvent(context.Background(), journalDesk, "general", "case", "", sealTo(t, route, before)); err != nil {
		t.Fatalf("bob's crafted event while a handler: %v", err)
	}
	w.syncAll()
	if s := w.show("alice", g); !slices.Contains(s.Tags, "before-removal") || !slices.Contains(s.Tags, "crafted-while-member") {
		t.Fatalf("bob's changes as a handler did not reach alice: %+v", s)
	}

	w.publish("alice", "carol", "dana")
	w.syncAll("alice", "carol", "dana") // they fetch and verify the new manifest

	// bob's client, or the relay, refuses his change now.
	if r := w.amana("bob", "case", "set", g, "--tag", "after-removal-cli"); r.code == 0 || !strings.Contains(r.stderr, "not authorized") {
		t.Errorf("bob's change after his removal: exit %d\n%s", r.code, r.stderr)
	}
	w.syncAll("alice")
	if s := w.show("alice", g); slices.Contains(s.Tags, "after-removal-cli") {
		t.Errorf("alice accepted bob's change after his removal: %+v", s)
	}
	later := w.craftEvent("bob", g, crypto.Change{Tag: []string{"after-removal"}, Status: "rejected"}, before, time.Now())
	oldRoute := route
	if _, err := c.PostEvent(context.Background(), journalDesk, "general", "case", "", sealTo(t, oldRoute, later)); err == nil {
		t.Error("the relay accepted an event of a removed handler")
	}
	// The proxy delivers it to alice all the same.
	body := sealTo(t, oldRoute, later)
	id, item := w.proxy.invent(body, journalDesk, "general", time.Now().UTC().Format("2006-01-02T15:00:00Z"))
	w.proxy.attack(w.keyID("alice"), func(items []api.Item) []api.Item { return append(items, item) }, nil)
	r := w.amana("alice", "sync")
	w.proxy.attack("", nil, nil)
	if !regexp.MustCompile(`refused change \d+ of key [0-9 ]+ on case [0-9a-f]+: its author is not a handler of the desk`).MatchString(r.stderr) {
		t.Errorf("alice's sync does not report the refusal of bob's change as a removed handler's:\n%s", r.stderr)
	}
	s := w.show("alice", g)
	if slices.Contains(s.Tags, "after-removal") || s.Status == "rejected" {
		t.Errorf("alice accepted a removed handler's event: %+v", s)
	}
	if !slices.Contains(s.Tags, "before-removal") {
		t.Errorf("bob's change from before his removal is gone: %+v", s)
	}
	if !w.proxy.ackedFake(id) {
		t.Error("alice did not acknowledge the refused event, so it would come back")
	}
}

// craftEvent is the next event of who on case id at time at, built and
// signed in the test, chained to prev (signed JSON), or when prev is nil to
// who's last event on the case as their journal holds it. It returns the
// signed JSON.
func (w *jworld) craftEvent(who, id string, ch crypto.Change, prev []byte, at time.Time) []byte {
	w.t.Helper()
	meta := w.caseMeta(who, id)
	category := meta.Category
	if meta.ReportCategory != nil {
		category = *meta.ReportCategory
	}
	e := &crypto.Event{Desk: journalDesk, Case: id, CaseSHA256: meta.SHA256, Category: category,
		Time: at.UTC().Format("2006-01-02T15:04:05Z"), Change: ch}
	key := w.keyID(who)
	// Seen: the highest seq of every other author's held by who, as
	// their own client would write it.
	own := w.show(who, id)
	for _, h := range own.History {
		if h.Author.Key != key {
			if e.Seen == nil {
				e.Seen = map[string]uint64{}
			}
			e.Seen[h.Author.Key] = max(e.Seen[h.Author.Key], h.Seq)
		}
	}
	var last *crypto.Event
	if prev != nil {
		var err error
		if last, err = crypto.ParseEvent(prev); err != nil {
			w.t.Fatal(err)
		}
	} else {
		var seq uint64
		for _, h := range own.History {
			if h.Author.Key == key {
				seq = max(seq, h.Seq)
			}
		}
		if seq > 0 {
			last = w.heldEvent(who, id, key, seq)
		}
	}
	if last != nil {
		e.Seq, e.Prev = last.Seq, crypto.EventDigest(last)
	}
	e.Seq++
	// Clock: one more than the highest held on the case, as Record does.
	held, _ := filepath.Glob(filepath.Join(w.home(who), "cases", "journal", id, "*.case.age"))
	for _, p := range held {
		ct, err := os.ReadFile(p)
		if err != nil {
			w.t.Fatal(err)
		}
		js, err := crypto.OpenEvent(ct, w.ids[who].Age())
		if err != nil {
			w.t.Fatal(err)
		}
		he, err := crypto.ParseEvent(js)
		if err != nil {
			w.t.Fatal(err)
		}
		e.Clock = max(e.Clock, he.Clock)
	}
	if last != nil {
		e.Clock = max(e.Clock, last.Clock)
	}
	e.Clock++
	if err := crypto.SignEvent(e, w.ids[who]); err != nil {
		w.t.Fatal(err)
	}
	b, err := crypto.MarshalEvent(e)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// heldEvent opens who's stored copy of author's event seq on case id.
func (w *jworld) heldEvent(who, id, author string, seq uint64) *crypto.Event {
	w.t.Helper()
	p := filepath.Join(w.home(who), "cases", "journal", id, fmt.Sprintf("%s-%d.case.age", author, seq))
	ct, err := os.ReadFile(p)
	if err != nil {
		w.t.Fatalf("%s's copy of %s's event %d: %v", who, author[:8], seq, err)
	}
	js, err := crypto.OpenEvent(ct, w.ids[who].Age())
	if err != nil {
		w.t.Fatal(err)
	}
	e, err := crypto.ParseEvent(js)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// caseMeta is who's case store's record of case id.
func (w *jworld) caseMeta(who, id string) *cases.Meta {
	w.t.Helper()
	st, err := cases.Open(filepath.Join(w.home(who), "cases"))
	if err != nil {
		w.t.Fatal(err)
	}
	m, err := st.Meta(id)
	if err != nil {
		w.t.Fatalf("%s's case %s: %v", who, id[:8], err)
	}
	return m
}

// TestJournalKilledSync: 'amana sync' and 'amana pull' killed with
// SIGKILL at random points lose nothing: the next run brings every event,
// once, and every event file left is whole. Also on the sending side: a
// sync killed while it posts the outbox. The seed of the kill points is
// logged.
func TestJournalKilledSync(t *testing.T) {
	w := newJournalWorld(t, false)
	cases := []string{w.submit("general", "one"), w.submit("general", "two"), w.submit("sea", "three")}
	w.pullAll("alice", "carol")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 14))
	t.Logf("kill points drawn with seed %d", seed)
	tags := map[string][]string{} // case -> the tags alice set on it
	kills := 0
	for round := range 4 {
		for i := range 6 {
			id := cases[(round+i)%len(cases)]
			tag := fmt.Sprintf("r%d-e%d", round, i)
			w.ok("alice", "case", "set", id, "--tag", tag)
			tags[id] = append(tags[id], tag)
		}
		if round%2 == 1 {
			cases = append(cases, w.submit("general", fmt.Sprintf("report of round %d", round)))
			w.ok("alice", "pull")
		}
		sub := []string{"sync", "pull"}[round%2]
		// Kill it at random points until a run gets through.
		for attempt := 0; ; attempt++ {
			delay := time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
			if attempt >= 5 {
				delay = time.Hour
			}
			if done := w.killAfter("carol", delay, sub); done {
				break
			}
			kills++
			t.Logf("round %d: killed carol's %s after %v", round, sub, delay)
		}
		w.ok("carol", "sync")
		w.syncAll("alice")
		for _, id := range cases {
			a, c := w.show("alice", id), w.show("carol", id)
			seen := map[string]bool{}
			for _, k := range c.authorSeqs() {
				if seen[k] {
					t.Errorf("round %d: case %s: carol holds %s twice", round, id[:8], k)
				}
				seen[k] = true
			}
			if a.agreed() != c.agreed() {
				t.Errorf("round %d: case %s: carol's state after the kills differs from alice's:\n%s\n%s", round, id[:8], a.agreed(), c.agreed())
			}
			for _, tag := range tags[id] {
				if !slices.Contains(c.Tags, tag) {
					t.Errorf("round %d: case %s: carol lacks alice's change tagging %s", round, id[:8], tag)
				}
			}
		}
	}
	// Every event file carol holds is whole: it opens and parses.
	held, _ := filepath.Glob(filepath.Join(w.home("carol"), "cases", "journal", "*", "*.case.age"))
	if len(held) == 0 {
		t.Error("carol holds no event files where the journal keeps them")
	}
	for _, p := range held {
		ct, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		js, err := crypto.OpenEvent(ct, w.ids["carol"].Age())
		if err == nil {
			_, err = crypto.ParseEvent(js)
		}
		if err != nil {
			t.Errorf("carol's %s after the kills: %v", filepath.Base(p), err)
		}
	}
	if kills == 0 {
		t.Log("no run was killed before it finished: the runs were too quick for the delays drawn")
	}
	// Nothing waits for carol at the relay: every event was acknowledged.
	c, _ := client.New(w.url, nil)
	c.Key = w.ids["carol"].SigningKey()
	if items, err := c.Events(context.Background()); err != nil || len(items) != 0 {
		t.Errorf("events still listed to carol: %d, %v", len(items), err)
	}

	// The author's side: changes recorded while the relay cannot be
	// reached wait in alice's outbox; her sync, killed while it sends
	// them, loses none, and carol applies each once.
	dead := "http://127.0.0.1:" + freePort(t)
	for i := range 5 {
		tag := fmt.Sprintf("offline-%d", i)
		id := cases[i%len(cases)]
		r := run(t, []string{"AMANA_HOME=" + w.home("alice")}, nil, "amana", "case", "set", id, "--tag", tag, "--relay", dead, "-i", w.path("alice.key"))
		if r.code == 0 || !strings.Contains(r.stderr, "not sent yet") {
			t.Fatalf("a change recorded with the relay out of reach: exit %d\n%s", r.code, r.stderr)
		}
		tags[id] = append(tags[id], tag)
	}
	for attempt := 0; ; attempt++ {
		delay := time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
		if attempt >= 5 {
			delay = time.Hour
		}
		if w.killAfter("alice", delay, "sync") {
			break
		}
		t.Logf("killed alice's sync with changes to send after %v", delay)
	}
	w.ok("carol", "sync")
	for _, id := range cases {
		a, c := w.show("alice", id), w.show("carol", id)
		if k := c.authorSeqs(); len(k) != len(slices.Compact(slices.Sorted(slices.Values(k)))) {
			t.Errorf("case %s: carol holds a change twice: %v", id[:8], k)
		}
		if a.agreed() != c.agreed() {
			t.Errorf("case %s: after alice's killed syncs carol's state differs from hers:\n%s\n%s", id[:8], a.agreed(), c.agreed())
		}
		for _, tag := range tags[id] {
			if !slices.Contains(c.Tags, tag) {
				t.Errorf("case %s: carol lacks alice's change tagging %s", id[:8], tag)
			}
		}
	}
}

// killAfter runs who's amana sub and kills it with SIGKILL after delay;
// it reports whether the run finished (successfully) first.
func (w *jworld) killAfter(who string, delay time.Duration, sub string) bool {
	w.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "amana"), sub, "--relay", w.url, "-i", w.path(who+".key"))
	cmd.Env = append(os.Environ(), "AMANA_HOME="+w.home(who))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			w.t.Fatalf("%s's %s failed without being killed: %v\n%s", who, sub, err, out.String())
		}
		return true
	case <-time.After(delay):
		cmd.Process.Kill()
		<-done
		return false
	}
}

// TestJournalMaliciousRelay: a relay that drops, reorders, duplicates,
// replays and swaps events, and invents its own, gets nothing forged or
// misplaced accepted, and a dropped event is reported as a gap until it
// arrives.
func TestJournalMaliciousRelay(t *testing.T) {
	w := newJournalWorld(t, true)
	g1 := w.submit("general", "first case")
	g2 := w.submit("general", "second case")
	w.pullAll("alice", "carol")
	alice, carol := w.keyID("alice"), w.keyID("carol")
	same := func(phase string, ids ...string) {
		t.Helper()
		w.syncAll("alice")
		for _, id := range ids {
			if a, c := w.show("alice", id), w.show("carol", id); a.agreed() != c.agreed() {
				t.Errorf("%s: case %s: carol's state differs from alice's:\n%s\n%s", phase, id[:8], a.agreed(), c.agreed())
			}
		}
	}

	t.Run("drop", func(t *testing.T) {
		w.ok("alice", "case", "set", g1, "--severity", "high")
		dropped := w.proxy.lastPost(t, alice, "case")
		w.ok("alice", "case", "note", g1, "--message-file", w.file("drop.txt", "after the dropped one"))
		w.proxy.attack(carol, func(items []api.Item) []api.Item {
			return slices.DeleteFunc(items, func(it api.Item) bool { return it.ID == dropped })
		}, nil)
		r := w.ok("carol", "sync")
		c := w.show("carol", g1)
		seq := w.heldEventByBody(t, "carol", w.proxy.body(t, dropped)).Seq
		if c.Severity == "high" || len(c.Gaps) != 1 || c.Gaps[0].Seq != seq {
			t.Errorf("with alice's change %d dropped carol has %+v", seq, c)
		}
		if out := w.ok("carol", "case", "show", g1).stdout; !gapLine("alice", seq).MatchString(out) {
			t.Errorf("carol's case show does not report the gap:\n%s", out)
		}
		if !gapLine("alice", seq).MatchString(r.stderr) {
			t.Errorf("carol's sync does not report the gap:\n%s", r.stderr)
		}
		if _, byID := w.list("carol"); byID[g1]["gaps"] != 1.0 {
			t.Errorf("carol's list does not count the gap: %v", byID[g1])
		}
		w.proxy.attack("", nil, nil)
		w.ok("carol", "sync")
		if c := w.show("carol", g1); c.Severity != "high" || len(c.Gaps) != 0 {
			t.Errorf("the dropped change arrived but carol has %+v", c)
		}
		same("drop", g1)
	})

	t.Run("reorder", func(t *testing.T) {
		for _, s := range []string{"acknowledged", "open", "escalated"} {
			w.ok("alice", "case", "set", g2, "--status", s)
		}
		w.proxy.attack(carol, func(items []api.Item) []api.Item {
			slices.Reverse(items)
			return items
		}, nil)
		w.ok("carol", "sync")
		w.proxy.attack("", nil, nil)
		if c := w.show("carol", g2); c.Status != "escalated" {
			t.Errorf("after a reversed listing carol has status %q", c.Status)
		}
		same("reorder", g2)
	})

	t.Run("duplicate and replay", func(t *testing.T) {
		w.ok("alice", "case", "set", g2, "--status", "waiting")
		fresh := w.proxy.lastPost(t, alice, "case")
		w.ok("alice", "case", "set", g1, "--status", "open")
		// The same body again under a new ID, and an old event of alice's
		// (escalated, long acknowledged) replayed under another.
		var oldBody []byte
		for _, p := range w.proxy.posted() {
			if p.Key == alice && p.Part == "case" {
				if c := w.heldEventByBody(t, "carol", w.proxy.body(t, p.ID)); c.Case == g2 && c.Change.Status == "escalated" {
					oldBody = w.proxy.body(t, p.ID)
				}
			}
		}
		if oldBody == nil {
			t.Fatal("no old escalated event went through the proxy")
		}
		hour := time.Now().UTC().Format("2006-01-02T15:00:00Z")
		_, dup := w.proxy.invent(w.proxy.body(t, fresh), journalDesk, "general", hour)
		_, replay := w.proxy.invent(oldBody, journalDesk, "general", hour)
		w.proxy.attack(carol, func(items []api.Item) []api.Item { return append(items, dup, replay) }, nil)
		r := w.ok("carol", "sync")
		w.proxy.attack("", nil, nil)
		if !strings.Contains(r.stderr, "2 already held") || !w.proxy.ackedFake(dup.ID) || !w.proxy.ackedFake(replay.ID) {
			t.Errorf("carol's sync does not count the copies as held, or did not acknowledge them:\n%s", r.stderr)
		}
		c := w.show("carol", g2)
		if c.Status != "waiting" {
			t.Errorf("after a replayed old event carol has status %q", c.Status)
		}
		seen := map[string]bool{}
		for _, k := range c.authorSeqs() {
			if seen[k] {
				t.Errorf("carol applied %s twice", k)
			}
			seen[k] = true
		}
		same("duplicate and replay", g1, g2)
	})

	t.Run("swap between cases", func(t *testing.T) {
		w.ok("alice", "case", "set", g1, "--tag", "only-on-g1")
		e1 := w.proxy.lastPost(t, alice, "case")
		w.ok("alice", "case", "set", g2, "--tag", "only-on-g2")
		e2 := w.proxy.lastPost(t, alice, "case")
		b1, b2 := w.proxy.body(t, e1), w.proxy.body(t, e2)
		// First the bodies alone swapped: the downloads do not match the
		// listing and are not accepted.
		w.proxy.attack(carol, nil, map[string][]byte{e1: b2, e2: b1})
		w.amana("carol", "sync")
		for id, tag := range map[string]string{g1: "only-on-g2", g2: "only-on-g1"} {
			if c := w.show("carol", id); slices.Contains(c.Tags, tag) {
				t.Errorf("case %s took the swapped event: %+v", id[:8], c)
			}
		}
		// Then the listing rewritten to match the swapped bodies: each is
		// taken for the case it was signed for, never the other.
		w.proxy.attack(carol, func(items []api.Item) []api.Item {
			for i, it := range items {
				switch it.ID {
				case e1:
					items[i].Size, items[i].SHA256 = int64(len(b2)), sha(b2)
				case e2:
					items[i].Size, items[i].SHA256 = int64(len(b1)), sha(b1)
				}
			}
			return items
		}, map[string][]byte{e1: b2, e2: b1})
		w.ok("carol", "sync")
		w.proxy.attack("", nil, nil)
		w.ok("carol", "sync")
		c1, c2 := w.show("carol", g1), w.show("carol", g2)
		if !slices.Contains(c1.Tags, "only-on-g1") || slices.Contains(c1.Tags, "only-on-g2") ||
			!slices.Contains(c2.Tags, "only-on-g2") || slices.Contains(c2.Tags, "only-on-g1") {
			t.Errorf("after swapped bodies: g1 tags %v, g2 tags %v", c1.Tags, c2.Tags)
		}
		same("swap", g1, g2)
	})

	t.Run("forged", func(t *testing.T) {
		before := w.show("carol", g1).agreed()
		route, _ := w.manifest().Route("general")
		hour := time.Now().UTC().Format("2006-01-02T15:00:00Z")
		var items []api.Item
		// An event claiming to be alice's, signed by a key the relay made up.
		impostor, err := crypto.GenerateIdentity("alice", true)
		if err != nil {
			t.Fatal(err)
		}
		meta := w.caseMeta("carol", g1)
		e := &crypto.Event{Desk: journalDesk, Case: g1, CaseSHA256: meta.SHA256, Category: "general", Seq: 2, Clock: 1 << 40, Prev: strings.Repeat("ab", 32),
			Time: time.Now().UTC().Format("2006-01-02T15:04:05Z"), Change: crypto.Change{Status: "rejected", Note: "forged"}}
		if err := crypto.SignEvent(e, impostor); err != nil {
			t.Fatal(err)
		}
		e.Author = alice // the signature stays the impostor's
		js, err := crypto.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		_, it := w.proxy.invent(sealTo(t, route, js), journalDesk, "general", hour)
		items = append(items, it)
		// A real event of alice's with one ciphertext byte changed.
		real := w.proxy.body(t, w.proxy.lastPost(t, alice, "case"))
		real[len(real)-20] ^= 1
		_, it = w.proxy.invent(real, journalDesk, "general", hour)
		items = append(items, it)
		// Junk, sealed properly.
		_, it = w.proxy.invent(sealTo(t, route, []byte(`{"schema":"amana-event/v1"}`)), journalDesk, "general", hour)
		items = append(items, it)
		w.proxy.attack(carol, func(in []api.Item) []api.Item { return append(in, items...) }, nil)
		r := w.amana("carol", "sync")
		w.proxy.attack("", nil, nil)
		if !strings.Contains(r.stderr, fmt.Sprintf("%d refused", len(items))) || !strings.Contains(r.stderr, "signature does not verify") {
			t.Errorf("carol's sync does not report the refusals:\n%s", r.stderr)
		}
		if after := w.show("carol", g1).agreed(); after != before {
			t.Errorf("forged events changed the case:\n%s\n%s", before, after)
		}
		for _, it := range items {
			if !w.proxy.ackedFake(it.ID) {
				t.Errorf("carol did not acknowledge refused event %s", it.ID[:8])
			}
		}
	})
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (w *jworld) heldEventByBody(t *testing.T, who string, ct []byte) *crypto.Event {
	t.Helper()
	js, err := crypto.OpenEvent(ct, w.ids[who].Age())
	if err != nil {
		t.Fatal(err)
	}
	e, err := crypto.ParseEvent(js)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
