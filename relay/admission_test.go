package relay

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// TestEveryRouteHasItsLimit lists every route of both sides with the rate
// limit it must draw from and the place it takes to read a body, checks the
// routing tables say exactly that, and then, with every limit exhausted,
// that each limited route is refused before it reads anything and every
// other route is not.
func TestEveryRouteHasItsLimit(t *testing.T) {
	type want struct {
		limit limitKind
		slot  slotKind
		held  bool // reserves memory for its body
		path  string
		body  string
	}
	id := strings.Repeat("cd", 16)
	intake := map[string]want{
		"GET /api/v1/health":                    {path: "/api/v1/health"},
		"GET /api/v1/desks":                     {path: "/api/v1/desks"},
		"GET /api/v1/desks/{desk}/manifest":     {path: "/api/v1/desks/helpdesk/manifest"},
		"POST /api/v1/desks/{desk}/submissions": {limitCreate, bodySlot, true, "/api/v1/desks/helpdesk/submissions", "x"},
		"POST /api/v1/desks/{desk}/uploads":     {limitCreate, noSlot, false, "/api/v1/desks/helpdesk/uploads", `{"length":10}`},
		"GET /api/v1/uploads/{token}":           {path: "/api/v1/uploads/" + id},
		"PATCH /api/v1/uploads/{token}":         {noLimit, bodySlot, true, "/api/v1/uploads/" + id, "x"},
		"POST /api/v1/uploads/{token}/complete": {path: "/api/v1/uploads/" + id + "/complete"},
		"POST /api/v1/mailbox":                  {limitLookup, noSlot, false, "/api/v1/mailbox", `{"token":"x"}`},
		"POST /api/v1/mailbox/replies/{reply}":  {limitLookup, noSlot, false, "/api/v1/mailbox/replies/" + id, `{"token":"x"}`},
		"POST /api/v1/mailbox/followups":        {limitLookup | limitCreate, bodySlot, true, "/api/v1/mailbox/followups", "x"},
		"GET /check":                            {path: "/check"},
		"POST /check":                           {limitLookup, formSlot, true, "/check", "x"},
		"POST /check/file":                      {limitLookup, formSlot, true, "/check/file", "x"},
		"POST /check/followup":                  {limitLookup | limitCreate, formSlot, true, "/check/followup", "x"},
		"GET /{$}":                              {path: "/"},
		"GET /desks/{desk}":                     {path: "/desks/helpdesk"},
		"POST /desks/{desk}/submit":             {limitCreate, formSlot, true, "/desks/helpdesk/submit", "x"},
		"GET /desks/{desk}/self":                {path: "/desks/helpdesk/self"},
		"POST /desks/{desk}/self":               {limitCreate, formSlot, true, "/desks/helpdesk/self", "x"},
		"GET /desks/{desk}/recipients.txt":      {path: "/desks/helpdesk/recipients.txt"},
		"GET /static/":                          {path: "/static/amana.css"},
		"/":                                     {path: "/nothing-here"},
	}
	// The handler side is signed: its bodies are bounded, and a body is
	// read only from a handler or the admin (auth.go).
	handlers := map[string]want{
		"GET /api/v1/health":                       {},
		"GET /api/v1/inbox":                        {},
		"GET /api/v1/submissions/{id}":             {},
		"POST /api/v1/submissions/{id}/ack":        {},
		"POST /api/v1/acks":                        {},
		"POST /api/v1/bulk":                        {},
		"PUT /api/v1/admin/desks/{desk}":           {},
		"GET /api/v1/desks/{desk}/manifest":        {},
		"POST /api/v1/mailboxes/{mailbox}/replies": {},
		"POST /api/v1/desks/{desk}/events":         {limit: limitEventKey},
		"GET /api/v1/events":                       {},
		"GET /api/v1/events/{id}":                  {},
		"POST /api/v1/events/{id}/ack":             {},
		"/":                                        {},
	}
	f := newFixture(t)
	for _, side := range []struct {
		name   string
		routes []route
		want   map[string]want
	}{{"intake", f.srv.intakeRoutes(), intake}, {"handler", f.srv.handlerRoutes(), handlers}} {
		seen := map[string]bool{}
		for _, rt := range side.routes {
			w, ok := side.want[rt.pattern]
			if !ok {
				t.Errorf("%s route %q is not in this test's table: say which limit it takes", side.name, rt.pattern)
				continue
			}
			seen[rt.pattern] = true
			if rt.cost.limit != w.limit || rt.cost.slot != w.slot || (rt.cost.held != nil) != w.held {
				t.Errorf("%s route %q: limit %b slot %d held %v; want limit %b slot %d held %v", side.name, rt.pattern,
					rt.cost.limit, rt.cost.slot, rt.cost.held != nil, w.limit, w.slot, w.held)
			}
			if side.name == "intake" && rt.cost.maxBody != nil && rt.cost.held == nil && rt.cost.maxBody(f.srv) > maxSmallBody {
				t.Errorf("%s route %q may read %d bytes without reserving memory", side.name, rt.pattern, rt.cost.maxBody(f.srv))
			}
		}
		for p := range side.want {
			if !seen[p] {
				t.Errorf("%s route %q is in the table but not served", side.name, p)
			}
		}
	}

	// Exhaust both limits: nothing refills, since the fixture's clock
	// stands still.
	f.srv.creates = limiter{}
	f.srv.lookups = limiter{}
	for pattern, w := range intake {
		t.Run(pattern, func(t *testing.T) {
			method, _, _ := strings.Cut(pattern, " ")
			if method == "/" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, f.ts.URL+w.path, strings.NewReader(w.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if limited := resp.StatusCode == 429; limited != (w.limit != noLimit) {
				t.Fatalf("status %d with every limit exhausted; limit %b", resp.StatusCode, w.limit)
			}
		})
	}
}

// TestFollowupsAreLimitedPerCircuit: follow-ups draw from the per-circuit
// lookup limit, not only from everyone's.
func TestFollowupsAreLimitedPerCircuit(t *testing.T) {
	f := newFixture(t)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, CircuitCreateRate: -1, CircuitLookupRate: 1, Eventf: f.log})
	if err != nil {
		t.Fatal(err)
	}
	ts := newCircuitServer(t, srv)
	rc := crypto.NewReceipt()
	ct := encrypt(t, []byte("more"), f.alice, f.bob)
	post := fmt.Sprintf("POST /api/v1/mailbox/followups?desk=helpdesk&category=incident HTTP/1.1\r\nHost: x\r\nAmana-Token: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		base64.RawURLEncoding.EncodeToString(rc.Token()), len(ct), ct)
	for i, want := range []string{"201", "201", "429"} {
		if got := onCircuit(t, ts, 9, post); !strings.Contains(got, want) {
			t.Fatalf("follow-up %d on circuit 9: %q, want %s", i+1, got, want)
		}
	}
	if got := onCircuit(t, ts, 10, post); !strings.Contains(got, "201") {
		t.Fatalf("another circuit: %q", got)
	}
}

