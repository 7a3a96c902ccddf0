package relay

import (
	"bufio"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseProxyLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		id   uint32
		ok   bool
	}{
		{"PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 65535 80", 1, true},
		{"PROXY TCP6 fc00:dead:beef:4dad::ab:cdef ::1 1 80", 0xabcdef, true},
		{"PROXY TCP6 fc00:dead:beef:4dad::ffff:ffff ::1 0 80", 0xffffffff, true},
		{"PROXY TCP4 127.0.0.1 127.0.0.1 1 80", 0, false},
		{"PROXY TCP6 fc00:dead:beef:4dae::0:1 ::1 1 80", 0, false},   // another network
		{"PROXY TCP6 fc00:dead:beef:4dad::1:0:1 ::1 1 80", 0, false}, // not in the last 32 bits
		{"PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 65536 80", 0, false},
		{"PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 01 80", 0, false},
		{"PROXY TCP6 fc00:dead:beef:4dad::0:1  ::1 1 80", 0, false},
		{"PROXY UNKNOWN", 0, false},
		{"GET / HTTP/1.1", 0, false},
		{"", 0, false},
	} {
		id, ok := parseProxyLine(tc.line)
		if ok != tc.ok || id != tc.id {
			t.Errorf("parseProxyLine(%q) = %d, %v; want %d, %v", tc.line, id, ok, tc.id, tc.ok)
		}
	}
}

func FuzzParseProxyLine(f *testing.F) {
	f.Add("PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 65535 80")
	f.Add("PROXY TCP6 fc00:dead:beef:4dad::ab:cdef ::1 1 80")
	f.Add("PROXY TCP4 1.2.3.4 5.6.7.8 1 2")
	f.Fuzz(func(t *testing.T, line string) {
		id, ok := parseProxyLine(line)
		if !ok {
			return
		}
		// Whatever parses names a circuit tor could have written.
		again, ok := parseProxyLine(fmt.Sprintf("PROXY TCP6 fc00:dead:beef:4dad::%x:%x ::1 1 80", id>>16, id&0xffff))
		if !ok || again != id || !strings.HasPrefix(line, "PROXY TCP6 ") {
			t.Fatalf("parseProxyLine(%q) = %d", line, id)
		}
	})
}

// circuitRelay serves a relay behind CircuitListener, as serve does for an
// onion that exports circuit IDs, with a per-circuit limit of one new
// submission a minute (burst 2).
func circuitRelay(t *testing.T) (*fixture, string) {
	f := newFixture(t)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, CircuitCreateRate: 1, Eventf: f.log})
	if err != nil {
		t.Fatal(err)
	}
	return f, newCircuitServer(t, srv)
}

// onCircuit sends one request as tor would forward it from circuit id and
// returns the status line.
func onCircuit(t *testing.T, addr string, id uint32, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "PROXY TCP6 fc00:dead:beef:4dad::%x:%x ::1 %d 80\r\n%s", id>>16, id&0xffff, id&0xffff, req)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestPerCircuitLimit(t *testing.T) {
	f, addr := circuitRelay(t)
	ct := encrypt(t, []byte("report"), f.alice, f.bob)
	post := fmt.Sprintf("POST /api/v1/desks/helpdesk/submissions?category=incident HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(ct), ct)
	for i, want := range []string{"201", "201", "429"} {
		if got := onCircuit(t, addr, 7, post); !strings.Contains(got, want) {
			t.Fatalf("request %d on circuit 7: %q, want %s", i+1, got, want)
		}
	}
	// Another circuit is not held back by the first.
	if got := onCircuit(t, addr, 0x10008, post); !strings.Contains(got, "201") {
		t.Fatalf("circuit 0x10008: %q", got)
	}
	// Reading is not limited.
	if got := onCircuit(t, addr, 7, "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.Contains(got, "200") {
		t.Fatalf("health on circuit 7: %q", got)
	}
	found := false
	for _, l := range f.logs {
		if strings.Contains(l, "reached its per-circuit limit") && !strings.Contains(l, "7") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no event for the limited circuit, or it names the circuit: %q", f.logs)
	}
}

func TestCircuitListenerRefusesNoProxyLine(t *testing.T) {
	_, addr := circuitRelay(t)
	for _, first := range []string{
		"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n",        // no line: a client, not tor
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 80\r\nGET / HTTP/1.1\r\n", // not tor's
		strings.Repeat("P", 200),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(8 * time.Second))
		c.Write([]byte(first))
		b := make([]byte, 64)
		if n, _ := c.Read(b); n != 0 {
			t.Errorf("a connection starting %.20q got an answer: %q", first, b[:n])
		}
		c.Close()
	}
}

// TestCircuitHeaderTimeout: after tor's line, a client that sends its
// request headers too slowly is still cut off by the header timeout.
func TestCircuitHeaderTimeout(t *testing.T) {
	f := newFixture(t)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, HeaderTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv.HTTPServer(srv.Combined())
	ts.Listener = CircuitListener(ts.Listener)
	ts.Start()
	defer ts.Close()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PROXY TCP6 fc00:dead:beef:4dad::0:9 ::1 9 80\r\nGET /api/v1/health HTTP/1.1\r\n")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := c.Read(make([]byte, 64))
	if d := time.Since(start); n != 0 || d > 5*time.Second {
		t.Fatalf("a slow request after tor's line: read %d bytes after %v; want the connection closed by the 1 s header timeout", n, d)
	}
}
