package relay

import (
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// Spool is what the relay needs from storage. *store.Spool implements it.
type Spool interface {
	CreateUpload(spec store.UploadSpec) (token string, err error)
	Upload(token string) (*store.Upload, error)
	WriteUpload(token string, offset int64, r io.Reader) (int64, error)
	CompleteUpload(token string) (*store.Submission, error)
	PutSubmission(spec store.UploadSpec, data []byte) (*store.Submission, error)
	Submissions(keep func(*store.Submission) bool) ([]*store.Submission, error)
	SubmissionsPage(after string, limit int, keep func(*store.Submission) bool) (subs []*store.Submission, next string, err error)
	Submission(id string) (*store.Submission, error)
	OpenSubmission(id string, offset int64) (io.Reader, error)
	Ack(id, route string) (deleted bool, err error)
	PutDesk(id string, serial uint64, manifest []byte) error
	Desks() (map[string][]byte, error)
	Mailbox(id string) (*store.Mailbox, error)
	EnsureMailbox(id, desk, category string, routes, stanzas []string) (*store.Mailbox, error)
	PutReply(mailboxID string, data []byte, spec store.UploadSpec, copyRoutes []string) (string, error)
	OpenReply(mailboxID, replyID string) (io.Reader, error)
	Mailboxes(keep func(*store.Mailbox) bool) ([]*store.Mailbox, error)
}

// Config configures a Server. Every zero value means the documented default.
type Config struct {
	// Admin is the pinned desk admin key: only manifests and publish
	// requests it signs are accepted. Required.
	Admin ed25519.PublicKey
	// MaxSubmission caps any submission, whatever the desk allows. Zero
	// means 2 GiB.
	MaxSubmission int64
	// MaxSingle caps a submission sent in one request. Zero means 1 MiB.
	MaxSingle int64
	// MaxPiece caps one piece of a resumable upload. Zero means 64 MiB.
	MaxPiece int64
	// SignatureWindow is how far a signed request's time may be from the
	// relay's clock. Zero means 5 minutes.
	SignatureWindow time.Duration
	// IdleTimeout ends a request whose body or response makes no progress
	// for this long. Zero means 60 seconds.
	IdleTimeout time.Duration
	// MinBodyRate is the fewest bytes a second a request body must bring,
	// averaged over each IdleTimeout window; a slower body is ended like a
	// stalled one. Zero means 256; negative means no floor.
	MinBodyRate int64
	// HeaderTimeout is how long a client may take to send its request
	// headers. Zero means 20 seconds.
	HeaderTimeout time.Duration
	// Logf receives a line per request: the route pattern and the status,
	// with no time, path, body, token or address. Nil discards them.
	Logf func(format string, args ...any)
	// Eventf receives operational events (a manifest published, a stored
	// manifest skipped) and internal errors, which clients never see. They
	// carry no body, key, token or address. Nil discards them.
	Eventf func(format string, args ...any)
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// RequireClientEncryption turns off the no-JavaScript form, where the
	// relay seals a report in memory: only reports encrypted by the
	// submitter's own browser or tool are accepted. Zero (false) means the
	// no-JavaScript form works.
	RequireClientEncryption bool
	// MaxFormBytes caps what a no-JavaScript post (or a self-encrypted file
	// sent from a page) may hold, since the relay keeps it in memory while
	// it seals it. Zero means 64 MiB.
	MaxFormBytes int64
	// FormConcurrency caps how many such posts are handled at once. Zero
	// means 4.
	FormConcurrency int
	// MaxConcurrentBodies caps how many ciphertext bodies (single-request
	// submissions, upload pieces, follow-ups) are read at once; more wait
	// up to 5 seconds, then get 503 busy. Zero means 32.
	MaxConcurrentBodies int
	// MaxBodyMemory is the most memory the intake side's request bodies
	// may make the relay hold at once: every route that holds a body
	// reserves what it may hold before it reads a byte (admission.go,
	// §10.9 of protocol.md), and waits up to 5 seconds, then gets 503
	// busy. It must hold at least one page post of MaxFormBytes. Zero
	// means 128 MiB.
	MaxBodyMemory int64
	// MaxHandlerMemory is the same for the handler side's signed bodies
	// (replies and manifests), which are read only once their signature
	// over the headers verifies: one manifest's worth is kept for the
	// admin, and each handler key may hold one body at a time. Zero means
	// 33 MiB: two replies and the admin's manifest.
	MaxHandlerMemory int64
	// CreateRate and CreateBurst bound how many submissions and uploads
	// may start per second across all clients (a token bucket); past it
	// clients get 429 busy. Onion services cannot tell clients apart, so
	// this is global; tor's proof of work and per-circuit stream limit are
	// the first line. Zero means 50 per second, burst 200.
	CreateRate, CreateBurst int
	// CircuitCreateRate and CircuitLookupRate limit, per Tor circuit and
	// per minute, new submissions and uploads, and mailbox lookups, where
	// tor tells the relay each connection's circuit (CircuitListener). The
	// burst is twice the rate. Zero means 10 and 30; negative turns the
	// limit off.
	CircuitCreateRate, CircuitLookupRate int
	// MailboxTTL is how long the relay says a mailbox lives after its last
	// activity; it must match the spool's. Zero means 180 days.
	MailboxTTL time.Duration
	// OnPublish is called, outside any lock, after a desk manifest is
	// published, so the handler onion's client authorization can follow
	// the desks' handlers. Nil means nothing is called.
	OnPublish func()
}

// Server is the relay's HTTP API.
type Server struct {
	cfg   Config
	spool Spool
	start time.Time

	mu    sync.RWMutex
	desks map[string]*desk

	nonces nonceCache

	lookups   limiter       // mailbox lookups
	creates   limiter       // new submissions and uploads
	bodySlots chan struct{} // ciphertext bodies being read
	memory    *memBudget    // memory the intake side's bodies may hold
	// handlerMemory is the memory the handler side's signed bodies may
	// hold; adminMemory is the admin's own, for one manifest.
	handlerMemory, adminMemory *memBudget
	bodyKeys                   map[string]bool // handler keys with a signed body being read; under mu

	answers [answerKinds]atomic.Int64 // by answerKind

	circuitCreates, circuitLookups *circuitLimits // nil when off
	circuitNoted                   atomic.Int64   // unix second of the last "circuit limited" event
	pages                          *pages
	formSlots                      chan struct{} // places for no-JavaScript posts
	adminFP                        string
}

type desk struct {
	m   *crypto.Manifest
	raw []byte
}

// New makes a Server over spool, loading the desks it holds.
func New(spool Spool, cfg Config) (*Server, error) {
	if len(cfg.Admin) != ed25519.PublicKeySize {
		return nil, errors.New("relay needs the pinned admin key")
	}
	if cfg.MaxSubmission == 0 {
		cfg.MaxSubmission = 2 << 30
	}
	if cfg.MaxSingle == 0 {
		cfg.MaxSingle = 1 << 20
	}
	if cfg.MaxPiece == 0 {
		cfg.MaxPiece = 64 << 20
	}
	if cfg.SignatureWindow == 0 {
		cfg.SignatureWindow = 5 * time.Minute
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	switch {
	case cfg.MinBodyRate == 0:
		cfg.MinBodyRate = 256
	case cfg.MinBodyRate < 0:
		cfg.MinBodyRate = 0
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 20 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Eventf == nil {
		cfg.Eventf = func(string, ...any) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFormBytes == 0 {
		cfg.MaxFormBytes = 64 << 20
	}
	if cfg.FormConcurrency == 0 {
		cfg.FormConcurrency = 4
	}
	if cfg.MaxConcurrentBodies == 0 {
		cfg.MaxConcurrentBodies = 32
	}
	if cfg.MaxBodyMemory == 0 {
		cfg.MaxBodyMemory = DefaultMaxBodyMemory
	}
	if cfg.MaxHandlerMemory == 0 {
		cfg.MaxHandlerMemory = 2*MaxReply + crypto.MaxManifestLen
	}
	if cfg.MaxHandlerMemory < MaxReply+crypto.MaxManifestLen {
		return nil, fmt.Errorf("the handler memory budget (%d bytes) cannot hold one reply of %d bytes and the admin's manifest", cfg.MaxHandlerMemory, MaxReply)
	}
	if cfg.CreateRate == 0 {
		cfg.CreateRate = 50
	}
	if cfg.CreateBurst == 0 {
		cfg.CreateBurst = 200
	}
	if cfg.CircuitCreateRate == 0 {
		cfg.CircuitCreateRate = 10
	}
	if cfg.CircuitLookupRate == 0 {
		cfg.CircuitLookupRate = 30
	}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, spool: spool, start: cfg.Now(), desks: map[string]*desk{}, pages: p,
		formSlots: make(chan struct{}, cfg.FormConcurrency), adminFP: crypto.KeyFingerprint(cfg.Admin),
		bodySlots: make(chan struct{}, cfg.MaxConcurrentBodies), memory: newMemBudget(cfg.MaxBodyMemory),
		handlerMemory: newMemBudget(cfg.MaxHandlerMemory - crypto.MaxManifestLen), adminMemory: newMemBudget(crypto.MaxManifestLen), bodyKeys: map[string]bool{}}
	if need := heldForm(s, s.maxFormPost()); need > cfg.MaxBodyMemory {
		return nil, fmt.Errorf("the body memory budget (%d bytes) cannot hold one page post of the largest form size (%d bytes): raise it or lower the form size", cfg.MaxBodyMemory, need)
	}
	s.lookups = limiter{rate: lookupRate, burst: lookupBurst}
	s.creates = limiter{rate: float64(cfg.CreateRate), burst: float64(cfg.CreateBurst)}
	if cfg.CircuitCreateRate > 0 {
		s.circuitCreates = newCircuitLimits(float64(cfg.CircuitCreateRate)/60, 2*float64(cfg.CircuitCreateRate))
	}
	if cfg.CircuitLookupRate > 0 {
		s.circuitLookups = newCircuitLimits(float64(cfg.CircuitLookupRate)/60, 2*float64(cfg.CircuitLookupRate))
	}
	raw, err := spool.Desks()
	if err != nil {
		return nil, fmt.Errorf("loading desks: %w", err)
	}
	for id, r := range raw {
		m, _, err := crypto.OpenManifest(r, cfg.Admin)
		if err != nil {
			// After 'amana-relay init --force' the old admin's desks no
			// longer verify: they stay unserved until the new admin
			// publishes them again.
			cfg.Eventf("desk %q is not served: its stored manifest does not verify with the pinned admin key (%v); publish it again", id, err)
			continue
		}
		s.desks[id] = &desk{m: m, raw: r}
	}
	return s, nil
}

func (s *Server) desk(id string) *desk {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.desks[id]
}

// Cards returns every handler card of the desks the relay serves, each key
// once.
func (s *Server) Cards() []*crypto.Card {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var out []*crypto.Card
	ids := make([]string, 0, len(s.desks))
	for id := range s.desks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, c := range s.desks[id].m.Cards() {
			if !seen[c.KeyID()] {
				seen[c.KeyID()] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// DeskCount returns how many desks the relay serves.
func (s *Server) DeskCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.desks)
}

// intakeRoutes is the public side of the API and the submitter pages,
// each route with what it may cost (admission.go).
func (s *Server) intakeRoutes() []route {
	none := cost{}
	small := func(n int64, l limitKind) cost { return cost{limit: l, maxBody: fixed(n)} }
	ciphertext := func(l limitKind, max func(*Server) int64, held func(*Server, int64) int64, tooLarge *apiError) cost {
		return cost{limit: l, maxBody: max, slot: bodySlot, held: held, tooLarge: tooLarge}
	}
	page := func(l limitKind, max func(*Server) int64, held func(*Server, int64) int64, a answerKind) cost {
		return cost{limit: l, maxBody: max, slot: formSlot, held: held, answer: a}
	}
	return []route{
		{"GET /api/v1/health", none, s.health},
		{"GET /api/v1/desks", none, s.listDesks},
		{"GET /api/v1/desks/{desk}/manifest", none, s.manifest},
		{"POST /api/v1/desks/{desk}/submissions", ciphertext(limitCreate, (*Server).maxSingle, heldWhole, errUseUpload), s.submit},
		{"POST /api/v1/desks/{desk}/uploads", small(maxSmallBody, limitCreate), s.createUpload},
		{"GET /api/v1/uploads/{token}", none, s.uploadState},
		{"PATCH /api/v1/uploads/{token}", ciphertext(noLimit, (*Server).maxPiece, heldStreamed, errPieceTooLarge), s.writeUpload},
		{"POST /api/v1/uploads/{token}/complete", none, s.completeUpload},
		{"POST /api/v1/mailbox", small(1024, limitLookup), s.checkMailbox},
		{"POST /api/v1/mailbox/replies/{reply}", small(1024, limitLookup), s.downloadReply},
		{"POST /api/v1/mailbox/followups", ciphertext(limitLookup|limitCreate, fixed(MaxReply), heldWhole, nil), s.postFollowup},
		{"GET /check", none, s.checkPage},
		{"POST /check", page(limitLookup, fixed(maxCheckPost), heldCheck, answerCheck), s.checkForm},
		{"POST /check/followup", page(limitLookup|limitCreate, (*Server).maxFollowupPost, heldForm, answerCheck), s.followupForm},
		{"GET /{$}", none, s.index},
		{"GET /desks/{desk}", none, s.deskPage},
		{"POST /desks/{desk}/submit", page(limitCreate, (*Server).maxFormPost, heldForm, answerDesk), s.submitForm},
		{"GET /desks/{desk}/self", none, s.selfPage},
		{"POST /desks/{desk}/self", page(limitCreate, (*Server).maxFormPost, heldForm, answerDesk), s.submitSelf},
		{"GET /desks/{desk}/recipients.txt", none, s.recipients},
		{"GET /static/", none, s.static().ServeHTTP},
		{"/", none, notFound},
	}
}

// handlerRoutes is the handler side of the API: inbox, download, ack,
// replies and manifest publication, every route but health and the
// manifest requiring a signed request.
func (s *Server) handlerRoutes() []route {
	none := cost{}
	return []route{
		{"GET /api/v1/health", none, s.health},
		s.signedRoute("GET /api/v1/inbox", asHandler, 0, s.inbox),
		s.signedRoute("GET /api/v1/submissions/{id}", asHandler, 0, s.download),
		s.signedRoute("POST /api/v1/submissions/{id}/ack", asHandler, 0, s.ack),
		s.signedRoute("PUT /api/v1/admin/desks/{desk}", asAdmin, crypto.MaxManifestLen, s.publish),
		{"GET /api/v1/desks/{desk}/manifest", none, s.manifest},
		s.signedRoute("POST /api/v1/mailboxes/{mailbox}/replies", asHandler, MaxReply, s.postReply),
		{"/", none, notFound},
	}
}

// signedRoute is a route whose requests are signed (auth.go), with a body
// of at most limit bytes (0: none), which is read only once the signature
// over the headers verifies.
func (s *Server) signedRoute(pattern string, as role, limit int64, h func(http.ResponseWriter, *http.Request, *caller)) route {
	c := cost{}
	if limit > 0 {
		c.maxBody = fixed(limit)
	}
	return route{pattern, c, s.signed(as, limit, h)}
}

func (s *Server) mux(routes []route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, s.admit(rt.cost, rt.h))
	}
	return s.wrap(mux)
}

// Intake returns the public side of the API: manifests, submissions,
// uploads, mailboxes, the submitter pages and health. It is safe to expose
// to anyone.
func (s *Server) Intake() http.Handler { return s.mux(s.intakeRoutes()) }

// Handlers returns the handler side of the API: inbox, download, ack,
// replies and manifest publication, every route requiring a signed request.
func (s *Server) Handlers() http.Handler { return s.mux(s.handlerRoutes()) }

// Route limits that depend on the configuration.
func (s *Server) maxSingle() int64 { return s.cfg.MaxSingle }
func (s *Server) maxPiece() int64  { return s.cfg.MaxPiece }

// maxFormPost bounds a desk page's post: the files and the text fields
// with their multipart framing.
func (s *Server) maxFormPost() int64 {
	return min(s.cfg.MaxFormBytes, s.cfg.MaxSubmission) + maxAnswerBytes + formFraming
}

// maxFollowupPost bounds the no-JavaScript follow-up's post.
func (s *Server) maxFollowupPost() int64 {
	return min(s.cfg.MaxFormBytes, MaxReply) + maxAnswerBytes + formFraming
}

const (
	// formFraming is what multipart boundaries and part headers may add.
	formFraming = 64 << 10
	// maxCheckPost bounds the no-JavaScript check's post: the receipt.
	maxCheckPost = 64 << 10
)

// Combined serves both sides on one listener, for loopback use.
func (s *Server) Combined() http.Handler {
	in, hd := s.Intake(), s.Handlers()
	mux := http.NewServeMux()
	for _, p := range []string{"/api/v1/inbox", "/api/v1/submissions/", "/api/v1/admin/", "/api/v1/mailboxes/"} {
		mux.Handle(p, hd)
	}
	mux.Handle("/", in)
	return mux
}

// HTTPServer returns an http.Server for h with the relay's bounds: small
// headers, header and idle timeouts. Bodies are bounded per route, and a
// request that stalls for IdleTimeout is ended.
func (s *Server) HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(&scrubber{eventf: s.cfg.Eventf}, "", 0),
		ConnContext:       circuitContext,
	}
}

