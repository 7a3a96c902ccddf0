package report

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
)

// scriptedMonth is November 2026 at a desk: case i arrives on day i%30+1
// at hour i%24; known steps happen at known offsets.
func scriptedMonth() []Case {
	cats := []string{"phishing", "spyware", "harassment"}
	var cs []Case
	for i := range 60 {
		rc := time.Date(2026, 11, 1+i%30, i%24, 0, 0, 0, time.UTC)
		c := Case{
			Category: cats[i%3],
			Severity: []string{"high", "low", ""}[i%3],
			Channel:  []string{ChannelCLI, ChannelNoJS, ChannelSelf, ChannelUnknown, ChannelBrowser, ChannelClient}[i%6],
			Status:   "new",
			Received: rc,
		}
		if i%4 == 3 {
			c.FactsOnly = true
		}
		if i%5 != 0 {
			c.Acknowledged = rc.Add(time.Duration(i%7+1) * 30 * time.Minute)
			c.Status = "open"
		}
		if i%3 != 1 {
			c.FirstResponse = rc.Add(time.Duration(i%11+1) * time.Hour)
		}
		if i%2 == 0 {
			c.Resolved = rc.Add(time.Duration(i%9+1) * 24 * time.Hour)
			c.Status, c.Final, c.CloseReason = "closed", true, []string{"completed", "duplicate"}[i%4/2]
			if i%8 == 0 {
				c.Reopened = 1
			}
		}
		if c.Severity == "high" && !c.Acknowledged.IsZero() {
			met := c.Acknowledged.Sub(rc) <= 2*time.Hour
			c.AcknowledgeMet = &met
		}
		if c.Final && i%3 != 2 {
			c.Satisfaction = i%5 + 1
		}
		if c.Acknowledged.IsZero() || c.Acknowledged.Sub(rc) > time.Hour {
			c.Escalated = append(c.Escalated, EscalationStep{Label: "shift leads", AfterMinutes: 60, Unless: crypto.UnlessAcknowledged})
		}
		if c.Acknowledged.IsZero() || c.Acknowledged.Sub(rc) > 90*time.Minute {
			c.Escalated = append(c.Escalated, EscalationStep{Label: "coordinator", AfterMinutes: 90, Unless: crypto.UnlessAcknowledged})
		}
		if i%6 == 1 {
			c.Referred, c.ReferralConsent, c.ReferralOutcome = true, i%12 == 1, i%12 == 7
		}
		cs = append(cs, c)
	}
	// Outside the range: never counted.
	cs = append(cs, Case{Category: "phishing", Received: time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC)},
		Case{Category: "phishing", Received: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	return cs
}

// pct is the nearest-rank percentile of ds, sorted here.
func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	for i := range s {
		if float64(i+1) >= p/100*float64(len(s)) {
			return s[i]
		}
	}
	return 0
}

