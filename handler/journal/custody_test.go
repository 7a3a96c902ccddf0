package journal

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// TestCustodyEvents: the custody events of a case, with the bytes their
// authors signed, in order, others' too once synced, other changes left out;
// a forged one never among them.
func TestCustodyEvents(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	file := []crypto.CustodyFile{{Name: "a.jpg", SHA256: strings.Repeat("ab", 32), Size: 3}}
	w.record("alice", c, crypto.Change{Status: "open"})
	w.tick(60e9)
	w.record("alice", c, crypto.Change{Custody: &crypto.Custody{Action: crypto.CustodyDecrypt, Files: file}})
	w.tick(60e9)
	w.record("bob", c, crypto.Change{Custody: &crypto.Custody{Action: crypto.CustodyExport, Files: file, Reason: "court"}})
	w.sync("alice")
	// A forged custody event in bob's name, signed by alice's key.
	_, js := w.craft("alice", c, 2, strings.Repeat("cd", 32), crypto.Change{Custody: &crypto.Custody{Action: crypto.CustodyExport}}, func(e *crypto.Event) { e.Author = w.key("bob") })
	if _, err := w.relay.inject(w.key("bob"), "d", "general", PartCase, "", w.seal("general", js)); err != nil {
		t.Fatal(err)
	}
	if res := w.sync("alice"); len(res.Refused) != 1 {
		t.Fatalf("the forged custody event is not refused: %+v", res)
	}
	evs, err := w.journals["alice"].CustodyEvents(c.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Event.Change.Custody.Action != crypto.CustodyDecrypt || evs[1].Event.Author != w.key("bob") ||
		evs[1].Event.Seq != 1 {
		t.Fatalf("custody events: %+v", evs)
	}
	for _, s := range evs {
		e, err := crypto.ParseEvent(s.JSON)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := w.trust.Manifest("d")
		if _, err := crypto.VerifyEvent(e, m.Cards()); err != nil || !bytes.Equal(s.JSON, mustMarshal(t, s.Event)) {
			t.Errorf("event %d by %s: %v", e.Seq, w.name(e.Author), err)
		}
	}
	if _, err := w.journals["alice"].CustodyEvents(strings.Repeat("0", 32)); !errors.Is(err, cases.ErrNotFound) {
		t.Errorf("a case not held: %v", err)
	}
}

func mustMarshal(t *testing.T, e *crypto.Event) []byte {
	t.Helper()
	b, err := crypto.MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
