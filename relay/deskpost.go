package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/web"
	"github.com/amana-relay/amana/store"
)

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
	// view shows the form again, with the text that was received, and
	// what went wrong: every failure after the post was read.
	view := func(status int, msg string) {
		pd := s.pages.base(r, c, d.m.TitleIn(c.Lang))
		pd.Desk = s.deskView(r, d, c, post.values)
		pd.Error = msg
		s.pages.render(w, status, "desk", pd)
	}
	if err != nil {
		fe := s.formError(err)
		switch {
		case fe == errFormTooLarge && post != nil:
			view(fe.status, tooLargeText(c, post.over, limit))
		case post != nil:
			view(fe.status, c.T(fe.key))
		default:
			s.pageError(w, r, c, d, fe.status, c.T(fe.key))
		}
		return
	}
	// Required fields: show the form again with what was typed. Each
	// missing label is quoted, since a label may end in its own "?".
	missing := s.missing(r, d, c, post)
	if len(missing) > 0 {
		view(400, c.T("error_missing", "fields", strings.Join(missing, ", ")))
		return
	}
	if !validAnswers(formFields(d.m, c), post.answers) {
		view(400, c.T("error_bad"))
		return
	}
	spec, aerr := s.spec(d.m.Desk, post.category, 1)
	if aerr != nil {
		view(400, c.T("error_bad"))
		return
	}
	cards, _ := d.m.Route(post.category)
	rcpt := crypto.NewReceipt()
	report := &crypto.Report{
		Desk:      d.m.Desk,
		Category:  post.category,
		Language:  c.Lang,
		Submitted: crypto.SubmittedAt(s.cfg.Now()),
		SealedBy:  crypto.SealedByServer,
		Answers:   post.answers,
	}
	sealed, total, err := crypto.SealReport(crypto.RecipientsOf(cards), rcpt, report, post.files)
	if err != nil {
		view(500, c.T("error_bad"))
		s.cfg.Eventf("sealing a form submission failed: %s", scrubbed(err))
		return
	}
	defer sealed.Close()
	if total > min(d.m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission) {
		view(413, tooLargeText(c, overFiles, limit))
		return
	}
	spec.Length = total
	sub, err := s.storeStream(spec, sealed)
	if err != nil {
		fe := s.formError(err)
		view(fe.status, c.T(fe.key))
		return
	}
	s.receiptPage(w, r, c, d, sub, crypto.SealedByServer, rcpt)
}

// missing quotes the label of each required field post left empty.
func (s *Server) missing(r *http.Request, d *desk, c *web.Catalog, post *formPost) []string {
	var missing []string
	for _, fv := range s.deskView(r, d, c, post.values).Fields {
		if !fv.Required {
			continue
		}
		var empty bool
		switch fv.Type {
		case crypto.FieldFile:
			empty = len(post.files) == 0
		case crypto.FieldCategory:
			empty = post.category == ""
		default:
			empty = len(post.values[fv.Name]) == 0 || strings.TrimSpace(post.values[fv.Name][0]) == ""
		}
		if empty {
			missing = append(missing, c.T("field_quoted", "label", isolate(fv.Label)))
		}
	}
	return missing
}

// tooLargeText says which limit a post went past, and how large it is;
// files is the budget of the files.
func tooLargeText(c *web.Catalog, over overLimit, files int64) string {
	switch over {
	case overFileCount:
		return c.T("error_too_many_files", "n", fmt.Sprint(crypto.MaxAttachments))
	case overField:
		return c.T("error_too_long_field", "limit", humanSize(c, maxFieldBytes))
	case overText:
		return c.T("error_too_long_text", "limit", humanSize(c, maxAnswerBytes))
	}
	return c.T("error_too_large_files", "limit", humanSize(c, files))
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
		msg := c.T(fe.key)
		if fe == errFormTooLarge {
			msg = c.T("error_self_too_large", "limit", humanSize(c, limit))
		}
		s.pageError(w, r, c, d, fe.status, msg)
		return
	}
	spec, aerr := s.spec(d.m.Desk, post.category, int64(len(post.age)))
	if aerr == errTooLarge {
		s.pageError(w, r, c, d, 413, c.T("error_self_too_large", "limit", humanSize(c, min(d.m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission))))
		return
	}
	if aerr != nil {
		s.pageError(w, r, c, d, 400, c.T("error_bad"))
		return
	}
	if aerr := checkAge(post.age, spec.Stanzas, spec.Length); aerr != nil {
		msg := c.T("error_not_age")
		if others := sealedFor(d, c, post.age); aerr == errStanzas && len(others) > 0 {
			msg = c.T("error_self_category", "categories", strings.Join(others, ", "))
		}
		s.pageError(w, r, c, d, 400, msg)
		return
	}
	spec.Kind = store.KindSelf
	sub, err := s.storeStream(spec, bytes.NewReader(post.age))
	if err != nil {
		fe := s.formError(err)
		s.pageError(w, r, c, d, fe.status, c.T(fe.key))
		return
	}
	s.receiptPage(w, r, c, d, sub, store.KindSelf, nil)
}

// sealedFor names the desk's routes (a category, or none) whose handlers'
// stanzas a file's age header has, in the page's language: for a file
// sealed for another route than the one chosen. The stanzas are all the
// relay can see of whom a file is for, so this names where a file could
// belong, never that it does.
func sealedFor(d *desk, c *web.Catalog, age []byte) []string {
	hdr, err := crypto.ReadAgeHeader(bufio.NewReader(bytes.NewReader(age)), crypto.MaxHeaderLen(maxHandlers+1))
	if err != nil {
		return nil
	}
	var out []string
	routes := append([]string{""}, categoryIDs(d.m)...)
	for _, id := range routes {
		cards, err := d.m.Route(id)
		if err != nil {
			continue
		}
		var want []string
		for _, card := range cards {
			want = append(want, card.StanzaType())
		}
		if hdr.CheckTypes(want) == nil {
			title := d.m.CategoryTitle(id, c.Lang)
			if id == "" {
				title = c.T("category_none")
			}
			out = append(out, c.T("field_quoted", "label", isolate(title)))
		}
	}
	return out
}