// scrubber passes net/http's own error lines (a panic, a bad connection) to
// Eventf with every network address replaced, since those lines name the
// client's address.
type scrubber struct{ eventf func(string, ...any) }

var addrRE = regexp.MustCompile(`\[[0-9A-Fa-f:.%a-z]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?|\b[a-z2-7]{56}\.onion\b`)

func (s *scrubber) Write(p []byte) (int, error) {
	s.eventf("http: %s", addrRE.ReplaceAllString(strings.TrimSpace(string(p)), "(address)"))
	return len(p), nil
}

// Serve serves h on ln until ln is closed.
func (s *Server) Serve(ln net.Listener, h http.Handler) error {
	return s.HTTPServer(h).Serve(ln)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap sets the headers every answer carries and logs the route pattern and
// status only: never the path (it holds tokens), a body or an address.
func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		pattern := r.Pattern
		if pattern == "" {
			pattern = "(no route)"
		}
		s.cfg.Logf("%s %d", pattern, sw.status)
		s.answers[kindOf(sw.status)].Add(1)
	})
}

// Answers counts the answers the relay has given since it started, by
// kind. It says nothing of which desk or route.
type Answers struct {
	Success     int64 // 1xx, 2xx and 3xx
	ClientError int64 // 4xx other than busy
	Busy        int64 // 429 and 503: a limit was reached
	StorageFull int64 // 507
	ServerError int64 // other 5xx
}

