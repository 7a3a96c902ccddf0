package relay

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/web"
	"github.com/amana-relay/amana/store"
)

// pageCSP lets a page use its own stylesheet and script and nothing else:
// no other origin, no inline code, forms only to itself.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pages renders the submitter pages.
type pages struct {
	tmpl  *template.Template
	cats  map[string]*web.Catalog
	langs []string
}

func newPages() (*pages, error) {
	cats, langs, err := web.Catalogs()
	if err != nil {
		return nil, fmt.Errorf("loading message catalogues: %w", err)
	}
	t, err := template.ParseFS(web.Templates(), "*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing page templates: %w", err)
	}
	return &pages{tmpl: t, cats: cats, langs: langs}, nil
}

// lang picks the catalogue for a request: ?lang=, else the form's lang
// field, else English. Tor Browser sends the same Accept-Language for
// everyone, so it is not used.
func (p *pages) lang(code string) *web.Catalog {
	if c, ok := p.cats[code]; ok {
		return c
	}
	return p.cats["en"]
}

type langLink struct {
	Code, Name, URL string
	Current         bool
}

type pageData struct {
	T             *web.Catalog
	Lang, Dir     string
	Title         string
	Langs         []langLink
	Desks         []deskLink
	Desk          *deskView
	Error         string
	Heading       string // an error page's heading, when not error_title
	Receipt       *api.Receipt
	SealedBy      string
	RequireClient bool
	Words         string // receipt words, on a receipt page or in the no-JS thread form
	Digits        string // the same receipt's digits, on a receipt page
	Followup      bool   // the receipt page of a follow-up
	// The check page.
	Routes       []optionView // desk and category choices for a first follow-up
	CheckData    checkData
	CheckText    map[string]string
	Replies      []replyView
	Keep         string
	HasThread    bool
	NoReplies    bool   // no reply from the desk yet
	FollowupText string // a refused follow-up's text, shown again
	// The case's status and the satisfaction question on the
	// no-JavaScript check page (checkpages.go), and the survey's own
	// confirmation page.
	Status     *statusView
	Survey     *surveyView
	SurveySent bool
}

// checkData is what the browser client needs on the check page.
type checkData struct {
	API   string               `json:"api"`
	Desks map[string]checkDesk `json:"desks"`
}

type checkDesk struct {
	Handlers []string            `json:"handlers"` // card lines, to verify replies
	Routes   map[string][]string `json:"routes"`   // recipients by category
	// DefaultRoute is the category a report without one went to; see
	// deskData.
	DefaultRoute string `json:"default_route,omitempty"`
	PQ           bool   `json:"pq"`
}

type replyView struct {
	ID       string
	From     template.HTML // "from … received …", its name and time isolated
	Verified bool
	Own      bool // the submitter's own follow-up
	Text     string
	Files    []fileView
}

// fileView is a file of a reply: its place in the reply, name and size.
type fileView struct {
	Index      int
	Name, Size string
}

type deskLink struct{ Title, Description, URL string }

type deskView struct {
	ID, Title, Description string
	WhatHappens            string
	Restricted             bool
	// NoCategory says who reads a report without a category, when the
	// desk has categories.
	NoCategory           string
	PostQuantum          bool // its handlers' keys are post-quantum
	Fields               []fieldView
	URL, Action, SelfURL string
	RecipientsURL        string
	Data                 deskData
	Text                 map[string]string
}

// deskData is what the browser client needs: the recipients of each
// category ("" for none), the API and the size limit.
type deskData struct {
	Desk   string              `json:"desk"`
	API    string              `json:"api"`
	Routes map[string][]string `json:"routes"`
	// DefaultRoute is the category whose recipients a report without one
	// goes to ("" for every handler); Routes[""] holds the same recipients.
	DefaultRoute string `json:"default_route,omitempty"`
	MaxBytes     int64  `json:"max_bytes"`
}

type fieldView struct {
	ID, Name, Type string
	Label, Help    string
	Required       bool
	Req, Opt       string
	Value          string
	Options        []optionView
}

type optionView struct {
	Value, Label string
	Selected     bool
}

// jsText are the catalogue keys the browser client uses.
var jsText = []string{"encrypting", "uploading", "retrying", "done", "failed", "upload_failed", "nothing_sent", "receipt_title",
	"receipt_id", "receipt_sha256", "receipt_received", "receipt_keep", "receipt_technical", "receipt_first",
	"receipt_words_label", "receipt_digits_label", "too_large", "offer_server",
	"no_crypto_insecure", "no_crypto_missing", "progress_bytes", "progress_rate", "size_bytes", "size_kb", "size_mb", "size_gb", "decimal_mark"}

