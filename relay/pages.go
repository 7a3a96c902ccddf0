package relay

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
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

type deskLink struct{ Title, URL string }

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
	"receipt_id", "receipt_sha256", "receipt_received", "receipt_keep", "too_large", "offer_server"}

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
		desks = append(desks, deskLink{Title: d.m.Title, URL: "/desks/" + d.m.Desk + "?lang=" + url.QueryEscape(c.Lang)})
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

// receiptPage shows the receipt of something stored from a page.
func (s *Server) receiptPage(w http.ResponseWriter, r *http.Request, c *web.Catalog, d *desk, sub *store.Submission, sealedBy, words string) {
	rc := receipt(sub)
	pd := s.pages.base(r, c, c.T("receipt_title"))
	pd.Desk = s.deskView(r, d, c, nil)
	pd.Receipt, pd.SealedBy, pd.Words = &rc, sealedBy, words
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

// storeStream stores a ciphertext of known length read from r as a new
// submission, through the same resumable upload path clients use.
func (s *Server) storeStream(spec store.UploadSpec, r io.Reader) (*store.Submission, error) {
	tok, err := s.spool.CreateUpload(spec)
	if err != nil {
		return nil, err
	}
	n, err := s.spool.WriteUpload(tok, 0, r)
	if err != nil {
		return nil, err
	}
	if n != spec.Length {
		return nil, fmt.Errorf("stored %d of %d bytes", n, spec.Length)
	}
	return s.spool.CompleteUpload(tok)
}

// errForm is a submitter-facing failure of a form post: the catalogue key
// of the message and the status.
type errForm struct {
	key    string
	status int
}

func (e *errForm) Error() string { return e.key }

var (
	errFormTooLarge = &errForm{"error_too_large", 413}
	errFormBad      = &errForm{"error_bad", 400}
	errFormFull     = &errForm{"error_full", 507}
	errFormNotAge   = &errForm{"error_not_age", 400}
)

// formError maps any failure to what the submitter is told; internal text
// goes only to the event log.
func (s *Server) formError(err error) *errForm {
	var fe *errForm
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &mbe):
		return errFormTooLarge
	case errors.Is(err, store.ErrQuota), errors.Is(err, store.ErrStorage):
		if errors.Is(err, store.ErrStorage) {
			s.cfg.Eventf("storage error: %v", err)
		}
		return errFormFull
	case errors.Is(err, errStalled):
		return errFormBad
	}
	s.cfg.Eventf("form submission failed: %v", scrubbed(err))
	return errFormBad
}

// scrubbed keeps only the type of an error, never its text, which could
// carry what a submitter typed.
func scrubbed(err error) string { return fmt.Sprintf("%T", err) }

// formPost is a parsed no-JavaScript submission.
type formPost struct {
	lang     string
	category string
	answers  []crypto.Answer
	values   map[string][]string
	files    []crypto.File
	arena    []byte // every part's bytes, one after the other
	age      []byte // the self-encrypted file, for /self
	receipt  string // the receipt words, on the no-JS check pages
	route    string // "desk|category" of a first follow-up
}

// wipe overwrites the plaintext buffers. Go may have copied them elsewhere
// in memory meanwhile; this only shortens how long they stay.
func (f *formPost) wipe() {
	clear(f.arena[:cap(f.arena)])
	for i := range f.answers {
		f.answers[i].Value = ""
	}
	f.values, f.receipt = nil, ""
}

