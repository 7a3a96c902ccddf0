package crypto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Case journal vectors (docs/protocol.md §8.11, §11): kind "event", a
// signed event's canonical JSON as the body, signed by signer-secret's
// handler, with its digest, its padded size and, for the valid ones, its
// signed facts for the case's received hour. The bad ones say the error
// code a reader reports.

const testReceived = "2026-12-01T10:00:00Z"

func writeJournalManifestVectors(t *testing.T) {
	m, admin := testDesk(t)
	m.Serial = 10
	m.DefaultRoute = "sea"
	m.Coordinators = []string{"alice"}
	m.Workflow = &Workflow{
		Statuses: []string{"received", "in-review", "waiting", "done", "dismissed"},
		Final:    []string{"done", "dismissed"},
		Severities: []Severity{
			{ID: "p1", Meaning: "life or safety at risk <now>", Meanings: map[string]string{"ar": "خطر على الحياة أو السلامة", "fr": "vie ou sécurité en danger"}},
			{ID: "p2", Meaning: ""},
		},
		CloseReasons: []string{"answered", "out-of-mandate"},
		Tags:         []string{"camp-3", "medical"},
	}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	v := &vector{}
	v.set("kind", "manifest")
	v.set("description", "a desk with a coordinator and its own workflow: statuses, final statuses, severities with meanings in other languages, close reasons and tags")
	v.set("signer-secret", testAdminSecret)
	v.set("fingerprint", KeyFingerprint(admin.Card().SignKey))
	v.set("desk", "helpdesk")
	v.set("serial", "10")
	v.set("expect", "ok")
	v.body = env
	writeVector(t, "manifest-journal.txt", v)

	// A signer with other code can sign coordinators without a default
	// route; readers refuse it.
	m.DefaultRoute = ""
	payload, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	be := Envelope{Format: DeskFormat, Payload: base64.StdEncoding.EncodeToString(payload), Key: b64.EncodeToString(admin.Card().SignKey),
		Signature: b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(payload)))}
	bb, _ := json.MarshalIndent(be, "", "  ")
	bv := &vector{}
	bv.set("kind", "manifest")
	bv.set("description", "validly signed and canonical, but it names coordinators and no default_route: a report without a category would reach them")
	bv.set("expect", "coordinators_need_route")
	bv.body = append(bb, '\n')
	writeVector(t, "manifest-bad-coordinators.txt", bv)
}

// writeTargetsManifestVector writes a desk whose workflow carries
// response-time targets, paused statuses and escalation steps
// (docs/protocol.md §6.2).
func writeTargetsManifestVector(t *testing.T) {
	m, admin := testDesk(t)
	m.Serial = 11
	m.DefaultRoute = "sea"
	m.Workflow = &Workflow{
		Statuses: []string{"new", "open", "waiting", "resolved"},
		Final:    []string{"resolved"},
		Severities: []Severity{
			{ID: "urgent", Meaning: "act within the hour", Targets: &Targets{Acknowledge: 120, FirstResponse: 240, Update: 1440, Resolve: 10080}},
			{ID: "routine", Meaning: "act within the week", Targets: &Targets{Resolve: 43200}},
			{ID: "none", Meaning: "no target"},
		},
		CloseReasons: []string{"completed"},
		Paused:       []string{"waiting"},
		Escalation: []Escalation{
			{AfterMinutes: 60, Unless: UnlessAcknowledged, Notify: []string{"alice"}, Label: "shift leads"},
			{AfterMinutes: 90, Unless: UnlessAcknowledged, Severities: []string{"urgent"}, Notify: []string{"alice"}, Label: "coordinator"},
			{AfterMinutes: 20160, Unless: UnlessResolved, Notify: []string{"alice"}},
		},
	}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	v := &vector{}
	v.set("kind", "manifest")
	v.set("description", "a workflow with response-time targets per severity (some partial, one severity without), a paused status and escalation steps, one limited to a severity")
	v.set("signer-secret", testAdminSecret)
	v.set("fingerprint", KeyFingerprint(admin.Card().SignKey))
	v.set("desk", "helpdesk")
	v.set("serial", "11")
	v.set("expect", "ok")
	v.body = env
	writeVector(t, "manifest-targets.txt", v)
}

