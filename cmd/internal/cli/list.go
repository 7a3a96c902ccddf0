package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
)

type listOptions struct {
	json bool
	// identity opens the case journal; without it list shows the case
	// store's metadata only, as before the journal.
	identity string
	journalFilter
}

// journalFilter holds the filters of list (and triage), all read from the
// case journal. The zero value keeps every case.
type journalFilter struct {
	status, severity, category []string // any of
	tags                       []string // all of
	assignee                   string   // a handler name or "me"; "" any
	unassigned                 bool
	olderThan                  string // a duration (ui.ParseDuration); "" any age
}

func (f *journalFilter) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.status, "status", nil, "only cases with this status (repeat for any of several)")
	fl.StringArrayVar(&f.severity, "severity", nil, "only cases of this severity (repeat for any of several)")
	fl.StringArrayVar(&f.category, "category", nil, "only cases of this category (repeat for any of several)")
	fl.StringArrayVar(&f.tags, "tag", nil, "only cases with this tag (repeat: with all of them)")
	fl.StringVar(&f.assignee, "assignee", "", "only cases assigned to this handler, by name, or me")
	fl.BoolVar(&f.unassigned, "unassigned", false, "only cases assigned to nobody")
	fl.StringVar(&f.olderThan, "older-than", "", "only cases received longer ago than this, like 72h or 14d")
}

// set reports whether any filter is given.
func (f *journalFilter) set() bool {
	return len(f.status)+len(f.severity)+len(f.category)+len(f.tags) > 0 || f.assignee != "" || f.unassigned || f.olderThan != ""
}

func newList(e *env) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list [-i KEY [filters]]",
		Short: "list the cases in the local case store, each with its thread",
		Long: `List the cases in the local case store, oldest first. The follow-ups and reply
copies of a report are listed under it, indented, in the order they arrived; a
thread whose report this store does not hold is listed under "(report not here)".
--json prints every case's metadata as one flat list, without the grouping.

With -i KEY, list reads the case journal (encrypted to your key) and lists the
cases (reports and self-sealed files; their threads are in 'amana show') with
their status, severity, assignees and age, most severe first, then oldest first.
The filters need -i: --status, --severity and --category keep the cases with any
of the values given, --tag the cases with all the tags given, --assignee NAME
(or me) the cases assigned to that handler, --unassigned those assigned to
nobody, --older-than the cases received longer ago than a duration (72h, 14d).
Statuses and severities are the desks' ('amana desk show' lists them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.identity != "" {
				return runJournalList(e, &o)
			}
			if o.journalFilter.set() {
				return fail(ExitUsage, "give your identity file with -i KEY: status, severity, assignees and tags are in the case journal, encrypted to it", nil, "the filters need the case journal")
			}
			st, err := e.cases()
			if err != nil {
				return err
			}
			all, err := st.List()
			if err != nil {
				return err
			}
			if o.json {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if all == nil {
					return enc.Encode([]any{})
				}
				return enc.Encode(all)
			}
			if len(all) == 0 {
				fmt.Fprintln(e.stderr, "no cases yet; run 'amana pull --relay URL -i KEY'")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRECEIVED\tKIND\tDESK\tCATEGORY\tSIZE\tSTATUS")
			for _, g := range groupThreads(all) {
				if g.report != nil {
					listRow(tw, "", g.report)
				} else {
					fmt.Fprintf(tw, "(report not here)\t-\treport\t%s\t-\t-\tthread of a report this store does not hold\n", clean(g.items[0].Desk, false))
				}
				for _, m := range g.items {
					listRow(tw, "  └ ", m)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, m := range all {
				if m.Damaged {
					fmt.Fprintln(e.stderr, "hint: a damaged case's case.json can be restored from a backup, or its folder removed and the case pulled again while the relay holds it")
					break
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file: list the cases with their state from the case journal")
	o.journalFilter.add(cmd)
	return cmd
}

func listRow(w io.Writer, indent string, m *cases.Meta) {
	if m.Damaged {
		fmt.Fprintf(w, "%s%s\t-\t-\t-\t-\t-\tdamaged: its case.json does not read\n", indent, m.ID[:12])
		return
	}
	status := "new"
	if m.Opened {
		status = "opened"
	}
	cat := m.Category
	if cat == "" {
		cat = "-"
	}
	kind := clean(m.Kind, false)
	if kind == "" {
		kind = "report"
	}
	fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\n", indent, m.ID[:12], clean(m.Received, false), kind, clean(m.Desk, false), clean(cat, false), ui.Size(m.Size), status)
}

// listGroup is a case and the follow-ups and replies filed under its
// mailbox; report is nil for the thread of a report the store lacks.
type listGroup struct {
	report *cases.Meta
	items  []*cases.Meta
}

// groupThreads puts each follow-up and reply under its report, by the
// mailbox the case store records, in the order the cases arrived; the
// threads of reports not in the store come where their first item arrived.
func groupThreads(all []*cases.Meta) []*listGroup {
	var out []*listGroup
	byMailbox := map[string]*listGroup{}
	for _, m := range all {
		if handler.IsReport(m) && m.Mailbox != "" && byMailbox[m.Mailbox] == nil {
			g := &listGroup{report: m}
			byMailbox[m.Mailbox] = g
		}
	}
	placed := map[*listGroup]bool{}
	for _, m := range all {
		switch g := byMailbox[m.Mailbox]; {
		case handler.InThread(m) && g != nil:
			g.items = append(g.items, m)
			if g.report == nil && !placed[g] {
				placed[g] = true
				out = append(out, g)
			}
		case handler.InThread(m):
			g = &listGroup{items: []*cases.Meta{m}}
			byMailbox[m.Mailbox] = g
			placed[g] = true
			out = append(out, g)
		case g != nil && g.report == m:
			placed[g] = true
			out = append(out, g)
		default:
			out = append(out, &listGroup{report: m})
		}
	}
	return out
}
