package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// box is one character as the browser laid it out.
type box struct {
	Ch    string  `json:"ch"`
	Left  float64 `json:"left"`
	Right float64 `json:"right"`
	Top   float64 `json:"top"`
}

// measured is what drive.mjs's bidiScenario reports of one element.
type measured struct {
	Direction string  `json:"direction"`
	Text      string  `json:"text"`
	First     box     `json:"first"`
	Last      box     `json:"last"`
	MinLeft   float64 `json:"minLeft"`
	MaxRight  float64 `json:"maxRight"`
	Error     string  `json:"error"`
}

type bidiDriven struct {
	Dir     string              `json:"dir"`
	Options []string            `json:"options"`
	Measure map[string]measured `json:"measure"`
	Error   string              `json:"error"`
	Console []string            `json:"console"`
	CSP     []string            `json:"cspViolations"`
	Foreign []string            `json:"foreign"`
}

// driveBidi runs drive.mjs's bidi scenario.
func driveBidi(t *testing.T, cfg map[string]any) *bidiDriven {
	t.Helper()
	cfg["page"] = "bidi"
	var d bidiDriven
	driveInto(t, cfg, &d)
	if d.Error != "" {
		t.Fatalf("browser: %s\nconsole:\n%s", d.Error, strings.Join(d.Console, "\n"))
	}
	if len(d.CSP) > 0 || len(d.Foreign) > 0 {
		t.Errorf("CSP violations %v, requests to other origins %v", d.CSP, d.Foreign)
	}
	for name, m := range d.Measure {
		if m.Error != "" {
			t.Fatalf("%s: %s", name, m.Error)
		}
	}
	return &d
}

// TestBrowserBidi: on the Arabic pages, text of the other direction from
// the desk (its English description), from a handler (an English reply)
// and times keep their own order: an English sentence runs left to right
// and ends with its full stop at its right end, the Arabic title runs
// right to left with its full stop at its left end, a time reads
// "2026-12-02 04:00 UTC" from the left, with JavaScript and without. The
// desk's title and category titles are the Arabic ones, and the category
// list marks what only dan reads.
func TestBrowserBidi(t *testing.T) {
	chromium := needBrowser(t)
	w := setup(t)
	must(t, run(t, nil, nil, "amana", "desk", "create", "--id", "mixed", "--language", "en",
		"--title", "Helpdesk (digital safety).", "--title-ar", "مكتب المساعدة (Amana).",
		"--description", "Reports in sea reach only dan.",
		"--handler", w.path("bob.card"), "--handler", w.path("dan.card"),
		"--category", "incident=bob,dan", "--category", "sea=dan",
		"--category-title", "sea=Sexual exploitation and abuse", "--category-title", "sea:ar=الاستغلال والاعتداء الجنسيان",
		"--default-route", "sea", "--serial", "2", "-i", w.path("admin.key"), "-o", w.path("mixed.json")))
	must(t, run(t, nil, nil, "amana", "desk", "publish", w.path("mixed.json"), "--relay", w.relay, "-i", w.path("admin.key")))

	// A report without a category: only dan, the default route, gets it,
	// and replies in English.
	os.WriteFile(w.path("msg.txt"), []byte("ما حدث (بالأمس).\n"), 0o600)
	r := must(t, run(t, w.home("submitter"), nil, "amana", "submit", "--relay", w.relay, "--desk", "mixed", "--message-file", w.path("msg.txt")))
	m := wordsRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no receipt words:\n%s", r.stdout)
	}
	id := receiptID.FindStringSubmatch(r.stdout)[1]
	if p := must(t, run(t, w.home("bob"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("bob.key"))); !strings.Contains(p.stderr, "pulled 0 new case") {
		t.Fatalf("bob, outside the default route, pulled the report: %s", p.stderr)
	}
	must(t, run(t, w.home("dan"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("dan.key")))
	os.WriteFile(w.path("reply.txt"), []byte("Thank you (dan). We read it.\n"), 0o600)
	must(t, run(t, w.home("dan"), nil, "amana", "reply", id, "--relay", w.relay, "-i", w.path("dan.key"), "--message-file", w.path("reply.txt")))

	dir := artifacts(t)
	for _, js := range []bool{true, false} {
		name := map[bool]string{true: "javascript", false: "no-javascript"}[js]
		t.Run(name, func(t *testing.T) {
			d := driveBidi(t, map[string]any{"url": w.relay, "chromium": chromium, "js": js, "lang": "ar", "desk": "mixed",
				"receipt": m[1], "screenshot": filepath.Join(dir, "bidi-ar-"+name+".png"),
				"deskMeasure":  map[string]string{"title": "h1", "description": "p.desc"},
				"checkMeasure": map[string]string{"when": "article.reply h3 bdi[dir=ltr]", "name": "article.reply h3 bdi:not([dir])", "reply": "article.reply p.desc"},
			})
			if d.Dir != "rtl" {
				t.Fatalf("page direction %q", d.Dir)
			}
			ms := d.Measure
			// The Arabic title: right to left, its full stop leftmost.
			if tl := ms["title"]; tl.Text != "مكتب المساعدة (Amana)." || tl.Direction != "rtl" || tl.Last.Ch != "." || tl.Last.Left > tl.MinLeft+0.5 {
				t.Errorf("title: %+v", tl)
			}
			// English text on the Arabic page: left to right, its first
			// letter leftmost and its full stop rightmost.
			for _, k := range []string{"description", "reply"} {
				e := ms[k]
				if e.Direction != "ltr" || e.Last.Ch != "." || e.Last.Right < e.MaxRight-0.5 || e.First.Left > e.MinLeft+0.5 {
					t.Errorf("%s: not laid out left to right with its full stop at the right end: %+v", k, e)
				}
			}
			// The time, isolated left to right on one line: "2026-… UTC"
			// from the left.
			if e := ms["when"]; e.Direction != "ltr" || !strings.HasSuffix(e.Text, " UTC") || e.First.Left > e.MinLeft+0.5 || e.Last.Ch != "C" || e.Last.Right < e.MaxRight-0.5 || e.First.Top != e.Last.Top {
				t.Errorf("time: %+v", e)
			}
			if e := ms["name"]; e.Text != "dan" || e.Direction != "ltr" {
				t.Errorf("handler name: %+v", e)
			}
			found := false
			for _, o := range d.Options {
				if strings.Contains(o, "الاستغلال والاعتداء الجنسيان") && strings.Contains(o, "dan") {
					found = true
				}
				if strings.Contains(o, "Sexual exploitation") {
					t.Errorf("the Arabic page lists %q", o)
				}
			}
			if !found || len(d.Options) != 3 {
				t.Errorf("category list: %q", d.Options)
			}
		})
	}
}
