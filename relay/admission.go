package relay

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/store"
)

// Every route is registered through one table (Server.intakeRoutes and
// Server.handlerRoutes) that names what the route may cost, and one
// function, admit, applies it before the route's own code runs:
//
//  1. the rate limit the route draws from: new submissions (creates),
//     mailbox lookups, or both, each per Tor circuit and for everyone;
//  2. the most body bytes it may bring (http.MaxBytesReader over the body
//     rate floor), so no route can read more than it declared;
//  3. for routes that hold a body in memory, a place to read it (a body
//     slot for ciphertext, a form slot for a no-JavaScript post) and a
//     reservation of the memory that body may make the relay hold, from a
//     budget shared by the whole intake side. Such routes need a
//     Content-Length; without one there is nothing to reserve against.
//
// A new route cannot forget a limit: it has to say which it takes to be
// registered at all, and the admission test lists every route.

// limitKind says which rate limits a route draws from.
type limitKind uint8

const (
	noLimit     limitKind = 0
	limitCreate limitKind = 1 << iota // starts a submission or an upload
	limitLookup                       // looks a mailbox up by its token
	// limitEventKey: posts a case-journal event, per signing key. A
	// signed route checks it once the signature verifies (auth.go), since
	// admit does not know the key.
	limitEventKey
)

// slotKind says which concurrency cap a body-holding route takes.
type slotKind uint8

const (
	noSlot   slotKind = iota
	bodySlot          // ciphertext read into memory or into the spool
	formSlot          // a page post the relay holds in memory (plaintext for the no-JavaScript path)
)

// refusalStyle says how a refusal at the door is answered.
type refusalStyle uint8

const (
	refuseJSON      refusalStyle = iota // JSON error (relay/errors.go)
	refuseDeskPage                      // an error page of the desk pages
	refuseCheckPage                     // the check page with an error
)

// cost is what a route may take from the relay before its own code runs.
type cost struct {
	limit limitKind
	// maxBody is the most body bytes the route reads; 0 means it reads no
	// body at all.
	maxBody func(s *Server) int64
	slot    slotKind
	// held is the memory a body of declared length n makes the relay hold
	// while the request runs, reserved from the intake budget; nil for
	// routes that read only a small bounded body (at most maxSmallBody),
	// which the per-connection share of §10.9 covers.
	held   func(s *Server, n int64) int64
	answer refusalStyle
	// tooLarge answers a declared length past maxBody; nil means
	// errTooLarge.
	tooLarge *apiError
	// keepText, for a no-JavaScript form post, takes a post declared
	// longer than maxBody rather than refusing it at the door: the route
	// reads only its first keptPrefix bytes (the text fields come before
	// the files in the page's forms), shows the form again with that
	// text, and says the post was too large.
	keepText bool
}

// keptPrefix is what is read of a form post too large to take, for its
// text: every text field at most (maxAnswerBytes) with the framing.
const keptPrefix = maxAnswerBytes + 64<<10

type oversizedKey struct{}

// oversized reports whether the admission cut r to its first keptPrefix
// bytes because it was declared too large to take.
func oversized(r *http.Request) bool { return r.Context().Value(oversizedKey{}) != nil }

// maxSmallBody is the largest body a route may read without a reservation:
// the JSON of an upload's creation.
const maxSmallBody = 4 << 10

// route is one entry of a routing table.
type route struct {
	pattern string
	cost    cost
	h       http.HandlerFunc
}

func fixed(n int64) func(*Server) int64 { return func(*Server) int64 { return n } }

// Memory a body of n bytes makes the relay hold, per kind of route.
var (
	// heldWhole: the body itself, read whole (a single-request submission,
	// a follow-up).
	heldWhole = func(_ *Server, n int64) int64 { return n + headerPeek }
	// heldStreamed: what the spool buffers of a body it streams in
	// (store.WriteUpload reads a batch ahead while the previous one
	// commits), whatever the piece's length.
	heldStreamed = func(_ *Server, n int64) int64 { return streamHeld(n) + headerPeek }
	// heldForm: a page post held in memory whole, then sealed and streamed
	// into the spool: the post, the sealed stream's buffers and what the
	// spool buffers.
	heldForm = func(_ *Server, n int64) int64 { return n + sealHeld + streamHeld(n) }
	// heldCheck: a no-JavaScript check, which opens the mailbox's replies
	// one at a time in memory.
	heldCheck = func(_ *Server, n int64) int64 { return n + sealHeld }
)

// headerPeek is the most of a body read ahead to check its age header
// (crypto.MaxHeaderLen for the most stanzas a desk can have).
const headerPeek = 128 << 10

// sealHeld bounds what sealing or opening a bundle holds besides the
// files: crypto.SealMemory, the sealing pipeline's buffers, the copy
// buffer, report.json and age's header and stream buffers. Opening holds
// less (report.json, age's buffers).
var sealHeld = crypto.SealMemory

// streamHeld is what store.WriteUpload holds of a body of n bytes: its
// 1 MiB chunks and bbolt's pages of them, at most store.MaxWriteHeld (a
// batch being read, one committing and that commit's pages).
func streamHeld(n int64) int64 {
	chunks := n/store.ChunkSize + 1
	return min(2*chunks*store.ChunkSize, store.MaxWriteHeld)
}

// memBudget is a budget of bytes that requests reserve before they read a
// body and give back when they end.
type memBudget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	changed chan struct{} // closed and replaced at every release
}

