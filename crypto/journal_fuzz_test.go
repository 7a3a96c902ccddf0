package crypto

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

func sealTo(t testing.TB, r age.Recipient, plain []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := age.Encrypt(&out, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// eventSeeds adds the event vectors' bodies (without their final LF) and
// the facts they carry.
func eventSeeds(f *testing.F, facts bool) {
	files, _ := filepath.Glob("testdata/vectors/event-*.txt")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		v, err := parseVector(filepath.Base(p), data)
		if err != nil {
			f.Fatal(err)
		}
		if facts {
			if s := v.get("facts"); s != "" {
				f.Add([]byte(s))
			}
			continue
		}
		f.Add(bytes.TrimSuffix(v.body, []byte("\n")))
	}
}

func FuzzParseEvent(f *testing.F) {
	eventSeeds(f, false)
	f.Add([]byte(`{"schema":"amana-event/v1"}`))
	f.Add([]byte(`{"schema":"amana-event/v1","desk":"d","case":"0123456789abcdef0123456789abcdef","case_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","category":"","author":"afYWNNoXIumP0IJHPJCgcvDHr1W9JgK3MTEQfQ0cLiQ","seq":1,"clock":1,"prev":"","time":"2026-12-03T11:20:00Z","change":{"satisfaction":{"score":0,"followup":""}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvent(b)
		if err != nil {
			return
		}
		// What parses is canonical: it encodes to the same bytes, and
		// its digest and facts are computed without failing.
		again, err := MarshalEvent(e)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("event does not round-trip: %v\n%s\n%s", err, b, again)
		}
		if !isHex(EventDigest(e), 64) {
			t.Fatal("no digest")
		}
		fa := FactsOf(e, "2026-12-01T10:00:00Z")
		if err := fa.Check(); err != nil {
			t.Fatalf("facts of a valid event are invalid: %v", err)
		}
		fb, _ := MarshalFacts(fa)
		if s := e.Change.Satisfaction; s != nil && (fa.Change.Satisfaction != s.Score || bytes.Contains(fb, []byte(s.Followup))) {
			t.Fatalf("facts of a satisfaction: %s", fb)
		}
		texts := append([]string{e.Change.Note}, e.Change.Tag...)
		if e.Change.Referral != nil {
			texts = append(texts, e.Change.Referral.To, e.Change.Referral.Outcome)
		}
		for _, s := range texts {
			if len(s) >= 8 && bytes.Contains(fb, []byte(s)) {
				t.Fatalf("facts contain the text %q", s)
			}
		}
	})
}

func FuzzParseFacts(f *testing.F) {
	eventSeeds(f, true)
	f.Fuzz(func(t *testing.T, b []byte) {
		fa, err := ParseFacts(b)
		if err != nil {
			return
		}
		again, err := MarshalFacts(fa)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("facts do not round-trip: %v\n%s\n%s", err, b, again)
		}
	})
}

// FuzzOpenEvent seals the input as a decrypted plaintext would be (raw
// false) or takes it as a ciphertext (raw true), and opens it: only a
// plaintext of JSON, LF and exact zero padding opens, to that JSON.
func FuzzOpenEvent(f *testing.F) {
	id, _ := NewIdentity("alice", testClassicSecret)
	r, _ := id.Card().AgeRecipient()
	eventSeeds(f, false)
	for _, s := range [][]byte{[]byte("{}\n"), append([]byte("{}\n"), make([]byte, 509)...), make([]byte, 512)} {
		f.Add(s)
	}
	if ct, err := SealEvent([]*Card{id.Card()}, []byte(`{"a":1}`)); err == nil {
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := OpenEvent(b, id.Age()); err == nil {
			if len(got) == 0 || bytes.IndexByte(got, '\n') >= 0 {
				t.Fatalf("opened ciphertext to %q", got)
			}
		}
		ct := sealTo(t, r, b)
		got, err := OpenEvent(ct, id.Age())
		if err != nil {
			return
		}
		want := make([]byte, EventPlainSize(len(got)))
		copy(want, got)
		want[len(got)] = '\n'
		if !bytes.Equal(want, b) {
			t.Fatalf("opened %q from a plaintext that is not its padding", got)
		}
	})
}
