package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQuota(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 10 << 10})
	a, err := s.PutSubmission(spec(0, "h"), data(6<<10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSubmission(spec(0, "h"), data(5<<10)); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if _, err := s.CreateUpload(spec(5<<10, "h")); !errors.Is(err, ErrQuota) {
		t.Fatalf("upload over quota: %v", err)
	}
	r, _ := s.OpenSubmission(a.ID, 0)
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data(6<<10)) {
		t.Fatal("stored submission changed")
	}
	if deleted, _, err := s.Ack(a.ID, "h", nil); err != nil || !deleted {
		t.Fatalf("ack: %v %v", deleted, err)
	}
	if _, err := s.PutSubmission(spec(0, "h"), data(5<<10)); err != nil {
		t.Fatalf("space did not come back: %v", err)
	}
}

func TestAckAndSweep(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	a, _ := s.PutSubmission(spec(0, "h1", "h2"), data(100))
	b, _ := s.PutSubmission(spec(0, "h1", "h2"), data(100))
	old, _ := s.PutSubmission(spec(0, "h1"), data(100))
	if _, _, err := s.Ack(a.ID, "stranger", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack by a route not sent to: %v", err)
	}
	if d, _, _ := s.Ack(a.ID, "h1", nil); d {
		t.Fatal("deleted after one of two acks")
	}
	if d, _, _ := s.Ack(a.ID, "h1", nil); d {
		t.Fatal("a repeated ack counted twice")
	}
	if d, _, _ := s.Ack(a.ID, "h2", nil); !d {
		t.Fatal("not deleted after every ack")
	}
	if _, err := s.Submission(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("still there")
	}
	s.Ack(b.ID, "h1", nil)
	c.add(71 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 0 {
		t.Fatal("swept before DeleteAfterAck")
	}
	c.add(2 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 1 {
		t.Fatalf("after DeleteAfterAck: %+v", res)
	}
	tok, _ := s.CreateUpload(spec(1000, "h1"))
	c.add(26 * time.Hour)
	if res, _ := s.Sweep(); res.Uploads != 1 {
		t.Fatalf("abandoned upload not swept: %+v", res)
	}
	if _, err := s.Upload(tok); !errors.Is(err, ErrNotFound) {
		t.Fatal("upload still there")
	}
	c.add(90 * 24 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 1 {
		t.Fatalf("unacked submission past retention: %+v", res)
	}
	if _, err := s.Submission(old.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("still there")
	}
	st, _ := s.Stats()
	if st.Committed != 0 || st.Submissions != 0 || st.Uploads != 0 {
		t.Fatalf("stats after everything was deleted: %+v", st)
	}
}

// TestAckWaitsForEveryHandler: a submission with no DeleteAfterAck, the
// default, is kept after the first handler's ack for as long as another
// live route has not acked, however long that takes, and goes when the
// last acks or when KeepUntil passes. A route that may no longer pull is
// not waited for.
func TestAckWaitsForEveryHandler(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	wait := func(routes ...string) UploadSpec {
		sp := spec(0, routes...)
		sp.DeleteAfterAck = 0
		return sp
	}
	both, _ := s.PutSubmission(wait("alice", "bob"), data(100))
	lapsed, _ := s.PutSubmission(wait("alice", "bob"), data(100))
	removed, _ := s.PutSubmission(wait("alice", "bob", "carol"), data(100))

	d, waiting, err := s.Ack(both.ID, "alice", nil)
	if err != nil || d || !slices.Equal(waiting, []string{"bob"}) {
		t.Fatalf("first ack: deleted %v, waiting %q, %v", d, waiting, err)
	}
	s.Ack(lapsed.ID, "alice", nil)
	// Far past the 72 hours a first-ack desk keeps it: still there.
	c.add(30 * 24 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 0 {
		t.Fatalf("swept while a handler had not fetched it: %+v", res)
	}
	if _, err := s.Submission(both.ID); err != nil {
		t.Fatalf("gone before the second handler fetched it: %v", err)
	}
	if d, waiting, _ := s.Ack(both.ID, "bob", nil); !d || len(waiting) != 0 {
		t.Fatalf("second ack: deleted %v, waiting %q", d, waiting)
	}
	if _, err := s.Submission(both.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("still there after both acked: %v", err)
	}

	// carol is no longer a handler: alice and bob are all it waits for.
	live := func(r string) bool { return r != "carol" }
	if d, waiting, _ := s.Ack(removed.ID, "alice", live); d || !slices.Equal(waiting, []string{"bob"}) {
		t.Fatalf("ack with carol removed: deleted %v, waiting %q", d, waiting)
	}
	if d, _, _ := s.Ack(removed.ID, "bob", live); !d {
		t.Fatal("kept for a route that may no longer pull it")
	}

	// Nobody else acks lapsed: it goes at KeepUntil, 90 days, not before.
	c.add(59*24*time.Hour + 22*time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 0 {
		t.Fatalf("swept before the unacknowledged limit: %+v", res)
	}
	c.add(3 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 1 {
		t.Fatalf("not swept at the unacknowledged limit: %+v", res)
	}
	if _, err := s.Submission(lapsed.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("still there past the unacknowledged limit")
	}
}

func TestDeskQuota(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 100 << 10, DeskQuota: 40 << 10})
	flood := spec(0, "h")
	flood.Desk = "flooded"
	for i := 0; i < 4; i++ {
		if _, err := s.PutSubmission(flood, data(10<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutSubmission(flood, data(10<<10)); !errors.Is(err, ErrQuota) {
		t.Fatalf("past the desk quota: %v", err)
	}
	if _, err := s.CreateUpload(UploadSpec{Desk: "flooded", Routes: []string{"h"}, Length: 1}); !errors.Is(err, ErrQuota) {
		t.Fatalf("upload past the desk quota: %v", err)
	}
	other := spec(0, "h")
	other.Desk = "other"
	if _, err := s.PutSubmission(other, data(30<<10)); err != nil {
		t.Fatalf("another desk is blocked by the flood: %v", err)
	}
}

func TestIdempotentPut(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 100 << 10})
	sp := spec(0, "h")
	sp.Idempotency = "k2x4RBgPz0Ks8l3fKqQp7A"
	a, err := s.PutSubmission(sp, data(30<<10))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.Stats()
	// The same bytes under the same key: the same submission, no new quota.
	for i := 0; i < 3; i++ {
		b, err := s.PutSubmission(sp, data(30<<10))
		if err != nil {
			t.Fatal(err)
		}
		if b.ID != a.ID || b.SHA256 != a.SHA256 || !b.Received.Equal(a.Received) {
			t.Fatalf("resend gave %+v, want %+v", b, a)
		}
	}
	after, _ := s.Stats()
	if after != before {
		t.Fatalf("resend changed the spool: %+v then %+v", before, after)
	}
	subs, _ := s.Submissions(nil)
	if len(subs) != 1 {
		t.Fatalf("%d submissions stored, want 1", len(subs))
	}

	for _, tc := range []struct {
		name string
		spec func(UploadSpec) UploadSpec
		data []byte
		err  error
	}{
		{"other bytes", func(u UploadSpec) UploadSpec { return u }, data(30<<10 - 1), ErrIdempotency},
		{"other desk", func(u UploadSpec) UploadSpec { u.Desk = "e"; return u }, data(30 << 10), nil},
		{"other key", func(u UploadSpec) UploadSpec { u.Idempotency += "x"; return u }, data(30 << 10), nil},
		{"no key", func(u UploadSpec) UploadSpec { u.Idempotency = ""; return u }, data(30 << 10), ErrQuota},
	} {
		b, err := s.PutSubmission(tc.spec(sp), tc.data)
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.err)
		}
		if err == nil && b.ID == a.ID {
			t.Fatalf("%s: same ID as the first submission", tc.name)
		}
	}

	// Concurrent resends in one batch store one submission.
	sp.Idempotency = "concurrent-key-0123456789"
	sp.Desk = "f"
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.PutSubmission(sp, data(1000))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = b.ID
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent resends got IDs %v", ids)
		}
	}
}

// TestSubmissionsPage walks the paged listing: every kept submission once,
// in ID order, each record read once over the whole walk.
func TestSubmissionsPage(t *testing.T) {
	onlyH1 := func(sub *Submission) bool { return slices.Contains(sub.Routes, "h1") }
	for _, tc := range []struct {
		name   string
		routes []string // one submission per entry, routed there
		limit  int
		keep   func(*Submission) bool
		pages  int // pages the walk takes, the last one with next ""
	}{
		{"empty", nil, 3, nil, 1},
		{"one short page", []string{"h1", "h1"}, 3, nil, 1},
		{"exact page multiple", []string{"h1", "h1", "h1", "h1", "h1", "h1"}, 3, nil, 2},
		{"limit one", []string{"h1", "h1", "h1"}, 1, nil, 3},
		{"keep filtering", []string{"h1", "h2", "h1", "h2", "h2", "h1", "h2", "h1", "h1", "h2"}, 2, onlyH1, 0},
		{"keep refuses all", []string{"h2", "h2", "h2"}, 2, onlyH1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, nil)
			var want []string
			for _, r := range tc.routes {
				sub, err := s.PutSubmission(spec(0, r), data(10))
				if err != nil {
					t.Fatal(err)
				}
				if r == "h1" || tc.keep == nil {
					want = append(want, sub.ID)
				}
			}
			slices.Sort(want)
			calls := 0
			keep := func(sub *Submission) bool {
				calls++
				return tc.keep == nil || tc.keep(sub)
			}
			var got []string
			after, pages := "", 0
			for {
				pages++
				if pages > len(tc.routes)+2 {
					t.Fatalf("walk did not end after %d pages", pages)
				}
				subs, next, err := s.SubmissionsPage(after, tc.limit, keep)
				if err != nil {
					t.Fatal(err)
				}
				if len(subs) > tc.limit {
					t.Fatalf("page %d holds %d, limit %d", pages, len(subs), tc.limit)
				}
				for _, sub := range subs {
					got = append(got, sub.ID)
				}
				if next == "" {
					break
				}
				if next <= after || len(subs) == 0 || next != subs[len(subs)-1].ID {
					t.Fatalf("page %d after %q: next %q, last of %d", pages, after, next, len(subs))
				}
				after = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("walk listed %v, want %v", got, want)
			}
			if calls != len(tc.routes) {
				t.Fatalf("keep was called %d times over the walk of %d records", calls, len(tc.routes))
			}
			if tc.pages != 0 && pages != tc.pages {
				t.Fatalf("walk took %d pages, want %d", pages, tc.pages)
			}
		})
	}
}