func TestReportNumbers(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	all := scriptedMonth()
	r := Make(all, Options{From: from, To: to, Now: now})
	cs := all[:60]

	get := func(list []Count, k string) int {
		for _, c := range list {
			if c.Key == k {
				return c.N
			}
		}
		return 0
	}
	if r.Total != 60 || r.From != "2026-11-01" || r.To != "2026-11-30" {
		t.Fatalf("total %d from %s to %s", r.Total, r.From, r.To)
	}
	want := map[string]int{}
	var ack, fr, res []time.Duration
	resolved, reopened, referred, consent, outcome, factsOnly := 0, 0, 0, 0, 0, 0
	withTarget, met := 0, 0
	backlog := map[string]int{}
	var scores [5]int
	answers, sum := 0, 0
	esc := map[string]int{}
	for _, c := range cs {
		if c.Satisfaction > 0 {
			answers++
			sum += c.Satisfaction
			scores[c.Satisfaction-1]++
		}
		for _, e := range c.Escalated {
			esc[e.Label]++
		}
		want["cat/"+c.Category]++
		sev := c.Severity
		if sev == "" {
			sev = "none"
		}
		want["sev/"+sev]++
		want["status/"+c.Status]++
		want["chan/"+c.Channel]++
		if c.Final {
			want["reason/"+c.CloseReason]++
		} else {
			age := now.Sub(c.Received).Hours() / 24
			switch {
			case age < 1:
				backlog["lt1d"]++
			case age < 3:
				backlog["1to3d"]++
			case age < 7:
				backlog["3to7d"]++
			case age < 30:
				backlog["7to30d"]++
			default:
				backlog["ge30d"]++
			}
		}
		if !c.Acknowledged.IsZero() {
			ack = append(ack, c.Acknowledged.Sub(c.Received))
		}
		if !c.FirstResponse.IsZero() {
			fr = append(fr, c.FirstResponse.Sub(c.Received))
		}
		if !c.Resolved.IsZero() {
			res = append(res, c.Resolved.Sub(c.Received))
			resolved++
		}
		if c.Reopened > 0 {
			reopened++
		}
		if c.FactsOnly {
			factsOnly++
		}
		if c.Severity == "high" && !c.Acknowledged.IsZero() {
			withTarget++
			if c.Acknowledged.Sub(c.Received) <= 2*time.Hour {
				met++
			}
		}
		if c.Referred {
			referred++
			if c.ReferralConsent {
				consent++
			}
			if c.ReferralOutcome {
				outcome++
			}
		}
	}
	for k, n := range want {
		kind, key, _ := strings.Cut(k, "/")
		list := map[string][]Count{"cat": r.ByCategory, "sev": r.BySeverity, "status": r.ByStatus, "chan": r.ByChannel, "reason": r.CloseReasons}[kind]
		if got := get(list, key); got != n {
			t.Errorf("%s: %d, want %d", k, got, n)
		}
	}
	for k, n := range backlog {
		if got := get(r.Backlog, k); got != n {
			t.Errorf("backlog %s: %d, want %d", k, got, n)
		}
	}
	for _, d := range []struct {
		name string
		got  Durations
		ds   []time.Duration
	}{{"acknowledge", r.Acknowledge, ack}, {"first response", r.FirstResponse, fr}, {"resolve", r.Resolve, res}} {
		if d.got.N != len(d.ds) || d.got.Median != pct(d.ds, 50) || d.got.P90 != pct(d.ds, 90) {
			t.Errorf("%s: %+v, want n %d median %v p90 %v", d.name, d.got, len(d.ds), pct(d.ds, 50), pct(d.ds, 90))
		}
	}
	if r.Resolved != resolved || r.Reopened != reopened || r.Referred != referred || r.ReferralConsent != consent || r.ReferralOutcome != outcome || r.FactsOnly != factsOnly {
		t.Errorf("resolved %d reopened %d referred %d/%d/%d facts %d; want %d %d %d/%d/%d %d", r.Resolved, r.Reopened, r.Referred, r.ReferralConsent, r.ReferralOutcome, r.FactsOnly, resolved, reopened, referred, consent, outcome, factsOnly)
	}
	if r.AcknowledgeTarget != (Target{withTarget, met}) || r.FirstResponseTarget != (Target{}) || withTarget == 0 || met == 0 || met == withTarget {
		t.Errorf("acknowledge target %+v, first response %+v; want %d of %d", r.AcknowledgeTarget, r.FirstResponseTarget, met, withTarget)
	}
	if r.Satisfaction.Responses != answers || r.Satisfaction.Scores != scores || answers == 0 ||
		r.Satisfaction.Mean() != float64(sum)/float64(answers) {
		t.Errorf("satisfaction %+v mean %v, want %d answers %v mean %v", r.Satisfaction, r.Satisfaction.Mean(), answers, scores, float64(sum)/float64(answers))
	}
	if len(r.Escalations) != 2 || r.Escalations[0].Label != "shift leads" || r.Escalations[0].N != esc["shift leads"] ||
		r.Escalations[1].Label != "coordinator" || r.Escalations[1].N != esc["coordinator"] || esc["coordinator"] == 0 || esc["coordinator"] == esc["shift leads"] {
		t.Errorf("escalations %+v, want %v", r.Escalations, esc)
	}
	// Weeks: Monday 2026-10-26 (holding 1 November) to Monday 2026-11-30.
	if len(r.Weekly) != 6 || r.Weekly[0].Start != "2026-10-26" || r.Weekly[5].Start != "2026-11-30" {
		t.Fatalf("weeks %+v", r.Weekly)
	}
	sum = 0
	for i, w := range r.Weekly {
		start, _ := time.Parse("2006-01-02", w.Start)
		n, m := 0, 0
		byCat := map[string]int{}
		for _, c := range cs {
			if !c.Received.Before(start) && c.Received.Before(start.AddDate(0, 0, 7)) {
				n++
				byCat[c.Category]++
			}
			if !c.Resolved.IsZero() && !c.Resolved.Before(start) && c.Resolved.Before(start.AddDate(0, 0, 7)) {
				m++
			}
		}
		for j, c := range r.ByCategory {
			if w.ByCategory[j] != byCat[c.Key] {
				t.Errorf("week %s: %d %s, want %d", w.Start, w.ByCategory[j], c.Key, byCat[c.Key])
			}
		}
		if w.Received != n || w.Resolved != m {
			t.Errorf("week %d %s: %d received %d resolved, want %d %d", i, w.Start, w.Received, w.Resolved, n, m)
		}
		sum += w.Received
	}
	if sum != 60 {
		t.Errorf("weeks hold %d cases, want 60", sum)
	}
}

// external finds anything that loads or runs: a script, an event handler,
// a URL of any scheme, a protocol-relative reference, a CSS import or url()
// other than a fragment, an embedded document.
var external = regexp.MustCompile(`(?i)<script|<link|<iframe|<object|<embed|<img|<image|<use|<foreignobject|\son[a-z]+\s*=|[a-z][a-z0-9+.-]*://|\bsrc\s*=|\bhref\s*=|@import|url\(\s*['"]?[^#'"\s]|xmlns|xlink|javascript:|data:`)

