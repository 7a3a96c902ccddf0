package relay

import (
	"container/heap"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// caller is who signed a request.
type caller struct {
	keyID string
	admin bool
	sum   [32]byte // the body's SHA-256 as the client claimed and signed it
	body  []byte
}

// Who may make a signed request.
type role int

const (
	asHandler role = iota // a handler of a served desk
	asAdmin               // the pinned desk admin
)

// signed checks a request's signature and the signer's role before calling
// h. Everything that can be checked without the body is checked first,
// against the body hash the client claims in crypto.BodySHA256Header; only
// then is the body read, at most limit bytes (0: the route takes no body),
// and held to that hash. Every failure is the same 401 with no detail. A
// key past a per-key rate limit the route draws from (perKey) is told 429
// busy before its body is read.
func (s *Server) signed(as role, limit int64, perKey limitKind, h func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who := s.authenticate(r, as, limit)
		if who == nil {
			refuseSigned(w, r, errUnauthorized)
			return
		}
		if perKey&limitEventKey != 0 && s.eventPosts != nil && !s.eventPosts.allow(who.keyID, s.cfg.Now()) {
			refuseSigned(w, r, errBusy)
			return
		}
		if r.ContentLength > 0 {
			release, ok := s.holdSignedBody(r, who)
			if !ok {
				refuseSigned(w, r, errFull)
				return
			}
			defer release()
		}
		body, ok := s.readSignedBody(r, limit, who.sum)
		if !ok {
			refuseSigned(w, r, errUnauthorized)
			return
		}
		who.body = body
		h(w, r, who)
	}
}

// refuseSigned answers e, 401 or 503. A request that came with a body,
// which the relay has not read or has not read whole, also has its
// connection closed, so that net/http does not read and discard what the
// client may still send.
func refuseSigned(w http.ResponseWriter, r *http.Request, e *apiError) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	writeError(w, e)
}

// holdSignedBody reserves memory for the body of a signed request that
// authenticate accepted: the admin's from a reserve of its own, so that
// handlers cannot keep it from publishing; a handler's from the handler
// side's budget, one body per key at a time, so that one key cannot take
// the whole budget. It waits up to 5 seconds.
func (s *Server) holdSignedBody(r *http.Request, who *caller) (release func(), ok bool) {
	n := r.ContentLength
	budget := s.handlerMemory
	if who.admin {
		budget = s.adminMemory
	} else {
		s.mu.Lock()
		if s.bodyKeys[who.keyID] {
			s.mu.Unlock()
			return nil, false
		}
		s.bodyKeys[who.keyID] = true
		s.mu.Unlock()
	}
	done := func() {
		if !who.admin {
			s.mu.Lock()
			delete(s.bodyKeys, who.keyID)
			s.mu.Unlock()
		}
	}
	if !budget.take(r.Context(), n, admitWait) {
		done()
		return nil, false
	}
	return func() { budget.give(n); done() }, true
}

// authenticate checks everything about a signed request that needs no body
// byte, in the order of protocol.md §7.3: the Authorization header, the
// signer's role, the time, the claimed body hash and the body's declared
// length, the signature over the claimed hash, and last the nonce, so that
// only a request that passed every other check is remembered. It returns
// nil on any failure.
func (s *Server) authenticate(r *http.Request, as role, limit int64) *caller {
	a, err := crypto.ParseRequestAuth(r.Header.Get("Authorization"))
	if err != nil {
		return nil
	}
	who := &caller{keyID: a.KeyID}
	admin := base64.RawURLEncoding.EncodeToString(s.cfg.Admin)
	who.admin = constantTimeEqual([]byte(a.KeyID), []byte(admin))
	if as == asAdmin && !who.admin || as == asHandler && !s.isHandler(a.KeyID) {
		return nil
	}
	now := s.cfg.Now()
	ts := time.Unix(a.Time, 0)
	if ts.Before(now.Add(-s.cfg.SignatureWindow)) || ts.After(now.Add(s.cfg.SignatureWindow)) || ts.Before(s.start.Truncate(time.Second)) {
		return nil
	}
	claimed := r.Header.Values(crypto.BodySHA256Header)
	if len(claimed) != 1 {
		return nil
	}
	if who.sum, err = crypto.ParseBodySHA256(claimed[0]); err != nil {
		return nil
	}
	// A body must declare its length, so a chunked one is refused.
	if r.ContentLength < 0 || r.ContentLength > limit {
		return nil
	}
	if !a.Verify(r.Method, r.URL.RequestURI(), who.sum) {
		return nil
	}
	nonce, err := base64.RawURLEncoding.DecodeString(a.Nonce)
	if err != nil || len(nonce) != 16 {
		return nil
	}
	if !s.nonces.add(a.KeyID, [16]byte(nonce), a.Time, now, s.cfg.SignatureWindow) {
		return nil
	}
	return who
}

