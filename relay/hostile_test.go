package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// hostileRelay serves the relay with its real http.Server bounds and short
// timeouts, so slow and idle clients can be tested quickly.
func hostileRelay(t *testing.T) (*fixture, string) {
	f := newFixture(t)
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, IdleTimeout: time.Second, HeaderTimeout: time.Second,
		MaxSingle: 256 << 10, MaxPiece: 2 << 20, MinBodyRate: 1000, Eventf: f.log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv.HTTPServer(srv.Combined())
	ts.Start()
	t.Cleanup(ts.Close)
	return f, ts.Listener.Addr().String()
}

// raw sends bytes on a fresh connection and returns the status line of the
// answer, or "closed".
func raw(t *testing.T, addr, req string, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	io.WriteString(c, req)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "closed"
	}
	return strings.TrimSpace(line)
}

func healthy(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the relay is not healthy after that: %v", err)
	}
	resp.Body.Close()
}

// TestHostileInput sends malformed and hostile requests, each with the
// exact answer expected, and checks the relay stays healthy and stores
// nothing.
func TestHostileInput(t *testing.T) {
	f, addr := hostileRelay(t)
	good := encrypt(t, []byte("report"), f.alice, f.bob)
	notAge := []struct{ name, body string }{
		{"empty", ""},
		{"armored", "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"},
		{"wrong version", "age-encryption.org/v2\n-> X25519 AAAA\nAAAA\n--- AAAA\n"},
		{"stanza without body", "age-encryption.org/v1\n-> X25519 " + strings.Repeat("A", 43) + "\n--- " + strings.Repeat("A", 43) + "\n"},
		{"binary", "\x00\x01\x02\x03"},
		{"endless header line", "age-encryption.org/v1\n-> X25519 " + strings.Repeat("A", 100000)},
	}
	for _, tc := range notAge {
		t.Run("not age: "+tc.name, func(t *testing.T) {
			resp := f.do("POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, []byte(tc.body), 400)
			if code := errCode(t, resp); code != "not_age" && code != "bad_length" {
				t.Fatalf("code %s", code)
			}
		})
	}
	for _, tc := range []struct {
		name, req, want string
	}{
		{"huge headers", "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"not HTTP", "HELLO\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"unknown method", "BREW /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"create upload, not JSON", "POST /api/v1/desks/helpdesk/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 400 Bad Request"},
		{"create upload, unknown member", "POST /api/v1/desks/helpdesk/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n{\"length\":10,\"evil\":\"x\"}      ", "HTTP/1.1 400 Bad Request"},
		{"submission without length", "POST /api/v1/desks/helpdesk/submissions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.1 411 Length Required"},
		{"declared size past the body, then silence", "POST /api/v1/desks/helpdesk/submissions HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\nage-encryption.org/v1\n", "HTTP/1.1 408 Request Timeout"},
		{"headers sent too slowly", "GET /api/v1/health HTTP/1.1\r\n", "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := raw(t, addr, tc.req, 5*time.Second); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			healthy(t, addr)
		})
	}

	t.Run("declared upload far past what is sent", func(t *testing.T) {
		body, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: int64(len(good)) + 1<<20})
		var st api.UploadState
		json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
		// The bytes that come are kept, and the upload can never complete:
		// it expires, and handlers never see it.
		f.do("PATCH", "/api/v1/uploads/"+st.Upload, http.Header{"Upload-Offset": {"0"}}, good, 200)
		if code := errCode(t, f.do("POST", "/api/v1/uploads/"+st.Upload+"/complete", nil, nil, 409)); code != "incomplete" {
			t.Fatalf("code %s", code)
		}
	})

	t.Run("many idle connections", func(t *testing.T) {
		var conns []net.Conn
		for i := 0; i < 200; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		healthy(t, addr)
		time.Sleep(1500 * time.Millisecond)
		closed := 0
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				closed++
			}
			c.Close()
		}
		if closed != len(conns) {
			t.Fatalf("%d of %d idle connections still open after the header timeout", len(conns)-closed, len(conns))
		}
		healthy(t, addr)
	})

	t.Run("slow writer", func(t *testing.T) {
		body, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: int64(len(good))})
		var st api.UploadState
		json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
		c, _ := net.Dial("tcp", addr)
		defer c.Close()
		fmt.Fprintf(c, "PATCH /api/v1/uploads/%s HTTP/1.1\r\nHost: x\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n", st.Upload, len(good))
		c.Write(good[:20])
		time.Sleep(2500 * time.Millisecond) // longer than the idle timeout
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "" && !strings.Contains(line, "408") && !strings.Contains(line, "400") {
			t.Fatalf("a stalled upload got %q", line)
		}
		healthy(t, addr)
	})

	t.Run("trickled body", func(t *testing.T) {
		// Never idle for a whole second, but far below 1000 bytes a second:
		// ended by the rate floor, not by the idle timeout.
		body, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: int64(len(good))})
		var st api.UploadState
		json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
		c, _ := net.Dial("tcp", addr)
		defer c.Close()
		fmt.Fprintf(c, "PATCH /api/v1/uploads/%s HTTP/1.1\r\nHost: x\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n", st.Upload, len(good))
		start := time.Now()
		answered := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(c).ReadString('\n')
			answered <- line
		}()
		for i := 0; ; i++ {
			select {
			case line := <-answered:
				if !strings.Contains(line, "408") {
					t.Fatalf("a trickled upload got %q", line)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("a trickled upload was served for %v", d)
				}
				healthy(t, addr)
				return
			case <-time.After(200 * time.Millisecond):
				if i > 50 {
					t.Fatal("a trickled upload was never ended")
				}
				c.Write(good[i : i+1])
			}
		}
	})

	t.Run("slow reader", func(t *testing.T) {
		big := encrypt(t, bytes.Repeat([]byte{1}, 200<<10), f.alice)
		var rc api.Receipt
		json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/submissions?category=sea", nil, big, 201).Body).Decode(&rc)
		path := "/api/v1/submissions/" + rc.ID
		c, _ := net.Dial("tcp", addr)
		defer c.Close()
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n%s: %s\r\n\r\n", path,
			crypto.SignRequest(f.alice.SigningKey(), "GET", path, nil, time.Now()), crypto.BodySHA256Header, crypto.BodySHA256(nil))
		time.Sleep(2500 * time.Millisecond) // never read: the relay gives up writing
		healthy(t, addr)
	})

	t.Run("unsafe attachment names", func(t *testing.T) {
		_, body := f.post("/desks/helpdesk/submit", [][2]string{{"lang", "en"}, {"f.what", "names"}, {"category", "sea"}},
			map[string][]byte{`..\..\windows\evil.exe`: []byte("x"), "../../etc/passwd": []byte("y")}, 200)
		if !strings.Contains(body, "Your report was received") {
			t.Fatalf("form:\n%s", body)
		}
		subs, _ := f.spool.Submissions(func(s *store.Submission) bool { return s.Category == "sea" && s.Size < 64<<10 })
		var names []string
		for _, sub := range subs {
			rd, _ := f.spool.OpenSubmission(sub.ID, 0)
			br, err := crypto.OpenBundle(rd, f.alice.Age())
			if err != nil {
				continue
			}
			for _, a := range br.Report().Attachments {
				names = append(names, a.Name)
			}
		}
		for _, n := range names {
			if strings.ContainsAny(n, `/\`) {
				t.Errorf("an attachment kept a path: %q", n)
			}
		}
		if len(names) != 2 {
			t.Fatalf("attachments %q", names)
		}
	})
	healthy(t, addr)
}

// TestHeaderCheckIsNotACiphertextCheck pins down what the relay's age
// check does not ensure (threat model §7.3): a real age header followed by
// plain text of a whole STREAM's length is stored like any submission. The
// relay cannot see the payload; only the handler's age decryption, which
// fails on it, tells them apart.
func TestHeaderCheckIsNotACiphertextCheck(t *testing.T) {
	f := newFixture(t)
	real := encrypt(t, bytes.Repeat([]byte("x"), 1000), f.alice, f.bob)
	hdr, err := crypto.ReadAgeHeader(bufioReader(real), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	fake := append(slices.Clone(real[:hdr.Len]), []byte(strings.Repeat("PLAINTEXT REPORT ", 1000))[:len(real)-hdr.Len]...)
	resp := f.do("POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, fake, 201)
	var rc api.Receipt
	json.NewDecoder(resp.Body).Decode(&rc)
	stored, _ := f.spool.OpenSubmission(rc.ID, 0)
	got, _ := io.ReadAll(stored)
	if !bytes.Contains(got, []byte("PLAINTEXT REPORT")) {
		t.Fatal("the stored bytes are not the ones sent")
	}
	if _, err := crypto.OpenBundle(bytes.NewReader(got), f.alice.Age()); err == nil {
		t.Fatal("the handler's decryption accepted a fake payload")
	}
}
func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
