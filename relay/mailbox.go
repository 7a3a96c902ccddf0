package relay

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// Bounds of the follow-up channel.
const (
	// MaxReply bounds a desk reply and a follow-up; see api.MaxReply.
	MaxReply = api.MaxReply
	// lookupRate and lookupBurst bound mailbox lookups across all clients:
	// a receipt has 128 bits, so guessing is hopeless anyway; this keeps it
	// expensive to try.
	lookupRate  = 10 // per second
	lookupBurst = 40
)

var errBusy = &apiError{Status: 429, Body: api.Error{Code: "busy", Message: "Too many requests right now.",
	Hint: "Wait a minute and try again."}}

// limiter is a token bucket.
type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	tokens      float64
	last        time.Time
}

func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = l.burst
	} else {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// idleSince is how long ago the bucket was last used.
func (l *limiter) idleSince(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.last)
}

// mailboxRoutes is the routing of a thread: the handlers of desk in
// category.
func (s *Server) mailboxRoutes(deskID, category string) (*desk, []*crypto.Card, *apiError) {
	d := s.desk(deskID)
	if d == nil {
		return nil, nil, errUnknownDesk
	}
	cards, err := d.m.Route(category)
	if err != nil {
		return nil, nil, errUnknownCategory
	}
	return d, cards, nil
}

func keyIDs(cards []*crypto.Card) (routes, stanzas []string) {
	for _, c := range cards {
		routes = append(routes, c.KeyID())
		stanzas = append(stanzas, c.StanzaType())
	}
	return routes, stanzas
}

// postReply files a handler's reply. A reply is encrypted to the handlers
// its category has now, by the desk's current manifest, and to the
// submitter's reply recipient (one stanza more, of the same type); only one
// of those handlers may send it. It starts the thread if there is none,
// and it moves a thread whose handlers have changed since (a handler was
// removed or added) to the category's current ones: later follow-ups go to
// them only. The thread's other handlers get a copy in their inbox.
func (s *Server) postReply(w http.ResponseWriter, r *http.Request, who *caller) {
	mailboxID := r.PathValue("mailbox")
	if _, err := hexKey(mailboxID); err != nil {
		writeError(w, errNotFound)
		return
	}
	q := r.URL.Query()
	category := q.Get("category")
	d, cards, aerr := s.mailboxRoutes(q.Get("desk"), category)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if d.m.Handler(who.keyID) == nil {
		writeError(w, errUnauthorized)
		return
	}
	routes, stanzas := keyIDs(cards)
	// A thread stays in its desk and category; only the category's
	// current handlers may write in it.
	if m, err := s.spool.Mailbox(mailboxID); err == nil && (m.Desk != d.m.Desk || m.Category != category) || !slices.Contains(routes, who.keyID) {
		writeError(w, errNotFound)
		return
	}
	want := append(slices.Clone(stanzas), stanzas[0])
	if aerr := checkAge(who.body, want, int64(len(who.body))); aerr != nil {
		writeError(w, aerr)
		return
	}
	if _, err := s.spool.EnsureMailbox(mailboxID, d.m.Desk, category, routes, stanzas); err != nil {
		s.storeError(w, err)
		return
	}
	var others []string
	for _, k := range routes {
		if k != who.keyID {
			others = append(others, k)
		}
	}
	spec, _ := s.spec(d.m.Desk, "", 1)
	spec.Category, spec.Routes, spec.Stanzas = category, routes, stanzas
	id, err := s.spool.PutReply(mailboxID, who.body, spec, others)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 201, api.ReplyPosted{ID: id})
}