const (
	answerSuccess = iota
	answerClientError
	answerBusy
	answerStorageFull
	answerServerError
	answerKinds
)

func kindOf(status int) int {
	switch {
	case status == 0 || status < 400:
		return answerSuccess
	case status == 429 || status == 503:
		return answerBusy
	case status == 507:
		return answerStorageFull
	case status >= 500:
		return answerServerError
	}
	return answerClientError
}

// Answers returns the counts of answers given so far.
func (s *Server) Answers() Answers {
	return Answers{Success: s.answers[answerSuccess].Load(), ClientError: s.answers[answerClientError].Load(),
		Busy: s.answers[answerBusy].Load(), StorageFull: s.answers[answerStorageFull].Load(), ServerError: s.answers[answerServerError].Load()}
}

func notFound(w http.ResponseWriter, r *http.Request) { writeError(w, errNotFound) }

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, api.Health{Status: "ok"})
}

func (s *Server) listDesks(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	out := []api.DeskInfo{}
	for _, d := range s.desks {
		out = append(out, api.DeskInfo{Desk: d.m.Desk, Title: d.m.Title, Serial: d.m.Serial})
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Desk < out[j].Desk })
	writeJSON(w, 200, api.Desks{Desks: out})
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	d := s.desk(r.PathValue("desk"))
	if d == nil {
		writeError(w, errUnknownDesk)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(d.raw)
}

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
		DeleteAfterAck: time.Duration(d.m.Retention.DeleteAfterAckHours) * time.Hour,
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

