package journal

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/amana-relay/amana/crypto"
)

func ev(author string, seq uint64, minute int, seen map[string]uint64, ch crypto.Change) *crypto.Event {
	return &crypto.Event{Schema: crypto.EventDomain, Desk: "d", Case: "0123456789abcdef0123456789abcdef", Author: author, Seq: seq, Clock: uint64(minute + 1),
		Time: fmt.Sprintf("2026-12-01T10:%02d:00Z", minute), Seen: seen, Change: ch}
}

// TestReplayTimes: the first response, acknowledgement, resolution and
// closing times, and reopenings, as the events in order give them.
func TestReplayTimes(t *testing.T) {
	wf := crypto.DefaultWorkflow()
	events := []*crypto.Event{
		ev("a", 1, 0, nil, crypto.Change{Received: true}),
		ev("a", 2, 5, nil, crypto.Change{Status: "acknowledged"}),
		ev("b", 1, 7, map[string]uint64{"a": 2}, crypto.Change{Reply: "00000000000000000000000000000001"}),
		ev("a", 3, 9, nil, crypto.Change{Status: "resolved", CloseReason: "completed"}),
		ev("b", 2, 11, map[string]uint64{"a": 3}, crypto.Change{Status: "open"}),
		ev("b", 3, 13, nil, crypto.Change{Reply: "00000000000000000000000000000002"}),
		ev("a", 4, 15, map[string]uint64{"b": 3}, crypto.Change{Status: "closed", CloseReason: "completed"}),
		ev("a", 5, 16, nil, crypto.Change{Status: "rejected"}),
		ev("a", 6, 17, nil, crypto.Change{Status: "open"}),
	}
	s := Replay(wf, events)
	want := map[string]string{
		"first response": "2026-12-01T10:07:00Z", "acknowledged": "2026-12-01T10:05:00Z",
		"resolved": "2026-12-01T10:09:00Z", "closed": "2026-12-01T10:15:00Z", "updated": "2026-12-01T10:17:00Z",
		"received by a": "2026-12-01T10:00:00Z",
	}
	got := map[string]string{"first response": s.FirstResponse, "acknowledged": s.Acknowledged, "resolved": s.Resolved,
		"closed": s.Closed, "updated": s.Updated, "received by a": s.ReceivedBy["a"]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("times %v, want %v", got, want)
	}
	// resolved -> open, rejected -> open; closed -> rejected is no reopening.
	if s.Reopened != 2 || s.Status != "open" || len(s.Replies) != 2 || s.CloseReason != "completed" || len(s.Conflicts) != 0 {
		t.Fatalf("state: %+v", s)
	}
}

// TestReplayGapsAndRepeats: gaps per author, and of two different events
// with the same author and seq, the same one counts in any order.
func TestReplayGapsAndRepeats(t *testing.T) {
	repeat := []*crypto.Event{ev("a", 1, 3, nil, crypto.Change{Status: "open"}), ev("a", 1, 1, nil, crypto.Change{Status: "waiting"})}
	first := repeat[0]
	if crypto.EventDigest(repeat[1]) < crypto.EventDigest(first) {
		first = repeat[1]
	}
	tests := []struct {
		name   string
		events []*crypto.Event
		gaps   []Gap
		status string
	}{
		{"none", []*crypto.Event{ev("a", 1, 0, nil, crypto.Change{Status: "open"})}, nil, "open"},
		{"named by seen", []*crypto.Event{ev("a", 1, 0, map[string]uint64{"b": 2}, crypto.Change{Status: "open"}), ev("b", 1, 1, nil, crypto.Change{Status: "waiting"})},
			[]Gap{{"0123456789abcdef0123456789abcdef", "b", 2, 2}}, "waiting"},
		{"a middle one", []*crypto.Event{ev("a", 1, 0, nil, crypto.Change{Status: "open"}), ev("a", 3, 2, nil, crypto.Change{Status: "waiting"})},
			[]Gap{{Case: "0123456789abcdef0123456789abcdef", Author: "a", Seq: 2, To: 2}}, "waiting"},
		{"the first ones", []*crypto.Event{ev("b", 3, 0, nil, crypto.Change{Status: "open"})},
			[]Gap{{"0123456789abcdef0123456789abcdef", "b", 1, 2}}, "open"},
		{"runs", []*crypto.Event{ev("a", 3, 0, nil, crypto.Change{Status: "open"}), ev("a", 10, 1, nil, crypto.Change{Status: "waiting"}),
			ev("a", 12, 2, map[string]uint64{"a": 0}, crypto.Change{Severity: "low"}), ev("b", 1, 3, map[string]uint64{"a": 15}, crypto.Change{Severity: "high"})},
			[]Gap{{"0123456789abcdef0123456789abcdef", "a", 1, 2}, {"0123456789abcdef0123456789abcdef", "a", 4, 9},
				{"0123456789abcdef0123456789abcdef", "a", 11, 11}, {"0123456789abcdef0123456789abcdef", "a", 13, 15}}, "waiting"},
		{"seen of a key with no event", []*crypto.Event{ev("a", 1, 0, map[string]uint64{"z": 9007199254740991}, crypto.Change{Status: "open"})}, nil, "open"},
		{"a repeat", repeat, nil, first.Change.Status},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Replay(crypto.DefaultWorkflow(), tt.events)
			rev := slices.Clone(tt.events)
			slices.Reverse(rev)
			r := Replay(crypto.DefaultWorkflow(), rev)
			if !reflect.DeepEqual(s, r) || !reflect.DeepEqual(s.Gaps, tt.gaps) || s.Status != tt.status {
				t.Fatalf("gaps %+v status %q, want %+v %q", s.Gaps, s.Status, tt.gaps, tt.status)
			}
		})
	}
	for _, tt := range []struct {
		g    Gap
		want string
	}{
		{Gap{Author: "k", Seq: 17, To: 17}, "alice's change 17 on this case has not arrived"},
		{Gap{Author: "k", Seq: 17}, "alice's change 17 on this case has not arrived"},
		{Gap{Author: "k", Seq: 4, To: 9}, "alice's changes 4 to 9 on this case have not arrived"},
	} {
		if got := tt.g.String(func(string) string { return "alice" }); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.g, got, tt.want)
		}
	}
	c := Conflict{Field: FieldStatus, Authors: []string{"a", "b", "c"}, Winner: "c"}
	if got := c.String(nil); got != "a, b and c all changed the status; c's change stands" {
		t.Fatal(got)
	}
}

