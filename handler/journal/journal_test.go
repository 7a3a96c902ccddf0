package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// TestRecordAndSync: a change recorded by alice reaches bob and carol, who
// hold the same state; the coordinator gets the facts alone.
func TestRecordAndSync(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", false) // the category is decrypted on demand
	w.record("alice", c, crypto.Change{Status: "acknowledged", Assign: []string{w.key("bob")}, Note: "first look"})
	w.tick(time.Hour)
	for _, n := range []string{"bob", "carol"} {
		if res := w.sync(n); res.Accepted != 1 || res.Acked != 1 || len(res.Refused) != 0 {
			t.Fatalf("%s's sync: %+v", n, res)
		}
	}
	a, b := w.state("alice", c), w.state("bob", c)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("alice and bob differ:\n%+v\n%+v", a, b)
	}
	if a.Status != "acknowledged" || !slices.Equal(a.Assignees, []string{w.key("bob")}) || len(a.Notes) != 1 || a.Notes[0].Text != "first look" ||
		a.Acknowledged != "2026-12-01T09:00:00Z" || a.Category != "general" {
		t.Fatalf("state: %+v", a)
	}
	if res := w.sync("dave"); res.Accepted != 1 {
		t.Fatalf("dave's sync: %+v", res)
	}
	d, err := w.journals["dave"].State(w.trust, c.id)
	if err != nil || !d.FactsOnly || d.Status != "acknowledged" || len(d.Notes) != 0 || !slices.Equal(d.Assignees, a.Assignees) {
		t.Fatalf("dave's state: %+v %v", d, err)
	}
	// Nothing is left at the relay for anyone.
	for _, n := range handlerNames {
		if p := w.relay.pending(w.key(n)); len(p) != 0 {
			t.Fatalf("%s still has %d events at the relay", n, len(p))
		}
	}
	// The next change follows the first.
	e := w.record("alice", c, crypto.Change{Severity: "high"})
	if e.Seq != 2 || e.Prev == "" {
		t.Fatalf("second event: seq %d prev %q", e.Seq, e.Prev)
	}
	if e := w.record("bob", c, crypto.Change{Tag: []string{"phishing"}}); e.Seq != 1 || e.Seen[w.key("alice")] != 1 {
		t.Fatalf("bob's event: seq %d seen %v", e.Seq, e.Seen)
	}
}

