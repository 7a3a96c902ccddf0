package sla

import (
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
)

// FuzzCheck: for any history of statuses, replies, notes and times, in
// any order and with times before the received hour or after now, the
// clocks hold their invariants: nothing counted is negative or more than
// the time since the start, a stopped clock stopped within [start, now],
// and the states agree with the numbers.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{0, 10, 1, 1, 20, 6, 2, 30, 9}, uint16(600))
	f.Add([]byte{3, 200, 4, 0, 5, 0, 1, 255, 7}, uint16(65535))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, script []byte, at uint16) {
		wf := testFlow()
		var evs []*crypto.Event
		seq := map[string]uint64{}
		for i := 0; i+2 < len(script) && len(evs) < 64; i += 3 {
			kind, mins, v := script[i], int(script[i+1])*7-300, int(script[i+2])
			author := []string{alice, bob}[v%2]
			var ch crypto.Change
			switch kind % 5 {
			case 0, 1:
				ch.Status = wf.Statuses[v%len(wf.Statuses)]
			case 2:
				ch.Reply = "00000000000000000000000000000001"
			case 3:
				ch.Severity = wf.Severities[v%len(wf.Severities)].ID
			default:
				ch.Received = v%2 == 0
				ch.Note = map[bool]string{true: "", false: "n"}[ch.Received]
			}
			seq[author]++
			evs = append(evs, &crypto.Event{Desk: "helpdesk", Case: testCase, Author: author, Seq: seq[author], Clock: uint64(v%7 + 1),
				Time: crypto.EventTime(received.Add(time.Duration(mins) * time.Minute)), Change: ch})
		}
		s := journal.Replay(wf, evs)
		s.Received = crypto.EventTime(received)
		now := received.Add(time.Duration(at) * time.Minute)
		c, err := Check(wf, s, now, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != s.Status || c.Final != wf.IsFinal(s.Status) {
			t.Errorf("status %q final %v, state says %q", c.Status, c.Final, s.Status)
		}
		for _, k := range c.Clocks {
			if k.Elapsed < 0 || k.Elapsed > now.Sub(received) {
				t.Errorf("%s: elapsed %v of %v", k.Name, k.Elapsed, now.Sub(received))
			}
			if !k.Stopped.IsZero() && (k.Stopped.Before(received) || k.Stopped.After(now)) {
				t.Errorf("%s: stopped %v", k.Name, k.Stopped)
			}
			over := k.Elapsed > k.Target
			switch k.State {
			case Breached, Missed:
				if !over {
					t.Errorf("%s %s with %v of %v", k.Name, k.State, k.Elapsed, k.Target)
				}
			case Met, Soon, Pending, Ended:
				if over {
					t.Errorf("%s %s with %v of %v", k.Name, k.State, k.Elapsed, k.Target)
				}
			default:
				t.Errorf("%s: state %q", k.Name, k.State)
			}
			open := k.State == Breached || k.State == Soon || k.State == Pending
			if open && c.Final || k.State == Ended && !c.Final || open != k.Stopped.IsZero() && !c.Final {
				t.Errorf("%s %s, stopped %v, on a case final=%v", k.Name, k.State, k.Stopped, c.Final)
			}
		}
		if c.Final && len(c.Due) > 0 {
			t.Errorf("steps due on a final case: %+v", c.Due)
		}
	})
}