// readSignedBody reads the body of a signed request that authenticate has
// accepted: exactly its declared length, which must be at most limit,
// hashing it as it reads. It reports false if the body stalls, ends early
// or does not hash to sum, the hash the signature covers.
func (s *Server) readSignedBody(r *http.Request, limit int64, sum [32]byte) ([]byte, bool) {
	n := r.ContentLength
	if n < 0 || n > limit {
		return nil, false
	}
	h := sha256.New()
	var body []byte
	if n > 0 {
		body = make([]byte, n)
		// r.Body is bounded and under the rate floor (admission.go).
		if _, err := io.ReadFull(io.TeeReader(r.Body, h), body); err != nil {
			return nil, false
		}
	}
	return body, constantTimeEqual(h.Sum(nil), sum[:])
}

func (s *Server) isHandler(keyID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, d := range s.desks {
		if d.m.Handler(keyID) != nil {
			return true
		}
	}
	return false
}

// nonceCache remembers the nonces of signed requests until their time
// window closes, so a captured request cannot be replayed. Requests signed
// before the relay started are refused outright, so a restart opens no
// replay window.
//
// Each key has its own entries and its own quota, so no key can evict or
// crowd out another's nonces. When a key's quota is full, its entries of
// the oldest signing second are all dropped at once and its floor is
// raised to that second; from then on a request of that key signed at or
// before its floor is refused, since it could be the replay of a dropped
// nonce. A client signing with the current time stays above its floor
// unless it signs more than a quota's worth of requests in one second; a
// key flooding the relay with timestamps ahead of the clock raises only its
// own floor, and locks out only itself.
//
// The number of keys is bounded because authenticate checks the signer's
// role before it calls add: only the admin and the handlers of served
// desks ever get an entry.
type nonceCache struct {
	mu    sync.Mutex
	keys  map[string]*keyNonces
	quota int       // entries per key; zero means nonceQuota
	swept time.Time // when every key's expired entries were last dropped
}

const (
	// nonceQuota is how many live nonces one key may have: over a 5-minute
	// window, more than 27 requests a second. A full key's cache measures
	// about 512 KiB (nonceMemoryPerKey).
	nonceQuota = 1 << 13
	// nonceSweepEvery is how often add drops the expired entries of every
	// key, not only of the key signing, and forgets keys left with nothing
	// to remember.
	nonceSweepEvery = time.Minute
)

// keyNonces is one key's part of the cache.
type keyNonces struct {
	seen  map[[16]byte]struct{}
	order nonceHeap // the entries of seen, earliest signing time first
	floor int64     // Unix second; a request signed at or before it is refused
}

type nonceEntry struct {
	ts    int64 // signing time, Unix seconds
	nonce [16]byte
}

// nonceHeap is a min-heap of entries by signing time (container/heap).
type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].ts < h[j].ts }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// add records the nonce of a request key signed at ts (Unix seconds) and
// reports whether the request may be accepted: its nonce is new and ts is
// above the key's floor. An entry is kept until ts + window is before now;
// by then the time check refuses the request anyway.
func (c *nonceCache) add(key string, nonce [16]byte, ts int64, now time.Time, window time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = map[string]*keyNonces{}
	}
	earliest := now.Add(-window) // a request signed before this is refused
	if now.Sub(c.swept) >= nonceSweepEvery {
		c.swept = now
		for id, k := range c.keys {
			if k.expire(earliest) {
				delete(c.keys, id)
			}
		}
	}
	k := c.keys[key]
	if k == nil {
		k = &keyNonces{seen: map[[16]byte]struct{}{}}
		c.keys[key] = k
	}
	k.expire(earliest)
	if ts <= k.floor {
		return false
	}
	if _, dup := k.seen[nonce]; dup {
		return false
	}
	quota := c.quota
	if quota <= 0 {
		quota = nonceQuota
	}
	if len(k.seen) >= quota {
		k.evictOldest()
		if ts <= k.floor {
			return false
		}
	}
	k.seen[nonce] = struct{}{}
	heap.Push(&k.order, nonceEntry{ts: ts, nonce: nonce})
	return true
}

// expire drops the entries signed before earliest and reports whether the
// key has nothing left to remember: no entry, and a floor that the time
// check alone now enforces.
func (k *keyNonces) expire(earliest time.Time) bool {
	for len(k.order) > 0 && time.Unix(k.order[0].ts, 0).Before(earliest) {
		delete(k.seen, heap.Pop(&k.order).(nonceEntry).nonce)
	}
	return len(k.order) == 0 && time.Unix(k.floor, 0).Before(earliest)
}

// evictOldest drops every entry of the earliest signing second and raises
// the floor to that second.
func (k *keyNonces) evictOldest() {
	low := k.order[0].ts
	for len(k.order) > 0 && k.order[0].ts == low {
		delete(k.seen, heap.Pop(&k.order).(nonceEntry).nonce)
	}
	k.floor = low
}