// lookupAllowed takes a mailbox lookup from the request's circuit's budget
// and from everyone's.
func (s *Server) lookupAllowed(r *http.Request) bool {
	return s.allowed(s.circuitLookups, &s.lookups, r)
}

// allowed applies the circuit's limit, then the global one: a circuit over
// its own takes nothing from the budget everyone shares.
func (s *Server) allowed(perCircuit *circuitLimits, global *limiter, r *http.Request) bool {
	return s.circuitAllows(perCircuit, r) && global.allow(s.cfg.Now())
}

// circuitAllows applies a per-circuit limit to a request that came with a
// circuit (CircuitListener); others pass. When a circuit is refused, an
// event says so, at most once a minute, without saying which.
func (s *Server) circuitAllows(l *circuitLimits, r *http.Request) bool {
	if l == nil {
		return true
	}
	id, ok := circuitOf(r.Context())
	if !ok || l.allow(id, s.cfg.Now()) {
		return true
	}
	now := s.cfg.Now().Unix()
	if last := s.circuitNoted.Load(); now-last >= 60 && s.circuitNoted.CompareAndSwap(last, now) {
		s.cfg.Eventf("a Tor circuit reached its per-circuit limit (429 busy for its requests)")
	}
	return false
}

// Circuits is how many Tor circuits the per-circuit limits have seen, for
// the status: 0 where tor does not tell circuits apart.
func (s *Server) Circuits() int64 {
	var n int64
	for _, l := range []*circuitLimits{s.circuitCreates, s.circuitLookups} {
		if l != nil {
			n = max(n, l.Seen())
		}
	}
	return n
}

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

