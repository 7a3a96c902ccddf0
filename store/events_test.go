package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestEventAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		routes  []string
		acked   []string
		acks    []string // in order; the last one is expected to delete
		live    func(string) bool
		waiting []string // after the first ack, when it does not delete
	}{
		{name: "author pre-acked", routes: []string{"a", "b", "c"}, acked: []string{"a"}, acks: []string{"b", "c"}, waiting: []string{"c"}},
		{name: "none pre-acked", routes: []string{"a", "b"}, acks: []string{"a", "b"}, waiting: []string{"b"}},
		{name: "a removed key is not waited for", routes: []string{"a", "b", "c"}, acked: []string{"a"}, acks: []string{"b"},
			live: func(r string) bool { return r != "c" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, nil)
			ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: tc.routes, Acked: tc.acked, KeepUnacked: time.Hour}, data(500))
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Event(ev.ID); got == nil || !slices.Equal(got.Acks, append([]string{}, tc.acked...)) {
				t.Fatalf("stored acks %+v, want %v", got, tc.acked)
			}
			if _, _, err := s.AckEvent(ev.ID, "stranger", nil); !errors.Is(err, ErrNotFound) {
				t.Fatalf("ack by a route not sent to: %v", err)
			}
			for i, r := range tc.acks {
				deleted, waiting, err := s.AckEvent(ev.ID, r, tc.live)
				if err != nil {
					t.Fatal(err)
				}
				last := i == len(tc.acks)-1
				if deleted != last {
					t.Fatalf("ack %d by %s: deleted %v", i, r, deleted)
				}
				if i == 0 && !last && !slices.Equal(waiting, tc.waiting) {
					t.Fatalf("waiting %v, want %v", waiting, tc.waiting)
				}
			}
			if _, err := s.Event(ev.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("event still there: %v", err)
			}
			if _, err := s.ReadEvent(ev.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("event bytes still there: %v", err)
			}
			if st, _ := s.Stats(); st.Committed != 0 || st.Events != 0 {
				t.Fatalf("after the last ack: %+v", st)
			}
		})
	}
}

func TestPutEvent(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 10 << 10, DeskQuota: 10 << 10, EventQuota: 10 << 10})
	for _, tc := range []struct {
		name string
		spec EventSpec
		n    int
		ok   bool
	}{
		{"no routes", EventSpec{Desk: "d", Kind: KindEvent}, 10, false},
		{"unknown kind", EventSpec{Desk: "d", Kind: "reply", Routes: []string{"a"}}, 10, false},
		{"empty", EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a"}}, 0, false},
		{"acked route not a route", EventSpec{Desk: "d", Kind: KindFacts, Routes: []string{"a"}, Acked: []string{"b"}}, 10, false},
		{"empty route", EventSpec{Desk: "d", Kind: KindFacts, Routes: []string{""}}, 10, false},
		{"route too long", EventSpec{Desk: "d", Kind: KindFacts, Routes: []string{strings.Repeat("r", maxRouteLen+1)}}, 10, false},
		{"facts", EventSpec{Desk: "d", Kind: KindFacts, Routes: []string{"c"}}, 10, true},
		{"share", EventSpec{Desk: "d", Kind: KindShare, Routes: []string{"b"}}, ChunkSize/512 + 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := s.PutEvent(tc.spec, data(tc.n))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if !tc.ok {
				// A spec the relay should never make is a bug, not a
				// full disk.
				if errors.Is(err, ErrStorage) || errors.Is(err, ErrQuota) || !isOurs(err) {
					t.Fatalf("a bad spec is %v", err)
				}
				return
			}
			b, err := s.ReadEvent(ev.ID)
			if err != nil || !bytes.Equal(b, data(tc.n)) {
				t.Fatalf("read back %d bytes: %v", len(b), err)
			}
		})
	}
	// Events count against the quota.
	if _, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a", "b"}}, data(10<<10)); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	// An event every route already holds is not stored.
	ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a"}, Acked: []string{"a"}}, data(10))
	if err != nil || ev.ID == "" {
		t.Fatal(err)
	}
	if _, err := s.Event(ev.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an event with nobody to deliver to was stored: %v", err)
	}
}