func writeEventVectors(t *testing.T) {
	writeJournalManifestVectors(t)
	writeTargetsManifestVector(t)
	alice, bob := journalIDs(t)
	first := &Event{Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea", Seq: 1, Clock: 1,
		Time: "2026-12-01T10:04:31Z", Change: Change{Status: "acknowledged", Severity: "high",
			Assign: []string{alice.Card().KeyID()}, Received: true}}
	if err := SignEvent(first, alice); err != nil {
		t.Fatal(err)
	}
	var ctl strings.Builder
	for c := 0; c < 0x20; c++ {
		ctl.WriteByte(byte(c))
	}
	second := &Event{Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea", Seq: 2, Clock: 5,
		Prev: EventDigest(first), Time: "2026-12-02T16:45:09Z", Seen: map[string]uint64{bob.Card().KeyID(): 3},
		Change: Change{Status: "referred", Assign: []string{bob.Card().KeyID()}, Unassign: []string{alice.Card().KeyID()},
			Tag: []string{"camp-3", "medical"}, Untag: []string{"new"},
			Note:     "اتصلت بنقطة الاتصال. <b>she</b> agreed & \"asked\" for a call\n" + ctl.String() + "\x7f\u2028\u2029 😀",
			Link:     &Link{Rel: RelRelated, Case: testOther},
			Referral: &Referral{To: "Protection cluster / GBV sub-cluster", Consent: true, Outcome: "accepted, case worker assigned"},
			Reply:    "00112233445566778899aabbccddeeff"}}
	if err := SignEvent(second, alice); err != nil {
		t.Fatal(err)
	}
	ok := func(name, desc string, e *Event) {
		f := FactsOf(e, testReceived)
		if err := SignFacts(f, alice); err != nil {
			t.Fatal(err)
		}
		fb, err := MarshalFacts(f)
		if err != nil {
			t.Fatal(err)
		}
		b := mustMarshalEvent(t, e)
		v := &vector{}
		v.set("kind", "event")
		v.set("description", desc)
		v.set("signer-secret", testClassicSecret)
		v.set("expect", "ok")
		v.set("digest", EventDigest(e))
		v.set("plain-size", fmt.Sprint(EventPlainSize(len(b))))
		v.set("received", testReceived)
		v.set("facts", string(fb))
		v.body = append(b, '\n')
		writeVector(t, name, v)
	}
	ok("event-first.txt", "alice's first event on a case: seq 1, prev empty, received, acknowledged and assigned to herself", first)
	ok("event-second.txt", "alice's second event: prev is the first's digest; seen, every text member, HTML characters, controls, U+2028/U+2029 and Arabic in the note; its facts carry none of the text", second)

	bad := func(name, desc, expect string, body []byte) {
		v := &vector{}
		v.set("kind", "event")
		v.set("description", desc)
		v.set("signer-secret", testClassicSecret)
		v.set("expect", expect)
		v.body = append(body, '\n')
		writeVector(t, name, v)
	}
	good := mustMarshalEvent(t, second)
	// resign signs arbitrary JSON bytes as alice would sign an event.
	resign := func(js []byte) []byte {
		var e Event
		if err := decodeStrict(js, &e); err != nil {
			t.Fatal(err)
		}
		e.Signature = ""
		unsigned, _ := encodeCanonical(&e)
		if !bytes.Equal(unsigned, bytes.Replace(js, []byte(`,"signature":"`+second.Signature+`"`), nil, 1)) {
			t.Fatal("resign: the edit is not canonical")
		}
		e.Signature = b64.EncodeToString(ed25519.Sign(alice.SigningKey(), append([]byte(EventDomain+"\n"), unsigned...)))
		out, _ := encodeCanonical(&e)
		return out
	}
	bad("event-bad-tampered.txt", "the second event with one character of its note changed after signing", "bad_signature",
		bytes.Replace(good, []byte("agreed"), []byte("agrees"), 1))
	other := *second
	other.Signature = ""
	unsigned, _ := encodeCanonical(&other)
	other.Signature = b64.EncodeToString(ed25519.Sign(alice.SigningKey(), append([]byte(ReplyDomain+"\n"), unsigned...)))
	wd, _ := encodeCanonical(&other)
	bad("event-bad-domain.txt", "the second event signed under amana-reply/v1 instead of amana-event/v1", "bad_signature", wd)
	bad("event-bad-noncanonical.txt", "the second event with <, > and & escaped as Go's default encoder writes them: not canonical", "not_canonical",
		bytes.Replace(good, []byte("<b>she</b>"), []byte(`\u003cb\u003eshe\u003c/b\u003e`), 1))
	bad("event-bad-unknown-member.txt", "the second event with a member this version does not know", "not_canonical",
		bytes.Replace(good, []byte(`"change":{`), []byte(`"change":{"priority":"p1",`), 1))
	seq0 := resign(bytes.Replace(good, []byte(`"seq":2`), []byte(`"seq":0`), 1))
	bad("event-bad-seq-zero.txt", "validly signed and canonical, but seq 0", "malformed", seq0)
	noPrev := resign(bytes.Replace(good, []byte(`"prev":"`+second.Prev+`"`), []byte(`"prev":""`), 1))
	bad("event-bad-no-prev.txt", "validly signed and canonical, but seq 2 without prev", "malformed", noPrev)
	ms := resign(bytes.Replace(good, []byte(`"time":"2026-12-02T16:45:09Z"`), []byte(`"time":"2026-12-02T16:45:09.250Z"`), 1))
	bad("event-bad-time.txt", "validly signed and canonical, but its time has a fraction of a second", "malformed", ms)
}

