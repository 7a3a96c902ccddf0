// Package relaytest runs a relay in the test's own process: a fresh spool
// in the test's temporary directory, the relay's API on a loopback port,
// and the desk admin's key, for the tests of every package that talks to a
// relay. It is for tests only; no part of the product may import it
// (test/archtest), and it never serves beyond 127.0.0.1.
package relaytest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
)

// Relay is a running test relay. Everything it started ends with the test.
type Relay struct {
	URL    string           // the relay's API, http://127.0.0.1:PORT
	Server *relay.Server    // the server behind URL
	Spool  *store.Spool     // the spool it stores into
	Admin  *crypto.Identity // the desk admin; nil when Config.Admin was given
}

// Options configure New. Every zero value means the relay's own default.
type Options struct {
	// Config is the relay's; a nil Config.Admin means a generated admin
	// identity, which Relay.Admin holds.
	Config relay.Config
	// Dir is the spool's directory; empty means one in t.TempDir().
	Dir string
}

// New starts a relay serving its whole API (both sides, as serve --no-tor
// does) and stops it, and closes its spool, when the test ends.
func New(t testing.TB, o Options) *Relay {
	t.Helper()
	r := &Relay{}
	if o.Config.Admin == nil {
		id, err := crypto.GenerateIdentity("admin", true)
		if err != nil {
			t.Fatalf("relaytest: generating the admin: %v", err)
		}
		r.Admin, o.Config.Admin = id, id.Card().SignKey
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(t.TempDir(), "spool")
	}
	sp, err := store.Open(o.Dir, &store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("relaytest: opening the spool: %v", err)
	}
	srv, err := relay.New(sp, o.Config)
	if err != nil {
		sp.Close()
		t.Fatalf("relaytest: starting the relay: %v", err)
	}
	// Cleanups run last first: the spool is checked and closed after
	// every listener, the ones Serve adds too, has stopped.
	t.Cleanup(func() {
		if _, err := sp.Verify(); err != nil {
			t.Errorf("relaytest: the spool is damaged after the test: %v", err)
		}
		sp.Close()
	})
	r.Server, r.Spool = srv, sp
	r.URL = r.Serve(t, nil)
	return r
}

// Serve serves the relay on one more loopback listener, through wrap if it
// is not nil (as a hostile relay or a flaky network would stand between a
// client and the real one), and returns its URL.
func (r *Relay) Serve(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	h := r.Server.Combined()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = r.Server.HTTPServer(h)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

// Client is an API client of the relay that signs as id (nil: unsigned,
// as a submitter's).
func (r *Relay) Client(t testing.TB, id *crypto.Identity) *client.Client {
	t.Helper()
	c, err := client.New(r.URL, &http.Client{})
	if err != nil {
		t.Fatalf("relaytest: %v", err)
	}
	if id != nil {
		c.Key = id.SigningKey()
	}
	return c
}

// Publish signs m with the admin's key and publishes it.
func (r *Relay) Publish(t testing.TB, m *crypto.Manifest) {
	t.Helper()
	if r.Admin == nil {
		t.Fatal("relaytest: Publish needs the admin that New generated")
	}
	env, err := crypto.SignManifest(m, r.Admin.SigningKey())
	if err != nil {
		t.Fatalf("relaytest: signing desk %s: %v", m.Desk, err)
	}
	if _, err := r.Client(t, r.Admin).Publish(context.Background(), m.Desk, env); err != nil {
		t.Fatalf("relaytest: publishing desk %s: %v", m.Desk, err)
	}
}

// Desk publishes a desk with id, serial 1, no categories and the handlers
// given, and returns its manifest.
func (r *Relay) Desk(t testing.TB, id string, handlers []*crypto.Identity) *crypto.Manifest {
	t.Helper()
	m := &crypto.Manifest{Version: 1, Desk: id, Title: id, Serial: 1, Limits: crypto.Limits{MaxSubmissionBytes: 1 << 20}}
	for _, h := range handlers {
		m.Handlers = append(m.Handlers, h.Card().String())
	}
	r.Publish(t, m)
	return m
}

// Submit seals a report with message for the handlers of desk and sends
// it, as amana submit does, and returns the stored submission's ID and the
// receipt that opens its thread.
func (r *Relay) Submit(t testing.TB, desk string, to []*crypto.Identity, message string) (string, *crypto.Receipt) {
	t.Helper()
	rc := crypto.NewReceipt()
	var cards []*crypto.Card
	for _, h := range to {
		cards = append(cards, h.Card())
	}
	rep := &crypto.Report{Desk: desk, Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
		Answers: []crypto.Answer{{Field: "message", Value: message}}}
	sealed, n, err := crypto.SealReport(crypto.RecipientsOf(cards), rc, rep, nil)
	if err != nil {
		t.Fatalf("relaytest: sealing: %v", err)
	}
	defer sealed.Close()
	got, err := r.Client(t, nil).Submit(context.Background(), desk, "", sealed, n, nil)
	if err != nil {
		t.Fatalf("relaytest: submitting to %s: %v", desk, err)
	}
	return got.ID, rc
}
