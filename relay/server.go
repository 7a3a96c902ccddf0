package relay

import (
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/store"
)

// The defaults of Config's zero values that a program may want to show,
// as amana-relay serve's flags do.
const (
	DefaultMaxSubmission       = 2 << 30
	DefaultMinBodyRate         = 256
	DefaultMaxFormBytes        = 64 << 20
	DefaultMaxConcurrentBodies = 32
	DefaultMaxBodyMemory       = 128 << 20
	DefaultCreateRate          = 50
	DefaultCreateBurst         = 200
	DefaultCircuitCreateRate   = 10
	DefaultCircuitLookupRate   = 30
	DefaultEventRate           = 2
	DefaultEventBurst          = 120
)

// Config configures a Server. Every zero value means the documented default.
type Config struct {
	// Admin is the pinned desk admin key: only manifests and publish
	// requests it signs are accepted. Required.
	Admin ed25519.PublicKey
	// MaxSubmission caps any submission, whatever the desk allows. Zero
	// means DefaultMaxSubmission, 2 GiB.
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
	// stalled one. Zero means DefaultMinBodyRate, 256; negative means no
	// floor.
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
	// it seals it. Zero means DefaultMaxFormBytes, 64 MiB.
	MaxFormBytes int64
	// FormConcurrency caps how many such posts are handled at once. Zero
	// means 4.
	FormConcurrency int
	// MaxConcurrentBodies caps how many ciphertext bodies (single-request
	// submissions, upload pieces, follow-ups) are read at once; more wait
	// up to 5 seconds, then get 503 busy. Zero means
	// DefaultMaxConcurrentBodies, 32.
	MaxConcurrentBodies int
	// MaxBodyMemory is the most memory the intake side's request bodies
	// may make the relay hold at once: every route that holds a body
	// reserves what it may hold before it reads a byte (admission.go,
	// §10.9 of protocol.md), and waits up to 5 seconds, then gets 503
	// busy. It must hold at least one page post of MaxFormBytes. Zero
	// means DefaultMaxBodyMemory, 128 MiB.
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
	// the first line. Zero means DefaultCreateRate and DefaultCreateBurst:
	// 50 per second, burst 200.
	CreateRate, CreateBurst int
	// CircuitCreateRate and CircuitLookupRate limit, per Tor circuit and
	// per minute, new submissions and uploads, and mailbox lookups, where
	// tor tells the relay each connection's circuit (CircuitListener). The
	// burst is twice the rate. Zero means DefaultCircuitCreateRate and
	// DefaultCircuitLookupRate, 10 and 30; negative turns the limit off.
	CircuitCreateRate, CircuitLookupRate int
	// EventRate and EventBurst bound how many case-journal events
	// (POST /api/v1/desks/{desk}/events) each handler key may post, per
	// second and at once (a token bucket per key, checked once the
	// signature over the headers verifies and before the body is read);
	// past it the key gets 429 busy. Zero means DefaultEventRate and
	// DefaultEventBurst, 2 per second, burst 120; a negative EventRate
	// turns the limit off.
	EventRate, EventBurst int
	// MailboxTTL is how long the relay says a mailbox lives after its last
	// activity; it must match the spool's. Zero means the spool's default,
	// store.DefaultMailboxTTL (180 days).
	MailboxTTL time.Duration
	// OnPublish is called, outside any lock, after a desk manifest is
	// published, so the handler onion's client authorization can follow
	// the desks' handlers. Nil means nothing is called.
	OnPublish func()
}

// Server is the relay's HTTP API.
type Server struct {
	cfg   Config
	spool *store.Spool
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

	answers [answerKinds]atomic.Int64 // by kindOf

	circuitCreates, circuitLookups *circuitLimits     // nil when off
	eventPosts                     *keyLimits[string] // per handler key; nil when off
	circuitNoted                   atomic.Int64       // unix second of the last "circuit limited" event
	pages                          *pages
	formSlots                      chan struct{} // places for no-JavaScript posts
	adminFP                        string
}

type desk struct {
	m   *crypto.Manifest
	raw []byte
}

// New makes a Server over spool, loading the desks it holds.
func New(spool *store.Spool, cfg Config) (*Server, error) {
	if len(cfg.Admin) != ed25519.PublicKeySize {
		return nil, errors.New("relay needs the pinned admin key")
	}
	if cfg.MaxSubmission == 0 {
		cfg.MaxSubmission = DefaultMaxSubmission
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
		cfg.MinBodyRate = DefaultMinBodyRate
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
		cfg.MaxFormBytes = DefaultMaxFormBytes
	}
	if cfg.FormConcurrency == 0 {
		cfg.FormConcurrency = 4
	}
	if cfg.MaxConcurrentBodies == 0 {
		cfg.MaxConcurrentBodies = DefaultMaxConcurrentBodies
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
		cfg.CreateRate = DefaultCreateRate
	}
	if cfg.CreateBurst == 0 {
		cfg.CreateBurst = DefaultCreateBurst
	}
	if cfg.CircuitCreateRate == 0 {
		cfg.CircuitCreateRate = DefaultCircuitCreateRate
	}
	if cfg.CircuitLookupRate == 0 {
		cfg.CircuitLookupRate = DefaultCircuitLookupRate
	}
	if cfg.EventRate == 0 {
		cfg.EventRate = DefaultEventRate
	}
	if cfg.EventBurst == 0 {
		cfg.EventBurst = DefaultEventBurst
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
	if cfg.EventRate > 0 {
		s.eventPosts = newKeyLimits[string](float64(cfg.EventRate), float64(cfg.EventBurst))
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

func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
