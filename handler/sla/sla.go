// Package sla computes a case's response-time clocks on the handler's
// machine: acknowledge, first response, update and resolve, against the
// targets the desk's signed manifest sets per severity, with the clock
// stopped while the case waits (the workflow's paused statuses) or is
// closed, and the escalation steps now due (docs/protocol.md §8.11.8).
//
// It is a pure function of a case's journal state, the desk's workflow and
// the time given: it reads no file, sends nothing and keeps nothing, so
// whatever it triggers runs on the handler's machine and no new timing
// leaves it. It never returns or formats a case's text.
package sla

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
)

// The clocks, in the order Check returns them.
const (
	Acknowledge   = "acknowledge"
	FirstResponse = "first_response"
	Update        = "update"
	Resolve       = "resolve"
)

// A clock's state.
const (
	// Met: the clock stopped (the case was acknowledged, answered or
	// resolved) within its target.
	Met = "met"
	// Missed: the clock stopped after its target; or, for the first
	// response, the case ended without one after the target had passed.
	Missed = "missed"
	// Ended: the case is in a final status and the clock never stopped,
	// within its target: a first response never sent before the case was
	// closed in time, or the update clock of a closed case.
	Ended = "ended"
	// Breached: the clock has not stopped, the case is not final, and the
	// time counted is over the target.
	Breached = "breached"
	// Soon: not breached yet, the clock is counting now, and the time left
	// is within the soon window.
	Soon = "soon"
	// Pending: counting (or paused) with more than the soon window left.
	Pending = "pending"
)

// DefaultSoonShare and MinSoon make the default soon window: a quarter of
// the target, but at least 15 minutes.
const (
	DefaultSoonShare = 4 // the window is target / DefaultSoonShare
	MinSoon          = 15 * time.Minute
)

// Options tune Check. The zero value uses the defaults.
type Options struct {
	// Soon is how close to its target a counting clock is about to
	// breach; 0: a quarter of each target, at least MinSoon.
	Soon time.Duration
}

// window is the soon window of a target.
func (o Options) window(target time.Duration) time.Duration {
	if o.Soon > 0 {
		return o.Soon
	}
	return max(target/DefaultSoonShare, MinSoon)
}

// Clock is one response-time clock of a case.
type Clock struct {
	Name   string
	Target time.Duration
	// Elapsed is the time counted: from the start (for update, from the
	// last event) to when the clock stopped, or to now, less the time the
	// case spent in a paused or final status.
	Elapsed time.Duration
	// Stopped is when the clock stopped (the case was acknowledged, first
	// answered or resolved); zero while it has not.
	Stopped time.Time
	State   string
}

// Left is the time left before the target: negative once breached or
// missed.
func (c Clock) Left() time.Duration { return c.Target - c.Elapsed }

// Step is an escalation step that is due on a case.
type Step struct {
	Index int // its place in the workflow's Escalation
	crypto.Escalation
	Elapsed time.Duration // the time counted from the start, as for the clocks
}

// Overdue is how long the step has been due.
func (s Step) Overdue() time.Duration {
	return s.Elapsed - time.Duration(s.AfterMinutes)*time.Minute
}

// Case is a case's clocks at a moment.
type Case struct {
	Case, Desk, Severity, Status string
	// Start is when the clocks started: the case's received hour.
	Start time.Time
	// Final: the case is in a final status; Paused: in a paused one.
	Final, Paused bool
	// Clocks are those the severity's targets set, in the order Acknowledge,
	// FirstResponse, Update, Resolve.
	Clocks []Clock
	// Due are the escalation steps due now, in the workflow's order.
	Due []Step
	// Reached are the escalation steps the case ever reached, in the
	// workflow's order: their time passed (pauses left out) before their
	// milestone, whether or not the case has reached it since. Elapsed is
	// the time counted up to the milestone, or to now.
	Reached []Step
}

// Attention reports whether a clock is breached or an escalation is due.
func (c *Case) Attention() bool {
	return len(c.Due) > 0 || slices.ContainsFunc(c.Clocks, func(k Clock) bool { return k.State == Breached })
}

// ErrNoStart: the state carries no received hour to start the clocks from.
var ErrNoStart = errors.New("the case has no received time")

