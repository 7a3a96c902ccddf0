package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options bound a report.
type Options struct {
	// From and To are the first and last day of the cases, by their
	// received hour (To included). Zero: unbounded.
	From, To time.Time
	// Now is when the backlog is aged; zero means time.Now().
	Now time.Time
	// Desk names the desk the report is of; "" for every desk here.
	Desk string
	// Titles are the categories' titles in the desks' manifests, by
	// category ID and then language code ("" for the manifest's own
	// title); the HTML shows them in place of the IDs. Nil: IDs only.
	Titles map[string]map[string]string
}

// Report is a desk's figures over a date range: counts, durations and
// vocabulary words only.
type Report struct {
	From, To, Desk string // the days covered, YYYY-MM-DD; the desk or ""
	Total          int    // cases received in the range
	FactsOnly      int    // of them, followed from their facts only

	ByCategory, BySeverity, ByStatus, ByChannel []Count
	Weekly                                      []Week

	Acknowledge, FirstResponse, Resolve Durations
	// The cases of the range with a decided target for each step, and how
	// many of them met it.
	AcknowledgeTarget, FirstResponseTarget, ResolveTarget Target

	// Backlog: the cases of the range not in a final status, by their age
	// at Now.
	Backlog []Count

	Resolved, Reopened int // cases of the range resolved at least once; reopened at least once
	CloseReasons       []Count

	Referred, ReferralConsent, ReferralOutcome int

	// Satisfaction: the survey answers of the cases of the range.
	Satisfaction Satisfaction
	// Escalations: how many cases of the range reached each escalation
	// step, in the order of the steps' times.
	Escalations []Escalations

	titles map[string]map[string]string
}

// Count is a number of cases with one value.
type Count struct {
	Key string
	N   int
}

// Week is one week (Monday to Sunday, UTC) of the range.
type Week struct {
	Start    string // YYYY-MM-DD
	Received int    // cases received that week
	Resolved int    // cases of the range first resolved that week
	// ByCategory is Received by category, in the order of the report's
	// ByCategory.
	ByCategory []int
}

// Durations are the times from arrival to a step, over the cases of the
// range that reached it.
type Durations struct {
	N           int           // cases that reached it
	Median, P90 time.Duration // nearest rank; zero when N is 0
}

// Satisfaction sums the survey answers: each case's latest one.
type Satisfaction struct {
	Responses int
	// Scores counts the answers of each score: Scores[0] is 1, Scores[4] 5.
	Scores [5]int
}

// Mean is the mean score, 0 with no answer.
func (s Satisfaction) Mean() float64 {
	if s.Responses == 0 {
		return 0
	}
	sum := 0
	for i, n := range s.Scores {
		sum += (i + 1) * n
	}
	return float64(sum) / float64(s.Responses)
}

// Escalations counts the cases that reached one escalation step.
type Escalations struct {
	EscalationStep
	N int
}

// Target counts the cases with a target for one step, and those that met it.
type Target struct{ Cases, Met int }

// Percent is the share of the cases that met the target; 0 with none.
func (t Target) Percent() float64 {
	if t.Cases == 0 {
		return 0
	}
	return 100 * float64(t.Met) / float64(t.Cases)
}

func (t *Target) add(met *bool) {
	if met == nil {
		return
	}
	t.Cases++
	if *met {
		t.Met++
	}
}

// Backlog age buckets, in order.
var backlogBuckets = []struct {
	key string
	max time.Duration // exclusive; 0: no bound
}{
	{"lt1d", 24 * time.Hour},
	{"1to3d", 3 * 24 * time.Hour},
	{"3to7d", 7 * 24 * time.Hour},
	{"7to30d", 30 * 24 * time.Hour},
	{"ge30d", 0},
}