func hexKey(id string) ([]byte, error) {
	if len(id) != 32 {
		return nil, store.ErrNotFound
	}
	b := make([]byte, 16)
	for i := 0; i < 16; i++ {
		hi, lo := unhex(id[2*i]), unhex(id[2*i+1])
		if hi < 0 || lo < 0 {
			return nil, store.ErrNotFound
		}
		b[i] = byte(hi<<4 | lo)
	}
	return b, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// findMailbox finds the mailbox of a token; the route's admission has
// taken the lookup from the limit. An unknown, expired or malformed token
// all give nil: the same answer as an empty mailbox.
func (s *Server) findMailbox(token string) *store.Mailbox {
	t, ok := crypto.DecodeLookupToken(token)
	if !ok {
		return nil
	}
	m, err := s.spool.Mailbox(crypto.MailboxOf(t))
	if err != nil {
		return nil
	}
	return m
}

func (s *Server) checkMailbox(w http.ResponseWriter, r *http.Request) {
	var req api.MailboxRequest
	if !readJSON(r, &req) {
		writeError(w, errBadRequest)
		return
	}
	m := s.findMailbox(req.Token)
	out := api.Mailbox{Replies: []api.ReplyInfo{}, KeepDays: int(s.mailboxTTL() / (24 * time.Hour))}
	if m != nil {
		for _, rp := range m.Replies {
			if rp.Own {
				continue // the no-JavaScript page's own copies (checkpages.go)
			}
			out.Replies = append(out.Replies, api.ReplyInfo{ID: rp.ID, Size: rp.Size, SHA256: rp.SHA256, Received: rp.Received.UTC().Format(time.RFC3339)})
		}
		out.Desk, out.Category = m.Desk, m.Category
	}
	writeJSON(w, 200, out)
}

func (s *Server) mailboxTTL() time.Duration {
	if s.cfg.MailboxTTL > 0 {
		return s.cfg.MailboxTTL
	}
	return store.DefaultMailboxTTL
}

func (s *Server) downloadReply(w http.ResponseWriter, r *http.Request) {
	var req api.MailboxRequest
	if !readJSON(r, &req) {
		writeError(w, errBadRequest)
		return
	}
	m := s.findMailbox(req.Token)
	if m == nil {
		writeError(w, errNotFound)
		return
	}
	rd, err := s.spool.OpenReply(m.ID, r.PathValue("reply"))
	if err != nil {
		writeError(w, errNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(&progressWriter{w: w, rc: http.NewResponseController(w), idle: s.cfg.IdleTimeout}, rd)
}

// followupRoute is where a submitter's follow-up goes: the mailbox's thread
// if it has one, else desk and category as the submitter chose them. It
// creates nothing: openMailbox does, once the follow-up is accepted.
func (s *Server) followupRoute(token []byte, deskID, category string) (*store.Mailbox, *apiError) {
	id := crypto.MailboxOf(token)
	if m, err := s.spool.Mailbox(id); err == nil {
		return m, nil
	}
	d, cards, aerr := s.mailboxRoutes(deskID, category)
	if aerr != nil {
		return nil, aerr
	}
	m := &store.Mailbox{ID: id, Desk: d.m.Desk, Category: category}
	m.Routes, m.Stanzas = keyIDs(cards)
	return m, nil
}

// openMailbox creates the mailbox of a thread, or marks activity on it so
// it lives on.
func (s *Server) openMailbox(m *store.Mailbox) (*store.Mailbox, error) {
	return s.spool.EnsureMailbox(m.ID, m.Desk, m.Category, m.Routes, m.Stanzas)
}

// followupSpec is where a follow-up of n bytes to thread m is stored.
func (s *Server) followupSpec(m *store.Mailbox, n int64) (store.UploadSpec, error) {
	spec, aerr := s.spec(m.Desk, "", n)
	if aerr != nil {
		return spec, aerr
	}
	spec.Category, spec.Routes, spec.Stanzas = m.Category, m.Routes, m.Stanzas
	spec.Kind, spec.Mailbox = store.KindFollowup, m.ID
	return spec, nil
}

// storeFollowup stores a follow-up's ciphertext for the thread's handlers.
func (s *Server) storeFollowup(m *store.Mailbox, idem string, data []byte) (*store.Submission, error) {
	spec, err := s.followupSpec(m, int64(len(data)))
	if err != nil {
		return nil, err
	}
	spec.Idempotency = idem
	return s.spool.PutSubmission(spec, data)
}

// storeFollowupStream stores a follow-up the relay sealed itself, streaming
// its ciphertext of length n into the spool.
func (s *Server) storeFollowupStream(m *store.Mailbox, n int64, r io.Reader) (*store.Submission, error) {
	spec, err := s.followupSpec(m, n)
	if err != nil {
		return nil, err
	}
	return s.storeStream(spec, r)
}

func (s *Server) postFollowup(w http.ResponseWriter, r *http.Request) {
	token, ok := crypto.DecodeLookupToken(r.Header.Get("Amana-Token"))
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	idem, aerr := idempotencyKey(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	q := r.URL.Query()
	m, aerr := s.followupRoute(token, q.Get("desk"), q.Get("category"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	data, aerr := readChecked(r.Body, m.Stanzas, r.ContentLength)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var err error
	if m, err = s.openMailbox(m); err != nil {
		s.storeError(w, err)
		return
	}
	sub, err := s.storeFollowup(m, idem, data)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			writeError(w, ae)
			return
		}
		s.storeError(w, err)
		return
	}
	writeJSON(w, 201, receipt(sub))
}
