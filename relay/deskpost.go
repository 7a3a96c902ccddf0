package relay

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/amana-relay/amana/crypto"
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
	if err != nil {
		fe := s.formError(err)
		s.pageError(w, r, c, d, fe.status, c.T(fe.key))
		return
	}
	// Required fields: show the form again with what was typed. Each
	// missing label is quoted, since a label may end in its own "?".
	view := s.deskView(r, d, c, post.values)
	var missing []string
	for _, fv := range view.Fields {
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
			missing = append(missing, c.T("field_quoted", "label", fv.Label))
		}
	}
	if len(missing) > 0 {
		pd := s.pages.base(r, c, d.m.Title)
		pd.Desk = view
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
	s.receiptPage(w, r, c, d, sub, crypto.SealedByServer, rcpt)
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
	s.receiptPage(w, r, c, d, sub, store.KindSelf, nil)
}
