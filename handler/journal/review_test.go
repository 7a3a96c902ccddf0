package journal

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/client"
)

// The relay client is what Sync, Record and Share are given in the CLI.
var _ Relay = (*client.Client)(nil)

// inject puts a blob on the fake relay as if author had posted it.
func (w *world) inject(author, category, part string, ct []byte) {
	w.t.Helper()
	w.relay.mu.Lock()
	defer w.relay.mu.Unlock()
	if _, err := w.relay.inject(w.key(author), "d", category, part, "", ct); err != nil {
		w.t.Fatal(err)
	}
}

// TestInflatedClock: an event signed with the highest clock the wire
// allows does not stand over a later change made after it was applied,
// and the case stays writable (§8.11.4 step 1).
func TestInflatedClock(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	_, js := w.craft("bob", c, 1, "", crypto.Change{Status: "closed", CloseReason: "spam"}, func(e *crypto.Event) {
		e.Clock = crypto.MaxSeq
		if err := crypto.SignEvent(e, w.ids["bob"]); err != nil {
			t.Fatal(err)
		}
	})
	w.inject("bob", "general", PartCase, w.seal("general", js))
	if res := w.sync("alice"); res.Accepted != 1 {
		t.Fatalf("alice's sync: %+v", res)
	}
	if s := w.state("alice", c); s.Status != "closed" {
		t.Fatalf("before alice's change: %+v", s)
	}
	w.tick(-1e9 * 60) // alice's clock is behind: time does not decide either
	e := w.record("alice", c, crypto.Change{Status: "open"})
	if e.Clock != 2 || e.Seen[w.key("bob")] != 1 {
		t.Fatalf("alice's change has clock %d, seen %v: want 2 after an effective clock of 1", e.Clock, e.Seen)
	}
	e2 := w.record("alice", c, crypto.Change{Severity: "low"})
	w.sync("carol")
	for _, n := range []string{"alice", "carol"} {
		s := w.state(n, c)
		if s.Status != "open" || s.Severity != "low" || s.Reopened != 1 || len(s.Conflicts) != 0 {
			t.Fatalf("%s's state: %+v", n, s)
		}
	}
	if e2.Clock != 3 {
		t.Fatalf("alice's next change has clock %d, want 3", e2.Clock)
	}
}

// TestEffectiveClock: the effective clocks Replay orders by, as a
// function of the set: capped by what each event declares it had seen.
func TestEffectiveClock(t *testing.T) {
	big := uint64(crypto.MaxSeq)
	tests := []struct {
		name   string
		events []*crypto.Event
		status string
	}{
		{"inflated, then seen", []*crypto.Event{
			withClock(ev("b", 1, 5, nil, crypto.Change{Status: "closed"}), big),
			withClock(ev("a", 1, 0, map[string]uint64{"b": 1}, crypto.Change{Status: "open"}), 2),
		}, "open"},
		{"inflated chain of its author", []*crypto.Event{
			withClock(ev("b", 1, 5, nil, crypto.Change{Status: "waiting"}), big-1),
			withClock(ev("b", 2, 6, nil, crypto.Change{Status: "closed"}), big),
			withClock(ev("a", 1, 0, map[string]uint64{"b": 2}, crypto.Change{Status: "open"}), 3),
		}, "open"},
		{"honest clocks stand", []*crypto.Event{
			withClock(ev("a", 1, 0, nil, crypto.Change{Status: "open"}), 1),
			withClock(ev("b", 1, 1, map[string]uint64{"a": 1}, crypto.Change{Status: "waiting"}), 2),
			withClock(ev("a", 2, 2, map[string]uint64{"b": 1}, crypto.Change{Status: "closed"}), 3),
		}, "closed"},
		{"a cycle of claims carries no inflated clock", []*crypto.Event{
			withClock(ev("a", 1, 0, nil, crypto.Change{Severity: "low"}), 1),
			withClock(ev("b", 1, 5, map[string]uint64{"a": 2}, crypto.Change{Status: "closed"}), big),
			withClock(ev("a", 2, 1, map[string]uint64{"b": 1}, crypto.Change{Status: "open"}), 3),
		}, "open"},
		{"concurrent: time decides", []*crypto.Event{
			withClock(ev("b", 1, 5, nil, crypto.Change{Status: "closed"}), big),
			withClock(ev("a", 1, 9, nil, crypto.Change{Status: "open"}), 1),
		}, "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Replay(crypto.DefaultWorkflow(), tt.events)
			rev := slices.Clone(tt.events)
			slices.Reverse(rev)
			if r := Replay(crypto.DefaultWorkflow(), rev); !reflect.DeepEqual(s, r) || s.Status != tt.status {
				t.Fatalf("status %q (reversed %q), want %q", s.Status, r.Status, tt.status)
			}
		})
	}
	if got := maxEffClock(tests[0].events, nil); got != 2 {
		t.Fatalf("highest effective clock %d, want 2", got)
	}
}

func withClock(e *crypto.Event, c uint64) *crypto.Event {
	e.Clock = c
	return e
}