// checkAge checks the head of a submission is an age header with the
// stanzas wanted and that length fits a complete age file.
// maxHandlers is the most handlers a desk has (crypto.Manifest.Normalize):
// headers are parsed up to that size, so a wrong stanza count is reported
// as such rather than as "not age".
const maxHandlers = 64

func checkAge(head []byte, stanzas []string, length int64) *apiError {
	hdr, err := crypto.ReadAgeHeader(bufioReader(head), crypto.MaxHeaderLen(max(len(stanzas), maxHandlers)+1))
	if err != nil {
		return errNotAge
	}
	if err := hdr.CheckTypes(stanzas); err != nil {
		return errStanzas
	}
	if err := crypto.CheckAgePayload(length - int64(hdr.Len)); err != nil {
		return errTruncated
	}
	return nil
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
	writeJSON(w, 201, api.UploadState{Upload: tok, Length: spec.Length, MaxPiece: s.cfg.MaxPiece})
}

func (s *Server) uploadState(w http.ResponseWriter, r *http.Request) {
	u, err := s.spool.Upload(r.PathValue("token"))
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 200, api.UploadState{Offset: u.Offset, Length: u.Length, MaxPiece: s.cfg.MaxPiece})
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
	if off != u.Offset {
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
	n, err := s.spool.WriteUpload(tok, off, body)
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
	writeJSON(w, 200, api.UploadState{Offset: n, Length: u.Length, MaxPiece: s.cfg.MaxPiece})
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

// inbox lists one page of the caller's inbox in ID order, starting after
// the ID the query names (?after=ID&limit=N); the answer's next says where
// the following page starts, and is omitted on the last one.
func (s *Server) inbox(w http.ResponseWriter, r *http.Request, who *caller) {
	after, limit, ok := parseInboxQuery(r.URL.RawQuery)
	if !ok {
		writeError(w, errBadRequest)
		return
	}
	subs, next, err := s.spool.SubmissionsPage(after, limit, func(sub *store.Submission) bool { return s.mayRead(who, sub) })
	if err != nil {
		s.storeError(w, err)
		return
	}
	items := []api.Item{}
	for _, sub := range subs {
		items = append(items, api.Item{ID: sub.ID, Desk: sub.Desk, Category: sub.Category, Kind: sub.Kind, Mailbox: sub.Mailbox, Size: sub.Size, SHA256: sub.SHA256, Received: sub.Received.UTC().Format(time.RFC3339)})
	}
	writeJSON(w, 200, api.Inbox{Submissions: items, Next: next})
}

// mayRead reports whether the caller may see sub: it was routed to the
// caller's key, the caller has not acked it, and the key is still a handler
// of the desk.
func (s *Server) mayRead(who *caller, sub *store.Submission) bool {
	if !slices.Contains(sub.Routes, who.keyID) || slices.Contains(sub.Acks, who.keyID) {
		return false
	}
	d := s.desk(sub.Desk)
	return d != nil && d.m.Handler(who.keyID) != nil
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request, who *caller) *store.Submission {
	sub, err := s.spool.Submission(r.PathValue("id"))
	if err != nil || !slices.Contains(sub.Routes, who.keyID) || s.desk(sub.Desk) == nil || s.desk(sub.Desk).m.Handler(who.keyID) == nil {
		writeError(w, errNotFound)
		return nil
	}
	return sub
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, who *caller) {
	sub := s.lookup(w, r, who)
	if sub == nil {
		return
	}
	start, end, partial, ok := parseRange(r.Header.Get("Range"), sub.Size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", sub.Size))
		writeError(w, errRange)
		return
	}
	rd, err := s.spool.OpenSubmission(sub.ID, start)
	if err != nil {
		s.storeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Amana-SHA256", sub.SHA256)
	h.Set("Content-Length", fmt.Sprint(end-start))
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, sub.Size))
		w.WriteHeader(206)
	} else {
		w.WriteHeader(200)
	}
	pw := &progressWriter{w: w, rc: http.NewResponseController(w), idle: s.cfg.IdleTimeout}
	// A handler that goes away mid-download resumes with Range; there is
	// nothing to tell anyone.
	io.Copy(pw, io.LimitReader(rd, end-start))
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request, who *caller) {
	sub := s.lookup(w, r, who)
	if sub == nil {
		return
	}
	deleted, err := s.spool.Ack(sub.ID, who.keyID)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, 200, api.Ack{Deleted: deleted})
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, who *caller) {
	m, _, err := crypto.OpenManifest(who.body, s.cfg.Admin)
	if err != nil || m.Desk != r.PathValue("desk") {
		writeError(w, errBadManifest)
		return
	}
	s.mu.Lock()
	var old *crypto.Manifest
	if d := s.desks[m.Desk]; d != nil {
		old = d.m
	}
	if err := s.spool.PutDesk(m.Desk, m.Serial, who.body); err != nil {
		s.mu.Unlock()
		if errors.Is(err, store.ErrStaleSerial) {
			writeError(w, errStaleSerial)
			return
		}
		s.storeError(w, err)
		return
	}
	s.desks[m.Desk] = &desk{m: m, raw: who.body}
	s.mu.Unlock()
	s.cfg.Eventf("desk %q manifest serial %d published", m.Desk, m.Serial)
	info := api.DeskInfo{Desk: m.Desk, Title: m.Title, Serial: m.Serial}
	if ex := s.exposure(old, m); ex != nil {
		info.Exposure = ex
		s.cfg.Eventf("desk %q: %d handler key(s) removed; %d waiting submission(s) encrypted to them (%d to nobody else), %d mailbox(es)",
			m.Desk, ex.RemovedKeys, ex.Submissions, ex.Orphaned, ex.Mailboxes)
	}
	writeJSON(w, 200, info)
	if s.cfg.OnPublish != nil {
		s.cfg.OnPublish()
	}
}

// exposure counts what waits encrypted to the handler keys that old has and
// m has not; nil when m removes none.
func (s *Server) exposure(old, m *crypto.Manifest) *api.Exposure {
	if old == nil {
		return nil
	}
	removed := map[string]bool{}
	for _, c := range old.Cards() {
		if m.Handler(c.KeyID()) == nil {
			removed[c.KeyID()] = true
		}
	}
	if len(removed) == 0 {
		return nil
	}
	ex := &api.Exposure{RemovedKeys: len(removed)}
	subs, _ := s.spool.Submissions(func(sub *store.Submission) bool { return sub.Desk == m.Desk })
	for _, sub := range subs {
		hit, kept := false, false
		for _, r := range sub.Routes {
			if removed[r] {
				hit = true
			} else if m.Handler(r) != nil {
				kept = true
			}
		}
		if hit {
			ex.Submissions++
			if !kept {
				ex.Orphaned++
			}
		}
	}
	mbs, _ := s.spool.Mailboxes(func(mb *store.Mailbox) bool {
		return mb.Desk == m.Desk && slices.ContainsFunc(mb.Routes, func(r string) bool { return removed[r] })
	})
	ex.Mailboxes = len(mbs)
	return ex
}

func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