func newMemBudget(size int64) *memBudget {
	return &memBudget{size: size, changed: make(chan struct{})}
}

// take reserves n bytes, waiting until wait has passed or ctx ends; it
// reports whether it did.
func (b *memBudget) take(ctx context.Context, n int64, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		b.mu.Lock()
		if b.used+n <= b.size {
			b.used += n
			b.mu.Unlock()
			return true
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (b *memBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// usage returns the bytes reserved now.
func (b *memBudget) usage() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// admitWait is how long a request waits for a slot or for memory before it
// is told the relay is busy.
const admitWait = 5 * time.Second

// admit wraps h with the route's cost: see the top of this file.
func (s *Server) admit(c cost, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.limit&limitLookup != 0 && !s.lookupAllowed(r) ||
			c.limit&limitCreate != 0 && !s.allowed(s.circuitCreates, &s.creates, r) {
			s.refuse(w, r, c.answer, errBusy)
			return
		}
		if c.maxBody == nil {
			h(w, withBody(r, http.NoBody))
			return
		}
		max := c.maxBody(s)
		if c.held != nil {
			if r.ContentLength < 0 {
				s.refuse(w, r, c.answer, errLengthRequired)
				return
			}
			if r.ContentLength > max && c.keepText {
				// Read only the start, for its text: the request the
				// route sees is keptPrefix long, and marked.
				r = r.WithContext(context.WithValue(r.Context(), oversizedKey{}, true))
				r.ContentLength = min(r.ContentLength, keptPrefix)
			} else if r.ContentLength > max {
				e := c.tooLarge
				if e == nil {
					e = errTooLarge
				}
				s.refuse(w, r, c.answer, e)
				return
			}
			max = r.ContentLength
		}
		if c.slot != noSlot {
			slots := s.bodySlots
			if c.slot == formSlot {
				slots = s.formSlots
			}
			if !takeSlot(r.Context(), slots) {
				s.refuse(w, r, c.answer, errFull)
				return
			}
			defer func() { <-slots }()
		}
		if c.held != nil {
			n := c.held(s, r.ContentLength)
			if !s.memory.take(r.Context(), n, admitWait) {
				s.refuse(w, r, c.answer, errFull)
				return
			}
			defer s.memory.give(n)
		}
		h(w, withBody(r, http.MaxBytesReader(w, s.progress(w, r), max)))
	}
}

// withBody gives the handler a copy of r that reads body. net/http's own
// request keeps the body it made: after a handler that left much of a
// large body unread, net/http sees it there, answers, half-closes the
// connection and waits before closing it whole, so that the client reads
// the answer before the reset its unread bytes cause. A request changed
// in place loses that wait, and clients saw "connection reset by peer"
// instead of their 503.
func withBody(r *http.Request, body io.ReadCloser) *http.Request {
	r2 := r.WithContext(r.Context())
	r2.Body = body
	return r2
}

func takeSlot(ctx context.Context, slots chan struct{}) bool {
	t := time.NewTimer(admitWait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// refuse answers a request turned away at the door, in the route's style.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, a refusalStyle, e *apiError) {
	switch a {
	case refuseJSON:
		writeError(w, e)
		return
	}
	c := s.pages.lang(r.URL.Query().Get("lang"))
	key := "error_bad"
	switch e.Status {
	case 429, 503:
		key = "error_busy"
	case 413:
		key = "error_too_large"
	}
	if a == refuseCheckPage {
		s.renderCheck(w, r, c, e.Status, c.T(key))
		return
	}
	d := s.desk(r.PathValue("desk"))
	msg := c.T(key)
	if e.Status == 413 && d != nil {
		// The self page's file (the desk form keeps its text instead,
		// cost.keepText): say how large it may be.
		msg = c.T("error_self_too_large", "limit", humanSize(c, min(d.m.Limits.MaxSubmissionBytes, s.cfg.MaxSubmission, s.cfg.MaxFormBytes)))
	}
	s.pageError(w, r, c, d, e.Status, msg)
}

// Shares of the relay's memory bound (§10.9 of protocol.md) that are not
// request bodies.
const (
	// memoryBase is the process without requests: the Go runtime, the
	// binary, page templates, static files, manifests, bbolt's pages in
	// use. An idle relay measures about 18 MiB.
	memoryBase = 30 << 20
	// memoryPerConn is what one open connection may hold: net/http's
	// buffers, request headers of at most 16 KiB, a small JSON body
	// (maxSmallBody) and the goroutine serving it.
	memoryPerConn = 48 << 10
	// nonceMemoryPerKey is what one signing key's nonce cache may hold.
	nonceMemoryPerKey = nonceQuota * nonceEntryBytes
	// nonceEntryBytes is what one remembered nonce takes: its map entry
	// and its place in the expiry heap (a full cache of 32,768 measured
	// 2 MiB).
	nonceEntryBytes = 64
)

// MemoryBound is the most memory the relay process holds under the limits
// it was given, with conns connections open at once over all its
// listeners: the formula of §10.9 of protocol.md. serve gives it to the Go
// runtime as its memory limit, so that garbage is collected before the
// process grows past it.
func (s *Server) MemoryBound(conns int) int64 {
	return memoryBase + int64(conns)*memoryPerConn + s.cfg.MaxBodyMemory + s.cfg.MaxHandlerMemory +
		int64(len(s.Cards())+1)*nonceMemoryPerKey
}
