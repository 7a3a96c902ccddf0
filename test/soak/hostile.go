package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
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