// TestBodyMemoryIsReserved holds the intake side's memory budget with one
// slow body and checks that the next body that does not fit waits, then is
// told the relay is busy, while requests that hold no body go on; and that
// the budget is given back when the slow body ends.
func TestBodyMemoryIsReserved(t *testing.T) {
	f := newFixture(t)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, MaxFormBytes: 1 << 20, MaxBodyMemory: 20 << 20, Eventf: f.log})
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, srv)
	// A follow-up of 16 MiB reserves 16 MiB; the budget has 20.
	rc := crypto.NewReceipt()
	slow, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		req, _ := http.NewRequestWithContext(slow, "POST", ts+"/api/v1/mailbox/followups?desk=helpdesk&category=incident", &stallingReader{ctx: slow})
		req.ContentLength = MaxReply
		req.Header.Set("Amana-Token", base64.RawURLEncoding.EncodeToString(rc.Token()))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return srv.memory.usage() >= MaxReply })
	ct := encrypt(t, bytes.Repeat([]byte("r"), 8<<20), f.alice, f.bob)
	resp, err := http.Post(ts+"/api/v1/desks/helpdesk/submissions?category=incident", "application/octet-stream", bytes.NewReader(ct[:1<<20]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// 1 MiB fits beside the 16: it is read (and refused as a short age file).
	if resp.StatusCode == 503 {
		t.Fatalf("a body that fits the budget was refused")
	}
	if resp, err := http.Get(ts + "/api/v1/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health while the budget is held: %v", err)
	}
	second := func() int {
		req, _ := http.NewRequest("POST", ts+"/api/v1/mailbox/followups?desk=helpdesk&category=incident", bytes.NewReader(make([]byte, 8<<20)))
		req.Header.Set("Amana-Token", base64.RawURLEncoding.EncodeToString(crypto.NewReceipt().Token()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	start := time.Now()
	if got := second(); got != 503 {
		t.Fatalf("an 8 MiB follow-up beside a held 16 MiB one in a 20 MiB budget: status %d, want 503", got)
	}
	if waited := time.Since(start); waited < admitWait/2 {
		t.Fatalf("refused after %v, without waiting for memory", waited)
	}
	stop()
	waitFor(t, func() bool { return srv.memory.usage() == 0 })
	if got := second(); got == 503 {
		t.Fatalf("the budget was not given back")
	}
}

// stallingReader sends nothing until its context ends.
type stallingReader struct{ ctx context.Context }

func (s *stallingReader) Read([]byte) (int, error) {
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("timed out waiting")
}

// newServer serves srv with its real http.Server bounds and returns its URL.
func newServer(t *testing.T, srv *Server) string {
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv.HTTPServer(srv.Combined())
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

// newCircuitServer serves srv behind CircuitListener, as serve does for an
// onion that exports circuit IDs, and returns its address.
func newCircuitServer(t *testing.T, srv *Server) string {
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv.HTTPServer(srv.Combined())
	ts.Listener = CapConns(ts.Config, CircuitListener(ts.Listener), 64)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// TestSignedBodiesShareTheHandlerBudget: a handler key may hold one signed
// body at a time, and the admin's publication has memory of its own, so a
// rogue handler trickling replies can neither take the whole handler side
// nor keep the admin from publishing the manifest that removes them.
func TestSignedBodiesShareTheHandlerBudget(t *testing.T) {
	f := newFixture(t)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, MaxHandlerMemory: MaxReply + crypto.MaxManifestLen, Eventf: f.log})
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, srv)
	rc := crypto.NewReceipt()
	path := "/api/v1/mailboxes/" + rc.MailboxID() + "/replies?desk=helpdesk&category=incident"
	// alice starts a reply of 16 MiB and never finishes it.
	slow, stop := context.WithCancel(context.Background())
	defer stop()
	body := bytes.Repeat([]byte("x"), MaxReply)
	go func() {
		req, _ := http.NewRequestWithContext(slow, "POST", ts+path, &stallingReader{ctx: slow})
		req.ContentLength = MaxReply
		req.Header = signedHeader(f.alice, "POST", path, body, time.Now())
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return srv.handlerMemory.usage() == MaxReply })
	post := func(id *crypto.Identity, method, path string, body []byte) int {
		req, _ := http.NewRequest(method, ts+path, bytes.NewReader(body))
		req.Header = signedHeader(id, method, path, body, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A second body from the same key is refused at once.
	start := time.Now()
	if got := post(f.alice, "POST", path, body[:1<<20]); got != 503 {
		t.Fatalf("alice's second signed body: %d, want 503", got)
	}
	if time.Since(start) > admitWait/2 {
		t.Fatalf("alice's second body waited %v for a place it can never have", time.Since(start))
	}
	// The admin publishes while the handler budget is full.
	if got := post(f.admin, "PUT", "/api/v1/admin/desks/helpdesk", f.manifest(2)); got != 200 {
		t.Fatalf("the admin's publication while a handler holds the budget: %d", got)
	}
	// bob's reply finds no room (the budget here holds one reply) and is
	// told to come back, after waiting.
	if got := post(f.bob, "POST", path, body[:1<<20]); got != 503 {
		t.Fatalf("bob's reply beside alice's held one in a one-reply budget: %d", got)
	}
	stop()
	waitFor(t, func() bool { return srv.handlerMemory.usage() == 0 })
	if got := post(f.bob, "POST", path, encrypt(t, []byte("x"), f.alice, f.bob, f.outsider)); got == 503 {
		t.Fatalf("the handler budget was not given back")
	}
}
