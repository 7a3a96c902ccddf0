package crypto

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const (
	testCase    = "0123456789abcdef0123456789abcdef"
	testOther   = "fedcba9876543210fedcba9876543210"
	testCaseSum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func journalIDs(t testing.TB) (alice, bob *Identity) {
	t.Helper()
	alice, err := NewIdentity("alice", testClassicSecret)
	if err != nil {
		t.Fatal(err)
	}
	bob, err = NewIdentity("bob", testAdminSecret)
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// testEvent is a signed event of alice's with every kind of member.
func testEvent(t testing.TB) (*Event, *Identity, *Identity) {
	t.Helper()
	alice, bob := journalIDs(t)
	e := &Event{
		Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea",
		Seq: 2, Clock: 3, Prev: strings.Repeat("ab", 32), Time: "2026-12-03T09:15:42Z",
		Seen: map[string]uint64{bob.Card().KeyID(): 4},
		Change: Change{
			Status: "escalated", Severity: "high",
			Assign: []string{bob.Card().KeyID()}, Tag: []string{"camp-3", "urgent"},
			Note:     "<b>called</b> the focal point & \"she\" agreed\nline two é مرحبا",
			Link:     &Link{Rel: RelRelated, Case: testOther},
			Referral: &Referral{To: "Protection cluster", Consent: true, Outcome: "accepted"},
		},
	}
	if err := SignEvent(e, alice); err != nil {
		t.Fatal(err)
	}
	return e, alice, bob
}

func mustMarshalEvent(t testing.TB, e *Event) []byte {
	t.Helper()
	b, err := MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEventRoundTrip(t *testing.T) {
	e, _, _ := testEvent(t)
	b := mustMarshalEvent(t, e)
	if !bytes.Contains(b, []byte(`"note":"<b>called</b> the focal point & \"she\" agreed\nline two é مرحبا"`)) {
		t.Errorf("note not encoded without HTML escapes: %s", b)
	}
	p, err := ParseEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	again := mustMarshalEvent(t, p)
	if !bytes.Equal(again, b) {
		t.Errorf("re-marshalled event differs:\n%s\n%s", again, b)
	}
}

func TestParseEventRefusals(t *testing.T) {
	e, _, bob := testEvent(t)
	good := mustMarshalEvent(t, e)
	enc := func(f func(*Event)) []byte {
		c := *e
		c.Change = e.Change
		f(&c)
		b, err := encodeCanonical(&c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("%q not in the event", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	key := func(i int) string { return b64.EncodeToString(bytes.Repeat([]byte{byte(i)}, 32)) }
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"unknown member", replace(`{"schema"`, `{"x":1,"schema"`)},
		{"unknown change member", replace(`"change":{`, `"change":{"colour":"red",`)},
		{"space after colon", replace(`"seq":2`, `"seq": 2`)},
		{"trailing newline", append(append([]byte{}, good...), '\n')},
		{"trailing data", append(append([]byte{}, good...), []byte(`{}`)...)},
		{"repeated member", replace(`"seq":2`, `"seq":2,"seq":2`)},
		{"member in other case", replace(`"seq":2`, `"SEQ":2`)},
		{"members reordered", replace(`"desk":"helpdesk","case":"`+testCase+`"`, `"case":"`+testCase+`","desk":"helpdesk"`)},
		{"html escaped", replace(`<b>`, `\u003cb>`)},
		{"escaped slash", replace(`</b>`, `<\/b>`)},
		{"invalid utf-8", replace(`é`, "\xff")},
		{"null list", replace(`"tag":[`, `"untag":null,"tag":[`)},
		{"empty seen", bytes.Replace(enc(func(c *Event) { c.Seen = nil }), []byte(`"change":`), []byte(`"seen":{},"change":`), 1)},
		{"not json", []byte("amana")},
		{"wrong schema", enc(func(c *Event) { c.Schema = FactsDomain })},
		{"bad desk", enc(func(c *Event) { c.Desk = "Help Desk" })},
		{"short case", enc(func(c *Event) { c.Case = testCase[:31] })},
		{"upper-case case", enc(func(c *Event) { c.Case = strings.ToUpper(testCase) })},
		{"bad case_sha256", enc(func(c *Event) { c.CaseSHA256 = testCaseSum[:63] + "G" })},
		{"bad category", enc(func(c *Event) { c.Category = "SEA" })},
		{"author not a key ID", enc(func(c *Event) { c.Author = "alice" })},
		{"author padded", enc(func(c *Event) { c.Author += "=" })},
		{"seq zero", enc(func(c *Event) { c.Seq = 0 })},
		{"seq above 2^53", enc(func(c *Event) { c.Seq = 1 << 53 })},
		{"clock zero", enc(func(c *Event) { c.Clock = 0 })},
		{"clock above 2^53", enc(func(c *Event) { c.Clock = 1 << 53 })},
		{"seen names the author", enc(func(c *Event) { c.Seen = map[string]uint64{c.Author: 1} })},
		{"seen above 2^53", enc(func(c *Event) { c.Seen = map[string]uint64{bob.Card().KeyID(): 1 << 53} })},
		{"prev on first", enc(func(c *Event) { c.Seq = 1 })},
		{"no prev after first", enc(func(c *Event) { c.Prev = "" })},
		{"prev upper-case", enc(func(c *Event) { c.Prev = strings.Repeat("AB", 32) })},
		{"time with fraction", enc(func(c *Event) { c.Time = "2026-12-03T09:15:42.5Z" })},
		{"time with offset", enc(func(c *Event) { c.Time = "2026-12-03T09:15:42+00:00" })},
		{"time without zone", enc(func(c *Event) { c.Time = "2026-12-03T09:15:42" })},
		{"time out of range", enc(func(c *Event) { c.Time = "2026-13-03T09:15:42Z" })},
		{"seen zero", enc(func(c *Event) { c.Seen = map[string]uint64{bob.Card().KeyID(): 0} })},
		{"seen not a key", enc(func(c *Event) { c.Seen = map[string]uint64{"bob": 1} })},
		{"seen too many", enc(func(c *Event) {
			c.Seen = map[string]uint64{}
			for i := 0; i <= MaxEventList; i++ {
				c.Seen[key(i)] = 1
			}
		})},
		{"signature short", enc(func(c *Event) { c.Signature = c.Signature[:85] })},
		{"empty change", enc(func(c *Event) { c.Change = Change{} })},
		{"bad status", enc(func(c *Event) { c.Change.Status = "Open" })},
		{"bad severity", enc(func(c *Event) { c.Change.Severity = "very high" })},
		{"close reason alone", enc(func(c *Event) { c.Change.Status = ""; c.Change.CloseReason = "spam" })},
		{"assignee not a key", enc(func(c *Event) { c.Change.Assign = []string{"bob"} })},
		{"assignee repeated", enc(func(c *Event) { c.Change.Assign = []string{key(1), key(1)} })},
		{"assigned and unassigned", enc(func(c *Event) { c.Change.Assign, c.Change.Unassign = []string{key(1)}, []string{key(1)} })},
		{"too many assignees", enc(func(c *Event) { c.Change.Assign = many(MaxEventList+1, key) })},
		{"bad tag", enc(func(c *Event) { c.Change.Tag = []string{"Urgent"} })},
		{"long tag", enc(func(c *Event) { c.Change.Tag = []string{strings.Repeat("a", 33)} })},
		{"tag repeated", enc(func(c *Event) { c.Change.Tag = []string{"a", "a"} })},
		{"tagged and untagged", enc(func(c *Event) { c.Change.Untag = []string{"urgent"} })},
		{"too many tags", enc(func(c *Event) { c.Change.Tag = many(MaxEventList+1, func(i int) string { return fmt.Sprint("t", i) }) })},
		{"note too long", enc(func(c *Event) { c.Change.Note = strings.Repeat("x", MaxEventText+1) })},
		{"text too long in all", enc(func(c *Event) {
			c.Change.Note = strings.Repeat("x", MaxEventText-10)
			c.Change.Referral = &Referral{To: "somebody", Outcome: "accepted"}
		})},
		{"link to itself", enc(func(c *Event) { c.Change.Link = &Link{Rel: RelRelated, Case: testCase} })},
		{"unknown link relation", enc(func(c *Event) { c.Change.Link = &Link{Rel: "parent", Case: testOther} })},
		{"link not a case ID", enc(func(c *Event) { c.Change.Unlink = &Link{Rel: RelDuplicateOf, Case: "x"} })},
		{"linked and unlinked", enc(func(c *Event) { c.Change.Unlink = &Link{Rel: RelRelated, Case: testOther} })},
		{"referral to nobody", enc(func(c *Event) { c.Change.Referral = &Referral{Consent: true} })},
		{"referral name too long", enc(func(c *Event) { c.Change.Referral = &Referral{To: strings.Repeat("x", 201)} })},
		{"reply not an ID", enc(func(c *Event) { c.Change.Reply = "reply-1" })},
		{"custody without action", enc(func(c *Event) { c.Change.Custody = &Custody{Detail: "exported"} })},
		{"too long", bytes.Repeat([]byte(" "), MaxEventLen+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseEvent(tc.in); !errors.Is(err, ErrEventMalformed) {
				t.Errorf("ParseEvent = %v, want ErrEventMalformed", err)
			}
		})
	}
}

func TestEventSignature(t *testing.T) {
	e, alice, bob := testEvent(t)
	carol, err := GenerateIdentity("carol", true)
	if err != nil {
		t.Fatal(err)
	}
	cards := []*Card{bob.Card(), alice.Card()}
	if c, err := VerifyEvent(e, cards); err != nil || c.Name != "alice" {
		t.Fatalf("VerifyEvent = %v, %v", c, err)
	}
	wrongDomain := func(c *Event) {
		c.Signature = ""
		b, _ := encodeCanonical(c)
		c.Signature = b64.EncodeToString(ed25519.Sign(alice.SigningKey(), append([]byte(FactsDomain+"\n"), b...)))
	}
	for _, tc := range []struct {
		name  string
		cards []*Card
		edit  func(*Event)
	}{
		{"signer not among the cards", []*Card{bob.Card(), carol.Card()}, nil},
		{"no cards", nil, nil},
		{"author changed to another handler", cards, func(c *Event) { c.Author = bob.Card().KeyID(); c.Seen = nil }},
		{"note changed", cards, func(c *Event) { c.Change.Note += "." }},
		{"seq changed", cards, func(c *Event) { c.Seq = 3 }},
		{"seen changed", cards, func(c *Event) { c.Seen = map[string]uint64{bob.Card().KeyID(): 5} }},
		{"case changed", cards, func(c *Event) { c.Case = testOther; c.Change.Link = nil }},
		{"unsigned", cards, func(c *Event) { c.Signature = "" }},
		{"signature of another event", cards, func(c *Event) {
			o := *c
			o.Seq = 9
			SignEvent(&o, alice)
			c.Signature = o.Signature
		}},
		{"signed under the facts domain", cards, wrongDomain},
		{"signed by a key not the author's", cards, func(c *Event) {
			o := *c
			SignEvent(&o, bob)
			c.Signature = o.Signature
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *e
			if tc.edit != nil {
				tc.edit(&c)
			}
			if _, err := VerifyEvent(&c, tc.cards); !errors.Is(err, ErrEventSignature) {
				t.Errorf("VerifyEvent = %v, want ErrEventSignature", err)
			}
		})
	}
}

func TestEventDigest(t *testing.T) {
	e, alice, _ := testEvent(t)
	d := EventDigest(e)
	if !isHex(d, 64) {
		t.Fatalf("digest %q", d)
	}
	msg, _ := eventSigned(e)
	if !strings.HasPrefix(string(msg), EventDomain+"\n{") || bytes.Contains(msg, []byte(`"signature"`)) {
		t.Errorf("signed text %q", msg)
	}
	// The digest is of the signed text: the signature does not change it,
	// every member does.
	c := *e
	c.Signature = ""
	if EventDigest(&c) != d {
		t.Errorf("digest depends on the signature")
	}
	c.Time = "2026-12-03T09:15:43Z"
	SignEvent(&c, alice)
	if EventDigest(&c) == d {
		t.Errorf("digest ignores the time")
	}
}

func TestFacts(t *testing.T) {
	e, alice, bob := testEvent(t)
	e.Change.Reply = testOther
	e.Change.Received = true
	f := FactsOf(e, "2026-12-01T10:00:00Z")
	want := FactChange{Status: "escalated", Severity: "high", Assign: []string{bob.Card().KeyID()},
		Replied: true, Referred: true, ReferralConsent: true, Received: true}
	if fmt.Sprint(f.Change) != fmt.Sprint(want) || f.Seq != e.Seq || f.Time != e.Time || f.Author != e.Author ||
		f.Category != e.Category || f.Seen[bob.Card().KeyID()] != 4 || f.Received != "2026-12-01T10:00:00Z" {
		t.Errorf("facts %+v", f)
	}
	e.Seen[bob.Card().KeyID()] = 7
	e.Change.Assign[0] = alice.Card().KeyID()
	if f.Seen[bob.Card().KeyID()] != 4 || f.Change.Assign[0] != bob.Card().KeyID() {
		t.Errorf("facts share memory with the event")
	}
	if err := SignFacts(f, alice); err != nil {
		t.Fatal(err)
	}
	b, err := MarshalFacts(f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseFacts(b)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := VerifyFacts(p, []*Card{alice.Card()}); err != nil || c.Name != "alice" {
		t.Fatalf("VerifyFacts = %v", err)
	}
	p.Change.Severity = "low"
	if _, err := VerifyFacts(p, []*Card{alice.Card()}); !errors.Is(err, ErrFactsSignature) || !errors.Is(err, ErrEventSignature) {
		t.Errorf("altered facts: %v", err)
	}
	// An event signature does not verify as facts, nor the reverse.
	asFacts := *f
	asFacts.Signature = e.Signature
	if _, err := VerifyFacts(&asFacts, []*Card{alice.Card()}); !errors.Is(err, ErrFactsSignature) {
		t.Errorf("event signature accepted on facts: %v", err)
	}

	for _, tc := range []struct {
		name string
		edit func(*Facts)
	}{
		{"wrong schema", func(f *Facts) { f.Schema = EventDomain }},
		{"received not a time", func(f *Facts) { f.Received = "2026-12-01" }},
		{"received missing", func(f *Facts) { f.Received = "" }},
		{"consent without referral", func(f *Facts) { f.Change.Referred = false }},
		{"close reason alone", func(f *Facts) { f.Change.Status = ""; f.Change.CloseReason = "spam" }},
		{"assignee not a key", func(f *Facts) { f.Change.Unassign = []string{"bob"} }},
		{"seq zero", func(f *Facts) { f.Seq = 0 }},
		{"clock zero", func(f *Facts) { f.Clock = 0 }},
		{"clock above 2^53", func(f *Facts) { f.Clock = 1 << 53 }},
		{"case_sha256 missing", func(f *Facts) { f.CaseSHA256 = "" }},
		{"case_sha256 upper-case", func(f *Facts) { f.CaseSHA256 = strings.ToUpper(f.CaseSHA256) }},
		{"seen names the author", func(f *Facts) { f.Seen = map[string]uint64{f.Author: 1} }},
		{"assigned and unassigned", func(f *Facts) { f.Change.Assign = []string{f.Author}; f.Change.Unassign = []string{f.Author} }},
		{"status not a name", func(f *Facts) { f.Change.Status = "Closed!" }},
		{"close reason not a name", func(f *Facts) { f.Change.CloseReason = "no action" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *f
			tc.edit(&c)
			b, _ := encodeCanonical(&c)
			if _, err := ParseFacts(b); !errors.Is(err, ErrEventMalformed) {
				t.Errorf("ParseFacts = %v", err)
			}
		})
	}
	for _, in := range []string{string(b) + " ", strings.Replace(string(b), `"schema"`, `"extra":true,"schema"`, 1)} {
		if _, err := ParseFacts([]byte(in)); !errors.Is(err, ErrEventMalformed) {
			t.Errorf("ParseFacts(%.40q) = %v", in, err)
		}
	}
	// A change of text alone has empty facts, which are well-formed.
	note := &Event{Schema: EventDomain, Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Author: alice.Card().KeyID(),
		Seq: 1, Clock: 1, Time: "2026-12-03T09:15:42Z", Change: Change{Note: "hello", Tag: []string{"x"}}}
	nf := FactsOf(note, "2026-12-01T10:00:00Z")
	if err := SignFacts(nf, alice); err != nil {
		t.Fatalf("facts of a note: %v", err)
	}
	if b, _ := MarshalFacts(nf); !bytes.Contains(b, []byte(`"change":{}`)) {
		t.Errorf("facts of a note: %s", b)
	}
}

// TestFactsCarryNoText: whatever text an event holds, none of it reaches
// its facts.
func TestFactsCarryNoText(t *testing.T) {
	alice, bob := journalIDs(t)
	rng := rand.New(rand.NewPCG(14, 1))
	word := func(prefix string) string {
		b := make([]byte, 8)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return prefix + hex.EncodeToString(b)
	}
	for i := 0; i < 300; i++ {
		var markers []string
		// mark returns prefix and a random hex word, and remembers the
		// word: no facts may contain it.
		mark := func(prefix string) string {
			w := word("")
			markers = append(markers, w)
			return prefix + w
		}
		e := &Event{Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea",
			Seq: uint64(1 + rng.IntN(1000)), Clock: uint64(1 + rng.IntN(1000)), Time: "2026-12-03T09:15:42Z"}
		if e.Seq > 1 {
			e.Prev = strings.Repeat("0f", 32)
		}
		ch := &e.Change
		if rng.IntN(2) == 0 {
			ch.Note = mark("note ") + " " + mark("")
		}
		for n := rng.IntN(4); n > 0; n-- {
			ch.Tag = append(ch.Tag, mark("t"))
		}
		for n := rng.IntN(3); n > 0; n-- {
			ch.Untag = append(ch.Untag, mark("u"))
		}
		if rng.IntN(2) == 0 {
			ch.Referral = &Referral{To: mark("org "), Consent: rng.IntN(2) == 0}
			if rng.IntN(2) == 0 {
				ch.Referral.Outcome = mark("outcome ")
			}
		}
		if rng.IntN(3) == 0 {
			ch.Link = &Link{Rel: RelDuplicateOf, Case: mark("")[:16] + mark("")[:16]}
			markers = append(markers, ch.Link.Case)
		}
		if rng.IntN(3) == 0 {
			ch.Unlink = &Link{Rel: RelRelated, Case: mark("")[:16] + mark("")[:16]}
			markers = append(markers, ch.Unlink.Case)
		}
		if rng.IntN(3) == 0 {
			ch.Custody = &Custody{Action: "export", Detail: mark("detail ")}
		}
		if rng.IntN(2) == 0 {
			ch.Status = "open"
		}
		if rng.IntN(2) == 0 {
			ch.Assign = []string{bob.Card().KeyID()}
		}
		if rng.IntN(4) == 0 {
			ch.Reply = mark("")[:16] + mark("")[:16]
			markers = append(markers, ch.Reply)
		}
		score := 0
		if rng.IntN(3) == 0 {
			score = 1 + rng.IntN(5)
			ch.Satisfaction = &Satisfaction{Score: score, Followup: mark("")[:16] + mark("")[:16]}
			markers = append(markers, ch.Satisfaction.Followup)
		}
		if ch.empty() {
			ch.Note = mark("n")
		}
		if err := SignEvent(e, alice); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		f := FactsOf(e, "2026-12-01T10:00:00Z")
		if err := SignFacts(f, alice); err != nil {
			t.Fatalf("facts %d: %v", i, err)
		}
		b, err := MarshalFacts(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				t.Fatalf("event %d: facts contain %q: %s", i, m, b)
			}
		}
		if f.Change.Referred != (ch.Referral != nil) || f.Change.Replied != (ch.Reply != "") || f.Change.Status != ch.Status ||
			f.Change.Satisfaction != score {
			t.Fatalf("event %d: facts %+v of change %+v", i, f.Change, ch)
		}
	}
}

func TestSealOpenEvent(t *testing.T) {
	alice, bob := journalIDs(t)
	carol, _ := GenerateIdentity("carol", true)
	cards := []*Card{alice.Card(), bob.Card()}
	for _, n := range []int{1, 2, 510, 511, 512, 1023, 4000, 70000, 200000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			js := []byte(`"` + strings.Repeat("x", max(n-2, 0)) + `"`)[:n]
			ct, err := SealEvent(cards, js)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ReadAgeHeader(bufio.NewReader(bytes.NewReader(ct)), MaxHeaderLen(2))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Types) != 2 || h.Types[0] != StanzaX25519 {
				t.Errorf("stanzas %v", h.Types)
			}
			size := EventPlainSize(n)
			if size%512 != 0 || size < int64(n)+1 || size != max(PaddedSize(int64(n)+1), MinEventPlain) {
				t.Errorf("plain size %d for %d", size, n)
			}
			if want := int64(h.Len) + AgePayloadSize(size); int64(len(ct)) != want {
				t.Errorf("ciphertext %d bytes, want %d", len(ct), want)
			}
			for _, id := range []*Identity{alice, bob} {
				got, err := OpenEvent(ct, id.Age())
				if err != nil || !bytes.Equal(got, js) {
					t.Errorf("%s opens %d bytes: %v", id.Name(), len(got), err)
				}
			}
			if _, err := OpenEvent(ct, carol.Age()); err == nil {
				t.Errorf("an outsider opens the event")
			}
		})
	}
	if _, err := SealEvent(cards, []byte("a\nb")); err == nil {
		t.Errorf("sealed JSON with a line feed")
	}
	if _, err := SealEvent(cards, nil); err == nil {
		t.Errorf("sealed nothing")
	}
	if _, err := SealEvent(cards, bytes.Repeat([]byte("x"), MaxEventLen)); err == nil {
		t.Errorf("sealed more than MaxEventLen")
	}
	if _, err := SealEvent(nil, []byte("{}")); err == nil {
		t.Errorf("sealed to nobody")
	}
}

func sealRaw(t *testing.T, id *Identity, plain []byte) []byte {
	t.Helper()
	r, _ := id.Card().AgeRecipient()
	return sealTo(t, r, plain)
}

func TestOpenEventPadding(t *testing.T) {
	alice, _ := journalIDs(t)
	pad := func(js string, size int, tail ...byte) []byte {
		b := make([]byte, size)
		copy(b, js)
		if len(js) < size {
			b[len(js)] = '\n'
		}
		copy(b[size-len(tail):], tail)
		return b
	}
	for _, tc := range []struct {
		name  string
		plain []byte
		ok    bool
	}{
		{"exact", pad("{}", MinEventPlain), true},
		{"no line feed", bytes.Repeat([]byte("x"), MinEventPlain), false},
		{"line feed first", pad("", MinEventPlain), false},
		{"non-zero padding", pad("{}", MinEventPlain, 1), false},
		{"a second line", pad("{}", MinEventPlain, '\n', 0), false},
		{"short padding", pad("{}", MinEventPlain-1), false},
		{"the bundle padding only", pad("{}", 512), false},
		{"no padding", []byte("{}\n"), false},
		{"a block too many", pad("{}", MinEventPlain+512), false},
		{"larger than MaxEventLen", pad("{}", MaxEventLen+512), false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OpenEvent(sealRaw(t, alice, tc.plain), alice.Age())
			if tc.ok {
				if err != nil || string(got) != "{}" {
					t.Errorf("OpenEvent = %q, %v", got, err)
				}
				return
			}
			if err == nil {
				t.Errorf("OpenEvent accepted %q", got)
			}
		})
	}
	if _, err := OpenEvent(make([]byte, MaxEventLen+1), alice.Age()); !errors.Is(err, ErrEventPadding) {
		t.Errorf("oversized ciphertext: %v", err)
	}
	if _, err := OpenEvent([]byte("not age"), alice.Age()); err == nil {
		t.Errorf("opened garbage")
	}
}

