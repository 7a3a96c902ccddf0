package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
)

// caseRow is a case as list and triage show it: its metadata, its state
// from the journal (nil: no change recorded yet), and its desk's trusted
// manifest (nil: none kept here; the default workflow applies).
type caseRow struct {
	meta   *cases.Meta
	state  *journal.State
	man    *crypto.Manifest
	wf     crypto.Workflow
	status string
	age    time.Duration
	// held: the case itself is in the case store; otherwise only its
	// changes (or, for a coordinator, their facts) are.
	held bool
}

func (r *caseRow) category() string {
	if r.state != nil && r.state.Category != "" {
		return r.state.Category
	}
	return r.meta.Category
}

// received is the case's hour of arrival, as the case store has it.
func (r *caseRow) received() string {
	if r.state != nil && r.state.Received != "" {
		return r.state.Received
	}
	return r.meta.Received
}

func (r *caseRow) ageAt(now time.Time) time.Duration {
	t, err := time.Parse(time.RFC3339, r.received())
	if err != nil {
		return 0
	}
	return now.Sub(t)
}

func (r *caseRow) assignees() []string {
	if r.state == nil {
		return nil
	}
	return r.state.Assignees
}

// caseRows reads every case held (reports and self-sealed files) with its
// state, through the journal's encrypted index.
func (e *env) caseRows(identity string, now time.Time) ([]*caseRow, *crypto.Identity, error) {
	st, err := e.cases()
	if err != nil {
		return nil, nil, err
	}
	id, err := e.loadIdentity(identity)
	if err != nil {
		return nil, nil, err
	}
	all, err := st.List()
	if err != nil {
		return nil, nil, err
	}
	t := e.syncTrust(st, "")
	j, err := e.openJournal(st, id)
	if err != nil {
		return nil, nil, err
	}
	states, err := j.States(t)
	if err != nil && states == nil {
		return nil, nil, fail(ExitError, "run 'amana sync' to fetch the changes again", err, "cannot read the case journal")
	}
	var se *journal.StatesError
	switch {
	case errors.As(err, &se):
		// Some cases could not be replayed; the others are listed.
		for _, p := range se.Problems {
			what := "case " + clean(shortID(p.Case), false)
			if p.Case == "" {
				what = "the index"
			}
			fmt.Fprintf(e.stderr, "amana: note: %s: %s\n", what, clean(p.Err.Error(), false))
		}
	case err != nil:
		fmt.Fprintf(e.stderr, "amana: note: some cases are left out: %s\n", clean(err.Error(), false))
	}
	var rows []*caseRow
	add := func(m *cases.Meta, held bool) {
		r := &caseRow{meta: m, state: states[m.ID], held: held}
		r.man, _ = t.Manifest(m.Desk)
		r.wf = t.flow(m.Desk)
		r.status = statusOf(r.wf, r.state)
		if r.state != nil && r.state.Disputed {
			r.status = "disputed"
		}
		r.age = r.ageAt(now)
		rows = append(rows, r)
	}
	held := map[string]bool{}
	for _, m := range all {
		if isCase(m) {
			held[m.ID] = true
			add(m, true)
		}
	}
	// Cases only changes name: those a coordinator follows by their facts,
	// and those whose report has not been pulled here yet.
	for _, cid := range sortedKeys(states) {
		if s := states[cid]; !held[cid] && cases.ValidID(cid) && crypto.ValidName(s.Desk) {
			add(&cases.Meta{ID: cid, Desk: s.Desk, Category: s.Category, Received: s.Received}, false)
		}
	}
	return rows, id, nil
}