// TestRecordRefuses: changes the workflow or the route do not allow.
func TestRecordRefuses(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("restricted", true)
	tests := []struct {
		name string
		who  string
		ch   crypto.Change
		want error
	}{
		{"unknown status", "alice", crypto.Change{Status: "pondering"}, ErrInvalidChange},
		{"unknown severity", "alice", crypto.Change{Severity: "dire"}, ErrInvalidChange},
		{"close reason without final status", "alice", crypto.Change{Status: "open", CloseReason: "completed"}, ErrInvalidChange},
		{"assignee off the route", "alice", crypto.Change{Assign: []string{w.key("carol")}}, ErrInvalidChange},
		{"nothing", "alice", crypto.Change{}, ErrInvalidChange},
		{"author off the route", "carol", crypto.Change{Status: "open"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.who == "carol" {
				w.store("carol", c, true) // carol holds it somehow, but is not on its route
			}
			_, err := w.journals[tt.who].Record(context.Background(), w.relay.as(w.key(tt.who)), w.trust, c.id, tt.ch)
			if tt.want != nil && !errors.Is(err, tt.want) || tt.want == nil && !errors.Is(err, ErrNotOnRoute) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if w.relay.posted != 0 {
		t.Fatalf("%d refused changes were posted", w.relay.posted)
	}
}

// TestAcceptRules: each rule, one by one, against events a handler or the
// relay crafts; every refused event is still acknowledged.
func TestAcceptRules(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("restricted", true)
	other := w.newCase("restricted", true)
	first := w.record("alice", c, crypto.Change{Status: "open"})
	if res := w.sync("bob"); res.Accepted != 1 {
		t.Fatalf("bob's first sync: %+v", res)
	}
	firstJS, _ := crypto.MarshalEvent(first)
	digest := crypto.EventDigest(first)
	note := crypto.Change{Note: "x"}
	tests := []struct {
		name     string
		post     func() []byte // the ciphertext the relay lists to bob
		want     string        // in the refusal's reason; "" for accepted
		dup      bool
		category string
	}{
		{name: "bad signature", want: "signature does not verify", post: func() []byte {
			_, js := w.craft("carol", c, 2, digest, note, func(e *crypto.Event) { e.Author = w.key("alice") })
			return w.seal("restricted", js)
		}},
		{name: "author not on the route", want: "not a handler of the case's category", post: func() []byte {
			_, js := w.craft("carol", c, 1, "", note, nil)
			return w.seal("restricted", js)
		}},
		{name: "misplaced category", want: "another category", post: func() []byte {
			_, js := w.craft("alice", c, 2, digest, note, func(e *crypto.Event) { e.Category = "general"; crypto.SignEvent(e, w.ids["alice"]) })
			return w.seal("restricted", js)
		}},
		{name: "misplaced case copy", want: "another copy of the report", post: func() []byte {
			_, js := w.craft("alice", c, 2, digest, note, func(e *crypto.Event) { e.CaseSHA256 = other.sha; crypto.SignEvent(e, w.ids["alice"]) })
			return w.seal("restricted", js)
		}},
		{name: "repeat with other content", want: "repeats change 1", post: func() []byte {
			_, js := w.craft("alice", c, 1, "", note, nil)
			return w.seal("restricted", js)
		}},
		{name: "identical duplicate", dup: true, post: func() []byte { return w.seal("restricted", firstJS) }},
		{name: "prev fork", want: "forks", post: func() []byte {
			_, js := w.craft("alice", c, 2, strings.Repeat("ab", 32), note, nil)
			return w.seal("restricted", js)
		}},
		{name: "assignee off the route", want: "not a handler of the case", post: func() []byte {
			_, js := w.craft("alice", c, 2, digest, crypto.Change{Assign: []string{w.key("carol")}}, nil)
			return w.seal("restricted", js)
		}},
		{name: "status not in the workflow", want: "workflow lacks", post: func() []byte {
			_, js := w.craft("alice", c, 2, digest, crypto.Change{Status: "pondering"}, nil)
			return w.seal("restricted", js)
		}},
		{name: "close reason without a final status", want: "without a final status", post: func() []byte {
			_, js := w.craft("alice", c, 2, digest, crypto.Change{Status: "open", CloseReason: "completed"}, nil)
			return w.seal("restricted", js)
		}},
		{name: "not an event", want: "not a valid event", post: func() []byte { return w.seal("restricted", []byte(`{"schema":"nope"}`)) }},
		{name: "next change accepted", post: func() []byte {
			_, js := w.craft("alice", c, 2, digest, note, nil)
			return w.seal("restricted", js)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.relay.mu.Lock()
			id, err := w.relay.inject(w.key("alice"), "d", "restricted", PartCase, "", tt.post())
			w.relay.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			res := w.sync("bob")
			if res.Acked != 1 || len(w.relay.pending(w.key("bob"))) != 0 {
				t.Fatalf("the event was not acknowledged: %+v", res)
			}
			switch {
			case tt.dup:
				if res.Duplicates != 1 || res.Accepted != 0 || len(res.Refused) != 0 {
					t.Fatalf("got %+v, want a duplicate", res)
				}
			case tt.want == "":
				if res.Accepted != 1 || len(res.Refused) != 0 {
					t.Fatalf("got %+v, want it accepted", res)
				}
			default:
				if res.Accepted != 0 || len(res.Refused) != 1 || !strings.Contains(res.Refused[0].Reason, tt.want) || res.Refused[0].EventID != id {
					t.Fatalf("got %+v, want a refusal saying %q", res, tt.want)
				}
			}
		})
	}
	s := w.state("bob", c)
	if len(s.History) != 2 || len(s.Notes) != 1 {
		t.Fatalf("bob applied %d events: %+v", len(s.History), s.History)
	}
}

// TestRemovedAuthor: once the trusted manifest no longer lists carol, her
// later events are refused and the ones held before stay.
func TestRemovedAuthor(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	w.record("carol", c, crypto.Change{Status: "open"})
	if res := w.sync("alice"); res.Accepted != 1 {
		t.Fatalf("first sync: %+v", res)
	}
	w.record("carol", c, crypto.Change{Status: "waiting"})
	w.trust.set(manifest(t, 2, []string{"alice", "bob", "dave"}, []string{"dave"}))
	res := w.sync("alice")
	if res.Accepted != 0 || len(res.Refused) != 1 || !strings.Contains(res.Refused[0].Reason, "not a handler of the desk") {
		t.Fatalf("sync after the removal: %+v", res)
	}
	if s := w.state("alice", c); s.Status != "open" || len(s.History) != 1 {
		t.Fatalf("state: %+v", s)
	}
}

// TestMaliciousRelay: a relay that drops, reorders, duplicates, replays
// and swaps events between cases gets nothing forged accepted, and the
// gaps it makes are reported.
func TestMaliciousRelay(t *testing.T) {
	w := newWorld(t)
	c1, c2 := w.newCase("general", true), w.newCase("general", true)
	for i, st := range []string{"acknowledged", "open", "waiting", "escalated"} {
		w.record("alice", c1, crypto.Change{Status: st})
		w.record("alice", c2, crypto.Change{Severity: []string{"low", "medium", "high", "critical"}[i]})
		w.tick(time.Minute)
	}
	items, _ := w.relay.as(w.key("bob")).Events(context.Background())
	if len(items) != 8 {
		t.Fatalf("%d events listed", len(items))
	}
	// Drop alice's 2nd change on c1 (the 3rd item), reverse the rest,
	// list one twice, and list c2's first change's bytes under c1's last item.
	dropped := items[2].ID
	w.relay.list = func(key string, in []api.Item) []api.Item {
		var out []api.Item
		for _, it := range in {
			if it.ID != dropped {
				out = append(out, it)
			}
		}
		slices.Reverse(out)
		return append(out, out[0])
	}
	w.relay.mu.Lock()
	w.relay.blobs[items[6].ID].ct = w.relay.blobs[items[1].ID].ct
	w.relay.blobs[items[6].ID].item.Size, w.relay.blobs[items[6].ID].item.SHA256 = w.relay.blobs[items[1].ID].item.Size, w.relay.blobs[items[1].ID].item.SHA256
	w.relay.mu.Unlock()
	res := w.sync("bob")
	if len(res.Refused) != 0 {
		t.Fatalf("refused: %+v", res.Refused)
	}
	// c1: 4 events, the 2nd dropped, the 4th swapped away: changes 1 and 3.
	wantGaps := []Gap{{Case: c1.id, Author: w.key("alice"), Seq: 2, To: 2}}
	var gaps []Gap
	for _, g := range res.Gaps {
		if g.Case == c1.id {
			gaps = append(gaps, g)
		}
	}
	if !reflect.DeepEqual(gaps, wantGaps) {
		t.Fatalf("gaps %+v, want %+v", res.Gaps, wantGaps)
	}
	if got := gaps[0].String(w.name); got != "alice's change 2 on this case has not arrived" {
		t.Fatalf("gap text %q", got)
	}
	s1, s2 := w.state("bob", c1), w.state("bob", c2)
	if s1.Status != "waiting" || len(s1.History) != 2 || !reflect.DeepEqual(s1.Gaps, wantGaps) {
		t.Fatalf("c1: %+v", s1)
	}
	if s2.Severity != "critical" || len(s2.History) != 4 {
		t.Fatalf("c2: %+v", s2)
	}
	// The relay replays an acknowledged event: a duplicate.
	w.relay.list = nil
	w.relay.mu.Lock()
	w.relay.blobs[items[0].ID].routes[w.key("bob")] = false
	w.relay.mu.Unlock()
	// The dropped change arrives late after all: the gap closes.
	if res := w.sync("bob"); res.Duplicates != 1 || res.Accepted != 1 || len(res.Gaps) != 0 {
		t.Fatalf("replay: %+v", res)
	}
	if s := w.state("bob", c1); s.Status != "waiting" || len(s.History) != 3 || len(s.Gaps) != 0 {
		t.Fatalf("c1 at last: %+v", s)
	}
}

// TestConflict: alice and bob change the severity while offline; bob's
// change, the later, stands, and both see the same conflict.
func TestConflict(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	w.record("alice", c, crypto.Change{Severity: "high", Assign: []string{w.key("carol")}})
	w.tick(time.Minute)
	w.record("bob", c, crypto.Change{Severity: "low", Unassign: []string{w.key("carol")}})
	w.sync("alice")
	w.sync("bob")
	a, b := w.state("alice", c), w.state("bob", c)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("states differ:\n%+v\n%+v", a, b)
	}
	if a.Severity != "low" || len(a.Assignees) != 0 || len(a.Conflicts) != 2 {
		t.Fatalf("state: %+v", a)
	}
	got := []string{a.Conflicts[0].String(w.name), a.Conflicts[1].String(w.name)}
	want := []string{"alice and bob both changed the assignee; bob's change stands", "alice and bob both changed the severity; bob's change stands"}
	if !slices.Equal(got, want) {
		t.Fatalf("conflicts %q, want %q", got, want)
	}
	// A change made after seeing the other is no conflict.
	w.tick(time.Minute)
	w.record("alice", c, crypto.Change{Severity: "medium"})
	w.sync("bob")
	if s := w.state("bob", c); s.Severity != "medium" || len(s.Conflicts) != 1 || s.Conflicts[0].Field != FieldAssignee {
		t.Fatalf("after a later change: %+v", s)
	}
}

// TestConvergence: three handlers edit one case offline, then sync in
// different orders through the relay, and reach identical states.
func TestConvergence(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	edits := map[string][]crypto.Change{
		"alice": {{Status: "acknowledged"}, {Tag: []string{"urgent"}}, {Note: "called the submitter"}, {Status: "resolved", CloseReason: "completed"}},
		"bob":   {{Severity: "high"}, {Assign: []string{w.key("bob")}}, {Tag: []string{"phishing"}, Untag: []string{"urgent"}}},
		"carol": {{Severity: "medium"}, {Link: &crypto.Link{Rel: crypto.RelRelated, Case: strings.Repeat("1", 32)}}, {Status: "open"}},
	}
	for _, n := range []string{"alice", "bob", "carol"} {
		for _, ch := range edits[n] {
			w.record(n, c, ch)
			w.tick(37 * time.Second)
		}
		w.clock = w.clock.Add(-80 * time.Second) // clocks apart
	}
	// The relay lists everything in reverse to carol.
	w.relay.list = func(key string, in []api.Item) []api.Item {
		if key == w.key("carol") {
			slices.Reverse(in)
		}
		return in
	}
	for _, n := range []string{"carol", "bob", "alice"} {
		if res := w.sync(n); len(res.Refused) != 0 || len(res.Gaps) != 0 {
			t.Fatalf("%s: %+v", n, res)
		}
	}
	a := w.state("alice", c)
	for _, n := range []string{"bob", "carol"} {
		if s := w.state(n, c); !reflect.DeepEqual(a, s) {
			t.Fatalf("alice and %s differ:\n%+v\n%+v", n, a, s)
		}
	}
	if len(a.History) != 10 || a.Updated == "" {
		t.Fatalf("state: %+v", a)
	}
	// And the index says the same, without the history.
	a.History = nil
	for _, n := range []string{"alice", "bob", "carol"} {
		all, err := w.journals[n].States(w.trust)
		if err != nil || !reflect.DeepEqual(all[c.id], a) {
			t.Fatalf("%s's index: %v\n%+v\n%+v", n, err, all[c.id], a)
		}
	}
}

// TestSyncInterrupted: a relay failing mid-sync (a download, then the
// acknowledgements) loses nothing acknowledged; the next sync completes.
func TestSyncInterrupted(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	for _, st := range []string{"acknowledged", "open", "waiting"} {
		w.record("alice", c, crypto.Change{Status: st})
	}
	items, _ := w.relay.as(w.key("bob")).Events(context.Background())
	acks := 0
	w.relay.fail = func(op, id string) error {
		switch {
		case op == "download" && id == items[1].ID:
			return errors.New("connection reset")
		case op == "ack":
			acks++
			if acks > 1 {
				return errors.New("connection reset")
			}
		}
		return nil
	}
	res := w.sync("bob")
	if res.Accepted != 2 || res.Acked != 1 || len(res.Retry) != 2 {
		t.Fatalf("interrupted sync: %+v", res)
	}
	// Everything acknowledged is held.
	for _, it := range items {
		if slices.Contains(w.relay.pending(w.key("bob")), it.ID) {
			continue
		}
		if s := w.state("bob", c); len(s.History) < 1 {
			t.Fatalf("acked %s but holds nothing", it.ID)
		}
	}
	w.relay.fail = nil
	w.reopen("bob")
	res = w.sync("bob")
	if res.Accepted != 1 || res.Duplicates != 1 || res.Acked != 2 {
		t.Fatalf("second sync: %+v", res)
	}
	if s := w.state("bob", c); s.Status != "waiting" || len(s.History) != 3 || len(s.Gaps) != 0 {
		t.Fatalf("state: %+v", s)
	}
}

// TestOutbox: a change whose post fails is recorded here, waits in the
// outbox and is sent by the next sync.
func TestOutbox(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	w.relay.fail = func(op, _ string) error {
		if op == "post" {
			return errors.New("relay unreachable")
		}
		return nil
	}
	e, err := w.journals["alice"].Record(context.Background(), w.relay.as(w.key("alice")), w.trust, c.id, crypto.Change{Status: "open"})
	if !errors.Is(err, ErrNotPosted) || e == nil || e.Seq != 1 {
		t.Fatalf("record: %v %v", e, err)
	}
	if s := w.state("alice", c); s.Status != "open" {
		t.Fatalf("alice's own state: %+v", s)
	}
	if res := w.sync("alice"); res.Unsent != 2 {
		t.Fatalf("sync while the relay fails: %+v", res)
	}
	w.relay.fail = nil
	if res := w.sync("alice"); res.Unsent != 0 {
		t.Fatalf("sync: %+v", res)
	}
	if res := w.sync("bob"); res.Accepted != 1 {
		t.Fatalf("bob: %+v", res)
	}
	if res := w.sync("dave"); res.Accepted != 1 {
		t.Fatalf("dave: %+v", res)
	}
	// A crash between the outbox and the event's own file: the next
	// Record stores it from the outbox before numbering its own.
	w.relay.fail = func(op, _ string) error {
		if op == "post" {
			return errors.New("relay unreachable")
		}
		return nil
	}
	if _, err := w.journals["alice"].Record(context.Background(), w.relay.as(w.key("alice")), w.trust, c.id, crypto.Change{Status: "waiting"}); !errors.Is(err, ErrNotPosted) {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(w.journals["alice"].caseDir(c.id), eventName(w.key("alice"), 2, PartCase))); err != nil {
		t.Fatal(err)
	}
	w.relay.fail = nil
	w.reopen("alice")
	if e := w.record("alice", c, crypto.Change{Severity: "low"}); e.Seq != 3 {
		t.Fatalf("the change after the crash has seq %d", e.Seq)
	}
	if s := w.state("alice", c); s.Status != "waiting" || len(s.History) != 3 {
		t.Fatalf("after recovery: %+v", s)
	}
	if res := w.sync("bob"); res.Accepted != 2 || len(res.Gaps) != 0 {
		t.Fatalf("bob after alice's recovery: %+v", res)
	}
}

// TestShare: a history blob brings a handler who lost their journal the
// case's events, each checked as if it had come directly.
func TestShare(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	w.record("alice", c, crypto.Change{Status: "open"})
	w.record("bob", c, crypto.Change{Severity: "high"})
	w.sync("alice")
	// carol has missed them all (acked on another machine).
	for _, id := range w.relay.pending(w.key("carol")) {
		w.relay.as(w.key("carol")).AckEvent(context.Background(), id)
	}
	n, err := w.journals["alice"].Share(context.Background(), w.relay.as(w.key("alice")), w.trust, c.id, w.key("carol"))
	if err != nil || n != 2 {
		t.Fatalf("share: %d %v", n, err)
	}
	if res := w.sync("carol"); res.Accepted != 2 || len(res.Refused) != 0 {
		t.Fatalf("carol's sync: %+v", res)
	}
	if a, c := w.state("alice", c), w.state("carol", c); !reflect.DeepEqual(a, c) {
		t.Fatalf("states differ:\n%+v\n%+v", a, c)
	}
	if _, err := w.journals["alice"].Share(context.Background(), w.relay.as(w.key("alice")), w.trust, c.id, w.key("dave")); err == nil {
		t.Fatal("shared with a handler off the route")
	}
	// A forged event inside a history blob is refused like a direct one.
	_, forged := w.craft("carol", c, 5, strings.Repeat("ab", 32), crypto.Change{Note: "x"}, func(e *crypto.Event) { e.Author = w.key("alice") })
	_, fork := w.craft("alice", c, 2, strings.Repeat("ab", 32), crypto.Change{Note: "y"}, nil)
	h := &crypto.History{Schema: crypto.HistoryDomain, Desk: "d", Case: c.id, Events: []json.RawMessage{forged, fork}}
	ct, err := crypto.SealHistory([]*crypto.Card{w.ids["carol"].Card()}, h)
	if err != nil {
		t.Fatal(err)
	}
	w.relay.mu.Lock()
	w.relay.inject(w.key("alice"), "d", "general", PartShare, w.key("carol"), ct)
	w.relay.mu.Unlock()
	if res := w.sync("carol"); res.Accepted != 0 || len(res.Refused) != 2 || res.Acked != 1 {
		t.Fatalf("forged history: %+v", res)
	}
}

// TestMarkers: the text of notes, tags and referrals never reaches the
// disk as plain text, in events, the outbox or the index.
func TestMarkers(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	markers := []string{"marker-note-7f3a9c", "marker-tag-51d0e2", "marker-referral-c4b8", "marker-outcome-9e21"}
	w.relay.fail = func(op, _ string) error {
		if op == "post" {
			return errors.New("offline")
		}
		return nil
	}
	if _, err := w.journals["alice"].Record(context.Background(), w.relay.as(w.key("alice")), w.trust, c.id,
		crypto.Change{Note: markers[0], Tag: []string{markers[1]}}); !errors.Is(err, ErrNotPosted) {
		t.Fatal(err)
	}
	w.relay.fail = nil
	w.record("alice", c, crypto.Change{Referral: &crypto.Referral{To: markers[2], Consent: true, Outcome: markers[3]}})
	w.sync("bob")
	for _, n := range []string{"alice", "bob"} {
		if _, err := w.journals[n].States(w.trust); err != nil {
			t.Fatal(err)
		}
		if s := w.state(n, c); len(s.Notes) != 1 || s.Referral == nil || s.Referral.To != markers[2] {
			t.Fatalf("%s's state: %+v", n, s)
		}
	}
	files := 0
	for _, n := range []string{"alice", "bob"} {
		filepath.WalkDir(w.dirs[n], func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files++
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range markers {
				if bytes.Contains(b, []byte(m)) {
					t.Errorf("%s holds %q in plain text", path, m)
				}
			}
			if fi, _ := d.Info(); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o", path, fi.Mode().Perm())
			}
			return nil
		})
	}
	if files < 6 {
		t.Fatalf("only %d files looked at", files)
	}
}