func TestReportHTML(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	titles := map[string]map[string]string{"phishing": {"": "Phishing <attempt>", "fr": "Hameçonnage", "ar": "تصيّد"}}
	r := Make(scriptedMonth(), Options{From: from, To: to, Now: to, Desk: "helpdesk", Titles: titles})
	for _, lang := range []string{"en", "fr", "ar"} {
		t.Run(lang, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.WriteHTML(&b, lang); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			if m := external.FindString(page); m != "" {
				i := strings.Index(page, m)
				t.Fatalf("the page has %q: %s", m, page[max(0, i-80):min(len(page), i+80)])
			}
			if n := strings.Count(page, "<svg "); n != 9 { // 8 and the satisfaction's
				t.Errorf("%d charts, want 9", n)
			}
			for _, w := range []string{Languages[lang]["satisfaction"], Languages[lang]["escalations"], Label("statuses", "closed", lang),
				Label("close_reasons", "duplicate", lang), Languages[lang]["cli"], Languages[lang]["browser"]} {
				if !strings.Contains(page, w) {
					t.Errorf("no %q in the page", w)
				}
			}
			if !strings.Contains(page, "@media print") {
				t.Error("no print style sheet")
			}
			head := fmt.Sprintf(`<html lang="%s" dir="%s">`, lang, map[bool]string{true: "rtl", false: "ltr"}[lang == "ar"])
			if !strings.Contains(page, head) {
				t.Errorf("no %s", head)
			}
			if !strings.Contains(page, Languages[lang]["title"]) {
				t.Error("the title is not in the page's language")
			}
			want := map[string]string{"en": "Phishing &lt;attempt&gt;", "fr": "Hameçonnage", "ar": "تصيّد"}[lang]
			if n := strings.Count(page, want); n != 3 { // the bar chart, the table, the trend's legend
				t.Errorf("the category's title %q appears %d times, want 3", want, n)
			}
			if strings.Contains(page, "<attempt>") {
				t.Error("a title is not escaped")
			}
		})
	}
}

func TestReportCSV(t *testing.T) {
	r := Make(scriptedMonth(), Options{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)})
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"cases,total,60\n", "category,phishing,20\n", "referral,referred,10\n", "channel,cli,10\n", "channel,browser,10\n",
		"satisfaction,responses,20\n", "satisfaction,score_1,4\n", "escalation,shift leads after 60 minutes without acknowledged,"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("no %q in\n%s", line, b.String())
		}
	}
}

// TestMarkerNeverPublished: a marker written in a case's note, tag, reply
// and referral appears in neither the report (HTML in every language, CSV)
// nor the aggregate (CSV, JSON), and neither does the case's ID.
func TestMarkerNeverPublished(t *testing.T) {
	var cs []Case
	var ids []string
	for i := range 9 {
		id := fmt.Sprintf("%032x", 0xfeed00+i)
		ids = append(ids, id)
		rc := time.Date(2026, 11, 2+i, 10, 0, 0, 0, time.UTC)
		at := rc.Add(2 * time.Hour).Format(time.RFC3339)
		s := &journal.State{
			Case: id, Desk: "helpdesk", Category: "phishing", Received: rc.Format(time.RFC3339),
			Status: "referred", Severity: "high",
			Tags:         []string{marker},
			Notes:        []journal.Note{{Author: "k", Time: at, Text: marker}},
			Replies:      []journal.Response{{Author: "k", Time: at, Reply: marker}},
			Referral:     &crypto.Referral{To: marker, Consent: true, Outcome: marker},
			Acknowledged: at, FirstResponse: at,
		}
		cs = append(cs, FromState(s, "", ChannelNoJS, nil))
	}
	var outs []string
	r := Make(cs, Options{})
	for _, lang := range []string{"en", "fr", "ar"} {
		var b bytes.Buffer
		if err := r.WriteHTML(&b, lang); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b.String())
	}
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	outs = append(outs, b.String())
	a, err := MakeAggregate(cs, AggregateOptions{K: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []func(*bytes.Buffer) error{
		func(b *bytes.Buffer) error { return a.WriteCSV(b) },
		func(b *bytes.Buffer) error { return a.WriteJSON(b) },
	} {
		var b bytes.Buffer
		if err := w(&b); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b.String())
	}
	if r.Referred != 9 || r.ReferralOutcome != 9 {
		t.Fatalf("referred %d with outcome %d, want 9 and 9", r.Referred, r.ReferralOutcome)
	}
	for i, out := range outs {
		if strings.Contains(out, marker) {
			t.Errorf("output %d carries the marker", i)
		}
		for _, id := range ids {
			if strings.Contains(out, id) || strings.Contains(out, id[:12]) {
				t.Errorf("output %d carries case ID %s", i, id)
			}
		}
	}
}
