package sla

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
)

// atMin is a time minutes after the received hour, as an event's time.
func atMin(minutes int) string {
	return crypto.EventTime(received.Add(time.Duration(minutes) * time.Minute))
}

func mins(n int) time.Duration { return time.Duration(n) * time.Minute }

// caseState builds a state directly: a status change or a reply at each
// minute given, the registers as the merge would leave them.
func caseState(severity string, history ...journal.Entry) *journal.State {
	s := &journal.State{Case: testCase, Desk: "helpdesk", Received: atMin(0), Severity: severity, Status: "new"}
	for _, e := range history {
		s.History = append(s.History, e)
		if st := e.Change.Status; st != "" {
			s.Status = st
			if st != "new" && s.Acknowledged == "" {
				s.Acknowledged = e.Time
			}
		}
		if e.Change.Reply != "" && s.FirstResponse == "" {
			s.FirstResponse = e.Time
		}
		s.Updated = max(s.Updated, e.Time)
	}
	return s
}

func status(minutes int, st string) journal.Entry {
	return journal.Entry{Author: alice, Time: atMin(minutes), Change: crypto.Change{Status: st}}
}

func reply(minutes int) journal.Entry {
	return journal.Entry{Author: alice, Time: atMin(minutes), Change: crypto.Change{Reply: "00000000000000000000000000000001"}}
}

