package report

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Periods of an aggregate.
const (
	PeriodWeek  = "week"  // ISO weeks, Monday to Sunday, UTC
	PeriodMonth = "month" // calendar months, UTC
)

// DefaultK is the smallest count an aggregate publishes.
const DefaultK = 5

// AggregateSchema names the JSON aggregate's format (docs/reports.md).
const AggregateSchema = "amana-aggregate/1"

// Row kinds of an aggregate.
const (
	KindCell          = "cell"           // one category, severity and channel
	KindCategoryTotal = "category_total" // one category, all severities and channels
	KindColumnTotal   = "column_total"   // one severity and channel, all categories
	KindTotal         = "total"          // everything in the period
)

// All stands for "every value" in a total row's dimensions.
const All = "*"

// NoSeverity is the severity of a case none was set on.
const NoSeverity = "none"

// AggregateOptions are the aggregate's parameters.
type AggregateOptions struct {
	// Period is PeriodWeek or PeriodMonth; "" means PeriodWeek.
	Period string
	// K: counts from 1 to K-1 are suppressed; 0 means DefaultK. At least 2.
	K int
	// From and To bound the cases by their received hour; both are
	// widened to whole periods. Zero From: from the first case's period;
	// zero To: to the last case's.
	From, To time.Time
}

// Aggregate is a table safe to share upward: counts and durations by
// period, category, severity and channel.
type Aggregate struct {
	Schema     string   `json:"schema"`
	Period     string   `json:"period"`
	K          int      `json:"k"`
	From       string   `json:"from"` // first day, YYYY-MM-DD
	To         string   `json:"to"`   // last day
	Categories []string `json:"categories"`
	Severities []string `json:"severities"`
	Channels   []string `json:"channels"`
	Rows       []Row    `json:"rows"`
}

// Row is one published line: a cell or a total of one period.
type Row struct {
	Start    string `json:"start"` // the period's first day
	End      string `json:"end"`   // its last day
	Kind     string `json:"kind"`
	Category string `json:"category"` // All in a column total and the total
	Severity string `json:"severity"` // All in a category total and the total
	Channel  string `json:"channel"`
	// Count is nil when suppressed.
	Count      *int `json:"count"`
	Suppressed bool `json:"suppressed,omitempty"`
	// Median and 90th percentile of whole hours from arrival, over the
	// row's cases that reached it; nil when the row is suppressed or
	// fewer than K of its cases reached it.
	Acknowledge   *Quantiles `json:"acknowledge"`
	FirstResponse *Quantiles `json:"first_response"`
	Resolve       *Quantiles `json:"resolve"`
}

// Quantiles are a duration's median and 90th percentile, in hours.
type Quantiles struct {
	Median int `json:"median_hours"`
	P90    int `json:"p90_hours"`
}

// Errors.
var ErrOptions = errors.New("invalid aggregate options")

// MakeAggregate builds the aggregate of cs.
func MakeAggregate(cs []Case, o AggregateOptions) (*Aggregate, error) {
	if o.Period == "" {
		o.Period = PeriodWeek
	}
	if o.Period != PeriodWeek && o.Period != PeriodMonth {
		return nil, fmt.Errorf("%w: period %q (week or month)", ErrOptions, o.Period)
	}
	if o.K == 0 {
		o.K = DefaultK
	}
	if o.K < 2 {
		return nil, fmt.Errorf("%w: k %d (at least 2)", ErrOptions, o.K)
	}
	var in []Case
	for _, c := range cs {
		if c.Received.IsZero() {
			continue
		}
		if !o.From.IsZero() && c.Received.Before(periodStart(o.Period, o.From)) {
			continue
		}
		if !o.To.IsZero() && !c.Received.Before(periodNext(o.Period, o.To)) {
			continue
		}
		in = append(in, c)
	}
	a := &Aggregate{Schema: AggregateSchema, Period: o.Period, K: o.K, Rows: []Row{}}
	first, last := o.From, o.To
	for _, c := range in {
		if first.IsZero() || (o.From.IsZero() && c.Received.Before(first)) {
			first = c.Received
		}
		if last.IsZero() || (o.To.IsZero() && c.Received.After(last)) {
			last = c.Received
		}
	}
	cats, sevs, chans := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range in {
		if in[i].Severity == "" {
			in[i].Severity = NoSeverity
		}
		if in[i].Channel == "" {
			in[i].Channel = ChannelUnknown
		}
		cats[in[i].Category] = true
		sevs[in[i].Severity] = true
		chans[in[i].Channel] = true
	}
	a.Categories, a.Severities, a.Channels = keys(cats), keys(sevs), keys(chans)
	if first.IsZero() {
		a.Categories, a.Severities, a.Channels = []string{}, []string{}, []string{}
		return a, nil
	}
	a.From = day(periodStart(o.Period, first))
	a.To = day(periodNext(o.Period, last).AddDate(0, 0, -1))
	type col struct{ sev, ch string }
	var columns []col
	for _, s := range a.Severities {
		for _, ch := range a.Channels {
			columns = append(columns, col{s, ch})
		}
	}
	R, C := len(a.Categories), len(columns)
	catIdx := index(a.Categories)
	colIdx := map[col]int{}
	for j, c := range columns {
		colIdx[c] = j
	}
	for p := periodStart(o.Period, first); !p.After(last); p = periodNext(o.Period, p) {
		next := periodNext(o.Period, p)
		groups := make([][][]*Case, R+1)
		for i := range groups {
			groups[i] = make([][]*Case, C+1)
		}
		for i := range in {
			c := &in[i]
			if c.Received.Before(p) || !c.Received.Before(next) {
				continue
			}
			r, k := catIdx[c.Category], colIdx[col{c.Severity, c.Channel}]
			for _, rc := range [4][2]int{{r, k}, {r, C}, {R, k}, {R, C}} {
				groups[rc[0]][rc[1]] = append(groups[rc[0]][rc[1]], c)
			}
		}
		v := make([][]int, R+1)
		for i := range v {
			v[i] = make([]int, C+1)
			for j := range v[i] {
				v[i][j] = len(groups[i][j])
			}
		}
		s := suppress(v, o.K)
		for i := 0; i <= R; i++ {
			for j := 0; j <= C; j++ {
				row := Row{Start: day(p), End: day(next.AddDate(0, 0, -1)), Category: All, Severity: All, Channel: All}
				switch {
				case i < R && j < C:
					row.Kind = KindCell
				case i < R:
					row.Kind = KindCategoryTotal
				case j < C:
					row.Kind = KindColumnTotal
				default:
					row.Kind = KindTotal
				}
				if i < R {
					row.Category = a.Categories[i]
				}
				if j < C {
					row.Severity, row.Channel = columns[j].sev, columns[j].ch
				}
				if s[i][j] {
					row.Suppressed = true
				} else {
					n := v[i][j]
					row.Count = &n
					g := groups[i][j]
					row.Acknowledge = quantiles(g, o.K, func(c *Case) time.Time { return c.Acknowledged })
					row.FirstResponse = quantiles(g, o.K, func(c *Case) time.Time { return c.FirstResponse })
					row.Resolve = quantiles(g, o.K, func(c *Case) time.Time { return c.Resolved })
				}
				a.Rows = append(a.Rows, row)
			}
		}
	}
	return a, nil
}

