package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/handler/report"
	"github.com/amana-relay/amana/handler/sla"
	"github.com/amana-relay/amana/relay/api"
)

type reportOptions struct {
	identity  string
	from, to  string
	desk      string
	lang      string
	html, csv string
	json      string
	aggregate bool
	period    string
	k         int
	exclude   []string
}

func newReport(e *env) *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report -i KEY --from DATE --to DATE (--html FILE | --csv FILE | --aggregate ...)",
		Short: "write a desk's report, or an aggregate safe to share upward",
		Long: `Write the figures of the cases received from --from to --to (dates, YYYY-MM-DD,
both included), computed on this machine from the case journal: nothing is sent.

Without --aggregate, the report for the desk itself: --html writes a static page
(inline SVG charts, no script, nothing from another origin, printable; right to
left with --lang ar), --csv its figures as CSV. It gives volumes by category,
severity, status and channel, weekly trends, the median and 90th percentile of the
time to acknowledge, first response and resolution, the share within each target,
the escalations (cases that reached each escalation step), the backlog by age,
the reopen rate, close reasons, referrals and satisfaction (the submitters'
survey answers: how many, the mean, and how many gave each score 1 to 5).

With --aggregate, only counts and durations by --period (week or month),
category, severity and channel, with every count below --k suppressed and more
cells suppressed so that none can be recomputed from the totals: --csv writes it
with HXL hashtags on its second row, --json as documented in docs/reports.md.

Neither carries a case ID, a note, a tag, a reply or any other text typed on a
case, nor any survey comment. The channel (cli: the amana CLI; browser: the page
with JavaScript; no-js: the page without; self: a file encrypted with age;
client: a submitter's device, from a client older than the CLI/browser split) is
read from each report this machine can open, in memory; a case followed from its
facts only counts as "unknown". Existing files are not
overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runReport(e, &o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	f.StringVar(&o.from, "from", "", "the first day of cases, YYYY-MM-DD, by the hour they were received (required)")
	f.StringVar(&o.to, "to", "", "the last day, YYYY-MM-DD, included (required)")
	f.StringVar(&o.desk, "desk", "", "only this desk's cases (default: every desk here)")
	f.StringVar(&o.lang, "lang", "en", "the report's language: en, ar or fr")
	f.StringVar(&o.html, "html", "", "write the report as a static HTML page to this file")
	f.StringVar(&o.csv, "csv", "", "write the report's figures (or, with --aggregate, the aggregate) as CSV to this file")
	f.StringVar(&o.json, "json", "", "with --aggregate: write the aggregate as JSON to this file")
	f.BoolVar(&o.aggregate, "aggregate", false, "write the aggregate safe to share upward instead of the report")
	f.StringVar(&o.period, "period", report.PeriodWeek, "with --aggregate: week or month")
	f.IntVar(&o.k, "k", report.DefaultK, "with --aggregate: the smallest count published (at least 2)")
	f.StringSliceVar(&o.exclude, "exclude-category", nil, "leave this category's cases out (repeatable)")
	cmd.RegisterFlagCompletionFunc("period", cobra.FixedCompletions([]string{report.PeriodWeek, report.PeriodMonth}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions([]string{"en", "ar", "fr"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("desk", e.completeDesks)
	cmd.MarkFlagRequired("identity")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

// parseDay parses a YYYY-MM-DD date as the start of that day in UTC.
func parseDay(flag, s string) (time.Time, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fail(ExitUsage, "give a date like 2026-11-30", nil, "--%s %q is not a date", flag, s)
	}
	return t, nil
}

func runReport(e *env, o *reportOptions) error {
	from, err := parseDay("from", o.from)
	if err != nil {
		return err
	}
	to, err := parseDay("to", o.to)
	if err != nil {
		return err
	}
	if to.Before(from) {
		return fail(ExitUsage, "give a --to on or after --from", nil, "--to %s is before --from %s", o.to, o.from)
	}
	if o.aggregate {
		if o.html != "" {
			return fail(ExitUsage, "write the report and the aggregate with two commands", nil, "--html and --aggregate do not go together")
		}
		if o.csv == "" && o.json == "" {
			return fail(ExitUsage, "give --csv FILE, --json FILE or both", nil, "nothing to write")
		}
		if o.period != report.PeriodWeek && o.period != report.PeriodMonth {
			return fail(ExitUsage, "give --period week or --period month", nil, "--period %q is not a period", o.period)
		}
		if o.k < 2 {
			return fail(ExitUsage, "give --k 2 or more (5 by default)", nil, "--k %d suppresses nothing", o.k)
		}
	} else {
		if o.json != "" {
			return fail(ExitUsage, "--json writes the aggregate: add --aggregate", nil, "--json needs --aggregate")
		}
		if o.html == "" && o.csv == "" {
			return fail(ExitUsage, "give --html FILE, --csv FILE or both", nil, "nothing to write")
		}
		if _, ok := report.Languages[o.lang]; !ok {
			return fail(ExitUsage, "give --lang en, ar or fr", nil, "--lang %q is not a language of the report", o.lang)
		}
	}
	cs, titles, err := e.reportCases(o.identity, o.desk)
	if err != nil {
		return err
	}
	cs = slices.DeleteFunc(cs, func(c report.Case) bool { return slices.Contains(o.exclude, c.Category) })
	if o.aggregate {
		a, err := report.MakeAggregate(cs, report.AggregateOptions{Period: o.period, K: o.k, From: from, To: to})
		if err != nil {
			return fail(ExitUsage, "", err, "cannot make the aggregate")
		}
		return writeOutputs(e, []output{{o.csv, a.WriteCSV}, {o.json, a.WriteJSON}})
	}
	r := report.Make(cs, report.Options{From: from, To: to, Now: time.Now(), Desk: o.desk, Titles: titles})
	return writeOutputs(e, []output{
		{o.html, func(w io.Writer) error { return r.WriteHTML(w, o.lang) }},
		{o.csv, r.WriteCSV},
	})
}

type output struct {
	path  string
	write func(io.Writer) error
}

// writeOutputs renders every output first, then writes the files, each new
// with mode 0600.
func writeOutputs(e *env, outs []output) error {
	bufs := make([]*bytes.Buffer, len(outs))
	for i, o := range outs {
		if o.path == "" {
			continue
		}
		if _, err := os.Lstat(o.path); err == nil {
			return fail(ExitError, "choose another path, or move the existing file away first", nil, "%s already exists", o.path)
		}
		bufs[i] = new(bytes.Buffer)
		if err := o.write(bufs[i]); err != nil {
			return fail(ExitError, "", err, "cannot write the report")
		}
	}
	for i, o := range outs {
		if o.path == "" {
			continue
		}
		if err := writeNew(o.path, bufs[i].Bytes()); err != nil {
			return err
		}
		if !e.quiet {
			fmt.Fprintf(e.stderr, "wrote %s\n", o.path)
		}
	}
	return nil
}

// reportCases is every case here (of desk, when given) as the report
// package sees it, with the categories' titles in the trusted manifests.
func (e *env) reportCases(identity, desk string) ([]report.Case, map[string]map[string]string, error) {
	rows, id, err := e.caseRows(identity, time.Now())
	if err != nil {
		return nil, nil, err
	}
	st, err := e.cases()
	if err != nil {
		return nil, nil, err
	}
	// The clocks need each case's status timeline, which the list's
	// states do not carry: replayed for the desks that set targets, as
	// 'amana sla' does.
	full, err := e.histories(slices.DeleteFunc(slices.Clone(rows), func(r *caseRow) bool { return !hasTargets(r.wf) }), id)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	var out []report.Case
	titles := map[string]map[string]string{}
	for _, r := range rows {
		if desk != "" && r.meta.Desk != desk {
			continue
		}
		if r.man != nil {
			for _, c := range r.man.Categories {
				if titles[c.ID] != nil {
					continue
				}
				t := map[string]string{"": clean(c.Title, false)}
				for l, s := range c.Labels {
					t[l] = clean(s, false)
				}
				titles[c.ID] = t
			}
		}
		wf := r.wf
		c := report.FromState(r.state, r.received(), channelOf(st, r, id), func(s string) bool { return isFinal(wf, s) })
		if c.Category == "" {
			c.Category = r.category()
			if r.meta.ReportCategory != nil {
				c.Category = *r.meta.ReportCategory
			}
		}
		c.Status = r.status
		c.Final = isFinal(wf, r.status)
		if h := full[r.meta.ID]; h != nil {
			within(&c, wf, r, h, now)
		}
		out = append(out, c)
	}
	return out, titles, nil
}

// channelOf is how a case arrived: from the case store's kind, or from its
// report.json's sealed_by and client, decrypted in memory (a client-sealed
// report from before the client member counts as "client"); "unknown" for a case not
// held here or not readable with id.
func channelOf(st *cases.Store, r *caseRow, id *crypto.Identity) string {
	if !r.held {
		return report.ChannelUnknown
	}
	if r.meta.Kind == api.KindSelf {
		return report.ChannelSelf
	}
	f, err := os.Open(st.BundlePath(r.meta.ID))
	if err != nil {
		return report.ChannelUnknown
	}
	defer f.Close()
	br, err := crypto.OpenBundle(f, id.Age())
	if err != nil {
		return report.ChannelUnknown
	}
	switch rep := br.Report(); rep.SealedBy {
	case crypto.SealedByClient:
		switch rep.Client {
		case crypto.ClientCLI:
			return report.ChannelCLI
		case crypto.ClientBrowser:
			return report.ChannelBrowser
		}
		return report.ChannelClient
	case crypto.SealedByServer:
		return report.ChannelNoJS
	}
	return report.ChannelUnknown
}

// within fills whether each step of c met its target, and the escalation
// steps it reached, from handler/sla's
// clocks over the case's full state h: met when the clock stopped in time,
// not met when it stopped late or runs past its target, undecided (nil)
// while it may still be met or when the case ended without reaching it.
func within(c *report.Case, wf crypto.Workflow, r *caseRow, h *journal.State, now time.Time) {
	row := *r
	row.state = h
	k, err := sla.Check(wf, slaState(&row), now, sla.Options{})
	if err != nil {
		return
	}
	for _, st := range k.Reached {
		c.Escalated = append(c.Escalated, report.EscalationStep{Label: st.Label, AfterMinutes: st.AfterMinutes, Unless: st.Unless})
	}
	for _, ck := range k.Clocks {
		var met *bool
		switch ck.State {
		case sla.Met:
			met = new(bool)
			*met = true
		case sla.Missed, sla.Breached:
			met = new(bool)
		}
		switch ck.Name {
		case sla.Acknowledge:
			c.AcknowledgeMet = met
		case sla.FirstResponse:
			c.FirstResponseMet = met
		case sla.Resolve:
			c.ResolveMet = met
		}
	}
}