// segment is a stretch of the status timeline: status from from on, up
// to the next segment's from.
type segment struct {
	from   time.Time
	status string
}

// timeline is a case's status over time, and which statuses stop the
// clocks.
type timeline struct {
	segs    []segment
	stopped func(status string) bool
}

// newTimeline builds the status timeline from the start: the workflow's
// initial status, then each status change of the history in the history's
// (time, author, seq) order, its time clamped (see clamp). The last stretch takes the merged status (s.Status), so the clocks
// never disagree with the status every other command shows, even when a
// skewed clock dates the winning change earlier than another.
func newTimeline(wf crypto.Workflow, s *journal.State, c clamp) (*timeline, error) {
	initial := ""
	if len(wf.Statuses) > 0 {
		initial = wf.Statuses[0]
	}
	tl := &timeline{segs: []segment{{c.start, initial}}}
	for _, e := range s.History {
		if e.Change.Status == "" {
			continue
		}
		t, err := c.parse(e.Time)
		if err != nil {
			return nil, fmt.Errorf("event %d by %s: %w", e.Seq, e.Author, err)
		}
		tl.segs = append(tl.segs, segment{t, e.Change.Status})
	}
	if s.Status != "" {
		tl.segs[len(tl.segs)-1].status = s.Status
	}
	tl.stopped = func(st string) bool { return wf.IsFinal(st) || wf.IsPaused(st) }
	return tl, nil
}

// current is the status now: the last stretch's.
func (tl *timeline) current() string { return tl.segs[len(tl.segs)-1].status }

// counted is the time between a and b that the clocks count: the stretches
// whose status is neither paused nor final.
func (tl *timeline) counted(a, b time.Time) time.Duration {
	var d time.Duration
	for i, sg := range tl.segs {
		if tl.stopped(sg.status) {
			continue
		}
		from := later(sg.from, a)
		to := b
		if i+1 < len(tl.segs) && tl.segs[i+1].from.Before(to) {
			to = tl.segs[i+1].from
		}
		if to.After(from) {
			d += to.Sub(from)
		}
	}
	return d
}

// resolved is when the case reached a final status for the first time
// since it was last reopened: the start of the run of final stretches
// that ends the timeline; zero when the case is not final.
func (tl *timeline) resolved(wf crypto.Workflow) time.Time {
	var t time.Time
	for i := len(tl.segs) - 1; i >= 0 && wf.IsFinal(tl.segs[i].status); i-- {
		t = tl.segs[i].from
	}
	return t
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}

// clamp reads the journal's times into [start, now]: an event dated
// before the received hour counts from it, one dated after now (a skewed
// clock) counts as now.
type clamp struct{ start, now time.Time }

func (c clamp) parse(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q", s)
	}
	return earlier(later(t, c.start), c.now), nil
}

// reached is when a clock stopped; "" (not reached) is zero.
func (c clamp) reached(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return c.parse(s)
}

// lastUpdate is when the case last changed: the latest event of its
// history that records more than that its author pulled the case (or, in
// the reserved custody member, handled a copy of it).
func lastUpdate(s *journal.State, c clamp) (time.Time, error) {
	last := c.start
	for _, e := range s.History {
		if recordOnly(e.Change) {
			continue
		}
		t, err := c.parse(e.Time)
		if err != nil {
			return time.Time{}, fmt.Errorf("event %d by %s: %w", e.Seq, e.Author, err)
		}
		last = later(t, last)
	}
	return last, nil
}

// recordOnly reports whether ch only records that the case was pulled
// (received), a custody action or the submitter's survey answer: nothing a
// submitter would call an update.
func recordOnly(ch crypto.Change) bool {
	return (ch.Received || ch.Custody != nil || ch.Satisfaction != nil) && ch.Status == "" && ch.Severity == "" &&
		len(ch.Assign)+len(ch.Unassign)+len(ch.Tag)+len(ch.Untag) == 0 && ch.Note == "" &&
		ch.CloseReason == "" && ch.Link == nil && ch.Unlink == nil && ch.Referral == nil && ch.Reply == ""
}