// TestEventRecordMembers: an event's record holds exactly these members,
// none of them anything a handler typed; a new one must be added here on
// purpose.
func TestEventRecordMembers(t *testing.T) {
	s, _ := openTest(t, nil)
	ev, err := s.PutEvent(EventSpec{Desk: "d", Category: "sea", Kind: KindEvent, Routes: []string{"a", "b"}, Acked: []string{"a"}, KeepUnacked: time.Hour}, data(64))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]json.RawMessage
	err = s.db.View(func(tx *bolt.Tx) error {
		k, _ := subKey(ev.ID)
		return json.Unmarshal(tx.Bucket(bEvents).Get(k), &rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range rec {
		got = append(got, k)
	}
	slices.Sort(got)
	// first_ack is omitted until a receiver acks.
	want := []string{"acks", "category", "delete_after_ack", "desk", "id", "keep_until", "kind", "received", "routes", "sha256", "size"}
	if !slices.Equal(got, want) {
		t.Fatalf("event record members %v, want %v", got, want)
	}
}

func TestEventSweep(t *testing.T) {
	for _, tc := range []struct {
		name        string
		afterAck    time.Duration
		acked       bool // one route other than the author acked
		wait        time.Duration
		wantDeleted bool
	}{
		{"unacked within retention", 0, false, 23 * time.Hour, false},
		{"unacked past retention", 0, false, 25*time.Hour + time.Minute, true},
		{"acked by one, waits for the others", 0, true, 23 * time.Hour, false},
		{"after first ack, not yet", 2 * time.Hour, true, time.Hour, false},
		{"after first ack, due", 2 * time.Hour, true, 3*time.Hour + time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			s, _ := openTest(t, &Options{Now: c.now})
			ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a", "b", "c"}, Acked: []string{"a"},
				DeleteAfterAck: tc.afterAck, KeepUnacked: 24 * time.Hour}, data(100))
			if err != nil {
				t.Fatal(err)
			}
			if tc.acked {
				if _, _, err := s.AckEvent(ev.ID, "b", nil); err != nil {
					t.Fatal(err)
				}
			}
			c.add(tc.wait)
			res, err := s.Sweep()
			if err != nil {
				t.Fatal(err)
			}
			_, gone := s.Event(ev.ID)
			if deleted := errors.Is(gone, ErrNotFound); deleted != tc.wantDeleted || (res.Events == 1) != tc.wantDeleted {
				t.Fatalf("deleted %v (sweep %+v), want %v", deleted, res, tc.wantDeleted)
			}
		})
	}
}

// TestEventSweepBatches: a sweep over more events than one transaction
// deletes takes them all, in several transactions, and leaves the others.
func TestEventSweepBatches(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	n := 2*sweepEventsBatch + 17
	var keep []string
	for i := 0; i < n; i++ {
		ttl := time.Hour
		if i%5 == 0 {
			ttl = 48 * time.Hour
		}
		ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindFacts, Routes: []string{"a"}, KeepUnacked: ttl}, data(20))
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			keep = append(keep, ev.ID)
		}
	}
	c.add(3 * time.Hour)
	res, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != n-len(keep) {
		t.Fatalf("swept %d events, want %d", res.Events, n-len(keep))
	}
	left, _ := s.Events(nil)
	var ids []string
	for _, ev := range left {
		ids = append(ids, ev.ID)
	}
	slices.Sort(ids)
	slices.Sort(keep)
	if !slices.Equal(ids, keep) {
		t.Fatalf("%d events left, want %d", len(ids), len(keep))
	}
}

