package relay

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"

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
	Receipt       *api.Receipt
	SealedBy      string
	RequireClient bool
	Words         string // receipt words, on a receipt page or in the no-JS thread form
	Digits        string // the same receipt's digits, on a receipt page
	Followup      bool   // the receipt page of a follow-up
	// The check page.
	Routes    []optionView // desk and category choices for a first follow-up
	CheckData checkData
	CheckText map[string]string
	Replies   []replyView
	Keep      string
	HasThread bool
}

// checkData is what the browser client needs on the check page.
type checkData struct {
	API   string               `json:"api"`
	Desks map[string]checkDesk `json:"desks"`
}

type checkDesk struct {
	Handlers []string            `json:"handlers"` // card lines, to verify replies
	Routes   map[string][]string `json:"routes"`   // recipients by category
	PQ       bool                `json:"pq"`
}

type replyView struct {
	From     string
	Verified bool
	Text     string
	Files    []string
}

type deskLink struct{ Title, Description, URL string }

type deskView struct {
	ID, Title, Description string
	WhatHappens            string
	Restricted             bool
	Fields                 []fieldView
	URL, Action, SelfURL   string
	RecipientsURL          string
	Data                   deskData
	Text                   map[string]string
}

// deskData is what the browser client needs: the recipients of each
// category ("" for none), the API and the size limit.
type deskData struct {
	Desk     string              `json:"desk"`
	API      string              `json:"api"`
	Routes   map[string][]string `json:"routes"`
	MaxBytes int64               `json:"max_bytes"`
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
	"receipt_words_label", "receipt_digits_label", "too_large", "offer_server"}

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

// pick returns the text of m in lang, else English, else any.
func pick(m map[string]string, lang string) string {
	if s, ok := m[lang]; ok && s != "" {
		return s
	}
	if s, ok := m["en"]; ok && s != "" {
		return s
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		return m[keys[0]]
	}
	return ""
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

func (s *Server) deskView(r *http.Request, d *desk, c *web.Catalog, values map[string][]string) *deskView {
	m := d.m
	q := "?lang=" + url.QueryEscape(c.Lang)
	v := &deskView{
		ID: m.Desk, Title: m.Title, Description: m.Description,
		WhatHappens: c.T("what_happens", "ack", fmt.Sprint(m.Retention.DeleteAfterAckHours), "days", fmt.Sprint(m.Retention.KeepUnackedDays)),
		URL:         "/desks/" + m.Desk + q, Action: "/desks/" + m.Desk + "/submit",
		SelfURL: "/desks/" + m.Desk + "/self" + q, RecipientsURL: "/desks/" + m.Desk + "/recipients.txt",
		Data: deskData{Desk: m.Desk, API: api.Prefix, Routes: map[string][]string{}, MaxBytes: min(m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission)},
		Text: map[string]string{},
	}
	for _, k := range jsText {
		v.Text[k] = c.T(k)
	}
	all, _ := m.Route("")
	for _, card := range all {
		v.Data.Routes[""] = append(v.Data.Routes[""], card.Recipient)
	}
	for _, cat := range m.Categories {
		cards, _ := m.Route(cat.ID)
		for _, card := range cards {
			v.Data.Routes[cat.ID] = append(v.Data.Routes[cat.ID], card.Recipient)
		}
		if len(cards) < len(all) {
			v.Restricted = true
		}
	}
	for _, f := range formFields(m, c) {
		fv := fieldView{ID: f.ID, Name: "f." + f.ID, Type: f.Type, Label: pick(f.Label, c.Lang), Help: pick(f.Help, c.Lang),
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
				fv.Options = append(fv.Options, optionView{Value: o.ID, Label: pick(o.Label, c.Lang), Selected: selected(o.ID)})
			}
		case crypto.FieldCategory:
			fv.Name = "category"
			chosen := ""
			if vals := values["category"]; len(vals) > 0 {
				chosen = vals[0]
			}
			fv.Options = append(fv.Options, optionView{Value: "", Label: c.T("category_none"), Selected: chosen == ""})
			for _, cat := range m.Categories {
				label := cat.Labels[c.Lang]
				if label == "" {
					label = cat.Title
				}
				if label == "" {
					label = pick(cat.Labels, c.Lang)
				}
				if label == "" {
					label = cat.ID
				}
				fv.Options = append(fv.Options, optionView{Value: cat.ID, Label: label, Selected: chosen == cat.ID})
			}
		case crypto.FieldFile:
			fv.Name = "files"
		}
		v.Fields = append(v.Fields, fv)
	}
	return v
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	c := s.pages.lang(r.URL.Query().Get("lang"))
	s.mu.RLock()
	var desks []deskLink
	for _, d := range s.desks {
		desks = append(desks, deskLink{Title: d.m.Title, Description: d.m.Description, URL: "/desks/" + d.m.Desk + "?lang=" + url.QueryEscape(c.Lang)})
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
		s.pageError(w, r, c, nil, 404, c.T("error_not_found"))
	}
	return c, d
}

// receiptPage shows the receipt of something stored from a page: the
// submitter's receipt, if rcpt is not nil, and the storage receipt.
func (s *Server) receiptPage(w http.ResponseWriter, r *http.Request, c *web.Catalog, d *desk, sub *store.Submission, sealedBy string, rcpt *crypto.Receipt) {
	rc := receipt(sub)
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
	pd := s.pages.base(r, c, d.m.Title)
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
	if category == "" {
		fmt.Fprintf(&b, "# for a report with no category: every handler of the desk\n")
	} else {
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
