package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// Answers of hostile requests that are not HTTP answers.
const (
	ansClosed = "closed by relay, no answer"
	ansHeld   = "still open at our hold limit, no answer"
	ansCut    = "cut by the end of the run"
	// afterRequestPrefix marks the answers of connections left idle after
	// one request.
	afterRequestPrefix = "after a request: "
)

// hostileAction is one kind of hostile request, and the answers that are
// the relay's correct refusals of it.
type hostileAction struct {
	name     string
	what     string
	run      func(h *hostileClient, ctx context.Context)
	expected []string
	// headerTimeout is set when the relay must close the connection once
	// its header timeout passes: one held open longer is unexpected. (The
	// time counts from our connect, so a connection left waiting past the
	// relay's connection cap, never accepted, shows here too.)
	headerTimeout bool
}

// relayHeaderTimeout is the relay's default relay.Config.HeaderTimeout,
// which amana-relay serve keeps.
const relayHeaderTimeout = 20 * time.Second

var hostileActions = []hostileAction{
	{name: "slowloris", what: "request headers sent a byte every 3 s",
		run: (*hostileClient).slowloris, expected: []string{ansClosed, ansCut}, headerTimeout: true},
	{name: "huge_headers", what: "40 KiB header, 3000 headers, 40 KiB URL",
		run: (*hostileClient).hugeHeaders, expected: []string{"431"}},
	{name: "garbage_body", what: "bodies that are not age files, or truncated ones",
		run: (*hostileClient).garbageBody, expected: []string{"400 not_age", "400 bad_length", "429 busy", "503 busy"}},
	{name: "slow_body", what: "a large declared body trickled a byte every 2 s",
		run: (*hostileClient).slowBody, expected: []string{ansHeld, ansCut, "429 busy", "503 busy", "408 timeout", "400 bad_request"}},
	{name: "wrong_stanzas", what: "age files for 1 or 3 recipients instead of 2",
		run: (*hostileClient).wrongStanzas, expected: []string{"400 wrong_recipients", "429 busy", "503 busy"}},
	{name: "oversize", what: "declared lengths past every limit",
		run: (*hostileClient).oversize, expected: []string{"413 too_large", "413 use_upload", "413 piece_too_large", "429 busy"}},
	{name: "idle_conns", what: "50 connections left silent, or silent after one request (one answer each)",
		run: (*hostileClient).idleConns, expected: []string{ansClosed, ansCut, afterRequestPrefix + ansClosed, afterRequestPrefix + ansCut,
			// The relay keeps an idle keep-alive connection for its
			// http.Server IdleTimeout, longer than any hold.
			afterRequestPrefix + ansHeld}, headerTimeout: true},
	{name: "random_token", what: "upload requests with made-up tokens",
		run: (*hostileClient).randomToken, expected: []string{"404 not_found"}},
	{name: "replayed_inbox", what: "a handler's signed inbox request sent again",
		run: (*hostileClient).replayedInbox, expected: []string{"401 unauthorized"}},
	{name: "forged_inbox", what: "inbox requests signed by strangers, stale or mangled",
		run: (*hostileClient).forgedInbox, expected: []string{"401 unauthorized"}},
	{name: "abandoned_upload", what: "uploads created and never sent",
		run: (*hostileClient).abandonedUpload, expected: []string{"201", "429 busy"}},
}

// hostileStats counts the answers hostile requests got, by action.
type hostileStats struct {
	mu      sync.Mutex
	answers map[string]map[string]int
	held    map[[2]string][2]time.Duration // by action and answer: shortest and longest hold
}

func newHostileStats() *hostileStats {
	return &hostileStats{answers: map[string]map[string]int{}, held: map[[2]string][2]time.Duration{}}
}

