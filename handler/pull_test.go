package handler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/client"
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

// tamperWriter buffers an answer and flips the byte at len-back when it
// ends, as a lying relay would change one byte of a case.
type tamperWriter struct {
	http.ResponseWriter
	buf  bytes.Buffer
	back int
	code int
}

func (w *tamperWriter) WriteHeader(code int)        { w.code = code }
func (w *tamperWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *tamperWriter) flush() {
	b := w.buf.Bytes()
	if w.code == 0 {
		w.code = 200
	}
	if w.code == 200 && len(b) >= w.back {
		b[len(b)-w.back] ^= 1
	}
	w.ResponseWriter.WriteHeader(w.code)
	w.ResponseWriter.Write(b)
}

// TestPullRefusesTamperedBulkCase: a small case whose bytes a relay
// changes (in the bulk answer and again when it is fetched alone) does not
// match the inbox's SHA-256: it is reported, nothing of it is stored and
// it is not acknowledged, while the other cases of the same answer are
// stored and acknowledged; once the relay sends it whole, the next pull
// stores it.
func TestPullRefusesTamperedBulkCase(t *testing.T) {
	alice, err := crypto.GenerateIdentity("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.New(t, relaytest.Options{})
	r.Desk(t, "d", []*crypto.Identity{alice})
	var ids []string
	for i := range 3 {
		id, _ := r.Submit(t, "d", []*crypto.Identity{alice}, fmt.Sprintf("report %d", i))
		ids = append(ids, id)
	}
	slices.Sort(ids)
	last := ids[len(ids)-1] // the last in a bulk answer, which lists by ID
	var tamper atomic.Bool
	tamper.Store(true)
	var bulks, singles atomic.Int64
	url := r.Serve(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			back := 0
			switch {
			case !tamper.Load():
			case req.URL.Path == "/api/v1/bulk":
				bulks.Add(1)
				back = 1 + len("end\n") // the last byte of the last case
			case req.Method == "GET" && req.URL.Path == "/api/v1/submissions/"+last:
				singles.Add(1)
				back = 1
			}
			if back == 0 {
				h.ServeHTTP(w, req)
				return
			}
			tw := &tamperWriter{ResponseWriter: w, back: back}
			h.ServeHTTP(tw, req)
			tw.flush()
		})
	})
	c, err := client.New(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Key = alice.SigningKey()
	st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Pull(context.Background(), c, st, alice.Age(), url, nil)
	if err != nil || len(res.Pulled) != 2 || res.Acked != 2 || len(res.Problems) != 1 ||
		res.Problems[0].ID != last || !strings.Contains(res.Problems[0].Err.Error(), "does not match") {
		t.Fatalf("pull from a lying relay: %v %+v", err, res)
	}
	if bulks.Load() != 1 || singles.Load() != 1 {
		t.Fatalf("%d bulk and %d single downloads, want 1 and 1", bulks.Load(), singles.Load())
	}
	if st.Has(last) || st.Partial(last) != 0 {
		t.Fatalf("the tampered case was kept: has %v, partial %d", st.Has(last), st.Partial(last))
	}
	if _, err := st.Meta(last); !errors.Is(err, cases.ErrNotFound) {
		t.Fatalf("the tampered case has metadata: %v", err)
	}
	for _, id := range ids[:2] {
		if !st.Has(id) {
			t.Fatalf("case %s of the same answer was not stored", id)
		}
	}
	tamper.Store(false)
	res, err = Pull(context.Background(), c, st, alice.Age(), url, nil)
	if err != nil || len(res.Pulled) != 1 || res.Pulled[0] != last || res.Acked != 1 || len(res.Problems) != 0 {
		t.Fatalf("pull once the relay sends it whole: %v %+v", err, res)
	}
}

// TestPullReportsMalformedBulkAnswer: a bulk answer that does not end as
// it should (client.ErrBulkAnswer) changes nothing of what is stored and
// acknowledged (the cases that arrived whole are kept, the others fetched
// alone), but it is reported as one Problem with no case ID, so that a
// misbehaving relay shows in 'amana pull'; a well-formed answer reports
// none.
func TestPullReportsMalformedBulkAnswer(t *testing.T) {
	alice, err := crypto.GenerateIdentity("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.New(t, relaytest.Options{})
	r.Desk(t, "d", []*crypto.Identity{alice})
	var tamper atomic.Bool
	var bulks atomic.Int64
	url := r.Serve(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != "/api/v1/bulk" {
				h.ServeHTTP(w, req)
				return
			}
			bulks.Add(1)
			if !tamper.Load() {
				h.ServeHTTP(w, req)
				return
			}
			tw := &tamperWriter{ResponseWriter: w, back: len("end\n")} // "dnd\n"
			h.ServeHTTP(tw, req)
			tw.flush()
		})
	})
	c, err := client.New(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Key = alice.SigningKey()
	for _, bad := range []bool{false, true} {
		tamper.Store(bad)
		var ids []string
		for i := range 3 {
			id, _ := r.Submit(t, "d", []*crypto.Identity{alice}, fmt.Sprintf("report %d", i))
			ids = append(ids, id)
		}
		st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
		if err != nil {
			t.Fatal(err)
		}
		before := bulks.Load()
		res, err := Pull(context.Background(), c, st, alice.Age(), url, nil)
		if err != nil || len(res.Pulled) != 3 || res.Acked != 3 || bulks.Load() != before+1 {
			t.Fatalf("malformed %v: %v %+v, %d bulk requests", bad, err, res, bulks.Load()-before)
		}
		for _, id := range ids {
			if !st.Has(id) {
				t.Fatalf("malformed %v: case %s not stored", bad, id)
			}
		}
		switch {
		case !bad && len(res.Problems) != 0:
			t.Fatalf("a well-formed answer: problems %+v", res.Problems)
		case bad && (len(res.Problems) != 1 || res.Problems[0].ID != "" || !errors.Is(res.Problems[0].Err, ErrBulkMalformed) ||
			!strings.Contains(res.Problems[0].Err.Error(), "cases fetched one at a time")):
			t.Fatalf("a malformed answer: problems %+v", res.Problems)
		}
	}
}