func clock(t *testing.T, c *Case, name string) Clock {
	t.Helper()
	for _, k := range c.Clocks {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no clock %s in %+v", name, c.Clocks)
	return Clock{}
}

// TestClocks: each clock's time counted, when it stopped and its state.
func TestClocks(t *testing.T) {
	wf := testFlow()
	for _, tc := range []struct {
		name    string
		s       *journal.State
		now     int
		clock   string
		elapsed int
		stopped int // minutes; -1 not stopped
		state   string
	}{
		{"acknowledge running", caseState("critical"), 40, Acknowledge, 40, -1, Pending},
		{"acknowledge met", caseState("critical", status(25, "open")), 40, Acknowledge, 25, 25, Met},
		{"acknowledge missed", caseState("critical", status(70, "open")), 80, Acknowledge, 70, 70, Missed},
		{"acknowledge by waiting", caseState("critical", status(5, "waiting")), 400, Acknowledge, 5, 5, Met},
		{"first response paused", caseState("critical", status(10, "open"), status(30, "waiting"), status(130, "open")), 200, FirstResponse, 100, -1, Soon},
		{"first response met after a pause", caseState("critical", status(10, "open"), status(30, "waiting"), status(130, "open"), reply(200)), 300, FirstResponse, 100, 100 + 100, Met},
		{"first response ended by a close", caseState("high", status(10, "closed")), 500, FirstResponse, 10, -1, Ended},
		{"first response missed by a close", caseState("high", status(300, "closed")), 500, FirstResponse, 300, -1, Missed},
		{"update since the last event", caseState("critical", status(10, "open"), reply(100)), 150, Update, 50, -1, Pending},
		{"update paused", caseState("critical", status(10, "open"), status(100, "waiting")), 900, Update, 0, -1, Pending},
		{"update breached", caseState("critical", status(10, "open")), 251, Update, 241, -1, Breached},
		{"update of a closed case", caseState("critical", status(10, "closed")), 900, Update, 0, -1, Ended},
		{"resolve reopened", caseState("high", status(10, "resolved"), status(100, "open"), status(160, "closed"), status(200, "open")), 260, Resolve, 10 + 60 + 60, -1, Pending},
		{"resolve after reopening", caseState("high", status(10, "resolved"), status(100, "open"), status(160, "resolved"), status(170, "closed")), 900, Resolve, 70, 160, Met},
		{"resolve breached with pause", caseState("critical", status(10, "waiting"), status(100, "open")), 600, Resolve, 10 + 500, -1, Breached},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Check(wf, tc.s, received.Add(mins(tc.now)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			k := clock(t, c, tc.clock)
			if k.Elapsed != mins(tc.elapsed) || k.State != tc.state {
				t.Errorf("elapsed %v, state %s; want %v, %s", k.Elapsed, k.State, mins(tc.elapsed), tc.state)
			}
			want := time.Time{}
			if tc.stopped >= 0 {
				want = received.Add(mins(tc.stopped))
			}
			if !k.Stopped.Equal(want) {
				t.Errorf("stopped %v, want %v", k.Stopped, want)
			}
		})
	}
}

// TestSeverityWithoutTargets: no clock for a severity the workflow sets no
// targets for, nor for a case without severity; the escalation steps for
// every severity still apply.
func TestSeverityWithoutTargets(t *testing.T) {
	wf := testFlow()
	for _, sev := range []string{"", "low"} {
		c, err := Check(wf, caseState(sev), received.Add(mins(100)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Clocks) != 0 || len(c.Due) != 2 || c.Due[0].Label != "shift leads" || c.Due[1].Overdue() != mins(10) {
			t.Errorf("severity %q: clocks %+v, due %+v", sev, c.Clocks, c.Due)
		}
	}
	// A partial set of targets: only the clocks it sets.
	c, _ := Check(wf, caseState("medium"), received.Add(mins(100)), Options{})
	if len(c.Clocks) != 1 || c.Clocks[0].Name != Resolve {
		t.Errorf("medium: %+v", c.Clocks)
	}
}

// TestSoonWindow: the default window is a quarter of the target, at
// least 15 minutes; Options.Soon replaces it for every clock.
func TestSoonWindow(t *testing.T) {
	wf := testFlow()
	for _, tc := range []struct {
		soon  time.Duration
		now   int
		state string
	}{
		{0, 44, Pending}, // 60 min: window 15
		{0, 45, Soon},
		{0, 60, Soon},
		{0, 61, Breached},
		{mins(5), 54, Pending},
		{mins(5), 55, Soon},
		{mins(90), 1, Soon},
	} {
		c, err := Check(wf, caseState("critical"), received.Add(mins(tc.now)), Options{Soon: tc.soon})
		if err != nil {
			t.Fatal(err)
		}
		if k := clock(t, c, Acknowledge); k.State != tc.state {
			t.Errorf("soon %v at %d: %s, want %s", tc.soon, tc.now, k.State, tc.state)
		}
	}
	// The 1440-minute resolve target of high: a window of 360.
	c, _ := Check(wf, caseState("high", status(5, "open"), reply(6)), received.Add(mins(1080)), Options{})
	if k := clock(t, c, Resolve); k.State != Soon || k.Left() != mins(360) {
		t.Errorf("high resolve at 1080: %s, left %v", k.State, k.Left())
	}
	// No soon while paused: the time left does not run out.
	c, _ = Check(wf, caseState("critical", status(5, "open"), status(50, "waiting")), received.Add(mins(70)), Options{})
	if k := clock(t, c, FirstResponse); k.State != Pending || k.Left() != mins(70) {
		t.Errorf("paused first response: %s, left %v", k.State, k.Left())
	}
}

// TestSkewedTimes: an event dated before the received hour counts from
// it, one dated after now counts as now; the status from the last change
// on is the merged one.
func TestSkewedTimes(t *testing.T) {
	wf := testFlow()
	s := caseState("critical", status(-30, "open"))
	c, err := Check(wf, s, received.Add(mins(10)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if k := clock(t, c, Acknowledge); k.Elapsed != 0 || k.State != Met || !k.Stopped.Equal(received) {
		t.Errorf("early acknowledgement: %+v", k)
	}
	s = caseState("critical", status(500, "open"))
	c, _ = Check(wf, s, received.Add(mins(50)), Options{})
	if k := clock(t, c, Acknowledge); k.Elapsed != mins(50) || k.State != Met {
		t.Errorf("future acknowledgement: %+v", k)
	}
	// The merge let "open" stand over a "resolved" dated later: the case
	// is open, and its resolve clock runs.
	s = caseState("critical", status(10, "open"), status(20, "resolved"))
	s.Status = "open"
	c, _ = Check(wf, s, received.Add(mins(100)), Options{})
	if c.Final || c.Status != "open" || clock(t, c, Resolve).Elapsed != mins(100) {
		t.Errorf("merged status: %+v", c)
	}
	// Before the received hour: nothing counted yet.
	c, _ = Check(wf, caseState("critical"), received.Add(-time.Hour), Options{})
	if k := clock(t, c, Acknowledge); k.Elapsed != 0 {
		t.Errorf("before received: %+v", k)
	}
}

// TestUpdateIgnoresRecords: pulling the case (received) or a custody
// record is not an update; a note is, even one seen only as empty facts.
func TestUpdateIgnoresRecords(t *testing.T) {
	wf := testFlow()
	for _, tc := range []struct {
		ch      crypto.Change
		elapsed int
	}{
		{crypto.Change{Received: true}, 190},
		{crypto.Change{Custody: &crypto.Custody{Action: "export"}}, 190},
		{crypto.Change{Satisfaction: &crypto.Satisfaction{Score: 4, Followup: "00000000000000000000000000000002"}}, 190},
		{crypto.Change{Satisfaction: &crypto.Satisfaction{Score: 4, Followup: "00000000000000000000000000000002"}, Note: "n"}, 100},
		{crypto.Change{Note: "n"}, 100},
		{crypto.Change{}, 100}, // the facts of a note
		{crypto.Change{Received: true, Tag: []string{"x"}}, 100},
	} {
		s := caseState("critical", status(10, "open"), journal.Entry{Author: bob, Time: atMin(100), Change: tc.ch})
		c, _ := Check(wf, s, received.Add(mins(200)), Options{})
		if k := clock(t, c, Update); k.Elapsed != mins(tc.elapsed) {
			t.Errorf("%+v: update elapsed %v, want %d min", tc.ch, k.Elapsed, tc.elapsed)
		}
	}
}

// TestEscalation: a step is due from AfterMinutes of counted time on,
// until its milestone is reached; none is due on a final case.
func TestEscalation(t *testing.T) {
	wf := testFlow()
	for _, tc := range []struct {
		name string
		s    *journal.State
		now  int
		due  []int
	}{
		{"before", caseState("high"), 59, nil},
		{"at 60", caseState("high"), 60, []int{0}},
		{"paused does not count", caseState("high", status(10, "waiting"), status(100, "open")), 280, nil},
		{"first response pending", caseState("high", status(10, "waiting"), status(100, "open")), 290, []int{3}},
		{"answered", caseState("high", status(10, "open"), reply(250)), 300, nil},
		{"critical unresolved", caseState("critical", status(10, "open"), reply(20)), 300, []int{2}},
		{"critical resolved", caseState("critical", status(10, "open"), status(290, "resolved")), 400, nil},
		{"critical reopened", caseState("critical", status(10, "open"), status(290, "resolved"), status(300, "open")), 310, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Check(wf, tc.s, received.Add(mins(tc.now)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, d := range c.Due {
				got = append(got, d.Index)
				if d.Overdue() < 0 || d.Notify == nil {
					t.Errorf("step %+v", d)
				}
			}
			if len(got) != len(tc.due) || len(got) > 0 && got[0] != tc.due[0] {
				t.Errorf("due %v, want %v", got, tc.due)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	wf := testFlow()
	s := caseState("high")
	s.Received = ""
	if _, err := Check(wf, s, received, Options{}); !errors.Is(err, ErrNoStart) {
		t.Errorf("no received: %v", err)
	}
	s.Received = "yesterday"
	if _, err := Check(wf, s, received, Options{}); err == nil {
		t.Error("bad received accepted")
	}
	s = caseState("high", status(10, "open"))
	s.History[0].Time = "soon"
	if _, err := Check(wf, s, received, Options{}); err == nil {
		t.Error("bad event time accepted")
	}
}

// TestReached: the escalation steps a case ever reached, final or not,
// pauses left out.
func TestReached(t *testing.T) {
	wf := testFlow()
	for _, tc := range []struct {
		name string
		s    *journal.State
		now  int
		want []int
	}{
		{"acknowledged in time", caseState("high", status(59, "open"), reply(60)), 1000, nil},
		{"acknowledged late", caseState("high", status(70, "open"), reply(80)), 1000, []int{0}},
		{"acknowledged very late", caseState("high", status(95, "open"), reply(100)), 1000, []int{0, 1}},
		{"acknowledged late, then closed", caseState("high", status(95, "closed")), 1000, []int{0, 1}},
		{"paused does not count", caseState("high", status(10, "waiting"), status(100, "open"), reply(150)), 1000, nil},
		{"not yet", caseState("high"), 59, nil},
		{"open, unacknowledged", caseState("high"), 61, []int{0}},
		{"critical resolved late", caseState("critical", status(10, "open"), reply(20), status(400, "resolved")), 1000, []int{2}},
		{"critical resolved in time", caseState("critical", status(10, "open"), reply(20), status(290, "resolved")), 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Check(wf, tc.s, received.Add(mins(tc.now)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, d := range c.Reached {
				got = append(got, d.Index)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("reached %v, want %v", got, tc.want)
			}
		})
	}
}