func (s *hostileStats) add(action, ans string, held time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers[action] == nil {
		s.answers[action] = map[string]int{}
	}
	s.answers[action][ans]++
	if held > 0 {
		k := [2]string{action, ans}
		r, ok := s.held[k]
		if !ok {
			r = [2]time.Duration{held, held}
		}
		s.held[k] = [2]time.Duration{min(r[0], held), max(r[1], held)}
	}
}

// hostileAnswer is one line of the hostile results.
type hostileAnswer struct {
	Action     string  `json:"action"`
	What       string  `json:"what"`
	Answer     string  `json:"answer"`
	Count      int     `json:"count"`
	Expected   bool    `json:"expected"`
	HeldMinSec float64 `json:"held_min_s,omitempty"`
	HeldMaxSec float64 `json:"held_max_s,omitempty"`
}

func (s *hostileStats) result() []hostileAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hostileAnswer
	for _, a := range hostileActions {
		m := s.answers[a.name]
		for _, ans := range sortedKeys(m) {
			// Being cut by the end of the run is never the relay's answer.
			r := hostileAnswer{Action: a.name, What: a.what, Answer: ans, Count: m[ans],
				Expected: ans == ansCut || slices.Contains(a.expected, ans)}
			h, ok := s.held[[2]string{a.name, ans}]
			if ok {
				r.HeldMinSec, r.HeldMaxSec = h[0].Round(100*time.Millisecond).Seconds(), h[1].Round(100*time.Millisecond).Seconds()
			}
			if a.headerTimeout && ans == ansHeld && h[1] < relayHeaderTimeout {
				r.Expected = true // our hold limit came first
			}
			out = append(out, r)
		}
	}
	return out
}

// hostileClient is one hostile client, looping through hostileActions.
type hostileClient struct {
	t      *target
	cfg    *config
	st     *hostileStats
	tr     *http.Transport
	hc     *http.Client
	rng    *rand.Rand
	id     int // the client's index
	round  int // how many times through the actions: with id, chooses variants in turn
	action string
}

func newHostileClient(t *target, cfg *config, st *hostileStats, seed uint64) *hostileClient {
	tr := newTransport()
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &hostileClient{t: t, cfg: cfg, st: st, tr: tr, hc: &http.Client{Transport: tr, Timeout: time.Minute},
		rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

// loop runs the actions in turn, starting at the start-th, until ctx ends.
func (h *hostileClient) loop(ctx context.Context, start int) {
	for i := start; ctx.Err() == nil; i++ {
		a := hostileActions[i%len(hostileActions)]
		h.action, h.round = a.name, (i-start)/len(hostileActions)
		a.run(h, ctx)
		sleep(ctx, time.Duration(100+h.rng.IntN(500))*time.Millisecond)
	}
}

func (h *hostileClient) record(ans string, held time.Duration) { h.st.add(h.action, ans, held) }

// variant returns the index of this action's variant, of n.
func (h *hostileClient) variant(n int) int { return (h.round + h.id) % n }

// failed names a failed request: the end of the run, or the network error.
func failed(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return ansCut
	}
	return "net: " + connReason(err)
}

// do sends one request with the client's HTTP client and records its answer.
func (h *hostileClient) do(ctx context.Context, method, path string, hdr http.Header, body []byte) string {
	ans := h.request(ctx, method, path, hdr, body)
	h.record(ans, 0)
	return ans
}

func (h *hostileClient) request(ctx context.Context, method, path string, hdr http.Header, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, method, h.t.url+path, bytes.NewReader(body))
	if err != nil {
		return "error: " + err.Error()
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return failed(ctx, err)
	}
	return answer(resp)
}

func (h *hostileClient) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	return d.DialContext(ctx, "tcp", h.t.addr)
}

