package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay/client"
)

// cutPiece breaks the body of the PATCH numbered patch (from 1) after cut
// bytes, as a connection lost mid-piece does, and records each PATCH's
// Upload-Offset.
type cutPiece struct {
	patch, cut int
	mu         sync.Mutex
	offsets    []int64
}

func (c *cutPiece) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == "PATCH" {
		c.mu.Lock()
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		c.offsets = append(c.offsets, off)
		n := len(c.offsets)
		c.mu.Unlock()
		if n == c.patch {
			// The cut body still closes the client's: a RoundTripper
			// always closes the body it was given, and the client waits
			// for that before it reuses the piece's buffer.
			orig := r.Body
			r = r.Clone(r.Context())
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(io.LimitReader(orig, int64(c.cut)), failing{}), orig}
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("connection lost") }

// failAfter is a submission body that fails once n bytes are read.
type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the file went away")
	}
	p = p[:min(len(p), f.n)]
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

// TestUploadReadAheadResume: the client, reading the next piece while one is
// in flight, resumes a piece cut mid-way from the offset the relay
// committed, and the relay stores the ciphertext whole; a body that fails
// mid-piece leaves no submission.
func TestUploadReadAheadResume(t *testing.T) {
	f := newFixture(t)
	plain := make([]byte, 7<<20)
	rand.NewChaCha8([32]byte{5}).Read(plain)
	ct := encrypt(t, plain, f.alice, f.bob)
	const piece = 2 << 20 // the fixture's MaxPiece
	cut := &cutPiece{patch: 3, cut: 1<<20 + 12345}
	c, _ := client.New(f.ts.URL, &http.Client{Transport: cut})
	c.Backoff = time.Millisecond
	rc, err := c.Submit(context.Background(), "helpdesk", "incident", bytes.NewReader(ct), int64(len(ct)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cut.offsets) < 4 {
		t.Fatalf("PATCH offsets %v", cut.offsets)
	}
	// The cut piece is sent again from the relay's offset: its start, if
	// the relay had not yet committed what arrived when the client asked,
	// else where the cut left it (and after a start-over that lost to the
	// cut request's late commit, from there too).
	if resumed := cut.offsets[3]; resumed < 2*piece || resumed > 2*piece+int64(cut.cut) {
		t.Fatalf("the cut piece (from %d, cut after %d bytes) resumed at %d; offsets %v", 2*piece, cut.cut, resumed, cut.offsets)
	}
	got, _ := io.ReadAll(f.signed(f.bob, "GET", "/api/v1/submissions/"+rc.ID, nil, 200).Body)
	if !bytes.Equal(got, ct) {
		t.Fatal("uploaded bytes differ")
	}

	before, _ := f.spool.Submissions(nil)
	_, err = c.Submit(context.Background(), "helpdesk", "incident", &failAfter{r: bytes.NewReader(ct), n: 2*piece + 5000}, int64(len(ct)), nil)
	if err == nil {
		t.Fatal("a body that failed was submitted")
	}
	after, _ := f.spool.Submissions(nil)
	if len(after) != len(before) {
		t.Fatalf("%d submissions after a failed body, %d before", len(after), len(before))
	}
}

// holdAnswers holds the answer to each PATCH but the last until the client
// has started the PATCH after it: a client that waits for an answer before
// it sends the next piece makes the test fail after 20 s. It also records
// the pieces the relay refused.
type holdAnswers struct {
	t       *testing.T
	length  int64
	mu      sync.Mutex
	started map[int64]chan struct{} // by Upload-Offset
	refused int
}

func (h *holdAnswers) startedAt(off int64) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started[off] == nil {
		h.started[off] = make(chan struct{})
	}
	return h.started[off]
}

func (h *holdAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != "PATCH" {
		return http.DefaultTransport.RoundTrip(r)
	}
	off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	end := off + r.ContentLength
	ch := h.startedAt(off)
	select {
	case <-ch:
	default:
		close(ch)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode != 200 {
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
	} else if end < h.length {
		select {
		case <-h.startedAt(end):
		case <-time.After(20 * time.Second):
			h.t.Errorf("the piece at %d was not sent while the one before it (from %d) was unanswered", end, off)
		}
	}
	return resp, nil
}

// TestUploadFollows: a relay that takes a piece while the one before it is
// stored (in_flight 2) gets the next piece before it has answered the last,
// and stores the upload whole.
func TestUploadFollows(t *testing.T) {
	f := newFixture(t)
	plain := make([]byte, 7<<20+1000)
	rand.NewChaCha8([32]byte{6}).Read(plain)
	ct := encrypt(t, plain, f.alice, f.bob)
	h := &holdAnswers{t: t, length: int64(len(ct)), started: map[int64]chan struct{}{}}
	c, _ := client.New(f.ts.URL, &http.Client{Transport: h})
	c.Backoff = time.Millisecond
	rc, err := c.Submit(context.Background(), "helpdesk", "incident", bytes.NewReader(ct), int64(len(ct)), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f.signed(f.bob, "GET", "/api/v1/submissions/"+rc.ID, nil, 200).Body)
	if !bytes.Equal(got, ct) {
		t.Fatal("uploaded bytes differ")
	}
	t.Logf("%d pieces refused and sent again", h.refused)
}
