package relay

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
)

// pull150k is how many submissions TestPull150k pulls: enough that one
// inbox answer listing them all would pass the client's 16 MiB cap.
const pull150k = 150_000

// TestPull150k: a flood of pending submissions for one handler is pulled
// whole, by the real client into a real case store, page by page: each
// submission arrives exactly once and the relay's inbox is empty after.
// With the inbox in one answer, the client failed with "reading answer:
// unexpected EOF" past some 85,000 submissions like these (29.6 MB for
// 150,000).
//
// The race detector makes it take many minutes, so under -race it is
// skipped and `make test` runs it again without -race.
func TestPull150k(t *testing.T) {
	if raceEnabled {
		t.Skip("SKIPPED UNDER THE RACE DETECTOR: 150,000 submissions take too long with -race; " +
			"make test runs this test again without it: go test -count=1 -run '^TestPull150k$' ./relay/")
	}
	if testing.Short() {
		t.Skip("SKIPPED IN SHORT MODE: make test runs TestPull150k in full")
	}
	f := newFixture(t) // for its identities and manifest
	dir := fastDir(t)
	spoolDir := filepath.Join(dir, "spool")
	sp, err := store.Open(spoolDir, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sp.Close() }() // the one open at the end
	if err := sp.PutDesk("helpdesk", 1, f.manifest(1)); err != nil {
		t.Fatal(err)
	}

	// Seed: small submissions routed to alice alone, stored as the relay's
	// single-request route stores them, from many goroutines so that
	// bbolt's Batch shares each commit among many.
	start := time.Now()
	want := make(map[string]string, pull150k) // ID to SHA-256
	var mu sync.Mutex
	var n atomic.Int64
	var wg sync.WaitGroup
	alice := f.alice.Card().KeyID()
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := n.Add(1); i <= pull150k; i = n.Add(1) {
				spec := store.UploadSpec{Desk: "helpdesk", Category: "sea", Routes: []string{alice}, Stanzas: []string{"X25519"},
					DeleteAfterAck: time.Hour, KeepUnacked: 24 * time.Hour}
				sub, err := sp.PutSubmission(spec, fmt.Appendf(nil, "submission %08d", i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[sub.ID] = sub.SHA256
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() || len(want) != pull150k {
		t.Fatalf("seeded %d submissions, want %d", len(want), pull150k)
	}
	t.Logf("seeded %d submissions in %v", pull150k, time.Since(start).Round(time.Millisecond))
	// The relay opens the spool again with a short batch delay: the pull
	// acknowledges four at a time, and the 2 ms default, there to share one
	// fsync among concurrent commits, would only make each ack wait.
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp, err = store.Open(spoolDir, &store.Options{NoSync: true, BatchDelay: 50 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}

	// The relay's default signature window: 300,000 signed requests of
	// one key in a minute or two pass through its nonce cache's quota,
	// which trails them (auth.go).
	srv, err := New(sp, Config{Admin: f.admin.Card().SignKey})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handlers())
	defer ts.Close()
	c, err := client.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Key = f.alice.SigningKey()
	st, err := cases.Open(filepath.Join(dir, "cases"))
	if err != nil {
		t.Fatal(err)
	}

	// The size of one full page, for the record.
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/inbox", nil)
	req.Header = signedHeader(f.alice, "GET", "/api/v1/inbox", nil, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first page: %d %v", resp.StatusCode, err)
	}
	t.Logf("a page of %d items is %d bytes", api.InboxPageMax, len(page))

	start = time.Now()
	var last atomic.Int64
	res, err := handler.Pull(context.Background(), c, st, nil, ts.URL, func(total, done int64) { last.Store(int64(time.Since(start))) })
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	t.Logf("pulled %d submissions in %v, the downloads done after %v", len(res.Pulled),
		time.Since(start).Round(time.Millisecond), time.Duration(last.Load()).Round(time.Millisecond))
	if len(res.Problems) > 0 {
		t.Fatalf("pull had %d problem(s), the first: %s: %v", len(res.Problems), res.Problems[0].ID, res.Problems[0].Err)
	}
	if len(res.Pulled) != pull150k || res.Acked != pull150k || res.Duplicates != 0 {
		t.Fatalf("pulled %d, acked %d, duplicates %d; want %d, %d, 0", len(res.Pulled), res.Acked, res.Duplicates, pull150k, pull150k)
	}
	got := map[string]bool{}
	for _, id := range res.Pulled {
		if got[id] {
			t.Fatalf("submission %s pulled twice", id)
		}
		if _, ok := want[id]; !ok {
			t.Fatalf("pulled %s, which was never stored", id)
		}
		got[id] = true
	}
	metas, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != pull150k {
		t.Fatalf("the case store holds %d cases, want %d", len(metas), pull150k)
	}
	for _, m := range metas {
		if want[m.ID] != m.SHA256 {
			t.Fatalf("case %s: SHA-256 %s, stored %s", m.ID, m.SHA256, want[m.ID])
		}
	}
	if in, err := c.Inbox(context.Background()); err != nil || len(in) != 0 {
		t.Fatalf("inbox after the pull: %d item(s), %v", len(in), err)
	}
	if stats, err := sp.Stats(); err != nil || stats.Submissions != 0 {
		t.Fatalf("the spool still holds %d submission(s) (%v)", stats.Submissions, err)
	}
	if _, err := sp.Verify(); err != nil {
		t.Fatalf("spool inconsistent: %v", err)
	}
}

// fastDir returns a fresh private directory on a memory file system where
// the machine has one (/dev/shm), else t.TempDir(): a pull syncs the case
// store's whole filesystem once, and TestPull150k stores 150,000 cases.
func fastDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "amana-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
