package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
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
	admin, alice, other := mk("admin"), mk("alice"), mk("other")
	sp, err := store.Open(filepath.Join(t.TempDir(), "spool"), &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	srv, err := relay.New(sp, relay.Config{Admin: admin.Card().SignKey})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Combined())
	defer ts.Close()
	env, err := crypto.SignManifest(&crypto.Manifest{Version: 1, Desk: "d", Title: "D", Serial: 1,
		Handlers: []string{alice.Card().String()}, Limits: crypto.Limits{MaxSubmissionBytes: 1 << 20}}, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := client.New(ts.URL, nil)
	pub.Key = admin.SigningKey()
	if _, err := pub.Publish(context.Background(), "d", env); err != nil {
		t.Fatal(err)
	}
	send := func(to *crypto.Identity, rc *crypto.Receipt) string {
		rep := &crypto.Report{Desk: "d", Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
			Answers: []crypto.Answer{{Field: "message", Value: "report"}}, Mailbox: rc.MailboxID()}
		sealed, n, err := crypto.SealBundle([]*crypto.Card{to.Card()}, rep, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sealed.Close()
		r, err := pub.Submit(context.Background(), "d", "", sealed, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	rc := crypto.NewReceipt()
	good := send(alice, rc)
	// Encrypted to someone else's key (the relay checks only the stanza
	// count): alice cannot open it.
	unreadable := send(other, crypto.NewReceipt())

	st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(ts.URL, &http.Client{})
	c.Key = alice.SigningKey()
	res, err := Pull(context.Background(), c, st, alice.Age(), ts.URL, nil)
	if err != nil || len(res.Pulled) != 2 || res.Acked != 2 || len(res.Problems) != 0 {
		t.Fatalf("pull: %+v %v", res, err)
	}
	if m, err := st.Meta(good); err != nil || m.Mailbox != rc.MailboxID() {
		t.Fatalf("the report's metadata has mailbox %q (%v), want %q", m.Mailbox, err, rc.MailboxID())
	}
	if m, err := st.Meta(unreadable); err != nil || m.Mailbox != "" || !st.Has(unreadable) {
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