// eventsFrom builds events from fuzz bytes, 6 bytes an event.
func eventsFrom(data []byte) []*crypto.Event {
	authors := []string{"a", "b", "c"}
	statuses := []string{"new", "open", "resolved", "closed", "waiting"}
	var out []*crypto.Event
	for len(data) >= 6 {
		d := data[:6]
		data = data[6:]
		author := authors[int(d[0])%3]
		seen := map[string]uint64{}
		for i, a := range authors {
			if d[5]>>(2*i)&3 != 0 {
				seen[a] = uint64(d[5] >> (2 * i) & 3)
			}
		}
		var ch crypto.Change
		v := d[4]
		switch d[3] % 8 {
		case 0:
			ch.Status = statuses[int(v)%len(statuses)]
		case 1:
			ch.Severity = []string{"low", "high"}[v%2]
		case 2:
			ch.Assign = []string{authors[v%3]}
		case 3:
			ch.Unassign = []string{authors[v%3]}
		case 4:
			ch.Tag, ch.Untag = []string{fmt.Sprint("t", v%3)}, []string{fmt.Sprint("t", v/3%3)}
		case 5:
			ch.Note = fmt.Sprint("note ", v)
		case 6:
			ch.Link = &crypto.Link{Rel: crypto.RelRelated, Case: fmt.Sprintf("%032x", v%2)}
		case 7:
			ch.Referral = &crypto.Referral{To: fmt.Sprint("org", v%2), Consent: v&4 != 0}
		}
		e := ev(author, uint64(d[1]%5+1), int(d[2]%4), seen, ch)
		e.Clock = uint64(d[2] / 4 % 4)
		out = append(out, e)
	}
	return out
}

// fuzzEvents bounds the events of one FuzzReplay input.
const fuzzEvents = 48

// FuzzReplay: the same events in two orders give the same state.
func FuzzReplay(f *testing.F) {
	f.Add([]byte("\x00\x01\x00\x00\x01\x00\x01\x01\x00\x01\x01\x01"))
	f.Add([]byte("\x00\x01\x02\x02\x00\x3f\x01\x01\x02\x03\x00\x00\x02\x02\x02\x00\x01\x15\x00\x01\x02\x05\x07\x00"))
	f.Add([]byte("\x00\x01\x00\x00\x02\x00\x00\x01\x00\x00\x03\x00\x01\x04\x03\x07\x05\x10"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A few dozen events reach every merge path. A longer input is
		// skipped rather than cut: its tail would count for nothing, and
		// the fuzzer would spend its time minimizing it away.
		if len(data) > 6*fuzzEvents {
			return
		}
		events := eventsFrom(data)
		s1 := Replay(crypto.DefaultWorkflow(), events)
		rev := slices.Clone(events)
		slices.Reverse(rev)
		if n := len(rev); n > 2 {
			rev = append(rev[n/2:], rev[:n/2]...)
		}
		s2 := Replay(crypto.DefaultWorkflow(), rev)
		if !reflect.DeepEqual(s1, s2) {
			t.Fatalf("replay depends on order:\n%+v\n%+v", s1, s2)
		}
		route := []string{"b", "a"}
		if r1, r2 := replayEvents(crypto.DefaultWorkflow(), route, events), replayEvents(crypto.DefaultWorkflow(), route, rev); !reflect.DeepEqual(r1, r2) {
			t.Fatalf("replay on a route depends on order:\n%+v\n%+v", r1, r2)
		}
		var facts []*crypto.Facts
		for _, e := range events {
			facts = append(facts, crypto.FactsOf(e, "2026-12-01T10:00:00Z"))
		}
		f1 := ReplayFacts(crypto.DefaultWorkflow(), facts)
		slices.Reverse(facts)
		if f2 := ReplayFacts(crypto.DefaultWorkflow(), facts); !reflect.DeepEqual(f1, f2) {
			t.Fatalf("facts replay depends on order:\n%+v\n%+v", f1, f2)
		}
	})
}
