package relay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// signedHeader signs a request as id at time at, as every client does:
// the Authorization header and the body's hash.
func signedHeader(id *crypto.Identity, method, path string, body []byte, at time.Time) http.Header {
	h := http.Header{}
	h.Set("Authorization", crypto.SignRequest(id.SigningKey(), method, path, body, at))
	h.Set(crypto.BodySHA256Header, crypto.BodySHA256(body))
	return h
}

// testClock is a relay clock a test may move while the relay serves.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// authRelay serves the fixture's spool, and so its desk, from a relay of
// its own with a clock the test moves and a nonce quota per key. The clock
// starts two minutes after the relay did, so requests may be signed in the
// past.
func authRelay(t *testing.T, quota int) (*fixture, *Server, string, *testClock) {
	t.Helper()
	f := newFixture(t)
	clk := &testClock{}
	clk.Set(f.now)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, Now: clk.Now, Logf: f.log, Eventf: f.log})
	if err != nil {
		t.Fatal(err)
	}
	srv.nonces.quota = quota
	clk.Set(f.now.Add(2 * time.Minute))
	ts := httptest.NewServer(srv.Combined())
	t.Cleanup(ts.Close)
	return f, srv, ts.URL, clk
}

// send makes one request and returns the answer's status.
func send(hc *http.Client, base, method, path string, hdr http.Header, body []byte) (int, error) {
	r, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range hdr {
		r.Header[k] = v
	}
	resp, err := hc.Do(r)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func nonceOf(t *testing.T, h http.Header) [16]byte {
	t.Helper()
	a, err := crypto.ParseRequestAuth(h.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := base64.RawURLEncoding.DecodeString(a.Nonce)
	if err != nil || len(n) != 16 {
		t.Fatalf("nonce %q", a.Nonce)
	}
	return [16]byte(n)
}

// TestNonceFloodLocksOutOnlyTheFlooder is finding 4 of issue 11. Bob, a
// handler, signs requests as fast as he can with ts = now+290 s, each entry
// living almost ten minutes, far beyond his quota. Meanwhile Alice, the
// only handler of "sea", must get her inbox at her first try, and the admin
// must be able to publish the manifest that would remove Bob. Bob locks out
// only himself, until the clock passes the times he signed with.
func TestNonceFloodLocksOutOnlyTheFlooder(t *testing.T) {
	// Alice starts once the flood is four times the quota; it goes on to
	// at least eight times.
	const quota, flooders, floodAtLeast, samples = 256, 4, 8 * 256, 20
	f, _, base, clk := authRelay(t, quota)
	now := clk.Now()
	future := now.Add(290 * time.Second)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: flooders + 2}}
	defer hc.CloseIdleConnections()
	const inbox = "/api/v1/inbox"

	var sent, accepted atomic.Int64
	var failed atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, err := send(hc, base, "GET", inbox, signedHeader(f.bob, "GET", inbox, nil, future), nil)
				if err != nil {
					t.Error(err)
					failed.Store(true)
					return
				}
				if st == 200 {
					accepted.Add(1)
				}
				sent.Add(1)
			}
		}()
	}
	stopFlood := func() {
		for sent.Load() < floodAtLeast && !failed.Load() {
			time.Sleep(time.Millisecond)
		}
		close(stop)
		wg.Wait()
	}
	for sent.Load() <= 4*quota && !failed.Load() {
		time.Sleep(time.Millisecond)
	}

	// Alice's inbox, again and again while the flood goes on.
	var waits []time.Duration
	tries := 0
	for len(waits) < samples {
		start := time.Now()
		for {
			tries++
			st, err := send(hc, base, "GET", inbox, signedHeader(f.alice, "GET", inbox, nil, now), nil)
			if err != nil {
				t.Fatal(err)
			}
			if st == 200 {
				waits = append(waits, time.Since(start))
				break
			}
			if sent.Load() >= floodAtLeast {
				break
			}
		}
		if sent.Load() >= floodAtLeast && len(waits) == 0 {
			break
		}
	}
	path := "/api/v1/admin/desks/helpdesk"
	env := f.manifest(2)
	published, err := send(hc, base, "PUT", path, signedHeader(f.admin, "PUT", path, env, now), env)
	if err != nil {
		t.Fatal(err)
	}
	during := sent.Load()
	stopFlood()

	slices.Sort(waits)
	if len(waits) == 0 {
		t.Errorf("alice got 401 to all %d tries while bob's flood sent %d requests", tries, during)
	} else {
		t.Logf("while one handler's flood sent %d requests (quota %d; %d in all), the other handler got through %d times in %d tries: median %v, worst %v",
			during, quota, sent.Load(), len(waits), tries, waits[len(waits)/2], waits[len(waits)-1])
	}
	if tries != len(waits) || len(waits) != samples {
		t.Errorf("alice got her inbox %d times in %d tries, want %d in %d", len(waits), tries, samples, samples)
	}
	if published != 200 {
		t.Errorf("the admin's publish during the flood: %d, want 200", published)
	}
	if got := accepted.Load(); got != quota {
		t.Errorf("bob's flood had %d requests accepted, want exactly his quota, %d", got, quota)
	}

	// Bob is locked out while the clock is below the times he signed with.
	for _, tc := range []struct {
		name string
		id   *crypto.Identity
		at   time.Time
		want int
	}{
		{"the flooder, signing now", f.bob, now, 401},
		{"another handler", f.alice, now, 200},
		{"the flooder, once the clock passes his floor", f.bob, future.Add(time.Second), 200},
		{"another handler, then", f.alice, future.Add(time.Second), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.Set(tc.at)
			st, err := send(hc, base, "GET", inbox, signedHeader(tc.id, "GET", inbox, nil, tc.at), nil)
			if err != nil || st != tc.want {
				t.Fatalf("status %d, %v; want %d", st, err, tc.want)
			}
		})
	}
}