// read appends a part to the arena and returns its bytes; a part of more
// than limit bytes is errFormTooLarge. The arena never grows: it has the
// post's declared length, which the parts' bytes cannot reach, since the
// multipart framing takes some of it and the admission's reader cuts a
// body longer than declared.
func (f *formPost) read(part io.Reader, limit int64) ([]byte, error) {
	start := len(f.arena)
	for {
		if len(f.arena) == cap(f.arena) {
			return nil, errFormBad
		}
		n, err := part.Read(f.arena[len(f.arena):cap(f.arena)])
		f.arena = f.arena[:len(f.arena)+n]
		if int64(len(f.arena)-start) > limit {
			return nil, errFormTooLarge
		}
		if err == io.EOF {
			return f.arena[start:len(f.arena):len(f.arena)], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Bounds of a no-JavaScript post.
const (
	maxFieldBytes  = 64 << 10
	maxAnswerBytes = 1 << 20
	maxFormParts   = 300
)

// readForm streams a multipart post part by part, keeping text fields and
// files in memory within budget bytes, never on disk (no ParseMultipartForm,
// no FormFile). Every part is read into one buffer of the post's declared
// length, which the route's admission reserved, so the post holds no more
// memory than that however its parts are cut.
func readForm(r *http.Request, budget int64, wantAge bool) (*formPost, error) {
	mr, err := r.MultipartReader()
	if err != nil || r.ContentLength < 0 {
		return nil, errFormBad
	}
	f := &formPost{values: map[string][]string{}, arena: make([]byte, 0, r.ContentLength)}
	var text int64
	for parts := 0; ; parts++ {
		if parts > maxFormParts {
			return f, errFormBad
		}
		part, err := mr.NextPart()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return f, err
		}
		name := part.FormName()
		switch {
		case name == "files" || name == "age" && wantAge:
			b, err := f.read(part, budget)
			if err != nil {
				return f, err
			}
			budget -= int64(len(b))
			if name == "age" {
				f.age = b
				continue
			}
			if part.FileName() == "" && len(b) == 0 {
				continue // the browser's empty file input
			}
			sum := sha256.Sum256(b)
			typ := part.Header.Get("Content-Type")
			if mt, _, err := mime.ParseMediaType(typ); err != nil || len(typ) > 200 {
				typ = "application/octet-stream"
			} else {
				typ = mt
			}
			fname := filepath.Base(strings.ReplaceAll(part.FileName(), "\\", "/")) // old browsers send a path
			f.files = append(f.files, crypto.File{
				Attachment: crypto.Attachment{Name: fname, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Type: typ},
				Body:       bytes.NewReader(b),
			})
			if len(f.files) > crypto.MaxAttachments {
				return f, errFormTooLarge
			}
		case name == "lang" || name == "category" || name == "sealed" || name == "receipt" || name == "route" || strings.HasPrefix(name, "f."):
			b, err := f.read(part, maxFieldBytes)
			if err != nil {
				return f, err
			}
			if text += int64(len(b)); text > maxAnswerBytes {
				return f, errFormTooLarge
			}
			v := strings.ReplaceAll(string(b), "\r\n", "\n")
			switch {
			case name == "lang":
				f.lang = v
			case name == "category":
				f.category = v
				f.values["category"] = []string{v}
			case name == "sealed":
			case name == "receipt":
				f.receipt = v
			case name == "route":
				f.route = v
			default:
				id := strings.TrimPrefix(name, "f.")
				f.values[name] = append(f.values[name], v)
				if v != "" {
					f.answers = append(f.answers, crypto.Answer{Field: id, Value: v})
				}
			}
		default:
			io.Copy(io.Discard, io.LimitReader(part, maxFieldBytes))
		}
	}
}

// submitForm is the no-JavaScript path: the relay seals the report in
// memory, marks it sealed_by "server", and stores only the ciphertext.
func (s *Server) submitForm(w http.ResponseWriter, r *http.Request) {
	c, d := s.pageDesk(w, r)
	if d == nil {
		return
	}
	if s.cfg.RequireClientEncryption {
		s.pageError(w, r, c, d, 403, c.T("mode_required"))
		return
	}
	limit := min(d.m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission, s.cfg.MaxFormBytes)
	post, err := readForm(r, limit, false)
	if post != nil {
		defer post.wipe()
		if post.lang != "" {
			c = s.pages.lang(post.lang)
		}
	}
	if err != nil {
		fe := s.formError(err)
		s.pageError(w, r, c, d, fe.status, c.T(fe.key))
		return
	}
	// Required fields: show the form again with what was typed.
	var missing []string
	for _, fv := range s.deskView(r, d, c, nil).Fields {
		if !fv.Required {
			continue
		}
		switch fv.Type {
		case crypto.FieldFile:
			if len(post.files) == 0 {
				missing = append(missing, fv.Label)
			}
		case crypto.FieldCategory:
			if post.category == "" {
				missing = append(missing, fv.Label)
			}
		default:
			if len(post.values[fv.Name]) == 0 || strings.TrimSpace(post.values[fv.Name][0]) == "" {
				missing = append(missing, fv.Label)
			}
		}
	}
	if len(missing) > 0 {
		pd := s.pages.base(r, c, d.m.Title)
		pd.Desk = s.deskView(r, d, c, post.values)
		pd.Error = c.T("error_missing", "fields", strings.Join(missing, ", "))
		s.pages.render(w, 400, "desk", pd)
		return
	}
	if !validAnswers(formFields(d.m, c), post.answers) {
		s.pageError(w, r, c, d, 400, c.T("error_bad"))
		return
	}
	spec, aerr := s.spec(d.m.Desk, post.category, 1)
	if aerr != nil {
		s.pageError(w, r, c, d, 400, c.T("error_bad"))
		return
	}
	cards, _ := d.m.Route(post.category)
	rcpt := crypto.NewReceipt()
	replyID, err := rcpt.ReplyIdentity(cards[0].PostQuantum())
	if err != nil {
		s.pageError(w, r, c, d, 500, c.T("error_bad"))
		return
	}
	report := &crypto.Report{
		Desk:           d.m.Desk,
		Category:       post.category,
		Language:       c.Lang,
		Submitted:      crypto.SubmittedAt(s.cfg.Now()),
		SealedBy:       crypto.SealedByServer,
		Answers:        post.answers,
		ReplyRecipient: replyID.Recipient(),
		Mailbox:        rcpt.MailboxID(),
	}
	sealed, total, err := crypto.SealBundle(cards, report, post.files)
	if err != nil {
		s.pageError(w, r, c, d, 500, c.T("error_bad"))
		s.cfg.Eventf("sealing a form submission failed: %s", scrubbed(err))
		return
	}
	defer sealed.Close()
	if total > min(d.m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission) {
		s.pageError(w, r, c, d, 413, c.T("error_too_large"))
		return
	}
	spec.Length = total
	sub, err := s.storeStream(spec, sealed)
	if err != nil {
		fe := s.formError(err)
		s.pageError(w, r, c, d, fe.status, c.T(fe.key))
		return
	}
	s.receiptPage(w, r, c, d, sub, crypto.SealedByServer, rcpt.Words())
}

func (s *Server) selfPage(w http.ResponseWriter, r *http.Request) {
	c, d := s.pageDesk(w, r)
	if d == nil {
		return
	}
	pd := s.pages.base(r, c, c.T("self_title"))
	pd.Desk = s.deskView(r, d, c, nil)
	s.pages.render(w, 200, "self", pd)
}

// submitSelf takes a file the submitter encrypted with age themselves: the
// relay checks it like any submission and never sees plaintext.
func (s *Server) submitSelf(w http.ResponseWriter, r *http.Request) {
	c, d := s.pageDesk(w, r)
	if d == nil {
		return
	}
	limit := min(d.m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission, s.cfg.MaxFormBytes)
	post, err := readForm(r, limit, true)
	if post != nil {
		defer post.wipe()
		if post.lang != "" {
			c = s.pages.lang(post.lang)
		}
	}
	if err == nil && len(post.age) == 0 {
		err = errFormNotAge
	}
	if err != nil {
		fe := s.formError(err)
		s.pageError(w, r, c, d, fe.status, c.T(fe.key))
		return
	}
	spec, aerr := s.spec(d.m.Desk, post.category, int64(len(post.age)))
	if aerr == errTooLarge {
		s.pageError(w, r, c, d, 413, c.T("error_too_large"))
		return
	}
	if aerr != nil {
		s.pageError(w, r, c, d, 400, c.T("error_bad"))
		return
	}
	if aerr := checkAge(post.age, spec.Stanzas, spec.Length); aerr != nil {
		s.pageError(w, r, c, d, 400, c.T("error_not_age"))
		return
	}
	spec.Kind = store.KindSelf
	sub, err := s.storeStream(spec, bytes.NewReader(post.age))
	if err != nil {
		fe := s.formError(err)
		s.pageError(w, r, c, d, fe.status, c.T(fe.key))
		return
	}
	s.receiptPage(w, r, c, d, sub, store.KindSelf, "")
}

// validAnswers accepts only answers to the form's own fields and, for
// choices, only its options: a handler never sees a question the desk did
// not ask.
func validAnswers(fields []crypto.Field, answers []crypto.Answer) bool {
	byID := map[string]*crypto.Field{}
	for i := range fields {
		byID[fields[i].ID] = &fields[i]
	}
	count := map[string]int{}
	for _, a := range answers {
		f, ok := byID[a.Field]
		if !ok || f.Type == crypto.FieldFile || f.Type == crypto.FieldCategory {
			return false
		}
		count[a.Field]++
		switch f.Type {
		case crypto.FieldChoice, crypto.FieldMultiChoice:
			if f.Type == crypto.FieldChoice && count[a.Field] > 1 {
				return false
			}
			found := false
			for _, o := range f.Options {
				found = found || o.ID == a.Value
			}
			if !found {
				return false
			}
		default:
			if count[a.Field] > 1 {
				return false
			}
		}
	}
	return true
}

// static serves the stylesheet and the browser client, gzipped when the
// browser accepts it: over Tor every kilobyte counts. The files are public
// and the same for everyone, so compression reveals nothing.
func (s *Server) static() http.Handler {
	type asset struct {
		plain, gz []byte
		typ       string
	}
	assets := map[string]*asset{}
	fs.WalkDir(web.Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.Static(), p)
		if err != nil {
			return err
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		typ := mime.TypeByExtension(path.Ext(p))
		if typ == "" {
			typ = "application/octet-stream"
		}
		assets[p] = &asset{plain: b, gz: z.Bytes(), typ: typ}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[strings.TrimPrefix(r.URL.Path, "/static/")]
		if !ok {
			notFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Type", a.typ)
		h.Set("Vary", "Accept-Encoding")
		body := a.plain
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			body = a.gz
		}
		h.Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})
}