func TestHistory(t *testing.T) {
	e, alice, bob := testEvent(t)
	eb := mustMarshalEvent(t, e)
	f := FactsOf(e, "2026-12-01T10:00:00Z")
	SignFacts(f, alice)
	fb, _ := MarshalFacts(f)
	h := &History{Schema: HistoryDomain, Desk: "helpdesk", Case: testCase, Events: []json.RawMessage{eb}, Facts: []json.RawMessage{fb}}
	hb, err := MarshalHistory(h)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := SealHistory([]*Card{bob.Card()}, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenHistory(ct, bob.Age())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := MarshalHistory(got); !bytes.Equal(again, hb) {
		t.Errorf("history does not round-trip")
	}
	p, err := ParseEvent(got.Events[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEvent(p, []*Card{alice.Card()}); err != nil {
		t.Errorf("event from history: %v", err)
	}
	empty, err := MarshalHistory(&History{Schema: HistoryDomain, Desk: "helpdesk", Case: testCase})
	if err != nil || string(empty) != `{"schema":"amana-history/v1","desk":"helpdesk","case":"`+testCase+`","events":[],"facts":[]}` {
		t.Errorf("empty history %s, %v", empty, err)
	}

	other := *e
	other.Case, other.Change.Link = testOther, nil
	SignEvent(&other, alice)
	ob := mustMarshalEvent(t, &other)
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"event of another case", strings.Replace(string(hb), string(eb), string(ob), 1)},
		{"facts as an event", strings.Replace(string(hb), `"events":[`+string(eb), `"events":[`+string(fb), 1)},
		{"event not canonical", strings.Replace(string(hb), `"seq":2`, `"seq":2.0`, 1)},
		{"spaced", strings.Replace(string(hb), `"events":[`, `"events": [`, 1)},
		{"no facts", strings.Replace(string(hb), `,"facts":[`+string(fb)+`]`, ``, 1)},
		{"null events", strings.Replace(string(hb), `"events":[`+string(eb)+`]`, `"events":null`, 1)},
		{"unknown member", strings.Replace(string(hb), `{"schema"`, `{"v":1,"schema"`, 1)},
		{"wrong schema", strings.Replace(string(hb), HistoryDomain, EventDomain, 1)},
		{"bad case", strings.Replace(string(hb), `"case":"`+testCase+`","events"`, `"case":"x","events"`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == string(hb) {
				t.Fatal("edit did not apply")
			}
			if _, err := ParseHistory([]byte(tc.in)); !errors.Is(err, ErrEventMalformed) {
				t.Errorf("ParseHistory = %v", err)
			}
		})
	}
}

func TestEventTime(t *testing.T) {
	for in, ok := range map[string]bool{
		"2026-12-03T09:15:42Z": true, "2026-12-03T09:15:42.000Z": false, "2026-12-3T09:15:42Z": false,
		"2026-12-03t09:15:42z": false, "2026-02-30T09:15:42Z": false, "": false, " 2026-12-03T09:15:42Z": false,
	} {
		if ValidEventTime(in) != ok {
			t.Errorf("ValidEventTime(%q) = %v", in, !ok)
		}
	}
	if got := EventTime(time.Date(2026, 12, 3, 11, 15, 42, 9e8, time.FixedZone("", 2*3600))); got != "2026-12-03T09:15:42Z" {
		t.Errorf("EventTime = %q", got)
	}
}

func TestValidKeyID(t *testing.T) {
	alice, _ := journalIDs(t)
	id := alice.Card().KeyID()
	for in, ok := range map[string]bool{
		id: true, id[:42]: false, id + "A": false, id + "=": false, strings.Repeat("+", 43): false, "": false,
		// The last character carries 2 spare bits that must be zero:
		// flipping its lowest ASCII bit never leaves a canonical key ID.
		id[:42] + string(id[42]^1): false,
	} {
		if ValidKeyID(in) != ok {
			t.Errorf("ValidKeyID(%q) = %v", in, !ok)
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	e, _, _ := testEvent(b)
	js := mustMarshalEvent(b, e)
	b.SetBytes(int64(len(js)))
	for b.Loop() {
		if _, err := ParseEvent(js); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyEvent(b *testing.B) {
	e, alice, bob := testEvent(b)
	cards := []*Card{bob.Card(), alice.Card()}
	for b.Loop() {
		if _, err := VerifyEvent(e, cards); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenEvent(b *testing.B) {
	e, alice, bob := testEvent(b)
	ct, err := SealEvent([]*Card{alice.Card(), bob.Card()}, mustMarshalEvent(b, e))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(ct)))
	for b.Loop() {
		if _, err := OpenEvent(ct, bob.Age()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFlowIsACopy: what Flow returns can be sorted and appended to without
// changing the trusted manifest it came from.
func TestFlowIsACopy(t *testing.T) {
	wf := DefaultWorkflow()
	m := &Manifest{Workflow: &wf}
	f := m.Flow()
	f.Statuses[0] = "changed"
	f.Severities[0].ID = "changed"
	f.CloseReasons = append(f.CloseReasons[:0], "changed")
	if g := m.Flow(); g.Statuses[0] == "changed" || g.Severities[0].ID == "changed" || g.CloseReasons[0] == "changed" {
		t.Errorf("Flow returned the manifest's own slices: %v", g)
	}
}