// TestNonceReplayAfterEviction: a nonce the cache dropped to make room is
// still refused, because the key's floor has risen to its signing time.
func TestNonceReplayAfterEviction(t *testing.T) {
	const quota = 64
	f, srv, base, clk := authRelay(t, quota)
	now := clk.Now()
	const inbox = "/api/v1/inbox"
	first := signedHeader(f.bob, "GET", inbox, nil, now.Add(-10*time.Second))
	if st, err := send(http.DefaultClient, base, "GET", inbox, first, nil); err != nil || st != 200 {
		t.Fatalf("first request: %d, %v", st, err)
	}
	for i := range quota {
		h := signedHeader(f.bob, "GET", inbox, nil, now.Add(-5*time.Second))
		if st, err := send(http.DefaultClient, base, "GET", inbox, h, nil); err != nil || st != 200 {
			t.Fatalf("request %d of a fast pull: %d, %v", i, st, err)
		}
	}
	if srv.nonces.holds(f.bob.Card().KeyID(), nonceOf(t, first)) {
		t.Fatal("the first request's nonce is still in the cache: this test proves nothing")
	}
	for _, tc := range []struct {
		name string
		hdr  http.Header
		want int
	}{
		{"the replay of the evicted request", first, 401},
		{"a fresh request signed at the evicted second", signedHeader(f.bob, "GET", inbox, nil, now.Add(-10*time.Second)), 401},
		{"a fresh request signed now", signedHeader(f.bob, "GET", inbox, nil, now), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, err := send(http.DefaultClient, base, "GET", inbox, tc.hdr, nil); err != nil || st != tc.want {
				t.Fatalf("status %d, %v; want %d", st, err, tc.want)
			}
		})
	}
}

// TestFlooderOwnHonestRequest: after a key floods far beyond its quota, its
// own request signed now passes as long as its floor is below now.
func TestFlooderOwnHonestRequest(t *testing.T) {
	const quota = 64
	const inbox = "/api/v1/inbox"
	for _, tc := range []struct {
		name   string
		signed time.Duration // the flood's signing time, from now
		later  time.Duration // how far the clock moves after the flood
		want   int
	}{
		{"flood signed a minute ago", -time.Minute, 0, 200},
		{"flood signed a second ago", -time.Second, 0, 200},
		{"flood signed 290 s ahead", 290 * time.Second, 0, 401},
		{"flood signed 290 s ahead, clock past it", 290 * time.Second, 291 * time.Second, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv, base, clk := authRelay(t, quota)
			now := clk.Now()
			for range 4 * quota {
				send(http.DefaultClient, base, "GET", inbox, signedHeader(f.bob, "GET", inbox, nil, now.Add(tc.signed)), nil)
			}
			floor, _ := srv.nonces.floorOf(f.bob.Card().KeyID())
			if floor == 0 {
				t.Fatal("the flood never filled the quota: this test proves nothing")
			}
			now = now.Add(tc.later)
			clk.Set(now)
			if st, err := send(http.DefaultClient, base, "GET", inbox, signedHeader(f.bob, "GET", inbox, nil, now), nil); err != nil || st != tc.want {
				t.Fatalf("the flooder's request signed now (floor %+ds): %d, %v; want %d", floor-now.Unix(), st, err, tc.want)
			}
		})
	}
}

