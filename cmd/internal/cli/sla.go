package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/handler/sla"
)

type slaOptions struct {
	identity string
	json     bool
	soon     string // a duration; "": a quarter of each target, at least 15 minutes
	desk     string // "": every desk
	at       string // an RFC 3339 time; "": now
}

func newSLA(e *env) *cobra.Command {
	var o slaOptions
	cmd := &cobra.Command{
		Use:   "sla -i KEY [--soon DUR] [--desk D] [--json]",
		Short: "list the cases whose response times are breached or about to be, and the escalations due",
		Long: `List the cases that have breached a response-time target of their desk, those
about to breach one, and the escalation steps due, the most urgent first: the
longest overdue, then the soonest due. The targets (acknowledge, first
response, update, resolve) and the escalation steps are the ones the desk's
signed manifest sets per severity; a case with no severity, or of a severity
without targets, has only the escalation steps that apply to every severity.
The clocks start at the case's received hour and stop while the case is in a
paused status (by default waiting, on the submitter) or a final one
(docs/protocol.md §8.11.8).

A clock is about to breach within --soon of its target (by default a quarter
of the target, at least 15 minutes). --at computes the clocks at another time
than now, such as the start of the next shift.

It reads the case journal on this machine only and sends nothing: 'amana sync'
brings the other handlers' changes first. It exits with 8 when a case is
breached or an escalation step is due, and 0 otherwise, so that cron or a
desktop notifier can act on it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runSLA(e, &o) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	fl.BoolVar(&o.json, "json", false, "print JSON (docs/cli.md)")
	fl.StringVar(&o.soon, "soon", "", "how close to a target counts as about to breach, like 30m or 2h (default: a quarter of each target, at least 15m)")
	fl.StringVar(&o.desk, "desk", "", "only the cases of this desk")
	fl.StringVar(&o.at, "at", "", "compute the clocks at this time (RFC 3339, like 2026-12-04T08:00:00Z) instead of now")
	cmd.MarkFlagRequired("identity")
	return cmd
}

// slaItem is one line of amana sla: a clock breached or about to breach,
// or an escalation step due.
type slaItem struct {
	row   *caseRow
	c     *sla.Case
	clock *sla.Clock // nil: step
	step  *sla.Step
}

// left is the time before the item is due: negative once overdue.
func (it *slaItem) left() time.Duration {
	if it.clock != nil {
		return it.clock.Left()
	}
	return -it.step.Overdue()
}

func (it *slaItem) state() string {
	if it.clock != nil {
		return it.clock.State
	}
	return "due"
}

// bySLAUrgency orders the items the longest overdue first, then the soonest
// due; then the most severe, the case, the clocks before the steps.
func bySLAUrgency(a, b *slaItem) int {
	return cmp.Or(cmp.Compare(a.left(), b.left()),
		cmp.Compare(severityRank(a.row.wf, a.c.Severity), severityRank(b.row.wf, b.c.Severity)),
		strings.Compare(a.row.meta.ID, b.row.meta.ID),
		cmp.Compare(a.order(), b.order()))
}

func (it *slaItem) order() int {
	if it.clock != nil {
		return slices.Index([]string{sla.Acknowledge, sla.FirstResponse, sla.Update, sla.Resolve}, it.clock.Name)
	}
	return 4 + it.step.Index
}

func runSLA(e *env, o *slaOptions) error {
	now := time.Now()
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return fail(ExitUsage, "give a time like 2026-12-04T08:00:00Z", nil, "--at: invalid time %q", clean(o.at, false))
		}
		now = t
	}
	var opt sla.Options
	if o.soon != "" {
		d, err := ui.ParseDuration(o.soon)
		if err != nil || d <= 0 {
			return fail(ExitUsage, "give a duration like 30m, 2h or 1d", nil, "--soon: invalid duration %q", clean(o.soon, false))
		}
		opt.Soon = d
	}
	rows, me, err := e.caseRows(o.identity, now)
	if err != nil {
		return err
	}
	if o.desk != "" {
		var desks []string
		for _, r := range rows {
			desks = appendNew(desks, r.meta.Desk)
		}
		if !slices.Contains(desks, o.desk) {
			slices.Sort(desks)
			hint := "no case is kept here yet; run 'amana pull --relay URL -i KEY'"
			if len(desks) > 0 {
				hint = "choose one of: " + strings.Join(cleanAll(desks), ", ")
			}
			return fail(ExitUsage, hint, nil, "no case here is of desk %q", clean(o.desk, false))
		}
		rows = slices.DeleteFunc(rows, func(r *caseRow) bool { return r.meta.Desk != o.desk })
	}
	// The list's states carry no history: the clocks need each case's
	// status timeline, replayed here for the desks that set targets.
	rows = slices.DeleteFunc(rows, func(r *caseRow) bool { return !hasTargets(r.wf) })
	full, err := e.histories(rows, me)
	if err != nil {
		return err
	}
	var items []*slaItem
	var disputed, unknown int
	for _, r := range rows {
		if r.state != nil && r.state.Disputed {
			disputed++
			continue
		}
		if r.state != nil {
			if r.state = full[r.meta.ID]; r.state == nil {
				unknown++
				continue
			}
		}
		c, err := sla.Check(r.wf, slaState(r), now, opt)
		if err != nil {
			unknown++
			continue
		}
		for i := range c.Clocks {
			if k := &c.Clocks[i]; k.State == sla.Breached || k.State == sla.Soon {
				items = append(items, &slaItem{row: r, c: c, clock: k})
			}
		}
		for i := range c.Due {
			items = append(items, &slaItem{row: r, c: c, step: &c.Due[i]})
		}
	}
	slices.SortFunc(items, bySLAUrgency)
	if o.json {
		if err := writeJSON(e.stdout, slaJSONOf(now, items)); err != nil {
			return err
		}
	} else if len(items) > 0 {
		if err := printSLA(e.stdout, items, me); err != nil {
			return err
		}
	}
	if disputed > 0 {
		fmt.Fprintf(e.stderr, "note: %d disputed case(s) left out: 'amana list -i KEY' shows them\n", disputed)
	}
	if unknown > 0 {
		fmt.Fprintf(e.stderr, "note: %d case(s) left out: their history could not be read, or has no valid time\n", unknown)
	}
	breached, soon, due := slaCounts(items)
	switch {
	case breached+due > 0:
		return fail(ExitAttention, "the cases are listed above; 'amana case show ID -i KEY' opens one",
			nil, "attention: %d response time(s) breached, %d about to breach, %d escalation step(s) due", breached, soon, due)
	case !o.json && soon > 0:
		fmt.Fprintf(e.stderr, "%d response time(s) about to breach; none breached\n", soon)
	case !o.json && len(rows) == 0:
		fmt.Fprintln(e.stderr, "no case here has a response-time target or an escalation step: the desk's manifest sets them per severity")
	case !o.json:
		fmt.Fprintln(e.stderr, "nothing breached or about to breach, and no escalation due")
	}
	return nil
}

// hasTargets reports whether wf sets any response-time target or
// escalation step.
func hasTargets(wf crypto.Workflow) bool {
	return len(wf.Escalation) > 0 || slices.ContainsFunc(wf.Severities, func(s crypto.Severity) bool {
		return s.Targets != nil && !s.Targets.IsZero()
	})
}

// histories replays, with their history, the states of the rows that
// have one.
func (e *env) histories(rows []*caseRow, me *crypto.Identity) (map[string]*journal.State, error) {
	out := map[string]*journal.State{}
	if !slices.ContainsFunc(rows, func(r *caseRow) bool { return r.state != nil }) {
		return out, nil
	}
	st, err := e.cases()
	if err != nil {
		return nil, err
	}
	t := e.syncTrust(st, "")
	j, err := e.openJournal(st, me)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.state == nil || r.state.Disputed {
			continue
		}
		if s, err := j.State(t, r.meta.ID); err == nil {
			out[r.meta.ID] = s
		}
	}
	return out, nil
}

// slaState is the row's journal state with the received hour the case
// store holds; a case with no change yet has a state of its own, in the
// workflow's first status.
func slaState(r *caseRow) *journal.State {
	var s journal.State
	if r.state != nil {
		s = *r.state
	} else {
		s = journal.State{Case: r.meta.ID, Desk: r.meta.Desk, Category: r.meta.Category, Status: statusOf(r.wf, nil)}
	}
	if s.Received == "" {
		s.Received = r.received()
	}
	return &s
}

func slaCounts(items []*slaItem) (breached, soon, due int) {
	for _, it := range items {
		switch it.state() {
		case sla.Breached:
			breached++
		case sla.Soon:
			soon++
		default:
			due++
		}
	}
	return
}

// clockNames are the clocks as amana sla writes them.
var clockNames = map[string]string{sla.Acknowledge: "acknowledge", sla.FirstResponse: "first response", sla.Update: "update", sla.Resolve: "resolve"}

func printSLA(w io.Writer, items []*slaItem, me *crypto.Identity) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHAT\tSTATE\tWHEN\tSEVERITY\tSTATUS\tDESK\tWHO")
	for _, it := range items {
		what, who := "", ""
		if it.clock != nil {
			what = clockNames[it.clock.Name]
			who = namesOr(it.row.man, it.row.assignees(), me, "-")
		} else {
			what = fmt.Sprintf("escalation %d", it.step.Index+1)
			if it.step.Label != "" {
				what += ": " + clean(it.step.Label, false)
			}
			who = cleanList(it.step.Notify, "-")
		}
		sev := it.c.Severity
		if sev == "" {
			sev = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(it.row.meta.ID), what, it.state(), whenText(it.left()),
			clean(sev, false), clean(it.c.Status, false), clean(it.row.meta.Desk, false), who)
	}
	return tw.Flush()
}

// whenText says when an item is due: "2h10m ago", "in 12m".
func whenText(left time.Duration) string {
	if left <= 0 {
		return durText(-left) + " ago"
	}
	return "in " + durText(left)
}

// durText writes a duration to the minute: 12m, 5h10m, 3d4h.
func durText(d time.Duration) string {
	m := int64(d / time.Minute)
	switch {
	case m < 60:
		return fmt.Sprintf("%dm", m)
	case m < 48*60:
		return fmt.Sprintf("%dh%02dm", m/60, m%60)
	}
	return fmt.Sprintf("%dd%dh", m/(24*60), m%(24*60)/60)
}

// slaJSON is what 'amana sla --json' prints.
type slaJSON struct {
	At       string        `json:"at"`
	Breached int           `json:"breached"`
	Soon     int           `json:"soon"`
	Due      int           `json:"due"`
	Items    []slaItemJSON `json:"items"`
}

type slaItemJSON struct {
	Case      string        `json:"case"`
	Desk      string        `json:"desk"`
	Category  string        `json:"category"`
	Severity  string        `json:"severity"`
	Status    string        `json:"status"`
	Assignees []handlerJSON `json:"assignees"`
	// Kind is "clock" or "escalation".
	Kind  string `json:"kind"`
	State string `json:"state"` // breached, soon or due
	// A clock's: its name and target.
	Clock         string `json:"clock,omitempty"`
	TargetMinutes int    `json:"target_minutes,omitempty"`
	// An escalation step's: its number (from 1, in the manifest's order),
	// label, threshold and whom to notify.
	Step         int      `json:"step,omitempty"`
	Label        string   `json:"label,omitempty"`
	AfterMinutes int      `json:"after_minutes,omitempty"`
	Notify       []string `json:"notify,omitempty"`
	// ElapsedSeconds is the time counted (pauses left out); LeftSeconds
	// the time before it is due, negative when overdue.
	ElapsedSeconds int64 `json:"elapsed_seconds"`
	LeftSeconds    int64 `json:"left_seconds"`
}

func slaJSONOf(now time.Time, items []*slaItem) slaJSON {
	out := slaJSON{At: crypto.EventTime(now), Items: []slaItemJSON{}}
	out.Breached, out.Soon, out.Due = slaCounts(items)
	for _, it := range items {
		j := slaItemJSON{Case: it.row.meta.ID, Desk: it.row.meta.Desk, Category: it.row.category(), Severity: it.c.Severity,
			Status: it.c.Status, Assignees: handlerRefs(it.row.man, it.row.assignees()), State: it.state(),
			LeftSeconds: int64(it.left() / time.Second)}
		if k := it.clock; k != nil {
			j.Kind, j.Clock, j.TargetMinutes, j.ElapsedSeconds = "clock", k.Name, int(k.Target/time.Minute), int64(k.Elapsed/time.Second)
		} else {
			s := it.step
			j.Kind, j.Step, j.Label, j.AfterMinutes, j.Notify, j.ElapsedSeconds = "escalation", s.Index+1, s.Label, s.AfterMinutes, s.Notify, int64(s.Elapsed/time.Second)
		}
		out.Items = append(out.Items, j)
	}
	return out
}
