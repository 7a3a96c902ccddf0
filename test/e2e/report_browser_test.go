package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/handler/packs"
	"github.com/amana-relay/amana/handler/report"
)

// reportExternal finds anything in a page that loads or runs: a script, an
// event handler, a URL of any scheme, a reference, a CSS import or url().
var reportExternal = regexp.MustCompile(`(?i)<script|<link|<iframe|<object|<embed|<img|<image|<use|<foreignobject|\son[a-z]+\s*=|[a-z][a-z0-9+.-]*://|\bsrc\s*=|\bhref\s*=|@import|url\(\s*['"]?[^#'"\s]|xmlns|xlink|javascript:|data:`)

// complaintsMonth is November 2026 at a desk made from the feedback and
// complaints pack: case i arrives on day i%30+1, in a category, severity,
// channel and status chosen by i; every closed case answers the survey
// with score i%5+1.
func complaintsMonth(t *testing.T, p *packs.Pack) []report.Case {
	t.Helper()
	wf := p.Workflow
	var cs []report.Case
	for i := range 90 {
		rc := time.Date(2026, 11, 1+i%30, 8+i%10, 0, 0, 0, time.UTC)
		c := report.Case{
			Category: p.Categories[i%len(p.Categories)].ID,
			Severity: wf.Severities[i%len(wf.Severities)].ID,
			Channel:  []string{report.ChannelCLI, report.ChannelBrowser, report.ChannelNoJS, report.ChannelSelf, report.ChannelClient}[i%5],
			Status:   wf.Statuses[0],
			Received: rc,
		}
		if i%4 != 0 {
			c.Acknowledged = rc.Add(time.Duration(i%5+1) * 20 * time.Minute)
			c.Status = wf.Statuses[1]
			c.FirstResponse = rc.Add(time.Duration(i%7+1) * time.Hour)
		}
		if c.Acknowledged.IsZero() || c.Acknowledged.Sub(rc) > 30*time.Minute {
			c.Escalated = append(c.Escalated, report.EscalationStep{Label: wf.Escalation[0].Label, AfterMinutes: wf.Escalation[0].AfterMinutes, Unless: wf.Escalation[0].Unless})
		}
		if i%3 == 0 && !c.Acknowledged.IsZero() {
			c.Resolved = rc.Add(time.Duration(i%6+1) * 24 * time.Hour)
			c.Status, c.Final = "closed", true
			c.CloseReason = wf.CloseReasons[i%len(wf.CloseReasons)]
			c.Satisfaction = i%5 + 1
		}
		cs = append(cs, c)
	}
	return cs
}

// reportDriven is what relay/web/js/browser/report.mjs reports.
type reportDriven struct {
	Dir, BodyDir, Lang, Title string
	Charts, Scripts           int
	// Where the heading's text starts, from the right and from the left
	// of its box, in pixels.
	TextFromRight     int `json:"textFromRight"`
	TextFromLeft      int `json:"textFromLeft"`
	Requests, Console []string
	Screenshot        string
	BrowserVersion    string `json:"browserVersion"`
	Error             string
}