// Make computes the report of cs.
func Make(cs []Case, o Options) *Report {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := &Report{Desk: o.Desk, titles: o.Titles}
	var in []Case
	for _, c := range cs {
		if c.Received.IsZero() {
			continue
		}
		if !o.From.IsZero() && c.Received.Before(o.From) {
			continue
		}
		if !o.To.IsZero() && !c.Received.Before(o.To.AddDate(0, 0, 1)) {
			continue
		}
		if c.Severity == "" {
			c.Severity = NoSeverity
		}
		if c.Channel == "" {
			c.Channel = ChannelUnknown
		}
		in = append(in, c)
	}
	first, last := o.From, o.To
	for _, c := range in {
		if o.From.IsZero() && (first.IsZero() || c.Received.Before(first)) {
			first = c.Received
		}
		if o.To.IsZero() && (last.IsZero() || c.Received.After(last)) {
			last = c.Received
		}
	}
	if !first.IsZero() {
		r.From, r.To = day(first), day(last)
	}
	r.Total = len(in)
	cat, sev, st, ch, reasons, backlog := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	var ack, fr, res []time.Duration
	esc := map[EscalationStep]int{}
	for i := range in {
		c := &in[i]
		if c.FactsOnly {
			r.FactsOnly++
		}
		cat[c.Category]++
		sev[c.Severity]++
		st[c.Status]++
		ch[c.Channel]++
		if !c.Acknowledged.IsZero() {
			ack = append(ack, since(c, c.Acknowledged))
		}
		if !c.FirstResponse.IsZero() {
			fr = append(fr, since(c, c.FirstResponse))
		}
		if !c.Resolved.IsZero() {
			res = append(res, since(c, c.Resolved))
			r.Resolved++
		}
		if c.Reopened > 0 {
			r.Reopened++
		}
		r.AcknowledgeTarget.add(c.AcknowledgeMet)
		r.FirstResponseTarget.add(c.FirstResponseMet)
		r.ResolveTarget.add(c.ResolveMet)
		if c.Final && c.CloseReason != "" {
			reasons[c.CloseReason]++
		}
		if !c.Final {
			age := now.Sub(c.Received)
			for _, b := range backlogBuckets {
				if b.max == 0 || age < b.max {
					backlog[b.key]++
					break
				}
			}
		}
		if c.Satisfaction >= 1 && c.Satisfaction <= 5 {
			r.Satisfaction.Responses++
			r.Satisfaction.Scores[c.Satisfaction-1]++
		}
		for _, st := range c.Escalated {
			esc[st]++
		}
		if c.Referred {
			r.Referred++
			if c.ReferralConsent {
				r.ReferralConsent++
			}
			if c.ReferralOutcome {
				r.ReferralOutcome++
			}
		}
	}
	r.ByCategory, r.BySeverity, r.ByStatus, r.ByChannel = counts(cat), counts(sev), counts(st), counts(ch)
	r.CloseReasons = counts(reasons)
	for st, n := range esc {
		r.Escalations = append(r.Escalations, Escalations{st, n})
	}
	slices.SortFunc(r.Escalations, func(a, b Escalations) int {
		if a.AfterMinutes != b.AfterMinutes {
			return a.AfterMinutes - b.AfterMinutes
		}
		return strings.Compare(a.Unless+" "+a.Label, b.Unless+" "+b.Label)
	})
	for _, b := range backlogBuckets {
		r.Backlog = append(r.Backlog, Count{b.key, backlog[b.key]})
	}
	r.Acknowledge, r.FirstResponse, r.Resolve = durations(ack), durations(fr), durations(res)
	if !first.IsZero() {
		for w := periodStart(PeriodWeek, first); !w.After(last); w = w.AddDate(0, 0, 7) {
			wk := Week{Start: day(w)}
			next := w.AddDate(0, 0, 7)
			wk.ByCategory = make([]int, len(r.ByCategory))
			for _, c := range in {
				if !c.Received.Before(w) && c.Received.Before(next) {
					wk.Received++
					wk.ByCategory[slices.IndexFunc(r.ByCategory, func(x Count) bool { return x.Key == c.Category })]++
				}
				if !c.Resolved.IsZero() && !c.Resolved.Before(w) && c.Resolved.Before(next) {
					wk.Resolved++
				}
			}
			r.Weekly = append(r.Weekly, wk)
		}
	}
	return r
}