// TestDisputedFacts: carol, on the general route only, posts facts that
// close a restricted case, claiming it is general. dave, the coordinator,
// holds no report: he shows the case as disputed, not closed, until the
// claims agree (§8.11.5 rule 4).
func TestDisputedFacts(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("restricted", true)
	w.record("alice", c, crypto.Change{Status: "acknowledged"})
	w.sync("dave")
	if s := w.state("dave", c); s.Disputed || s.Status != "acknowledged" || s.Category != "restricted" || !s.FactsOnly {
		t.Fatalf("dave's state before the forgery: %+v", s)
	}
	forged := &crypto.Event{Desk: "d", Case: c.id, CaseSHA256: strings.Repeat("ab", 32), Category: "general", Seq: 1, Clock: 9,
		Time: crypto.EventTime(w.clock), Change: crypto.Change{Status: "closed", CloseReason: "spam"}}
	f := crypto.FactsOf(forged, "2026-12-01T09:00:00Z")
	if err := crypto.SignFacts(f, w.ids["carol"]); err != nil {
		t.Fatal(err)
	}
	fjs, err := crypto.MarshalFacts(f)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := w.trust.Manifest("d")
	fct, err := crypto.SealEvent(m.CoordinatorCards(), fjs)
	if err != nil {
		t.Fatal(err)
	}
	w.inject("carol", "general", PartFacts, fct)
	if res := w.sync("dave"); res.Accepted != 1 || len(res.Refused) != 0 {
		t.Fatalf("dave's sync: %+v", res)
	}
	s := w.state("dave", c)
	want := []Claim{
		{Desk: "d", Category: "general", CaseSHA256: strings.Repeat("ab", 32), Authors: []string{w.key("carol")}, Events: 1},
		{Desk: "d", Category: "restricted", CaseSHA256: c.sha, Authors: []string{w.key("alice")}, Events: 1},
	}
	if !s.Disputed || s.Status == "closed" || s.CloseReason != "" || len(s.History) != 0 || !reflect.DeepEqual(s.Claims, want) {
		t.Fatalf("dave's state after the forgery: %+v", s)
	}
	states := w.statesOf("dave")
	if got := states[c.id]; got == nil || !got.Disputed || got.Status == "closed" {
		t.Fatalf("dave's list: %+v", got)
	}
}

// TestSeenGaps: a seen entry plants gaps only for keys on the case's
// route, and missing changes are reported as runs (§8.11.4 step 6).
func TestSeenGaps(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("general", true)
	_, js := w.craft("alice", c, 1, "", crypto.Change{Status: "open"}, func(e *crypto.Event) {
		e.Seen = map[string]uint64{w.key("dave"): crypto.MaxSeq, w.key("carol"): 5}
		if err := crypto.SignEvent(e, w.ids["alice"]); err != nil {
			t.Fatal(err)
		}
	})
	w.inject("alice", "general", PartCase, w.seal("general", js))
	res := w.sync("bob")
	want := []Gap{{Case: c.id, Author: w.key("carol"), Seq: 1, To: 5}}
	if !reflect.DeepEqual(res.Gaps, want) {
		t.Fatalf("sync's gaps %+v, want %+v", res.Gaps, want)
	}
	if s := w.state("bob", c); !reflect.DeepEqual(s.Gaps, want) {
		t.Fatalf("state's gaps %+v, want %+v", s.Gaps, want)
	}
	// Bounded: an author with many holes reports at most maxGaps runs.
	var evs []*crypto.Event
	for q := uint64(2); q <= 2*maxGaps+10; q += 2 {
		evs = append(evs, ev("a", q, 0, nil, crypto.Change{Note: "n"}))
	}
	if g := Replay(crypto.DefaultWorkflow(), evs).Gaps; len(g) != maxGaps || g[0].Seq != 1 || g[0].To != 1 {
		t.Fatalf("%d gaps, first %+v; want %d", len(g), g[0], maxGaps)
	}
}

// TestStatesProblem: a case whose journal is damaged is left out of
// States, named in its error, and every other case is there.
func TestStatesProblem(t *testing.T) {
	w := newWorld(t)
	good, bad := w.newCase("general", true), w.newCase("general", true)
	w.record("alice", good, crypto.Change{Status: "open"})
	w.record("alice", bad, crypto.Change{Status: "waiting"})
	if err := os.WriteFile(filepath.Join(w.journals["alice"].caseDir(bad.id), eventName(w.key("alice"), 1, PartCase)), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	states, err := w.journals["alice"].States(w.trust)
	var se *StatesError
	if !errors.As(err, &se) || len(se.Problems) != 1 || se.Problems[0].Case != bad.id {
		t.Fatalf("States' error: %v", err)
	}
	if s := states[good.id]; s == nil || s.Status != "open" {
		t.Fatalf("the good case: %+v", s)
	}
	if _, ok := states[bad.id]; ok {
		t.Fatal("the damaged case has a state")
	}
}

// TestFactsOfAnotherCopy: a coordinator who holds the report refuses facts
// that name another copy of it, and applies those that name it.
func TestFactsOfAnotherCopy(t *testing.T) {
	w := newWorld(t)
	c, other := w.newCase("restricted", true), w.newCase("restricted", true)
	w.store("dave", c, true)
	w.record("alice", c, crypto.Change{Status: "acknowledged"})
	e := &crypto.Event{Desk: "d", Case: c.id, CaseSHA256: other.sha, Category: "restricted", Seq: 1, Clock: 9,
		Time: crypto.EventTime(w.clock), Change: crypto.Change{Status: "closed", CloseReason: "spam"}}
	f := crypto.FactsOf(e, "2026-12-01T09:00:00Z")
	if err := crypto.SignFacts(f, w.ids["bob"]); err != nil {
		t.Fatal(err)
	}
	fjs, err := crypto.MarshalFacts(f)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := w.trust.Manifest("d")
	fct, err := crypto.SealEvent(m.CoordinatorCards(), fjs)
	if err != nil {
		t.Fatal(err)
	}
	w.inject("bob", "restricted", PartFacts, fct)
	res := w.sync("dave")
	if res.Accepted != 1 || len(res.Refused) != 1 || !strings.Contains(res.Refused[0].Reason, "another copy of the report") {
		t.Fatalf("dave's sync: %+v", res)
	}
	if s := w.state("dave", c); s.Status != "acknowledged" || s.Disputed {
		t.Fatalf("dave's state: %+v", s)
	}
}
