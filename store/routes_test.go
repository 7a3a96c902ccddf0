package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestRoutePage: a route's listing holds exactly what waits for that
// route, in ID order, page by page, however many submissions wait for
// others or were acked by it; and an ack or a deletion takes an entry out.
func TestRoutePage(t *testing.T) {
	s, _ := openTest(t, &Options{NoSync: true})
	mine := map[string]bool{}
	for i := range 30 {
		if _, err := s.PutSubmission(spec(10, "other"), data(10)); err != nil {
			t.Fatal(err)
		}
		sub, err := s.PutSubmission(spec(10, "me", "other"), data(10+i))
		if err != nil {
			t.Fatal(err)
		}
		mine[sub.ID] = true
	}
	var acked string
	for id := range mine {
		if _, _, err := s.Ack(id, "me", nil); err != nil {
			t.Fatal(err)
		}
		acked = id
		delete(mine, id)
		break
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		subs, next, err := s.RoutePage("me", after, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next != "" && len(subs) != 7 {
			t.Fatalf("a page of %d before the end", len(subs))
		}
		for _, sub := range subs {
			if len(got) > 0 && sub.ID <= got[len(got)-1] {
				t.Fatalf("out of order: %s after %s", sub.ID, got[len(got)-1])
			}
			got = append(got, sub.ID)
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("the pages do not end")
		}
		after = next
	}
	if len(got) != len(mine) {
		t.Fatalf("listed %d, want %d", len(got), len(mine))
	}
	for _, id := range got {
		if !mine[id] || id == acked {
			t.Fatalf("listed %s, which does not wait for me", id)
		}
	}
	if subs, _, err := s.RoutePage("nobody", "", 10, nil); err != nil || len(subs) != 0 {
		t.Fatalf("nobody's listing: %d, %v", len(subs), err)
	}
	if _, _, err := s.RoutePage("me", "zz", 10, nil); !errors.Is(err, ErrCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	// The last ack deletes, and the other route's entry goes with it.
	if d, _, err := s.Ack(acked, "other", nil); err != nil || !d {
		t.Fatalf("last ack: %v %v", d, err)
	}
	if subs, _, _ := s.RoutePage("other", "", 1000, nil); len(subs) != 59 {
		t.Fatalf("other lists %d, want 59", len(subs))
	}
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestAckMany: one transaction acknowledges many, reports the unknown and
// the refused apart, and deletes those no one else waits for.
func TestAckMany(t *testing.T) {
	s, _ := openTest(t, &Options{NoSync: true})
	a, _ := s.PutSubmission(spec(10, "me"), data(10))
	b, _ := s.PutSubmission(spec(10, "me", "other"), data(11))
	c, _ := s.PutSubmission(spec(10, "other"), data(12))
	refused, _ := s.PutSubmission(spec(10, "me"), data(13))
	ids := []string{a.ID, b.ID, c.ID, refused.ID, "00000000000000000000000000000000", "not hex"}
	res, err := s.AckMany(ids, "me", func(sub *Submission) bool { return sub.ID != refused.ID }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Deleted || res[0].Err != nil {
		t.Errorf("a: %+v", res[0])
	}
	if res[1].Deleted || res[1].Err != nil || len(res[1].Waiting) != 1 || res[1].Waiting[0] != "other" {
		t.Errorf("b: %+v", res[1])
	}
	for i := 2; i < len(ids); i++ {
		if !errors.Is(res[i].Err, ErrNotFound) {
			t.Errorf("%d: %+v, want not found", i, res[i])
		}
	}
	if sub, err := s.Submission(refused.ID); err != nil || len(sub.Acks) != 0 {
		t.Errorf("the refused one was acked: %+v %v", sub, err)
	}
	if subs, _, _ := s.RoutePage("me", "", 10, nil); len(subs) != 1 || subs[0].ID != refused.ID {
		t.Errorf("me still lists %d", len(subs))
	}
	if _, err := s.AckMany(make([]string, MaxAckMany+1), "me", nil, nil); err == nil {
		t.Error("more than MaxAckMany accepted")
	}
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestSweepSmallTransactions: a sweep over more submissions than one write
// transaction deletes does it in several, leaves the spool consistent and
// reports its longest write.
func TestSweepSmallTransactions(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{NoSync: true, Now: c.now})
	s.sweepScan = 50
	n := 3*sweepBatch + 5
	for i := range n {
		sp := spec(10, "me")
		sp.KeepUnacked = time.Hour
		if i%2 == 0 {
			sp.KeepUnacked = 1000 * time.Hour
		}
		if _, err := s.PutSubmission(sp, data(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	c.add(10 * time.Hour)
	res, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if res.Submissions != n/2 {
		t.Fatalf("swept %d, want %d", res.Submissions, n/2)
	}
	if res.LongestWrite <= 0 {
		t.Fatalf("longest write %v", res.LongestWrite)
	}
	if subs, _, _ := s.RoutePage("me", "", 1000, nil); len(subs) != n-n/2 {
		t.Fatalf("me lists %d after the sweep, want %d", len(subs), n-n/2)
	}
	if _, err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestRoutePageStaleEntry: an index entry whose submission is gone is
// skipped, on every page, so that the rest of the route's inbox stays
// readable; Verify reports it.
func TestRoutePageStaleEntry(t *testing.T) {
	s, _ := openTest(t, &Options{NoSync: true})
	want := map[string]bool{}
	for i := range 5 {
		sub, err := s.PutSubmission(spec(10, "me"), data(10+i))
		if err != nil {
			t.Fatal(err)
		}
		want[sub.ID] = true
	}
	// Stale entries at the start, in the middle and at the end of the ID order.
	var stale [][]byte
	for _, id := range []string{"00000000000000000000000000000000", "7fffffffffffffffffffffffffffffff", "ffffffffffffffffffffffffffffffff"} {
		key, _ := subKey(id)
		stale = append(stale, routeKey("me", key))
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bSubRoutes).Put(routeKey("me", key), []byte{}) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 2, 10} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			subs, next, err := s.RoutePage("me", after, limit, nil)
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			for _, sub := range subs {
				got = append(got, sub.ID)
			}
			if next == "" {
				break
			}
			if pages > 10 {
				t.Fatal("the pages do not end")
			}
			after = next
		}
		if len(got) != len(want) {
			t.Fatalf("limit %d: listed %v, want the %d submissions", limit, got, len(want))
		}
		for _, id := range got {
			if !want[id] {
				t.Fatalf("limit %d: listed %s", limit, id)
			}
		}
	}
	if _, err := s.Verify(); err == nil || !strings.Contains(err.Error(), "submission index has an entry") {
		t.Fatalf("Verify: %v, want the stale entries reported", err)
	}
	for _, k := range stale {
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bSubRoutes).Delete(k) }); err != nil {
			t.Fatal(err)
		}
	}
}
