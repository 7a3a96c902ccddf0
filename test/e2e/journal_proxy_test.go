package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/amana-relay/amana/relay/api"
)

// evilRelay is a reverse proxy in front of a relay that a test turns
// malicious for one handler (the victim): it rewrites the victim's event
// listings (GET /api/v1/events), serves bodies of its choosing for event
// downloads, and invents events of its own. It remembers every event body
// that passes through it, posted or downloaded, by ID, as a relay would.
type evilRelay struct {
	URL string

	mu     sync.Mutex
	posts  []postedEvent
	bodies map[string][]byte // event ID -> ciphertext seen
	victim string            // key ID whose requests are tampered with; "" for none
	// listing rewrites the victim's listing; nil leaves it as the relay sent it.
	listing func(items []api.Item) []api.Item
	// served maps an event ID to the body the victim gets for it instead of
	// the relay's.
	served map[string][]byte
	fake   map[string][]byte // IDs the proxy invented, with their bodies: it serves them and answers their acks
	acked  map[string]bool   // invented IDs that were acknowledged
}

// postedEvent is one event POST that went through the proxy and the ID the
// relay gave it.
type postedEvent struct {
	ID, Part, Category, Key string
}

var eventPath = regexp.MustCompile(`^/api/v1/events/([0-9a-f]{32})(/ack)?$`)

func newEvilRelay(t *testing.T, target string) *evilRelay {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	e := &evilRelay{bodies: map[string][]byte{}, served: map[string][]byte{}, fake: map[string][]byte{}, acked: map[string]bool{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = e.modify
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		e.serve(rw, r, rp)
	}))
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// callerKey is the key ID a signed request names.
func callerKey(r *http.Request) string {
	_, params, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	for _, p := range strings.Split(params, ",") {
		if k, ok := strings.CutPrefix(p, "key="); ok {
			return k
		}
	}
	return ""
}

func (e *evilRelay) tampered(r *http.Request) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.victim != "" && callerKey(r) == e.victim
}

func (e *evilRelay) serve(rw http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	if m := eventPath.FindStringSubmatch(r.URL.Path); m != nil {
		tampered := e.tampered(r)
		e.mu.Lock()
		body, swapped := e.served[m[1]]
		swapped = swapped && tampered
		fakeBody, isFake := e.fake[m[1]]
		if isFake {
			body, swapped = fakeBody, true
		}
		if m[2] != "" && isFake {
			e.acked[m[1]] = true
		}
		e.mu.Unlock()
		switch {
		case m[2] != "" && isFake:
			rw.Header().Set("Content-Type", "application/json")
			json.NewEncoder(rw).Encode(api.Ack{Deleted: true})
			return
		case m[2] == "" && r.Method == http.MethodGet && swapped:
			rw.Header().Set("Content-Type", "application/octet-stream")
			rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
			rw.Write(body)
			return
		}
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/desks/") && strings.HasSuffix(r.URL.Path, "/events") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, "reading body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r = r.WithContext(withPostBody(r.Context(), b))
	}
	rp.ServeHTTP(rw, r)
}

func (e *evilRelay) modify(resp *http.Response) error {
	r := resp.Request
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") && resp.StatusCode == http.StatusCreated:
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var p api.EventPosted
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("the relay's answer to an event post: %w", err)
		}
		q := r.URL.Query()
		e.mu.Lock()
		e.posts = append(e.posts, postedEvent{ID: p.ID, Part: q.Get("part"), Category: q.Get("category"), Key: callerKey(r)})
		e.bodies[p.ID] = postBody(r.Context())
		e.mu.Unlock()
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/events" && resp.StatusCode == http.StatusOK:
		if !e.tampered(r) {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var in api.Inbox
		if err := json.Unmarshal(b, &in); err != nil {
			return fmt.Errorf("the relay's event listing: %w", err)
		}
		e.mu.Lock()
		f := e.listing
		e.mu.Unlock()
		if f != nil {
			in.Submissions = f(in.Submissions)
		}
		if in.Submissions == nil {
			in.Submissions = []api.Item{}
		}
		b, _ = json.Marshal(in)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	case r.Method == http.MethodGet && eventPath.MatchString(r.URL.Path) && resp.StatusCode == http.StatusOK:
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		e.mu.Lock()
		e.bodies[eventPath.FindStringSubmatch(r.URL.Path)[1]] = b
		e.mu.Unlock()
	}
	return nil
}

// lastPost is the ID of the last event part posted by key (a key ID),
// failing the test if there is none.
func (e *evilRelay) lastPost(t *testing.T, key, part string) string {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.posts) - 1; i >= 0; i-- {
		if p := e.posts[i]; p.Key == key && p.Part == part {
			return p.ID
		}
	}
	t.Fatalf("no %s event posted by %s went through the proxy", part, key[:8])
	return ""
}

// posted is every event part posted through the proxy, in order.
func (e *evilRelay) posted() []postedEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.posts)
}

// body is the ciphertext of event id as it went through the proxy.
func (e *evilRelay) body(t *testing.T, id string) []byte {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.bodies[id]
	if !ok {
		t.Fatalf("event %s did not go through the proxy", id)
	}
	return bytes.Clone(b)
}

// attack makes the proxy tamper with victim's listings with f, and serve
// the bodies in served for those IDs; attack(nil, "", nil) makes it honest again.
func (e *evilRelay) attack(victim string, f func([]api.Item) []api.Item, served map[string][]byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.victim, e.listing = victim, f
	e.served = map[string][]byte{}
	for id, b := range served {
		e.served[id] = b
	}
}

// invent returns a new event ID, never given by the relay, whose body the
// proxy serves and whose ack it answers, and its listing item for desk.
func (e *evilRelay) invent(body []byte, desk, category, received string) (string, api.Item) {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	e.mu.Lock()
	e.fake[id] = bytes.Clone(body)
	e.mu.Unlock()
	sum := sha256.Sum256(body)
	return id, api.Item{ID: id, Desk: desk, Category: category, Kind: api.KindEvent, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Received: received}
}

type postBodyKey struct{}

func withPostBody(ctx context.Context, b []byte) context.Context {
	return context.WithValue(ctx, postBodyKey{}, b)
}

func postBody(ctx context.Context) []byte {
	b, _ := ctx.Value(postBodyKey{}).([]byte)
	return b
}

// ackedFake reports whether the victim acknowledged the invented event id.
func (e *evilRelay) ackedFake(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.acked[id]
}
