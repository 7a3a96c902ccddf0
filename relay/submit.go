package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// spec decides routing and limits for a new submission to desk in category.
func (s *Server) spec(deskID, category string, length int64) (store.UploadSpec, *apiError) {
	d := s.desk(deskID)
	if d == nil {
		return store.UploadSpec{}, errUnknownDesk
	}
	cards, err := d.m.Route(category)
	if err != nil {
		return store.UploadSpec{}, errUnknownCategory
	}
	if length > min(d.m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission) {
		return store.UploadSpec{}, errTooLarge
	}
	spec := store.UploadSpec{
		Desk:           deskID,
		Category:       category,
		Length:         length,
		DeleteAfterAck: d.m.Retention.DeleteAfterAck(),
		KeepUnacked:    time.Duration(d.m.Retention.KeepUnackedDays) * 24 * time.Hour,
	}
	for _, c := range cards {
		spec.Routes = append(spec.Routes, c.KeyID())
		spec.Stanzas = append(spec.Stanzas, c.StanzaType())
	}
	return spec, nil
}

func receipt(sub *store.Submission) api.Receipt {
	return api.Receipt{ID: sub.ID, Desk: sub.Desk, Size: sub.Size, SHA256: sub.SHA256, Received: sub.Received.UTC().Format(time.RFC3339)}
}

func (s *Server) storeError(w http.ResponseWriter, err error) {
	var oe *store.OffsetError
	switch {
	case errors.As(err, &oe):
		e := *errOffset
		e.Body.Offset = &oe.Current
		writeError(w, &e)
	case errors.Is(err, store.ErrQuota), errors.Is(err, store.ErrStorage):
		if errors.Is(err, store.ErrStorage) {
			s.cfg.Eventf("storage error: %v", err)
		}
		writeError(w, errQuota)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, errNotFound)
	case errors.Is(err, store.ErrTooLong):
		writeError(w, errTooLong)
	case errors.Is(err, store.ErrIncomplete):
		writeError(w, errIncomplete)
	case errors.Is(err, store.ErrIdempotency):
		writeError(w, errIdempotency)
	default:
		s.cfg.Eventf("internal error: %v", err)
		writeError(w, errInternal)
	}
}

var errOffset = &apiError{Status: 409, Body: api.Error{Code: "offset_mismatch", Message: "The piece does not start at the upload's current offset.",
	Hint: "Continue from the offset given in this answer."}}

// submit stores a submission sent in one request. The admission has
// bounded its length by MaxSingle and reserved memory for it.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	spec, aerr := s.spec(r.PathValue("desk"), r.URL.Query().Get("category"), r.ContentLength)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if spec.Idempotency, aerr = idempotencyKey(r); aerr != nil {
		writeError(w, aerr)
		return
	}
	data, aerr := readChecked(r.Body, spec.Stanzas, spec.Length)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	sub, err := s.spool.PutSubmission(spec, data)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 201, receipt(sub))
}

// idempotencyKey returns the request's idempotency key, "" when it has none.
func idempotencyKey(r *http.Request) (string, *apiError) {
	k := r.Header.Get(api.IdempotencyHeader)
	if k == "" {
		return "", nil
	}
	if len(k) < 16 || len(k) > 64 {
		return "", errIdemKey
	}
	for _, c := range []byte(k) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", errIdemKey
		}
	}
	return k, nil
}

// maxHandlers is the most handlers a desk has: headers are parsed up to
// that size, so a wrong stanza count is reported as such rather than as
// "not age".
const maxHandlers = crypto.MaxHandlers

// checkAge checks that a whole body held in memory starts with an age
// header with the stanzas wanted, and that length fits a complete age file:
// peekHeader's check, on bytes that cannot stall.
func checkAge(body []byte, stanzas []string, length int64) *apiError {
	_, _, aerr := peekHeader(bytes.NewReader(body), stanzas, length)
	return aerr
}

func (s *Server) createUpload(w http.ResponseWriter, r *http.Request) {
	var req api.CreateUpload
	if !readJSON(r, &req) || req.Length <= 0 {
		writeError(w, errBadRequest)
		return
	}
	spec, aerr := s.spec(r.PathValue("desk"), req.Category, req.Length)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	tok, err := s.spool.CreateUpload(spec)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 201, api.UploadState{Upload: tok, Length: spec.Length, MaxPiece: s.cfg.MaxPiece, InFlight: api.InFlight})
}

func (s *Server) uploadState(w http.ResponseWriter, r *http.Request) {
	u, err := s.spool.Upload(r.PathValue("token"))
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 200, api.UploadState{Offset: u.Offset, Length: u.Length, MaxPiece: s.cfg.MaxPiece, InFlight: api.InFlight})
}

func (s *Server) writeUpload(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	off, ok := parseOffset(r.Header.Get("Upload-Offset"))
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	u, err := s.spool.Upload(tok)
	if err != nil {
		s.storeError(w, err)
		return
	}
	// A piece past the offset may follow the piece in flight that ends
	// there (§10.6); the spool says if it can.
	if off < u.Offset || off == 0 && u.Offset != 0 {
		s.storeError(w, &store.OffsetError{Current: u.Offset})
		return
	}
	var body io.Reader = r.Body
	if off == 0 {
		// The first piece must hold the whole age header: check it before
		// anything is stored.
		head, rest, aerr := peekHeader(body, u.Stanzas, u.Length)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		body = io.MultiReader(head, rest)
	}
	// A follower's wait for the piece before it ends with the request or
	// after the idle timeout, like a stalled body (§10.6).
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.IdleTimeout)
	defer cancel()
	n, err := s.spool.WritePiece(ctx, tok, off, r.ContentLength, body)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, errPieceTooLarge)
		case errors.Is(err, errStalled):
			writeError(w, errTimeout)
		case isStoreError(err):
			s.storeError(w, err)
		default:
			// The client went away mid-piece; what arrived is kept.
			writeError(w, errBadRequest)
		}
		return
	}
	writeJSON(w, 200, api.UploadState{Offset: n, Length: u.Length, MaxPiece: s.cfg.MaxPiece, InFlight: api.InFlight})
}

func isStoreError(err error) bool {
	for _, e := range []error{store.ErrNotFound, store.ErrTooLong, store.ErrOffset, store.ErrQuota, store.ErrStorage, store.ErrIncomplete} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) {
	sub, err := s.spool.CompleteUpload(r.PathValue("token"))
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 201, receipt(sub))
}