func TestEventsPage(t *testing.T) {
	s, _ := openTest(t, nil)
	var mine []string
	for i := 0; i < 25; i++ {
		route := "a"
		if i%3 == 0 {
			route = "b"
		}
		ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{route}, KeepUnacked: time.Hour}, data(10))
		if err != nil {
			t.Fatal(err)
		}
		if route == "a" {
			mine = append(mine, ev.ID)
		}
	}
	slices.Sort(mine)
	for _, limit := range []int{1, 4, 16, 100} {
		var got []string
		after := ""
		for {
			evs, next, err := s.EventsPage("a", after, limit, func(ev *Event) bool {
				if !slices.Contains(ev.Routes, "a") {
					t.Errorf("the listing of a read an event of %v", ev.Routes)
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				got = append(got, ev.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
		if !slices.Equal(got, mine) {
			t.Fatalf("limit %d: %d events, want %d", limit, len(got), len(mine))
		}
	}
	if _, _, err := s.EventsPage("a", "zz", 1, nil); !errors.Is(err, ErrCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// TestEventsPageSkipsAcked: an event a route has acknowledged leaves that
// route's listing (its index entry is gone) and stays in the others'.
func TestEventsPageSkipsAcked(t *testing.T) {
	s, _ := openTest(t, nil)
	ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a", "b", "c"}, Acked: []string{"a"}, KeepUnacked: time.Hour}, data(10))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AckEvent(ev.ID, "b", nil); err != nil {
		t.Fatal(err)
	}
	for route, want := range map[string]int{"a": 0, "b": 0, "c": 1, "d": 0} {
		evs, _, err := s.EventsPage(route, "", 10, nil)
		if err != nil || len(evs) != want {
			t.Errorf("route %s lists %d events (%v), want %d", route, len(evs), err, want)
		}
	}
}

// TestEventQuota: events fill their desk's event quota and no more, so a
// flood of them leaves the desk's submissions their whole quota; deleting
// events gives their bytes back.
func TestEventQuota(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 64 << 10, DeskQuota: 32 << 10, EventQuota: 8 << 10})
	var ids []string
	for {
		ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a", "b"}, Acked: []string{"a"}, KeepUnacked: time.Hour}, data(600))
		if errors.Is(err, ErrQuota) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
		if len(ids) > 100 {
			t.Fatal("the event quota never filled")
		}
	}
	// Each event counts its record and index too, not only its 600 bytes.
	if max := (8 << 10) / 600; len(ids) >= max {
		t.Fatalf("%d events of 600 bytes fit in 8 KiB: the records are not counted", len(ids))
	}
	if _, err := s.PutSubmission(spec(0, "a"), data(30<<10)); err != nil {
		t.Fatalf("a submission after a flood of events: %v", err)
	}
	// Another desk's events have their own quota.
	if _, err := s.PutEvent(EventSpec{Desk: "e", Kind: KindEvent, Routes: []string{"a"}, KeepUnacked: time.Hour}, data(600)); err != nil {
		t.Fatalf("another desk's event: %v", err)
	}
	if _, _, err := s.AckEvent(ids[0], "b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a"}, KeepUnacked: time.Hour}, data(600)); err != nil {
		t.Fatalf("an event once another was deleted: %v", err)
	}
}

// TestEventSweepBoundsTransactions: a sweep over many events not due finds
// the one due behind them all, and no transaction looks at more than the
// bound: the reads at most sweepScan records, the writes only the events
// found due.
func TestEventSweepBoundsTransactions(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	s.sweepScan = 16
	n := 3*s.sweepScan + 1
	var ids []string
	for i := 0; i < n; i++ {
		ev, err := s.PutEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: []string{"a"}, KeepUnacked: 48 * time.Hour}, data(20))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	// Make the event with the last key the only one due.
	slices.Sort(ids)
	last, _ := subKey(ids[n-1])
	err := s.db.Update(func(tx *bolt.Tx) error {
		var ev Event
		if err := getJSON(tx.Bucket(bEvents), last, &ev); err != nil {
			return err
		}
		ev.KeepUntil = c.now().Add(time.Hour)
		return putJSON(tx.Bucket(bEvents), last, &ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	var reads, writes, scanned int
	s.sweepHook = func(write bool, visited int, _ time.Duration) {
		if write {
			writes++
			if visited > 1 {
				t.Errorf("a write transaction looked at %d events; one was due", visited)
			}
			return
		}
		reads++
		scanned += visited
		if visited > s.sweepScan {
			t.Errorf("a read transaction looked at %d events, more than %d", visited, s.sweepScan)
		}
	}
	res, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 1 || writes != 1 || reads < n/s.sweepScan || scanned != n {
		t.Fatalf("swept %d in %d writes; %d reads looked at %d of %d", res.Events, writes, reads, scanned, n)
	}
	if _, err := s.Event(ids[n-1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the due event is still there: %v", err)
	}
	// An event found due but acked and deleted before the write, or no
	// longer due, is left alone by the write.
	if k, err := deleteDueEvent(s, last, c.now()); err != nil || k != 0 {
		t.Fatalf("deleting a gone event: %d, %v", k, err)
	}
	first, _ := subKey(ids[0])
	if k, err := deleteDueEvent(s, first, c.now()); err != nil || k != 0 {
		t.Fatalf("deleting an event not due: %d, %v", k, err)
	}
}

// deleteDueEvent runs the sweep's delete of one event in a write
// transaction of its own and says how many it deleted.
func deleteDueEvent(s *Spool, key []byte, now time.Time) (n int, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		ok, err := s.deleteDueEvent(tx, key, now)
		if ok {
			n = 1
		}
		return err
	})
	return n, err
}