// Check computes the clocks of the case in s at now, against the targets
// wf sets for its severity, and the escalation steps due. The clocks start
// at s.Received (the received hour; the caller fills it from the case
// store when the state does not carry it) and count only the time the
// case spends in a status neither paused (wf.Paused) nor final, along the
// status timeline of s.History. A disputed state has no history to count
// from: the caller leaves it out.
func Check(wf crypto.Workflow, s *journal.State, now time.Time, o Options) (*Case, error) {
	if s.Received == "" {
		return nil, ErrNoStart
	}
	start, err := time.Parse(time.RFC3339, s.Received)
	if err != nil {
		return nil, fmt.Errorf("received: invalid time %q", s.Received)
	}
	cl := clamp{start, later(now, start)}
	now = cl.now
	tl, err := newTimeline(wf, s, cl)
	if err != nil {
		return nil, err
	}
	cur := tl.current()
	c := &Case{Case: s.Case, Desk: s.Desk, Severity: s.Severity, Status: cur, Start: start,
		Final: wf.IsFinal(cur), Paused: wf.IsPaused(cur)}
	ack, err := cl.reached(s.Acknowledged)
	if err != nil {
		return nil, fmt.Errorf("acknowledged: %w", err)
	}
	first, err := cl.reached(s.FirstResponse)
	if err != nil {
		return nil, fmt.Errorf("first response: %w", err)
	}
	last, err := lastUpdate(s, cl)
	if err != nil {
		return nil, err
	}
	tg := wf.TargetsFor(s.Severity)
	for _, k := range []struct {
		name    string
		minutes int
		from    time.Time // when the clock starts
		stopped time.Time // when it stopped; zero: it has not
	}{
		{Acknowledge, tg.Acknowledge, start, ack},
		{FirstResponse, tg.FirstResponse, start, first},
		{Update, tg.Update, last, time.Time{}},
		{Resolve, tg.Resolve, start, tl.resolved(wf)},
	} {
		if k.minutes <= 0 {
			continue
		}
		ck := Clock{Name: k.name, Target: time.Duration(k.minutes) * time.Minute, Stopped: k.stopped}
		to := now
		if !k.stopped.IsZero() {
			to = k.stopped
		}
		ck.Elapsed = tl.counted(k.from, to)
		ck.State = state(ck, c.Final, !tl.stopped(cur), o)
		c.Clocks = append(c.Clocks, ck)
	}
	resolved := tl.resolved(wf)
	for i, st := range wf.Escalation {
		if !st.AppliesTo(s.Severity) || st.AfterMinutes <= 0 {
			continue
		}
		var until time.Time
		switch st.Unless {
		case crypto.UnlessAcknowledged:
			until = ack
		case crypto.UnlessFirstResponse:
			until = first
		case crypto.UnlessResolved:
			until = resolved
		default:
			continue
		}
		if until.IsZero() {
			until = now
		}
		if e := tl.counted(start, until); e >= time.Duration(st.AfterMinutes)*time.Minute {
			c.Reached = append(c.Reached, Step{Index: i, Escalation: st, Elapsed: e})
		}
	}
	if c.Final {
		return c, nil
	}
	elapsed := tl.counted(start, now)
	for i, st := range wf.Escalation {
		if !st.AppliesTo(s.Severity) {
			continue
		}
		switch st.Unless {
		case crypto.UnlessAcknowledged:
			if !ack.IsZero() {
				continue
			}
		case crypto.UnlessFirstResponse:
			if !first.IsZero() {
				continue
			}
		case crypto.UnlessResolved:
			// The case is not final (above): not resolved.
		default:
			continue // a manifest's Normalize refuses any other
		}
		if st.AfterMinutes > 0 && elapsed >= time.Duration(st.AfterMinutes)*time.Minute {
			c.Due = append(c.Due, Step{Index: i, Escalation: st, Elapsed: elapsed})
		}
	}
	return c, nil
}

// state is a clock's state, given whether the case is final and whether
// its clocks count now (its status is neither paused nor final).
func state(ck Clock, final, counting bool, o Options) string {
	over := ck.Elapsed > ck.Target
	switch {
	case !ck.Stopped.IsZero() && over:
		return Missed
	case !ck.Stopped.IsZero():
		return Met
	case final && over && ck.Name != Update:
		return Missed
	case final:
		return Ended
	case over:
		return Breached
	case counting && ck.Left() <= o.window(ck.Target):
		return Soon
	}
	return Pending
}