func since(c *Case, t time.Time) time.Duration {
	if d := t.Sub(c.Received); d > 0 {
		return d
	}
	return 0
}

// counts sorts m's counts, largest first, then by key.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.N != b.N {
			return b.N - a.N
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

func durations(ds []time.Duration) Durations {
	if len(ds) == 0 {
		return Durations{}
	}
	slices.Sort(ds)
	at := func(p int) time.Duration {
		r := (p*len(ds) + 99) / 100
		return ds[max(r, 1)-1]
	}
	return Durations{N: len(ds), Median: at(50), P90: at(90)}
}

// ReopenRate is the share of the resolved cases reopened at least once, in
// percent; 0 with no resolved case.
func (r *Report) ReopenRate() float64 {
	if r.Resolved == 0 {
		return 0
	}
	return 100 * float64(r.Reopened) / float64(r.Resolved)
}

// WriteCSV writes the report's figures as CSV: section, item, value; one
// line per figure. Durations are in whole minutes.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rec := func(section, item string, v int) {
		cw.Write([]string{section, item, strconv.Itoa(v)})
	}
	cw.Write([]string{"section", "item", "value"})
	cw.Write([]string{"range", "from", r.From})
	cw.Write([]string{"range", "to", r.To})
	if r.Desk != "" {
		cw.Write([]string{"range", "desk", r.Desk})
	}
	rec("cases", "total", r.Total)
	rec("cases", "facts_only", r.FactsOnly)
	for _, s := range []struct {
		name string
		cs   []Count
	}{{"category", r.ByCategory}, {"severity", r.BySeverity}, {"status", r.ByStatus}, {"channel", r.ByChannel}, {"backlog_age", r.Backlog}, {"close_reason", r.CloseReasons}} {
		for _, c := range s.cs {
			rec(s.name, c.Key, c.N)
		}
	}
	for _, wk := range r.Weekly {
		rec("week_received", wk.Start, wk.Received)
		rec("week_resolved", wk.Start, wk.Resolved)
		for i, n := range wk.ByCategory {
			rec("week_category", wk.Start+" "+r.ByCategory[i].Key, n)
		}
	}
	for _, d := range []struct {
		name string
		d    Durations
		t    Target
	}{{"acknowledge", r.Acknowledge, r.AcknowledgeTarget}, {"first_response", r.FirstResponse, r.FirstResponseTarget}, {"resolve", r.Resolve, r.ResolveTarget}} {
		rec(d.name, "cases", d.d.N)
		if d.d.N > 0 {
			rec(d.name, "median_minutes", int(d.d.Median/time.Minute))
			rec(d.name, "p90_minutes", int(d.d.P90/time.Minute))
		}
		if d.t.Cases > 0 {
			rec(d.name, "with_target", d.t.Cases)
			rec(d.name, "within_target", d.t.Met)
		}
	}
	rec("reopen", "resolved", r.Resolved)
	rec("reopen", "reopened", r.Reopened)
	rec("referral", "referred", r.Referred)
	rec("referral", "with_consent", r.ReferralConsent)
	rec("referral", "with_outcome", r.ReferralOutcome)
	rec("satisfaction", "responses", r.Satisfaction.Responses)
	for i, n := range r.Satisfaction.Scores {
		rec("satisfaction", "score_"+strconv.Itoa(i+1), n)
	}
	if r.Satisfaction.Responses > 0 {
		cw.Write([]string{"satisfaction", "mean", strconv.FormatFloat(r.Satisfaction.Mean(), 'f', 2, 64)})
	}
	for _, e := range r.Escalations {
		rec("escalation", fmt.Sprintf("%s after %d minutes without %s", e.Label, e.AfterMinutes, e.Unless), e.N)
	}
	cw.Flush()
	return cw.Error()
}