func checkEventVector(t *testing.T, v *vector) {
	alice, _ := NewIdentity("alice", v.get("signer-secret"))
	_, bob := journalIDs(t)
	cards := []*Card{bob.Card(), alice.Card()}
	body, ok := bytes.CutSuffix(v.body, []byte("\n"))
	if !ok {
		t.Fatal("body does not end in LF")
	}
	e, err := ParseEvent(body)
	if err == nil {
		_, err = VerifyEvent(e, cards)
	}
	if want := v.get("expect"); want != "ok" {
		if got := errorCode(err); got != want {
			t.Fatalf("error %v (%s), want %s", err, got, want)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := EventDigest(e); got != v.get("digest") {
		t.Errorf("digest %s, want %s", got, v.get("digest"))
	}
	if got := fmt.Sprint(EventPlainSize(len(body))); got != v.get("plain-size") {
		t.Errorf("plain size %s, want %s", got, v.get("plain-size"))
	}
	// Signing is deterministic: signing the same event again gives the
	// same bytes.
	again := *e
	if err := SignEvent(&again, alice); err != nil {
		t.Fatal(err)
	}
	if b, _ := MarshalEvent(&again); !bytes.Equal(b, body) {
		t.Errorf("re-signed event differs:\n%s\n%s", b, body)
	}
	f, err := ParseFacts([]byte(v.get("facts")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFacts(f, cards); err != nil {
		t.Errorf("facts: %v", err)
	}
	mine := FactsOf(e, v.get("received"))
	if err := SignFacts(mine, alice); err != nil {
		t.Fatal(err)
	}
	if b, _ := MarshalFacts(mine); string(b) != v.get("facts") {
		t.Errorf("facts differ:\n%s\n%s", b, v.get("facts"))
	}
	ct, err := SealEvent(cards, body)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenEvent(ct, bob.Age()); err != nil || !bytes.Equal(got, body) {
		t.Errorf("sealed event does not open: %v", err)
	}
	if e.Seq > 1 && !isHex(e.Prev, 64) {
		t.Errorf("prev %q", e.Prev)
	}
	tampered := *e
	tampered.Time = "2026-12-02T16:45:10Z"
	if _, err := VerifyEvent(&tampered, cards); !errors.Is(err, ErrEventSignature) {
		t.Errorf("tampered vector event verifies: %v", err)
	}
}
