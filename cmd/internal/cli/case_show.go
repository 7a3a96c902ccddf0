package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
)

type caseShowOptions struct {
	identity string
	json     bool
}

func newCaseShow(e *env) *cobra.Command {
	var o caseShowOptions
	cmd := &cobra.Command{
		Use:   "show ID -i KEY",
		Short: "print a case's state, notes and history",
		Long: `Print a case's state as the changes held on this machine make it: status,
severity, assignees, tags, links, referral, times, the internal notes, and every
change in the order they are merged. Two changes made without knowing of each
other are shown as a conflict, with the one that stands; a change of another
handler that has not arrived yet is shown as a gap. 'amana sync' fetches what
the other handlers recorded.

Names are the handlers' names in the desk's manifest as this machine trusts it.
Notes, tags and every other text a handler wrote are printed with control
characters escaped. The report itself is printed by 'amana show'.

A case this machine knows by its changes only (a coordinator follows the cases
outside their categories by their facts: status, severity, assignees, times,
never a text) is shown from those.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseShow(e, &o, args[0]) },
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the state and history as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("identity")
	return cmd
}

func runCaseShow(e *env, o *caseShowOptions, prefix string) error {
	st, err := e.cases()
	if err != nil {
		return err
	}
	if _, err := st.Resolve(prefix); errors.Is(err, cases.ErrNotFound) {
		return e.showUnheld(o, st, prefix)
	}
	c, err := e.openJournalCase(prefix, o.identity, "")
	if err != nil {
		return err
	}
	s, err := c.j.State(c.trust, c.meta.ID)
	if err != nil {
		return fail(ExitError, "run 'amana sync' to fetch the case's changes again", err, "cannot read the journal of case %s", c.meta.ID[:12])
	}
	wf := c.man.Flow()
	if o.json {
		return writeJSON(e.stdout, stateToJSON(c.man, wf, c.meta, s))
	}
	printState(e.stdout, c, wf, s, time.Now())
	return nil
}

// showUnheld shows a case this machine knows by its changes only: a
// coordinator's view of a case outside their categories (its facts), or
// a case whose report has not been pulled here yet.
func (e *env) showUnheld(o *caseShowOptions, st *cases.Store, prefix string) error {
	id, err := e.loadIdentity(o.identity)
	if err != nil {
		return err
	}
	j, err := e.openJournal(st, id)
	if err != nil {
		return err
	}
	t := e.syncTrust(st, "")
	states, _ := j.States(t)
	var match []string
	for cid := range states {
		if strings.HasPrefix(cid, strings.ToLower(prefix)) && prefix != "" {
			match = append(match, cid)
		}
	}
	switch {
	case len(match) == 0:
		return fail(ExitUsage, "run 'amana list' to see the case IDs", nil, "no case %q", prefix)
	case len(match) > 1:
		return fail(ExitUsage, "give more characters of the ID", nil, "%q matches more than one case", prefix)
	}
	s := states[match[0]]
	man, err := t.Manifest(s.Desk)
	if err != nil {
		return noManifest(s.Desk)
	}
	meta := &cases.Meta{ID: s.Case, Desk: s.Desk, Category: s.Category, Received: s.Received}
	if meta.ID == "" {
		meta.ID = match[0]
	}
	wf := man.Flow()
	if o.json {
		return writeJSON(e.stdout, stateToJSON(man, wf, meta, s))
	}
	fmt.Fprintf(e.stderr, "note: case %s is not held here: its state comes from its changes alone\n", meta.ID[:12])
	printState(e.stdout, &journalCase{st: st, meta: meta, id: id, j: j, trust: t, man: man}, wf, s, time.Now())
	return nil
}

// printState prints a case's state as 'amana case show' does.
func printState(w io.Writer, c *journalCase, wf crypto.Workflow, s *journal.State, now time.Time) {
	m, me := c.man, c.id
	if s == nil {
		s = &journal.State{}
	}
	row := &caseRow{meta: c.meta, state: s, man: m, status: statusOf(wf, s)}
	row.age = row.ageAt(now)
	line := func(k, v string) { fmt.Fprintf(w, "%-13s %s\n", k+":", v) }
	line("case", c.meta.ID)
	line("desk", clean(c.meta.Desk, false))
	if cat := row.category(); cat != "" {
		line("category", clean(cat, false))
	}
	line("received", clean(row.received(), false)+" ("+ageText(row.age)+" ago)")
	status := clean(row.status, false)
	if s.Reopened > 0 {
		status += fmt.Sprintf(" (reopened %d time(s))", s.Reopened)
	}
	line("status", status)
	if s.CloseReason != "" && isFinal(wf, row.status) {
		line("close reason", clean(s.CloseReason, false))
	}
	sev := "-"
	if s.Severity != "" {
		sev = clean(s.Severity, false)
		for _, v := range wf.Severities {
			if v.ID == s.Severity && v.Meaning != "" {
				sev += ": " + clean(v.Meaning, false)
			}
		}
	}
	line("severity", sev)
	line("assignees", namesOr(m, s.Assignees, me, "nobody"))
	line("tags", cleanList(s.Tags, "-"))
	for _, l := range s.Links {
		line("link", clean(l.Rel, false)+" "+clean(l.Case, false))
	}
	if r := s.Referral; r != nil {
		consent := "no"
		if r.Consent {
			consent = "yes"
		}
		v := "to " + clean(r.To, false) + ", the submitter consented: " + consent
		if r.Outcome != "" {
			v += ", outcome: " + clean(r.Outcome, false)
		}
		line("referral", v)
	}
	for _, t := range []struct{ k, v string }{{"responded", s.FirstResponse}, {"acknowledged", s.Acknowledged}, {"resolved", s.Resolved}, {"closed", s.Closed}, {"updated", s.Updated}} {
		if t.v != "" {
			line(t.k, clean(t.v, false))
		}
	}
	if len(s.Replies) > 0 {
		line("replies", fmt.Sprintf("%d sent with 'amana reply'", len(s.Replies)))
	}
	if s.Satisfaction > 0 {
		line("satisfaction", fmt.Sprintf("%d/5", s.Satisfaction))
		if comment := surveyComment(c, s.SatisfactionFollowup); comment != "" {
			line("comment", clean(comment, false))
		}
	}
	if len(s.ReceivedBy) > 0 {
		var who []string
		for _, k := range sortedKeys(s.ReceivedBy) {
			who = append(who, nameOf(m, k, me)+" "+clean(s.ReceivedBy[k], false))
		}
		line("pulled by", strings.Join(who, ", "))
	}
	if s.Disputed {
		fmt.Fprintln(w, "\ndisputed: this case is not held here, and its changes claim different reports; none is applied until the report arrives:")
		for _, c := range s.Claims {
			fmt.Fprintf(w, "  %s\n", claimText(m, c))
		}
	}
	if s.FactsOnly {
		fmt.Fprintln(w, "\nfacts only: you coordinate this desk and are not a handler of this case's category; its report, notes and texts are not encrypted to you")
	}
	if len(s.Conflicts) > 0 {
		fmt.Fprintf(w, "\nconflicts (%d): changes made without knowing of each other\n", len(s.Conflicts))
		for _, cf := range s.Conflicts {
			fmt.Fprintf(w, "  %s\n", conflictText(m, cf))
		}
	}
	if len(s.Gaps) > 0 {
		fmt.Fprintf(w, "\ngaps (%d): 'amana sync' may fetch them; a change that never arrives was dropped on the way\n", len(s.Gaps))
		for _, g := range s.Gaps {
			fmt.Fprintf(w, "  %s\n", gapText(m, g))
		}
	}
	if len(s.Notes) > 0 {
		fmt.Fprintf(w, "\nnotes (%d), internal, never shown to the submitter:\n", len(s.Notes))
		for _, n := range s.Notes {
			fmt.Fprintf(w, "\n-- %s, %s (change %d)\n%s\n", nameOf(m, n.Author, me), clean(n.Time, false), n.Seq, clean(n.Text, true))
		}
	}
	if len(s.History) == 0 {
		fmt.Fprintf(w, "\nhistory: no changes yet ('amana case set %s --status … -i KEY' makes the first)\n", c.meta.ID[:12])
		return
	}
	fmt.Fprintf(w, "\nhistory (%d), in merge order:\n", len(s.History))
	for _, h := range s.History {
		fmt.Fprintf(w, "  %s  %s #%d: %s\n", clean(h.Time, false), nameOf(m, h.Author, me), h.Seq, changeText(m, h.Change, me))
	}
}

// changeText says in words what a change does; texts are escaped, a note
// is only counted here (show prints notes in full).
func changeText(m *crypto.Manifest, ch crypto.Change, me *crypto.Identity) string {
	var parts []string
	add := func(f string, a ...any) { parts = append(parts, fmt.Sprintf(f, a...)) }
	if ch.Status != "" {
		add("status %s", clean(ch.Status, false))
	}
	if ch.CloseReason != "" {
		add("close reason %s", clean(ch.CloseReason, false))
	}
	if ch.Severity != "" {
		add("severity %s", clean(ch.Severity, false))
	}
	if len(ch.Assign) > 0 {
		add("assigned %s", namesOr(m, ch.Assign, me, ""))
	}
	if len(ch.Unassign) > 0 {
		add("unassigned %s", namesOr(m, ch.Unassign, me, ""))
	}
	if len(ch.Tag) > 0 {
		add("tagged %s", cleanList(ch.Tag, ""))
	}
	if len(ch.Untag) > 0 {
		add("untagged %s", cleanList(ch.Untag, ""))
	}
	if ch.Link != nil {
		add("linked %s %s", clean(ch.Link.Rel, false), clean(ch.Link.Case, false))
	}
	if ch.Unlink != nil {
		add("unlinked %s %s", clean(ch.Unlink.Rel, false), clean(ch.Unlink.Case, false))
	}
	if r := ch.Referral; r != nil {
		v := "referred to " + clean(r.To, false)
		if r.Consent {
			v += " with the submitter's consent"
		} else {
			v += " without the submitter's consent"
		}
		if r.Outcome != "" {
			v += ", outcome: " + clean(r.Outcome, false)
		}
		parts = append(parts, v)
	}
	if ch.Note != "" {
		add("note of %d line(s)", strings.Count(strings.TrimRight(ch.Note, "\n"), "\n")+1)
	}
	if ch.Reply != "" {
		add("replied to the submitter (reply %s)", clean(shortID(ch.Reply), false))
	}
	if ch.Received {
		add("pulled the case")
	}
	if ch.Custody != nil && ch.Custody.Action == "" {
		add("a custody action (facts only: which one stays with the case's route)")
	} else if ch.Custody != nil {
		add("custody: %s", clean(ch.Custody.Action, false))
	}
	if sat := ch.Satisfaction; sat != nil {
		add("recorded the submitter's satisfaction: %d/5", sat.Score)
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// namesOr names the handlers of keys, or says none.
func namesOr(m *crypto.Manifest, keys []string, me *crypto.Identity, none string) string {
	if len(keys) == 0 {
		return none
	}
	var out []string
	for _, k := range keys {
		out = append(out, nameOf(m, k, me))
	}
	return strings.Join(out, ", ")
}

// cleanList joins texts of other handlers, each escaped.
func cleanList(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	var out []string
	for _, t := range items {
		out = append(out, clean(t, false))
	}
	return strings.Join(out, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ageText writes an age the way list shows it: 40m, 5h, 3d.
func ageText(d time.Duration) string {
	switch {
	case d < 0:
		return "0m"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}