// filter keeps the rows f matches; it checks the values against the
// desks' workflows and manifests first.
func (f *journalFilter) filter(rows []*caseRow, me *crypto.Identity) ([]*caseRow, error) {
	var older time.Duration
	if f.olderThan != "" {
		d, err := ui.ParseDuration(f.olderThan)
		if err != nil {
			return nil, fail(ExitUsage, "give a duration like 72h or 14d", nil, "--older-than: %v", err)
		}
		older = d
	}
	var statuses, severities []string
	names := map[string]bool{}
	for _, r := range rows {
		statuses = appendNew(statuses, r.wf.Statuses...)
		severities = appendNew(severities, severityIDs(r.wf)...)
		if r.man != nil {
			for _, c := range r.man.Cards() {
				names[c.Name] = true
			}
		}
	}
	if len(rows) > 0 {
		for _, s := range f.status {
			if err := oneOfAny("status", s, statuses); err != nil {
				return nil, err
			}
		}
		for _, s := range f.severity {
			if err := oneOfAny("severity", s, severities); err != nil {
				return nil, err
			}
		}
		if f.assignee != "" && f.assignee != "me" && !names[f.assignee] {
			return nil, fail(ExitUsage, "choose one of: "+strings.Join(cleanAll(sortedKeys(names)), ", ")+" (or me)", nil, "no desk here has a handler %q", clean(f.assignee, false))
		}
	}
	var out []*caseRow
	for _, r := range rows {
		if len(f.status) > 0 && !slices.Contains(f.status, r.status) ||
			len(f.severity) > 0 && (r.state == nil || !slices.Contains(f.severity, r.state.Severity)) ||
			len(f.category) > 0 && !slices.Contains(f.category, r.category()) ||
			f.unassigned && len(r.assignees()) > 0 ||
			older > 0 && r.age <= older {
			continue
		}
		if !hasAll(r, f.tags) {
			continue
		}
		if f.assignee != "" {
			key := ""
			if f.assignee == "me" {
				key = me.Card().KeyID()
			} else if r.man != nil {
				key, _ = handlerKey(r.man, me, f.assignee)
			}
			if key == "" || !slices.Contains(r.assignees(), key) {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func hasAll(r *caseRow, tags []string) bool {
	for _, t := range tags {
		if r.state == nil || !slices.Contains(r.state.Tags, t) {
			return false
		}
	}
	return true
}

func appendNew(list []string, vs ...string) []string {
	for _, v := range vs {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

func cleanAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = clean(s, false)
	}
	return out
}

// oneOfAny checks v against the values of every desk's workflow.
func oneOfAny(kind, v string, valid []string) error {
	if slices.Contains(valid, v) {
		return nil
	}
	return fail(ExitUsage, "choose one of: "+strings.Join(cleanAll(valid), ", "), nil, "%q is not a %s of the desks here", clean(v, false), kind)
}

// bySeverityThenAge orders rows most severe first (on each desk's own
// scale), then oldest first, then by ID so that the order is the same on
// every run.
func bySeverityThenAge(a, b *caseRow) int {
	if d := severityRank(a.wf, sev(a)) - severityRank(b.wf, sev(b)); d != 0 {
		return d
	}
	if a.age != b.age {
		if a.age > b.age {
			return -1
		}
		return 1
	}
	return strings.Compare(a.meta.ID, b.meta.ID)
}

func sev(r *caseRow) string {
	if r.state == nil {
		return ""
	}
	return r.state.Severity
}

func runJournalList(e *env, o *listOptions) error {
	rows, me, err := e.caseRows(o.identity, time.Now())
	if err != nil {
		return err
	}
	rows, err = o.journalFilter.filter(rows, me)
	if err != nil {
		return err
	}
	slices.SortFunc(rows, bySeverityThenAge)
	if o.json {
		return printRowsJSON(e, rows)
	}
	if len(rows) == 0 {
		if o.journalFilter.set() {
			fmt.Fprintln(e.stderr, "no case matches")
		} else {
			fmt.Fprintln(e.stderr, "no cases yet; run 'amana pull --relay URL -i KEY'")
		}
		return nil
	}
	return printRows(e.stdout, e.stderr, rows)
}

func printRowsJSON(e *env, rows []*caseRow) error {
	out := []listCaseJSON{}
	for _, r := range rows {
		out = append(out, r.toJSON())
	}
	return writeJSON(e.stdout, out)
}

// printRows prints the journal's columns; it notes the cases whose
// history has conflicts or gaps.
func printRows(w, stderr io.Writer, rows []*caseRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tASSIGNEE\tAGE\tDESK\tCATEGORY\tTAGS")
	attention := 0
	for _, r := range rows {
		cat := r.category()
		if cat == "" {
			cat = "-"
		}
		s := sev(r)
		if s == "" {
			s = "-"
		}
		var tags []string
		if r.state != nil {
			tags = r.state.Tags
			if len(r.state.Conflicts)+len(r.state.Gaps) > 0 {
				attention++
			}
		}
		mark := ""
		if !r.held {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.meta.ID[:12]+mark, clean(r.status, false), clean(s, false),
			namesOr(r.man, r.assignees(), nil, "-"), ageText(r.age), clean(r.meta.Desk, false), clean(cat, false), cleanList(tags, "-"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := notHeld(rows); n > 0 {
		fmt.Fprintf(stderr, "note: %d case(s) marked * are not held here: known by their changes only (for a coordinator, their facts)\n", n)
	}
	if attention > 0 {
		fmt.Fprintf(stderr, "note: %d case(s) have conflicting changes or changes not arrived: 'amana case show ID -i KEY' says which\n", attention)
	}
	return nil
}

func notHeld(rows []*caseRow) int {
	n := 0
	for _, r := range rows {
		if !r.held {
			n++
		}
	}
	return n
}