// tampered is h with its signature changed, so that it no longer verifies.
func tampered(h http.Header) http.Header {
	h = h.Clone()
	auth := h.Get("Authorization")
	i := strings.LastIndex(auth, "sig=") + len("sig=")
	sig, _ := base64.RawURLEncoding.DecodeString(auth[i:])
	sig[10] ^= 1
	h.Set("Authorization", auth[:i]+base64.RawURLEncoding.EncodeToString(sig))
	return h
}

// withHeader is h with header k set to the values vs, or removed if none.
func withHeader(h http.Header, k string, vs ...string) http.Header {
	h = h.Clone()
	h.Del(k)
	for _, v := range vs {
		h.Add(k, v)
	}
	return h
}

// watchedBody is a request body that counts how often it is read.
type watchedBody struct {
	r     io.Reader
	reads int
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.reads++
	return b.r.Read(p)
}

func (b *watchedBody) Close() error { return nil }

// TestSignedBodyReadAfterVerification sends signed requests straight to
// the relay's handler and checks the answer and whether the relay read any
// of the body: every check that needs no body comes first, and a request
// that fails one is answered without a single read.
func TestSignedBodyReadAfterVerification(t *testing.T) {
	f := newFixture(t)
	reply := "/api/v1/mailboxes/" + strings.Repeat("ab", 16) + "/replies?desk=helpdesk&category=sea"
	ack := "/api/v1/submissions/" + strings.Repeat("cd", 16) + "/ack"
	const publish, inbox = "/api/v1/admin/desks/helpdesk", "/api/v1/inbox"
	env := f.manifest(2)
	other := bytes.Repeat([]byte{'x'}, len(env))
	tooBig := make([]byte, crypto.MaxManifestLen+1)
	goodPublish := signedHeader(f.admin, "PUT", publish, env, f.now)
	sum := func(b []byte) string { return crypto.BodySHA256(b) }
	for _, tc := range []struct {
		name         string
		method, path string
		hdr          http.Header
		length       int64  // the declared Content-Length; -1: chunked
		body         []byte // what the client sends; nil: length zero bytes
		status       int
		read         bool // whether the relay may read the body
	}{
		{"a handler's key ID, a bad signature, 16 MiB declared", "POST", reply, tampered(signedHeader(f.alice, "POST", reply, nil, f.now)), 16 << 20, nil, 401, false},
		{"signed over another hash than the one claimed", "PUT", publish, withHeader(goodPublish, crypto.BodySHA256Header, sum(other)), int64(len(other)), other, 401, false},
		{"no body hash", "PUT", publish, withHeader(goodPublish, crypto.BodySHA256Header), int64(len(env)), env, 401, false},
		{"body hash in upper case", "PUT", publish, withHeader(goodPublish, crypto.BodySHA256Header, strings.ToUpper(sum(env))), int64(len(env)), env, 401, false},
		{"two body hashes", "PUT", publish, withHeader(goodPublish, crypto.BodySHA256Header, sum(env), sum(env)), int64(len(env)), env, 401, false},
		{"chunked body", "PUT", publish, goodPublish, -1, env, 401, false},
		{"declared length over the route's maximum", "PUT", publish, signedHeader(f.admin, "PUT", publish, tooBig, f.now), int64(len(tooBig)), tooBig, 401, false},
		{"a body on a route that takes none", "POST", ack, signedHeader(f.alice, "POST", ack, []byte("x"), f.now), 1, []byte("x"), 401, false},
		{"a handler on the admin route", "PUT", publish, signedHeader(f.alice, "PUT", publish, env, f.now), int64(len(env)), env, 401, false},
		{"stale signature", "PUT", publish, signedHeader(f.admin, "PUT", publish, env, f.now.Add(-10*time.Minute)), int64(len(env)), env, 401, false},
		{"a good publish", "PUT", publish, goodPublish, int64(len(env)), env, 200, true},
		{"the same publish replayed", "PUT", publish, goodPublish, int64(len(env)), env, 401, false},
		{"a body other than the signed one", "PUT", publish, signedHeader(f.admin, "PUT", publish, env, f.now), int64(len(other)), other, 401, true},
		{"a body shorter than declared", "PUT", publish, signedHeader(f.admin, "PUT", publish, env, f.now), int64(len(env)), env[:100], 401, true},
		{"no body where the signed hash says one", "GET", inbox, signedHeader(f.alice, "GET", inbox, []byte("x"), f.now), 0, nil, 401, false},
		{"no body hash, no body", "GET", inbox, withHeader(signedHeader(f.alice, "GET", inbox, nil, f.now), crypto.BodySHA256Header), 0, nil, 401, false},
		{"a good inbox", "GET", inbox, signedHeader(f.alice, "GET", inbox, nil, f.now), 0, nil, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r.Header = tc.hdr.Clone()
			r.ContentLength = tc.length
			if tc.length < 0 {
				r.TransferEncoding = []string{"chunked"}
			}
			src := io.Reader(bytes.NewReader(tc.body))
			if tc.body == nil {
				src = io.LimitReader(zeros{}, max(tc.length, 0))
			}
			wb := &watchedBody{r: src}
			r.Body = wb
			rec := httptest.NewRecorder()
			f.srv.Handlers().ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if !tc.read && wb.reads != 0 {
				t.Fatalf("the relay read the body %d times before refusing it", wb.reads)
			}
			if tc.read && wb.reads == 0 {
				t.Fatal("the relay never read the body: this case proves nothing")
			}
			if tc.status == 401 {
				if code := errCode(t, &http.Response{Body: io.NopCloser(rec.Body)}); code != "unauthorized" {
					t.Fatalf("code %q", code)
				}
				if tc.length != 0 && rec.Header().Get("Connection") != "close" {
					t.Fatal("a refused request with a body keeps its connection open")
				}
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestSignedBodyNeverSent: over TCP, the relay answers a request that has a
// handler's key ID but a bad signature, and declares a body, without
// waiting for a byte of the body, and then closes the connection. The body
// is never sent. The relay's idle timeout is its default minute, so a relay
// that waited for the body would not answer before the test gives up.
func TestSignedBodyNeverSent(t *testing.T) {
	f := newFixture(t)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, Eventf: f.log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv.HTTPServer(srv.Combined())
	ts.Start()
	defer ts.Close()
	reply := "/api/v1/mailboxes/" + strings.Repeat("ab", 16) + "/replies?desk=helpdesk&category=sea"
	for _, length := range []int{16 << 20, 1000} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			h := tampered(signedHeader(f.alice, "POST", reply, make([]byte, length), time.Now()))
			c, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
				reply, h.Get("Authorization"), crypto.BodySHA256Header, h.Get(crypto.BodySHA256Header), length)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body was never sent: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("the connection is still open after the answer: %v", err)
			}
		})
	}
}

// TestSignedBodyEndToEnd sends signed requests whose body is not the one
// the signature covers through the fixture's HTTP server: each gets 401.
func TestSignedBodyEndToEnd(t *testing.T) {
	f := newFixture(t)
	const publish = "/api/v1/admin/desks/helpdesk"
	env := f.manifest(2)
	forged := f.manifest(3)
	for _, tc := range []struct {
		name string
		hdr  http.Header
		body []byte
	}{
		{"signed and claimed for one body, another sent", signedHeader(f.admin, "PUT", publish, env, f.now), bytes.Repeat([]byte{' '}, len(env))},
		{"the sent body's hash claimed, another signed", withHeader(signedHeader(f.admin, "PUT", publish, env, f.now), crypto.BodySHA256Header, crypto.BodySHA256(forged)), forged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := errCode(t, f.do("PUT", publish, tc.hdr, tc.body, 401)); code != "unauthorized" {
				t.Fatalf("code %q", code)
			}
		})
	}
	f.publish(env, 200)
}