// quantiles is the median and 90th percentile of the hours to reach at, or
// nil when fewer than k cases of g reached it.
func quantiles(g []*Case, k int, at func(*Case) time.Time) *Quantiles {
	var hs []int
	for _, c := range g {
		if h, ok := c.hoursTo(at(c)); ok {
			hs = append(hs, h)
		}
	}
	if len(hs) < k {
		return nil
	}
	sort.Ints(hs)
	return &Quantiles{Median: nearestRank(hs, 50), P90: nearestRank(hs, 90)}
}

// nearestRank is the p-th percentile of sorted xs by the nearest-rank
// method: the smallest value with at least p% of xs at or below it.
func nearestRank(xs []int, p int) int {
	r := (p*len(xs) + 99) / 100
	if r < 1 {
		r = 1
	}
	return xs[r-1]
}

func periodStart(period string, t time.Time) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if period == PeriodMonth {
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	wd := (int(d.Weekday()) + 6) % 7 // Monday 0
	return d.AddDate(0, 0, -wd)
}

func periodNext(period string, t time.Time) time.Time {
	s := periodStart(period, t)
	if period == PeriodMonth {
		return s.AddDate(0, 1, 0)
	}
	return s.AddDate(0, 0, 7)
}

func day(t time.Time) string { return t.Format("2006-01-02") }

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func index(s []string) map[string]int {
	m := make(map[string]int, len(s))
	for i, x := range s {
		m[x] = i
	}
	return m
}

// WriteJSON writes the aggregate as JSON (docs/reports.md).
func (a *Aggregate) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(a)
}

// HXL hashtags of the CSV's second row, column by column (HXL 1.1 hashtag
// dictionary, https://hxlstandard.org/standard/1-1final/dictionary/; see
// docs/reports.md).
var csvColumns = []struct{ header, tag string }{
	{"Period start", "#date+start"},
	{"Period end", "#date+end"},
	{"Row", "#meta+type"},
	{"Category", "#event+type"},
	{"Severity", "#severity"},
	{"Channel", "#meta+channel"},
	{"Reports", "#indicator+num+reports"},
	{"Suppressed", "#meta+suppressed"},
	{"Median hours to acknowledge", "#indicator+num+hours+acknowledge+median"},
	{"P90 hours to acknowledge", "#indicator+num+hours+acknowledge+p90"},
	{"Median hours to first response", "#indicator+num+hours+first_response+median"},
	{"P90 hours to first response", "#indicator+num+hours+first_response+p90"},
	{"Median hours to resolution", "#indicator+num+hours+resolve+median"},
	{"P90 hours to resolution", "#indicator+num+hours+resolve+p90"},
}

// WriteCSV writes the aggregate as CSV: a header row, the HXL hashtag row,
// then one line per Row; a suppressed count is empty, with "yes" under
// Suppressed.
func (a *Aggregate) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head, tags := make([]string, len(csvColumns)), make([]string, len(csvColumns))
	for i, c := range csvColumns {
		head[i], tags[i] = c.header, c.tag
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	if err := cw.Write(tags); err != nil {
		return err
	}
	num := func(p *int) string {
		if p == nil {
			return ""
		}
		return strconv.Itoa(*p)
	}
	q := func(x *Quantiles) (string, string) {
		if x == nil {
			return "", ""
		}
		return strconv.Itoa(x.Median), strconv.Itoa(x.P90)
	}
	for _, r := range a.Rows {
		sup := "no"
		if r.Suppressed {
			sup = "yes"
		}
		am, ap := q(r.Acknowledge)
		fm, fp := q(r.FirstResponse)
		rm, rp := q(r.Resolve)
		if err := cw.Write([]string{r.Start, r.End, r.Kind, r.Category, r.Severity, r.Channel, num(r.Count), sup, am, ap, fm, fp, rm, rp}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