// TestReportBrowser renders a scripted month's report in English, Arabic
// and French, checks its numbers against those counted here, that no page
// holds a script or a URL, saves the three as artefacts, and opens them
// in Chromium: the Arabic one is laid out right to left, the others left
// to right, and none makes any request.
func TestReportBrowser(t *testing.T) {
	p, err := packs.Get("humanitarian-complaints")
	if err != nil {
		t.Fatal(err)
	}
	cs := complaintsMonth(t, p)
	titles := map[string]map[string]string{}
	for _, c := range p.Categories {
		titles[c.ID] = map[string]string{"": c.Label[p.Language]}
		for l, s := range c.Label {
			titles[c.ID][l] = s
		}
	}
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	r := report.Make(cs, report.Options{From: from, To: to, Now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Desk: "complaints", Titles: titles})

	// The numbers, counted here.
	answers, sum, escalated, cli, browser := 0, 0, 0, 0, 0
	for _, c := range cs {
		if c.Satisfaction > 0 {
			answers++
			sum += c.Satisfaction
		}
		if len(c.Escalated) > 0 {
			escalated++
		}
		switch c.Channel {
		case report.ChannelCLI:
			cli++
		case report.ChannelBrowser:
			browser++
		}
	}
	chans := map[string]int{}
	for _, c := range r.ByChannel {
		chans[c.Key] = c.N
	}
	if r.Total != 90 || r.Satisfaction.Responses != answers || r.Satisfaction.Mean() != float64(sum)/float64(answers) ||
		len(r.Escalations) != 1 || r.Escalations[0].N != escalated || chans[report.ChannelCLI] != cli || chans[report.ChannelBrowser] != browser {
		t.Fatalf("report: total %d, satisfaction %+v, escalations %+v, channels %v; want 90, %d answers averaging %v, %d escalated, %d cli, %d browser",
			r.Total, r.Satisfaction, r.Escalations, chans, answers, float64(sum)/float64(answers), escalated, cli, browser)
	}

	dir := artifacts(t)
	files := map[string]string{}
	for _, lang := range []string{"en", "ar", "fr"} {
		var b bytes.Buffer
		if err := r.WriteHTML(&b, lang); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		if m := reportExternal.FindString(page); m != "" {
			i := strings.Index(page, m)
			t.Fatalf("%s: the page has %q: %s", lang, m, page[max(0, i-80):min(len(page), i+80)])
		}
		for _, want := range []string{report.Languages[lang]["satisfaction"], report.Label("statuses", "closed", lang),
			titles[p.Categories[0].ID][lang], fmt.Sprintf("%.2f", r.Satisfaction.Mean())} {
			if !strings.Contains(page, template.HTMLEscapeString(want)) {
				t.Errorf("%s: no %q in the page", lang, want)
			}
		}
		files[lang] = filepath.Join(dir, "report-"+lang+".html")
		if err := os.WriteFile(files[lang], b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	chromium := needBrowser(t)
	for _, lang := range []string{"ar", "en"} {
		shot := filepath.Join(dir, "report-"+lang+".png")
		os.Remove(shot)
		var d reportDriven
		cfg, _ := json.Marshal(map[string]string{"file": files[lang], "screenshot": shot, "chromium": chromium})
		cmd := exec.Command("node", filepath.Join(webJS, "browser", "report.mjs"), string(cfg))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("report.mjs: %v\n%s", err, stderr.String())
		}
		if err := json.Unmarshal(bytes.TrimSpace(out), &d); err != nil {
			t.Fatalf("report.mjs printed %q: %v", out, err)
		}
		if d.Error != "" {
			t.Fatalf("%s: browser: %s", lang, d.Error)
		}
		want := map[string]string{"ar": "rtl", "en": "ltr"}[lang]
		if d.Dir != want || d.BodyDir != want || d.Lang != lang || d.Title != report.Languages[lang]["title"] {
			t.Errorf("%s: computed direction %q (body %q), lang %q, title %q; want %s", lang, d.Dir, d.BodyDir, d.Lang, d.Title, want)
		}
		if start := map[string]int{"rtl": d.TextFromRight, "ltr": d.TextFromLeft}[want]; start < 0 || start > 2 {
			t.Errorf("%s: the heading's text starts %d px from its %s edge (from the right %d, from the left %d)", lang, start, map[string]string{"rtl": "right", "ltr": "left"}[want], d.TextFromRight, d.TextFromLeft)
		}
		if len(d.Requests) > 0 || d.Scripts != 0 || d.Charts != 9 {
			t.Errorf("%s: requests %v, %d scripts, %d charts (want none, none, 9)", lang, d.Requests, d.Scripts, d.Charts)
		}
		if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
			t.Errorf("%s: no screenshot at %s (%v)", lang, shot, err)
		}
		t.Logf("%s: %s, direction %s, screenshot %s", lang, d.BrowserVersion, d.Dir, shot)
	}
}