func (p *pages) base(r *http.Request, c *web.Catalog, title string) *pageData {
	d := &pageData{T: c, Lang: c.Lang, Dir: c.Dir(), Title: title}
	for _, code := range p.langs {
		q := r.URL.Query()
		q.Set("lang", code)
		d.Langs = append(d.Langs, langLink{Code: code, Name: p.cats[code].T("lang_name"), URL: r.URL.Path + "?" + q.Encode(), Current: code == c.Lang})
	}
	return d
}

func (p *pages) render(w http.ResponseWriter, status int, name string, d *pageData) {
	var b bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&b, name, d); err != nil {
		http.Error(w, "page error", 500)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// isolate wraps s in Unicode's first-strong isolate (FSI … PDI), so that
// text of either direction keeps its own order inside a plain-text label:
// an <option> cannot hold a <bdi>.
func isolate(s string) string { return "\u2068" + s + "\u2069" }

// pageTimeLayout is the one way pages write a time, always left to right
// and at the hour the relay keeps: "2026-12-02 04:00 UTC". The browser
// client writes the same (formatWhen in js/src/pages/ui.js).
const pageTimeLayout = "2006-01-02 15:00 UTC"

func pageTime(t time.Time) string { return t.UTC().Format(pageTimeLayout) }

// ltrOpen opens the <bdi> of the placeholders whose values always read
// left to right: times, IDs, hashes, sizes. A time is also never broken
// across lines (class "when").
var ltrOpen = map[string]string{"when": `<bdi dir="ltr" class="when">`, "id": `<bdi dir="ltr">`,
	"sha256": `<bdi dir="ltr">`, "size": `<bdi dir="ltr">`}

// tIsolated is c.T(key, pairs...) as HTML in which each value is escaped
// and isolated in a <bdi>, left to right for those of ltrOpen, so a name or
// a time keeps its order in a sentence of the other direction.
func tIsolated(c *web.Catalog, key string, pairs ...string) template.HTML {
	var subst []string
	for i := 0; i+1 < len(pairs); i += 2 {
		open, ok := ltrOpen[pairs[i]]
		if !ok {
			open = "<bdi>"
		}
		subst = append(subst, "{"+pairs[i]+"}", open+template.HTMLEscapeString(pairs[i+1])+"</bdi>")
	}
	// One pass, so a value that holds "{when}" stays as it is.
	return template.HTML(strings.NewReplacer(subst...).Replace(template.HTMLEscapeString(c.T(key))))
}

// readers names who reads a report in category ("" for none), for the
// page: the route's handler names, or "" when that is every handler.
func readers(m *crypto.Manifest, category string) string {
	if !m.Restricted(category) {
		return ""
	}
	cards, _ := m.Route(category)
	names := make([]string, len(cards))
	for i, c := range cards {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// categoryLabel is a category's title in the page's language, marked when
// only part of the desk's handlers read it.
func categoryLabel(c *web.Catalog, m *crypto.Manifest, id string) string {
	title := m.CategoryTitle(id, c.Lang)
	if id == "" {
		title = c.T("category_none")
	}
	if names := readers(m, id); names != "" {
		return c.T("category_restricted", "title", isolate(title), "names", isolate(names))
	}
	return title
}

// defaultForm is the incident form of a desk without one of its own.
func defaultForm(c *web.Catalog, hasCategories bool) []crypto.Field {
	l := func(key string) map[string]string { return map[string]string{c.Lang: c.T(key)} }
	f := []crypto.Field{
		{ID: "what", Type: crypto.FieldLongText, Required: true, Label: l("default_what"), Help: l("default_what_help")},
		{ID: "when", Type: crypto.FieldText, Label: l("default_when")},
		{ID: "where", Type: crypto.FieldText, Label: l("default_where")},
		{ID: "who", Type: crypto.FieldText, Label: l("default_who")},
	}
	if hasCategories {
		f = append(f, crypto.Field{ID: "category", Type: crypto.FieldCategory, Label: l("category")})
	}
	return append(f,
		crypto.Field{ID: "contact", Type: crypto.FieldText, Label: l("default_contact"), Help: l("default_contact_help")},
		crypto.Field{ID: "files", Type: crypto.FieldFile, Label: l("default_files"), Help: l("default_files_help")})
}

func formFields(m *crypto.Manifest, c *web.Catalog) []crypto.Field {
	if m.Form != nil {
		return m.Form.Fields
	}
	return defaultForm(c, len(m.Categories) > 0)
}

// whatHappens says when the relay deletes a report, by the desk's
// retention: once every handler it reaches has downloaded it (the
// default), or some hours after the first.
func whatHappens(c *web.Catalog, r crypto.Retention) string {
	if r.AfterFirstAck {
		return c.T("what_happens", "ack", fmt.Sprint(r.DeleteAfterAckHours), "days", fmt.Sprint(r.KeepUnackedDays))
	}
	return c.T("what_happens_all", "days", fmt.Sprint(r.KeepUnackedDays))
}

func (s *Server) deskView(r *http.Request, d *desk, c *web.Catalog, values map[string][]string) *deskView {
	m := d.m
	q := "?lang=" + url.QueryEscape(c.Lang)
	v := &deskView{
		ID: m.Desk, Title: m.TitleIn(c.Lang), Description: m.DescriptionIn(c.Lang),
		WhatHappens: whatHappens(c, m.Retention),
		URL:         "/desks/" + m.Desk + q, Action: "/desks/" + m.Desk + "/submit",
		SelfURL: "/desks/" + m.Desk + "/self" + q, RecipientsURL: "/desks/" + m.Desk + "/recipients.txt",
		Data: deskData{Desk: m.Desk, API: api.Prefix, Routes: map[string][]string{}, DefaultRoute: m.DefaultRoute,
			MaxBytes: min(m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission)},
		Text: map[string]string{},
	}
	for _, k := range jsText {
		v.Text[k] = c.T(k)
	}
	if cards := m.Cards(); len(cards) > 0 {
		v.PostQuantum = cards[0].PostQuantum()
	}
	for _, id := range append([]string{""}, categoryIDs(m)...) {
		cards, _ := m.Route(id)
		for _, card := range cards {
			v.Data.Routes[id] = append(v.Data.Routes[id], card.Recipient)
		}
		if id != "" && m.Restricted(id) {
			v.Restricted = true
		}
	}
	if len(m.Categories) > 0 {
		if names := readers(m, ""); names != "" {
			v.NoCategory = c.T("category_none_readers", "names", isolate(names))
		} else {
			v.NoCategory = c.T("category_none_everyone")
		}
	}
	pick := func(t map[string]string) string { return crypto.Text("", t, c.Lang, m.Language) }
	for _, f := range formFields(m, c) {
		fv := fieldView{ID: f.ID, Name: "f." + f.ID, Type: f.Type, Label: pick(f.Label), Help: pick(f.Help),
			Required: f.Required, Req: c.T("required"), Opt: c.T("optional")}
		if vals := values[fv.Name]; len(vals) > 0 {
			fv.Value = vals[0]
		}
		selected := func(val string) bool {
			for _, x := range values[fv.Name] {
				if x == val {
					return true
				}
			}
			return false
		}
		switch f.Type {
		case crypto.FieldChoice, crypto.FieldMultiChoice:
			for _, o := range f.Options {
				fv.Options = append(fv.Options, optionView{Value: o.ID, Label: pick(o.Label), Selected: selected(o.ID)})
			}
		case crypto.FieldCategory:
			fv.Name = "category"
			chosen := ""
			if vals := values["category"]; len(vals) > 0 {
				chosen = vals[0]
			}
			fv.Options = append(fv.Options, optionView{Value: "", Label: categoryLabel(c, m, ""), Selected: chosen == ""})
			for _, cat := range m.Categories {
				fv.Options = append(fv.Options, optionView{Value: cat.ID, Label: categoryLabel(c, m, cat.ID), Selected: chosen == cat.ID})
			}
		case crypto.FieldFile:
			fv.Name = "files"
		}
		v.Fields = append(v.Fields, fv)
	}
	return v
}

func categoryIDs(m *crypto.Manifest) []string {
	ids := make([]string, len(m.Categories))
	for i, cat := range m.Categories {
		ids[i] = cat.ID
	}
	return ids
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	c := s.pages.lang(r.URL.Query().Get("lang"))
	s.mu.RLock()
	var desks []deskLink
	for _, d := range s.desks {
		desks = append(desks, deskLink{Title: d.m.TitleIn(c.Lang), Description: d.m.DescriptionIn(c.Lang), URL: "/desks/" + d.m.Desk + "?lang=" + url.QueryEscape(c.Lang)})
	}
	s.mu.RUnlock()
	sort.Slice(desks, func(i, j int) bool { return desks[i].Title < desks[j].Title })
	if len(desks) == 1 {
		http.Redirect(w, r, desks[0].URL, http.StatusSeeOther)
		return
	}
	d := s.pages.base(r, c, c.T("site_title"))
	d.Desks = desks
	s.pages.render(w, 200, "index", d)
}

// pageDesk finds the page's language and desk; without a desk it has
// answered with a "no such desk" page.
func (s *Server) pageDesk(w http.ResponseWriter, r *http.Request) (*web.Catalog, *desk) {
	c := s.pages.lang(r.URL.Query().Get("lang"))
	d := s.desk(r.PathValue("desk"))
	if d == nil {
		// Said before anything is read: not "your report was not sent".
		s.notFoundPage(w, r, c, c.T("unknown_desk_title"), c.T("unknown_desk"))
	}
	return c, d
}

// notFoundPage is the page of an address the relay does not know.
func (s *Server) notFoundPage(w http.ResponseWriter, r *http.Request, c *web.Catalog, title, msg string) {
	pd := s.pages.base(r, c, title)
	pd.Heading, pd.Error = title, msg
	s.pages.render(w, 404, "error", pd)
}

// intakeNotFound answers an unknown address on the intake side: JSON
// under /api/, where clients are, and a page anywhere else, where a
// person with a mistyped or outdated address is.
func (s *Server) intakeNotFound(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
		notFound(w, r)
		return
	}
	c := s.pages.lang(r.URL.Query().Get("lang"))
	s.notFoundPage(w, r, c, c.T("not_found_title"), c.T("not_found"))
}

// receiptPage shows the receipt of something stored from a page: the
// submitter's receipt, if rcpt is not nil, and the storage receipt.
func (s *Server) receiptPage(w http.ResponseWriter, r *http.Request, c *web.Catalog, d *desk, sub *store.Submission, sealedBy string, rcpt *crypto.Receipt) {
	rc := receipt(sub)
	rc.Received = pageTime(sub.Received) // the pages' one way of writing a time
	pd := s.pages.base(r, c, c.T("receipt_title"))
	pd.Desk = s.deskView(r, d, c, nil)
	pd.Receipt, pd.SealedBy = &rc, sealedBy
	if rcpt != nil {
		pd.Words, pd.Digits = rcpt.Words(), rcpt.Digits()
	}
	s.pages.render(w, 200, "receipt", pd)
}

func (s *Server) deskPage(w http.ResponseWriter, r *http.Request) {
	c, d := s.pageDesk(w, r)
	if d == nil {
		return
	}
	pd := s.pages.base(r, c, d.m.TitleIn(c.Lang))
	pd.Desk = s.deskView(r, d, c, nil)
	pd.RequireClient = s.cfg.RequireClientEncryption
	s.pages.render(w, 200, "desk", pd)
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, c *web.Catalog, d *desk, status int, msg string) {
	pd := s.pages.base(r, c, c.T("error_title"))
	pd.Error = msg
	if d != nil {
		pd.Desk = s.deskView(r, d, c, nil)
	}
	s.pages.render(w, status, "error", pd)
}

// recipients serves the age recipients of a category (?category=ID), or of
// every handler, one per line, for submitters who encrypt with age
// themselves: age -R recipients.txt.
func (s *Server) recipients(w http.ResponseWriter, r *http.Request) {
	d := s.desk(r.PathValue("desk"))
	if d == nil {
		writeError(w, errUnknownDesk)
		return
	}
	category := r.URL.Query().Get("category")
	cards, err := d.m.Route(category)
	if err != nil {
		writeError(w, errUnknownCategory)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# age recipients of desk %q (manifest serial %d, desk fingerprint %s)\n", d.m.Desk, d.m.Serial, s.adminFP)
	switch {
	case category == "" && d.m.DefaultRoute != "":
		fmt.Fprintf(&b, "# for a report with no category: the handlers of category %q, the desk's default route\n", d.m.DefaultRoute)
	case category == "":
		fmt.Fprintf(&b, "# for a report with no category: every handler of the desk\n")
	default:
		fmt.Fprintf(&b, "# for a report in category %q: only its handlers\n", category)
	}
	fmt.Fprintf(&b, "# encrypt to exactly these, and upload the file with the category chosen the same:\n#   age -R recipients.txt -o report.age report\n")
	for _, cat := range d.m.Categories {
		fmt.Fprintf(&b, "# category %s: /desks/%s/recipients.txt?category=%s\n", cat.ID, d.m.Desk, cat.ID)
	}
	for _, c := range cards {
		b.WriteString(c.Recipient + "\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(b.String()))
}

// humanSize writes n bytes as a submitter reads a size: "10 MB", "1.5 KB",
// "300 bytes", in the page's language. A unit is 1024 of the one below,
// and the figure is rounded down to one decimal under 10, to a whole
// number above, so that a limit stated is never more than the relay takes.
// pages/ui.js formatSize writes the same.
func humanSize(c *web.Catalog, n int64) string {
	units := []string{"size_bytes", "size_kb", "size_mb", "size_gb"}
	u, div := 0, int64(1)
	for u < len(units)-1 && n >= div*1024 {
		u, div = u+1, div*1024
	}
	var s string
	switch tenths := n * 10 / div; {
	case u == 0 || tenths >= 100 || tenths%10 == 0:
		s = fmt.Sprint(n / div)
	default:
		s = fmt.Sprintf("%d%s%d", tenths/10, c.T("decimal_mark"), tenths%10)
	}
	return c.T(units[u], "n", s)
}
