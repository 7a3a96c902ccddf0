package relay

import (
	"encoding/json"
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/web"
)

const (
	fsi = "\u2068"
	pdi = "\u2069"
)

// publishMixed publishes a desk whose text mixes English and Arabic, with
// parentheses and full stops, translated in part, whose "sea" category and
// default route reach alice only.
func (f *fixture) publishMixed(serial uint64) {
	f.t.Helper()
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Language: "en", Title: "Helpdesk (digital safety).", Serial: serial,
		Titles:       map[string]string{"ar": "مكتب المساعدة (Amana)."},
		Description:  "Reports reach only alice.",
		Descriptions: map[string]string{"fr": "Les signalements ne parviennent qu’à alice."},
		Handlers:     []string{f.alice.Card().String(), f.bob.Card().String()},
		Categories: []crypto.Category{
			{ID: "incident", Title: "Incident", Handlers: []string{"alice", "bob"}, Labels: map[string]string{"ar": "حادث"}},
			{ID: "sea", Title: "Sexual exploitation and abuse", Handlers: []string{"alice"}, Labels: map[string]string{"ar": "الاستغلال والاعتداء الجنسيان"}},
		},
		DefaultRoute: "sea",
		Form: &crypto.Form{Fields: []crypto.Field{
			{ID: "what", Type: crypto.FieldLongText, Required: true, Label: map[string]string{"en": "What happened (briefly)?"},
				Help: map[string]string{"fr": "Décrivez-le."}},
			{ID: "kind", Type: crypto.FieldCategory, Label: map[string]string{"en": "Kind"}},
		}},
		Limits: crypto.Limits{MaxSubmissionBytes: 8 << 20}}
	env, err := crypto.SignManifest(m, f.admin.SigningKey())
	if err != nil {
		f.t.Fatal(err)
	}
	f.publish(env, 200)
}

var deskDataRE = regexp.MustCompile(`<script type="application/json" id="amana-desk">([^<]*)</script>`)

// TestDeskPageBidiAndTranslations: on the Arabic page the desk's title,
// description, field labels and help carry dir="auto"; the title and the
// category titles are the Arabic ones; the English description, which has
// no Arabic text, is shown as written; categories and the no-category
// choice that reach only part of the desk say who reads them, their parts
// isolated; and the French page falls back to the desk's English text where
// it has no French.
func TestDeskPageBidiAndTranslations(t *testing.T) {
	f := newFixture(t)
	f.publishMixed(2)
	_, ar := f.page("/desks/helpdesk?lang=ar", 200)
	for _, want := range []string{
		`<title>مكتب المساعدة (Amana).</title>`,
		`<h1 dir="auto">مكتب المساعدة (Amana).</h1>`,
		`<p class="desc" dir="auto">Reports reach only alice.</p>`,
		`<label for="i-what"><span dir="auto">What happened (briefly)?</span>`,
		`<span class="hint" id="h-what" dir="auto">Décrivez-le.</span>`,
		`<textarea id="i-what" name="f.what" dir="auto"`,
		`<option value="incident">حادث</option>`,
		`<option value="sea">` + fsi + `الاستغلال والاعتداء الجنسيان` + pdi + ` (لا يقرأ البلاغ إلا: ` + fsi + `alice` + pdi + `)</option>`,
		`<option value="" selected>` + fsi + `شيء آخر، أو لست متأكدًا` + pdi + ` (لا يقرأ البلاغ إلا: ` + fsi + `alice` + pdi + `)</option>`,
		`<p id="no-category-readers">البلاغ الذي بلا فئة لا يقرؤه إلا: ` + fsi + `alice` + pdi + `.</p>`,
	} {
		if !strings.Contains(ar, want) {
			t.Errorf("Arabic desk page lacks %q", want)
		}
	}
	_, fr := f.page("/desks/helpdesk?lang=fr", 200)
	for _, want := range []string{
		`<h1 dir="auto">Helpdesk (digital safety).</h1>`,
		`<p class="desc" dir="auto">Les signalements ne parviennent qu’à alice.</p>`,
		`<option value="sea">` + fsi + `Sexual exploitation and abuse` + pdi + ` (lu seulement par : ` + fsi + `alice` + pdi + `)</option>`,
	} {
		if !strings.Contains(fr, want) {
			t.Errorf("French desk page lacks %q", want)
		}
	}
	// The browser client gets the default route and its recipients under "".
	m := deskDataRE.FindStringSubmatch(ar)
	if m == nil {
		t.Fatal("no #amana-desk")
	}
	var data deskData
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &data); err != nil {
		t.Fatal(err)
	}
	want := []string{f.alice.Recipient()}
	if data.DefaultRoute != "sea" || !slices.Equal(data.Routes[""], want) || !slices.Equal(data.Routes["sea"], want) || len(data.Routes["incident"]) != 2 {
		t.Fatalf("desk data %+v", data)
	}
	// The desk list, with a second desk, shows the Arabic title and the
	// English description, each isolated.
	other := &crypto.Manifest{Version: 1, Desk: "other", Title: "Other", Serial: 1, Handlers: []string{f.bob.Card().String()}}
	env, err := crypto.SignManifest(other, f.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	f.signed(f.admin, "PUT", "/api/v1/admin/desks/other", env, 200)
	_, list := f.page("/?lang=ar", 200)
	if !strings.Contains(list, `dir="auto">مكتب المساعدة (Amana).</a><p class="desc" dir="auto">Reports reach only alice.</p>`) {
		t.Errorf("desk list:\n%s", list)
	}
	// A desk that names no default route says everyone reads a report
	// without a category.
	f2 := newFixture(t)
	_, en := f2.page("/desks/helpdesk?lang=en", 200)
	if !strings.Contains(en, `<p id="no-category-readers">A report without a category is read by everyone who handles this desk.</p>`) ||
		!strings.Contains(en, `<option value="" selected>Something else, or not sure</option>`) {
		t.Error("a desk without a default route does not say everyone reads a report without a category")
	}
}

