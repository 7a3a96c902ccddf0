package cli

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
)

type triageOptions struct {
	identity string
	json     bool
	all      bool
}

func newTriage(e *env) *cobra.Command {
	var o triageOptions
	cmd := &cobra.Command{
		Use:   "triage -i KEY",
		Short: "list the open cases in the order to look at them",
		Long: `List the cases that are not closed, in the order to look at them: first the new
cases nobody is assigned to, then the others; within each, the most severe first
(on the desk's scale; a case with no severity yet after the least severe), then
the oldest first. A case in one of the desk's final statuses (by default
resolved, rejected, closed) is left out; --all keeps them, last.

It reads the case journal on this machine; 'amana sync' (or 'amana pull') brings
the other handlers' changes first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runTriage(e, &o) },
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the cases as JSON, in triage order (docs/cli.md)")
	cmd.Flags().BoolVar(&o.all, "all", false, "list the cases in a final status too, after the others")
	cmd.MarkFlagRequired("identity")
	return cmd
}

// triageGroup is a row's place in triage: 0 new and unassigned, 1 other
// open cases, 2 final (only with --all).
func triageGroup(r *caseRow) int {
	switch {
	case isFinal(r.wf, r.status):
		return 2
	case len(r.wf.Statuses) > 0 && r.status == r.wf.Statuses[0] && len(r.assignees()) == 0:
		return 0
	}
	return 1
}

func byTriage(a, b *caseRow) int {
	if d := triageGroup(a) - triageGroup(b); d != 0 {
		return d
	}
	return bySeverityThenAge(a, b)
}

func runTriage(e *env, o *triageOptions) error {
	rows, _, err := e.caseRows(o.identity, time.Now())
	if err != nil {
		return err
	}
	if !o.all {
		rows = slices.DeleteFunc(rows, func(r *caseRow) bool { return triageGroup(r) == 2 })
	}
	slices.SortFunc(rows, byTriage)
	if o.json {
		return printRowsJSON(e, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stderr, "nothing to triage: every case here is closed ('amana sync' brings new changes, 'amana pull' new cases)")
		return nil
	}
	n := 0
	for _, r := range rows {
		if triageGroup(r) == 0 {
			n++
		}
	}
	fmt.Fprintf(e.stderr, "%d new case(s) nobody is assigned to, then %d other(s); most severe, then oldest, first\n", n, len(rows)-n)
	return printRows(e.stdout, e.stderr, rows)
}
