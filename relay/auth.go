package relay

import (
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
	body  []byte
}

// maxSignedBody bounds a signed request's body, which the relay reads
// whole to check the signature: a manifest, or a reply.
const maxSignedBody = MaxReply

// Who may make a signed request.
type role int

const (
	asHandler role = iota // a handler of a served desk
	asAdmin               // the pinned desk admin
)

// signed checks a request's signature and the signer's role before calling
// h. Every failure is the same 401 with no detail.
func (s *Server) signed(as role, h func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who := s.authenticate(w, r, as)
		if who == nil {
			writeError(w, errUnauthorized)
			return
		}
		h(w, r, who)
	}
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, as role) *caller {
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
	body, err := io.ReadAll(http.MaxBytesReader(w, s.progress(w, r), maxSignedBody))
	if err != nil {
		return nil
	}
	if !a.Verify(r.Method, r.URL.RequestURI(), sha256.Sum256(body)) {
		return nil
	}
	if !s.nonces.add(a.KeyID+" "+a.Nonce, ts.Add(s.cfg.SignatureWindow), now) {
		return nil
	}
	who.body = body
	return who
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
type nonceCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

const maxNonces = 1 << 17

// maxNoncesPerKey is a placeholder until the per-key cache lands.
const maxNoncesPerKey = 4096

// add records a nonce and reports whether it was new.
func (c *nonceCache) add(n string, expires, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if _, dup := c.seen[n]; dup {
		return false
	}
	if len(c.seen) >= maxNonces {
		for k, exp := range c.seen {
			if now.After(exp) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= maxNonces {
			return false
		}
	}
	c.seen[n] = expires
	return true
}