// TestRequiredErrorIsolatesLabels: the Arabic page's error for a missing
// English-labelled field isolates the label inside the Arabic quotes.
func TestRequiredErrorIsolatesLabels(t *testing.T) {
	f := newFixture(t)
	f.publishMixed(2)
	_, body := f.post("/desks/helpdesk/submit", [][2]string{{"lang", "ar"}, {"f.what", " "}}, nil, 400)
	if want := "«" + fsi + "What happened (briefly)?" + pdi + "»"; !strings.Contains(body, want) {
		t.Fatalf("the error lacks %q:\n%s", want, body)
	}
}

// TestNoCategoryReportFollowsDefaultRoute: a no-JavaScript report without a
// category is sealed to the default route's handlers only, and
// recipients.txt without a category lists them and nobody else.
func TestNoCategoryReportFollowsDefaultRoute(t *testing.T) {
	f := newFixture(t)
	f.publishMixed(2)
	f.post("/desks/helpdesk/submit", [][2]string{{"lang", "en"}, {"f.what", "hello"}, {"category", ""}}, nil, 200)
	r, _ := f.only(f.alice)
	if r.Category != "" {
		t.Fatalf("category %q", r.Category)
	}
	_, txt := f.page("/desks/helpdesk/recipients.txt", 200)
	if !strings.Contains(txt, "the desk's default route") || !strings.Contains(txt, f.alice.Recipient()) || strings.Contains(txt, f.bob.Recipient()) {
		t.Errorf("recipients.txt for no category:\n%s", txt)
	}
	subs, _ := f.spool.Submissions(nil)
	rd, _ := f.spool.OpenSubmission(subs[0].ID, 0)
	if _, err := crypto.OpenBundle(rd, f.bob.Age()); err == nil {
		t.Fatal("bob, outside the default route, opens a report without a category")
	}
}

// TestCheckPageRoutesIsolated: the follow-up route menu names each desk and
// category in the page's language, each part isolated, so that neither
// reorders the other and a long label loses its end, not its start.
func TestCheckPageRoutesIsolated(t *testing.T) {
	f := newFixture(t)
	f.publishMixed(2)
	_, ar := f.page("/check?lang=ar", 200)
	for _, want := range []string{
		`<option value="helpdesk|incident">` + fsi + `مكتب المساعدة (Amana).` + pdi + `: ` + fsi + `حادث` + pdi + `</option>`,
		`<option value="helpdesk|sea">` + fsi + `مكتب المساعدة (Amana).` + pdi + `: ` + fsi + fsi + `الاستغلال والاعتداء الجنسيان` + pdi,
	} {
		if !strings.Contains(ar, want) {
			t.Errorf("Arabic check page lacks %q", want)
		}
	}
}

// TestIsolatedMessages: values put into a catalogue message are escaped and
// isolated, times left to right, and every page writes a time one way.
func TestIsolatedMessages(t *testing.T) {
	c := &web.Catalog{Lang: "ar", Msgs: map[string]string{"reply_from": "من المكتب ({name})، وصل في {when} & <b>"}}
	got := string(tIsolated(c, "reply_from", "name", "<alice>{when}", "when", pageTime(time.Date(2026, 12, 2, 4, 37, 0, 0, time.FixedZone("x", 3600)))))
	want := `من المكتب (<bdi>&lt;alice&gt;{when}</bdi>)، وصل في <bdi dir="ltr" class="when">2026-12-02 03:00 UTC</bdi> &amp; &lt;b&gt;`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