// TestEventsBeforeTheCase: events of a case not held yet are kept, and
// checked against the report when it arrives: one naming another category
// is then misplaced and not applied.
func TestEventsBeforeTheCase(t *testing.T) {
	w := newWorld(t)
	c := w.newCaseAt("general", true, []string{"alice"})
	w.record("alice", c, crypto.Change{Status: "open"})
	e := w.record("alice", c, crypto.Change{Severity: "low"})
	_, js := w.craft("alice", c, 3, crypto.EventDigest(e), crypto.Change{Severity: "high"}, func(e *crypto.Event) {
		e.Category = "restricted"
		crypto.SignEvent(e, w.ids["alice"])
	})
	w.relay.mu.Lock()
	w.relay.inject(w.key("alice"), "d", "general", PartCase, "", w.seal("general", js))
	w.relay.mu.Unlock()
	if res := w.sync("bob"); res.Accepted != 3 || len(res.Refused) != 0 {
		t.Fatalf("sync before the case: %+v", res)
	}
	// Two claims (general, restricted): disputed, neither applied.
	if s, err := w.journals["bob"].State(w.trust, c.id); err != nil || !s.Disputed || len(s.Claims) != 2 || s.Severity != "" || s.Status != "" {
		t.Fatalf("before the case: %+v %v", s, err)
	}
	w.store("bob", c, false)
	s := w.state("bob", c)
	if s.Severity != "low" || s.Status != "open" || s.Misplaced != 1 || len(s.History) != 2 || len(s.Gaps) != 0 {
		t.Fatalf("after the case: %+v", s)
	}
}

// TestLaterChangeStands: a change made after seeing another stands over
// it, whatever the authors' clocks say: one from a clock a minute ahead,
// and one in the same second by the author whose key sorts first.
func TestLaterChangeStands(t *testing.T) {
	tests := []struct {
		name string
		skew time.Duration // of the first writer's clock
	}{
		{"a clock ahead", time.Minute},
		{"the same second", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			c := w.newCase("general", true)
			// second writes after first; second's key sorts first, so
			// that time and key order would both favour first.
			first, second := "alice", "bob"
			if w.key(first) < w.key(second) {
				first, second = second, first
			}
			base := w.clock
			w.clock = base.Add(tt.skew)
			w.record(first, c, crypto.Change{Status: "closed", CloseReason: "completed"})
			w.clock = base
			w.sync(second)
			e := w.record(second, c, crypto.Change{Status: "open"})
			if e.Time > crypto.EventTime(base) {
				t.Fatalf("the author's time was moved: %s", e.Time)
			}
			w.sync(first)
			for _, n := range []string{first, second} {
				if s := w.state(n, c); s.Status != "open" || s.Reopened != 1 || len(s.Conflicts) != 0 {
					t.Fatalf("%s's state: %+v", n, s)
				}
			}
		})
	}
}