// raw sends req on a new connection and returns the answer, waiting at most
// wait for it.
func (h *hostileClient) raw(ctx context.Context, req []byte, wait time.Duration) string {
	c, err := h.dial(ctx)
	if err != nil {
		return failed(ctx, err)
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	c.SetDeadline(time.Now().Add(wait))
	_, werr := c.Write(req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	switch {
	case err == nil:
		return answer(resp)
	case ctx.Err() != nil:
		return ansCut
	case isTimeout(err):
		return fmt.Sprintf("no answer within %s", wait)
	case werr != nil:
		return "closed by relay while sending (" + connReason(werr) + ")"
	default:
		return ansClosed
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// hold sends head on a new connection, then one piece of drip every so
// often, until the relay answers or closes the connection, the hold limit
// passes, or the run ends. It records what happened and for how long.
func (h *hostileClient) hold(ctx context.Context, head []byte, every time.Duration, drip func() []byte) {
	c, err := h.dial(ctx)
	if err != nil {
		h.record(failed(ctx, err), 0)
		return
	}
	defer c.Close()
	start := time.Now()
	got := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			got <- ansClosed
			return
		}
		got <- answer(resp)
	}()
	if _, err := c.Write(head); err != nil {
		c.Close()
		h.record(failed(ctx, err), time.Since(start))
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	limit := time.NewTimer(h.cfg.hold)
	defer limit.Stop()
	for {
		select {
		case ans := <-got:
			h.record(ans, time.Since(start))
			return
		case <-tick.C:
			c.SetWriteDeadline(time.Now().Add(every))
			c.Write(drip()) // a failed write shows as a closed connection to the reader
		case <-limit.C:
			h.record(ansHeld, time.Since(start))
			return
		case <-ctx.Done():
			h.record(ansCut, time.Since(start))
			return
		}
	}
}

func (h *hostileClient) slowloris(ctx context.Context) {
	head := []byte("GET /api/v1/health HTTP/1.1\r\nHost: soak\r\nUser-Agent: slowloris\r\nX-Slow: ")
	h.hold(ctx, head, 3*time.Second, func() []byte { return []byte{'a' + byte(h.rng.IntN(26))} })
}

func (h *hostileClient) slowBody(ctx context.Context) {
	if h.variant(2) == 0 {
		// A single submission of 1 MiB, the most the relay takes in one
		// request: it holds a body slot while it arrives.
		head := fmt.Sprintf("POST /api/v1/desks/%s/submissions HTTP/1.1\r\nHost: soak\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
			deskID, 1<<20)
		h.hold(ctx, []byte(head), 2*time.Second, func() []byte { return []byte{byte(h.rng.Uint32())} })
		return
	}
	// The first piece of an upload, declared at 8 MiB, trickling the bytes
	// of a correct age header.
	tok, ans := h.createUpload(ctx, 8<<20)
	if tok == "" {
		h.record(ans, 0)
		return
	}
	head := fmt.Sprintf("PATCH /api/v1/uploads/%s HTTP/1.1\r\nHost: soak\r\nContent-Type: application/octet-stream\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n",
		tok, 8<<20)
	sample, i := h.t.fx.goodSample, 0
	h.hold(ctx, []byte(head), 2*time.Second, func() []byte {
		b := sample[i%len(sample) : i%len(sample)+1]
		i++
		return b
	})
}

// createUpload starts an upload of length bytes; it returns the token, or
// the answer when there is none.
func (h *hostileClient) createUpload(ctx context.Context, length int64) (string, string) {
	body, _ := json.Marshal(api.CreateUpload{Length: length})
	req, _ := http.NewRequestWithContext(ctx, "POST", h.t.url+"/api/v1/desks/"+deskID+"/uploads", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.hc.Do(req)
	if err != nil {
		return "", failed(ctx, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", answer(resp)
	}
	defer resp.Body.Close()
	var st api.UploadState
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&st); err != nil || st.Upload == "" {
		return "", "201 without a token"
	}
	return st.Upload, "201"
}

func (h *hostileClient) hugeHeaders(ctx context.Context) {
	var req string
	switch h.variant(3) {
	case 0:
		req = "GET /api/v1/health HTTP/1.1\r\nHost: soak\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n"
	case 1:
		var b strings.Builder
		b.WriteString("GET /api/v1/health HTTP/1.1\r\nHost: soak\r\n")
		for i := range 3000 { // about 33 KiB: past MaxHeaderBytes and net/http's 4 KiB slack
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		req = b.String() + "\r\n"
	default:
		req = "GET /api/v1/uploads/" + strings.Repeat("A", 40<<10) + " HTTP/1.1\r\nHost: soak\r\n\r\n"
	}
	h.record(h.raw(ctx, []byte(req), 15*time.Second), 0)
}

func (h *hostileClient) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return b
}

const submitPath = "/api/v1/desks/" + deskID + "/submissions"

var octet = http.Header{"Content-Type": {"application/octet-stream"}}

func (h *hostileClient) garbageBody(ctx context.Context) {
	var body []byte
	switch h.variant(5) {
	case 0:
		body = h.randomBytes(1<<10 + h.rng.IntN(63<<10))
	case 1:
		body = append([]byte("age-encryption.org/v1\n"), h.randomBytes(4<<10)...)
	case 2:
		// A correct header and a payload cut inside the nonce: no age file
		// is that long. (A cut inside the last chunk is not this: the relay
		// cannot see it, and accepts; the handler's age refuses it, §9.2 of
		// protocol.md.)
		s := h.t.fx.goodSample
		mac := bytes.Index(s, []byte("\n--- "))
		end := mac + 1 + bytes.IndexByte(s[mac+1:], '\n') + 1
		body = s[:end+8]
	case 3:
		body = []byte{} // nothing at all
	default:
		// Garbage as an upload's first piece.
		body = h.randomBytes(64 << 10)
		tok, ans := h.createUpload(ctx, int64(len(body)))
		if tok == "" {
			h.record(ans, 0)
			return
		}
		h.do(ctx, "PATCH", "/api/v1/uploads/"+tok, http.Header{"Content-Type": octet["Content-Type"], "Upload-Offset": {"0"}}, body)
		return
	}
	h.do(ctx, "POST", submitPath, octet, body)
}

func (h *hostileClient) wrongStanzas(ctx context.Context) {
	files := h.t.fx.wrongStanzas
	h.do(ctx, "POST", submitPath, octet, files[h.variant(len(files))])
}

func (h *hostileClient) oversize(ctx context.Context) {
	switch h.variant(4) {
	case 0:
		body, _ := json.Marshal(api.CreateUpload{Length: 1 << 40})
		h.do(ctx, "POST", "/api/v1/desks/"+deskID+"/uploads", http.Header{"Content-Type": {"application/json"}}, body)
	case 1:
		h.record(h.raw(ctx, []byte("POST "+submitPath+" HTTP/1.1\r\nHost: soak\r\nContent-Length: 5000000000\r\n\r\n"), 15*time.Second), 0)
	case 2:
		h.record(h.raw(ctx, []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n", submitPath, 2<<20)), 15*time.Second), 0)
	default:
		req := fmt.Sprintf("PATCH /api/v1/uploads/%s HTTP/1.1\r\nHost: soak\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n", h.token(), 1<<30)
		h.record(h.raw(ctx, []byte(req), 15*time.Second), 0)
	}
}

// token is a made-up upload token, shaped like a real one.
func (h *hostileClient) token() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *hostileClient) randomToken(ctx context.Context) {
	switch h.variant(4) {
	case 0:
		h.do(ctx, "GET", "/api/v1/uploads/"+h.token(), nil, nil)
	case 1:
		h.do(ctx, "PATCH", "/api/v1/uploads/"+h.token(), http.Header{"Content-Type": octet["Content-Type"], "Upload-Offset": {"0"}}, h.randomBytes(1<<10))
	case 2:
		h.do(ctx, "POST", "/api/v1/uploads/"+h.token()+"/complete", nil, nil)
	default:
		h.do(ctx, "GET", "/api/v1/uploads/"+strings.Repeat("Zz9_", 500), nil, nil)
	}
}

const inboxPath = "/api/v1/inbox"

func (h *hostileClient) replayedInbox(ctx context.Context) {
	h.do(ctx, "GET", inboxPath, h.t.captured.Clone(), nil)
}

func (h *hostileClient) forgedInbox(ctx context.Context) {
	_, stranger, _ := ed25519.GenerateKey(nil)
	handler := h.t.desk.Handlers[h.rng.IntN(len(h.t.desk.Handlers))]
	var auth string
	switch h.variant(4) {
	case 0: // a well-formed request signed by a key that is no handler's
		auth = crypto.SignRequest(stranger, "GET", inboxPath, nil, time.Now())
	case 1: // a handler's key ID with a stranger's signature
		auth = crypto.SignRequest(stranger, "GET", inboxPath, nil, time.Now())
		a, _ := crypto.ParseRequestAuth(auth)
		auth = strings.Replace(auth, "key="+a.KeyID, "key="+handler.Card().KeyID(), 1)
	case 2: // a handler's real signature, made an hour ago
		auth = crypto.SignRequest(handler.SigningKey(), "GET", inboxPath, nil, time.Now().Add(-time.Hour))
	default: // no signature at all, and too long
		auth = crypto.RequestScheme + " " + strings.Repeat("x", 600)
	}
	// The body's hash is right, so that only the signature is at fault.
	hdr := http.Header{}
	hdr.Set("Authorization", auth)
	hdr.Set(crypto.BodySHA256Header, crypto.BodySHA256(nil))
	h.do(ctx, "GET", inboxPath, hdr, nil)
}

// idleConns opens 50 connections and leaves them silent, or, every other
// time, sends one health request on each and then leaves them silent, and
// records for each whether and when the relay closed it.
func (h *hostileClient) idleConns(ctx context.Context) {
	const n = 50
	afterRequest := h.variant(2) == 1
	prefix := ""
	if afterRequest {
		prefix = afterRequestPrefix
	}
	type end struct {
		ans  string
		held time.Duration
	}
	ends := make(chan end, n)
	var conns []net.Conn
	for range n {
		c, err := h.dial(ctx)
		if err != nil {
			ends <- end{failed(ctx, err), 0}
			continue
		}
		conns = append(conns, c)
		go func() {
			start := time.Now()
			br := bufio.NewReader(c)
			if afterRequest {
				io.WriteString(c, "GET /api/v1/health HTTP/1.1\r\nHost: soak\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					ends <- end{"no answer to the request", time.Since(start)}
					return
				}
				if a := answer(resp); a != "200" {
					ends <- end{prefix + a, 0}
					return
				}
				start = time.Now() // idle from here
			}
			br.ReadByte()
			ends <- end{prefix + ansClosed, time.Since(start)}
		}()
	}
	limit := time.NewTimer(h.cfg.hold)
	defer limit.Stop()
	over := ""
	for got := 0; got < n; got++ {
		if over == "" {
			select {
			case e := <-ends:
				h.record(e.ans, e.held)
				continue
			case <-limit.C:
				over = ansHeld
			case <-ctx.Done():
				over = ansCut
			}
			for _, c := range conns {
				c.Close()
			}
		}
		e := <-ends
		switch e.ans {
		case prefix + ansClosed:
			e.ans = prefix + over
		case "no answer to the request":
			e.ans = over
		}
		h.record(e.ans, e.held)
	}
}

func (h *hostileClient) abandonedUpload(ctx context.Context) {
	_, ans := h.createUpload(ctx, int64(1<<20+h.rng.IntN(7<<20)))
	h.record(ans, 0)
}

// hostileSummary lists the unexpected answers hostile requests got.
func hostileSummary(rs []hostileAnswer) []string {
	var out []string
	for _, r := range rs {
		if !r.Expected {
			out = append(out, fmt.Sprintf("%s: %s ×%d", r.Action, r.Answer, r.Count))
		}
	}
	sort.Strings(out)
	return out
}