// TestSubmissionsPageCursor starts pages at IDs that name no submission and
// refuses cursors that are not IDs.
func TestSubmissionsPageCursor(t *testing.T) {
	s, _ := openTest(t, nil)
	var ids []string
	for range 5 {
		sub, err := s.PutSubmission(spec(0, "h1"), data(10))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.ID)
	}
	slices.Sort(ids)
	// One below ids[2], and not stored: the page starts at ids[2].
	n, _ := new(big.Int).SetString(ids[2], 16)
	between := fmt.Sprintf("%032x", n.Sub(n, big.NewInt(1)))
	if between == ids[1] {
		t.Fatal("two random IDs are adjacent")
	}
	for _, tc := range []struct {
		name, after string
		want        []string
		err         error
	}{
		{"start", "", ids, nil},
		{"stored id", ids[2], ids[3:], nil},
		{"unknown id between", between, ids[2:], nil},
		{"unknown id before all", strings.Repeat("0", 32), ids, nil},
		{"unknown id after all", strings.Repeat("f", 32), nil, nil},
		{"last id", ids[4], nil, nil},
		{"too short", ids[0][:30], nil, ErrCursor},
		{"not hex", strings.Repeat("g", 32), nil, ErrCursor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subs, next, err := s.SubmissionsPage(tc.after, 10, nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			var got []string
			for _, sub := range subs {
				got = append(got, sub.ID)
			}
			if !slices.Equal(got, tc.want) || next != "" {
				t.Fatalf("after %q: %v next %q, want %v", tc.after, got, next, tc.want)
			}
		})
	}
	if _, _, err := s.SubmissionsPage("", 0, nil); err == nil {
		t.Fatal("a page of limit 0 was listed")
	}
}
