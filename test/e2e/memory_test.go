package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
)

// relayMemoryBound is what protocol.md §10.9 promises for a relay run with
// the default limits: at most 256 MiB resident.
const relayMemoryBound = 256 << 20

// TestMemoryBoundUnderFlood holds the relay, run with its default limits,
// at the limits of every route that reads a body, all at once, and checks
// that its peak resident memory (VmHWM) stays under the bound protocol.md
// §10.9 gives. Each hostile client declares the largest body its route
// accepts, sends most of it at once and then trickles the rest just above
// the body rate floor, so that whatever the relay buffers stays buffered.
// Clients turned away are sent again, so the relay is held at its limits
// for the whole run.
func TestMemoryBoundUnderFlood(t *testing.T) {
	w := setup(t)
	pid := w.proc.Process.Pid
	addr := strings.TrimPrefix(w.relay, "http://")
	classic := deskRecipients(t, w, "bob", "dan") // desk "classic", no category

	// A follow-up of almost 16 MiB to a mailbox no one has: a valid age
	// header for the classic desk's two handlers, and a length that is a
	// whole age STREAM.
	followup := ageHead(t, classic, 16<<20-(256<<10))
	single := ageHead(t, classic, 1<<20-(64<<10))
	piece := ageHead(t, classic, 64<<20)

	ctx, stop := context.WithTimeout(context.Background(), 15*time.Second)
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	hold := func(name string, n int, req func() (head string, prefix []byte, length int64)) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					head, prefix, length := req()
					status := trickle(ctx, addr, head, prefix, length)
					mu.Lock()
					answers[name+" "+status]++
					mu.Unlock()
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
	}
	token := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	hold("followup", 52, func() (string, []byte, int64) {
		return "POST /api/v1/mailbox/followups?desk=classic HTTP/1.1\r\nHost: x\r\nAmana-Token: " + token() + "\r\n", followup.prefix, followup.length
	})
	hold("submission", 16, func() (string, []byte, int64) {
		return "POST /api/v1/desks/classic/submissions HTTP/1.1\r\nHost: x\r\n", single.prefix, single.length
	})
	hold("piece", 16, func() (string, []byte, int64) {
		tok := createUpload(t, w.relay, piece.length)
		if tok == "" {
			return "GET /api/v1/health HTTP/1.1\r\nHost: x\r\n", nil, 0
		}
		return "PATCH /api/v1/uploads/" + tok + " HTTP/1.1\r\nHost: x\r\nUpload-Offset: 0\r\n", piece.prefix, 24 << 20
	})
	form := func(path, field string, size int64) func() (string, []byte, int64) {
		return func() (string, []byte, int64) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			mw.WriteField("f.what", "flood")
			fw, _ := mw.CreateFormFile(field, "big.bin")
			fw.Write([]byte("x"))
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n", path, mw.FormDataContentType())
			// The file part's bytes follow; the closing boundary never comes.
			return head, b.Bytes(), size
		}
	}
	hold("form", 4, form("/desks/classic/submit", "files", 60<<20))
	hold("self", 2, form("/desks/classic/self", "age", 60<<20))
	hold("followup form", 4, form("/check/followup", "files", 16<<20))
	hold("check form", 4, form("/check", "receipt", 60<<10))
	// Signed routes, reachable on this combined listener with any public
	// key ID: a handler's key, but no valid signature.
	bob := readCard(t, w, "bob")
	auth := fmt.Sprintf("Amana-Ed25519 key=%s,ts=%d,nonce=%s,sig=%s", base64.RawURLEncoding.EncodeToString(bob.SignKey),
		time.Now().Unix(), strings.Repeat("A", 22), strings.Repeat("A", 86))
	hold("signed reply", 40, func() (string, []byte, int64) {
		return "POST /api/v1/mailboxes/" + strings.Repeat("ab", 16) + "/replies?desk=classic HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + "\r\nAmana-Body-SHA256: " + strings.Repeat("0", 64) + "\r\n", nil, 16 << 20
	})

	var peak int64
	healthyDuring := 0
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		peak = max(peak, vmHWM(t, pid))
		hc := http.Client{Timeout: 5 * time.Second}
		if resp, err := hc.Get(w.relay + "/api/v1/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				healthyDuring++
			}
		}
	}
	wg.Wait()
	peak = max(peak, vmHWM(t, pid))
	t.Logf("relay peak resident memory under the flood: %d MiB (bound %d MiB); health answered %d times; answers: %v",
		peak>>20, relayMemoryBound>>20, healthyDuring, answers)
	if peak > relayMemoryBound {
		t.Fatalf("the relay's peak resident memory was %d MiB, over the %d MiB protocol.md §10.9 promises", peak>>20, relayMemoryBound>>20)
	}
	if healthyDuring == 0 {
		t.Fatalf("the relay never answered its health check during the flood")
	}
	must(t, run(t, nil, nil, "amana-relay", "status", "--data", w.path("data")))
}

