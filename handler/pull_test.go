package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/relaytest"
)

// TestPullLearnsTheMailbox: a pulled report's mailbox, which only its
// encrypted report.json names, is in its metadata as soon as the case is
// stored, without opening the case again; a report that does not open with
// the handler's key keeps none, and is still stored and acknowledged.
func TestPullLearnsTheMailbox(t *testing.T) {
	mk := func(name string) *crypto.Identity {
		id, err := crypto.GenerateIdentity(name, true)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	alice, other := mk("alice"), mk("other")
	r := relaytest.New(t, relaytest.Options{})
	r.Desk(t, "d", []*crypto.Identity{alice})
	good, rc := r.Submit(t, "d", []*crypto.Identity{alice}, "report")
	// Encrypted to someone else's key (the relay checks only the stanza
	// count): alice cannot open it.
	unreadable, _ := r.Submit(t, "d", []*crypto.Identity{other}, "report")

	st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Pull(context.Background(), r.Client(t, alice), st, alice.Age(), r.URL, nil)
	if err != nil || len(res.Pulled) != 2 || res.Acked != 2 || len(res.Problems) != 0 {
		t.Fatalf("pull: %+v %v", res, err)
	}
	if m, err := st.Meta(good); err != nil || m.Mailbox != rc.MailboxID() {
		t.Fatalf("the report's metadata has mailbox %q (%v), want %q", m.Mailbox, err, rc.MailboxID())
	} else if m.ReportCategory == nil || *m.ReportCategory != "" {
		t.Fatalf("the report's own category was not learnt: %v", m.ReportCategory)
	}
	if m, err := st.Meta(unreadable); err != nil || m.Mailbox != "" || m.ReportCategory != nil || !st.Has(unreadable) {
		t.Fatalf("the unreadable report: %+v %v", m, err)
	}
	// Opening them: the report opens; the one for another key says so.
	opened, err := Open(st, good[:8], alice.Age())
	if err != nil || opened.Bundle == nil || opened.Bundle.Report().Mailbox != rc.MailboxID() {
		t.Fatalf("open: %v", err)
	}
	opened.Close()
	if _, err := Open(st, unreadable, alice.Age()); !errors.Is(err, ErrNotForYou) {
		t.Fatalf("open of a case for another key: %v", err)
	}
	junk := []byte("not an age file at all")
	sum := sha256.Sum256(junk)
	m := cases.Meta{ID: strings.Repeat("ef", 16), Size: int64(len(junk)), SHA256: hex.EncodeToString(sum[:])}
	if err := st.Receive(m, func(off int64, w io.Writer) error { _, err := w.Write(junk[off:]); return err }, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(st, m.ID, alice.Age()); !errors.Is(err, ErrDamaged) {
		t.Fatalf("open of a damaged case: %v", err)
	}
	if _, err := Open(st, "0123", alice.Age()); !errors.Is(err, cases.ErrNotFound) {
		t.Fatalf("open of no case: %v", err)
	}
}