type ageBody struct {
	prefix []byte // the age header and the payload's nonce
	length int64  // a whole age file's length, header included
}

// ageHead makes the header of an age file to recipients whose payload is
// about plain bytes long, and the file's exact length.
func ageHead(t *testing.T, recipients []age.Recipient, plain int64) ageBody {
	t.Helper()
	var b bytes.Buffer
	aw, err := age.Encrypt(&b, recipients...)
	if err != nil {
		t.Fatal(err)
	}
	aw.Close()
	hdr, err := crypto.ReadAgeHeader(bufioOf(b.Bytes()), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 64 << 10
	chunks := (plain + chunk - 1) / chunk
	length := int64(hdr.Len) + 16 + plain + 16*chunks
	if err := crypto.CheckAgePayload(length - int64(hdr.Len)); err != nil {
		t.Fatal(err)
	}
	return ageBody{prefix: b.Bytes()[:hdr.Len+16], length: length}
}

func readCard(t *testing.T, w *world, name string) *crypto.Card {
	t.Helper()
	b, err := os.ReadFile(w.path(name + ".card"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := crypto.ParseCard(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func deskRecipients(t *testing.T, w *world, names ...string) []age.Recipient {
	t.Helper()
	var out []age.Recipient
	for _, n := range names {
		r, err := readCard(t, w, n).AgeRecipient()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func createUpload(t *testing.T, relay string, length int64) string {
	hc := http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Post(relay+"/api/v1/desks/classic/uploads", "application/json", strings.NewReader(fmt.Sprintf(`{"length":%d}`, length)))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, rest, ok := strings.Cut(string(b), `"upload":"`)
	if !ok {
		return ""
	}
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

// trickle sends one request with a body of the declared length: head (the
// request line and headers, without the blank line), then prefix, then
// zeros as fast as the relay takes them up to 256 KiB short of the end,
// then the rest at about 1 KiB a second, above the relay's default rate
// floor, until ctx ends. It returns the answer's status code, or what
// ended the request.
func trickle(ctx context.Context, addr, head string, prefix []byte, length int64) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "dial error"
	}
	defer c.Close()
	status := make(chan string, 1)
	go func() {
		line := make([]byte, 12)
		if _, err := io.ReadFull(c, line); err != nil {
			status <- "closed"
			return
		}
		status <- string(line[9:12])
	}()
	if _, err := io.WriteString(c, head+"Content-Length: "+strconv.FormatInt(length, 10)+"\r\n\r\n"); err != nil {
		return "write error"
	}
	sent := int64(0)
	send := func(b []byte) bool {
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Write(b)
		sent += int64(n)
		return err == nil
	}
	zeros := make([]byte, 64<<10)
	if len(prefix) > 0 && !send(prefix[:min(int64(len(prefix)), length)]) {
		return wait(ctx, status)
	}
	for sent < length-256<<10 {
		select {
		case s := <-status:
			return s
		case <-ctx.Done():
			return "held to the end"
		default:
		}
		if !send(zeros[:min(int64(len(zeros)), length-256<<10-sent)]) && ctx.Err() == nil {
			// The relay is not reading (a full budget, a slot to wait for):
			// keep the connection and try again.
			continue
		}
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for sent < length {
		select {
		case s := <-status:
			return s
		case <-ctx.Done():
			return "held to the end"
		case <-tick.C:
			send(zeros[:min(256, length-sent)])
		}
	}
	return wait(ctx, status)
}

func wait(ctx context.Context, status chan string) string {
	select {
	case s := <-status:
		return s
	case <-ctx.Done():
		return "held to the end"
	}
}

func bufioOf(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// vmHWM is a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the relay's memory: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
