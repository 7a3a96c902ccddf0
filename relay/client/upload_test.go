package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay/api"
)

// Sizes of the fake relay's uploads: pieces of 128 KiB, committed 32 KiB at
// a time, for a submission of a little over ten pieces.
const (
	testPiece  = 128 << 10
	testCommit = 32 << 10
	testLength = SingleMax + 300<<10 + 7
)

// fault is what the fake relay does to one PATCH, counted from 1.
type fault struct {
	patch int
	// cut, when > 0, breaks the connection after reading that many bytes
	// of the piece; what was committed by then (whole testCommit units)
	// stays. cut == -1 breaks it after the whole piece is committed,
	// before the answer.
	cut int
	// status, when not zero, is answered instead of reading the piece.
	status int
	// lie, when not zero, is added to the offset answered.
	lie int64
}

// uploadRelay is an in-memory relay of one resumable upload that checks how
// far ahead of the relay's offset the client has read its body.
type uploadRelay struct {
	t      *testing.T
	faults []fault
	// read is how many bytes of the body the client has read.
	read *atomic.Int64
	// waitAhead, if set, makes the first PATCH wait for the client to read
	// the second piece before it answers: a client that reads only after
	// an answer never gets there.
	waitAhead bool
	// offsetLie, when not zero, is added to the offset GET answers.
	offsetLie int64
	// inFlight is the relay's in_flight (pieces taken at once). This
	// relay handles one PATCH at a time: a piece sent early waits for the
	// one before it, as the real relay's follower does.
	inFlight int

	mu      sync.Mutex
	data    []byte
	patches int
	maxRead int64 // the most read ahead of the offset seen at a PATCH
}

func (u *uploadRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case r.Method == "POST" && r.URL.Path == "/api/v1/desks/d/uploads":
		reply(201, api.UploadState{Upload: "tok", Length: testLength, MaxPiece: testPiece, InFlight: u.inFlight})
	case r.Method == "GET" && r.URL.Path == "/api/v1/uploads/tok":
		reply(200, api.UploadState{Offset: int64(len(u.data)) + u.offsetLie, Length: testLength})
	case r.Method == "POST" && r.URL.Path == "/api/v1/uploads/tok/complete":
		if len(u.data) != testLength {
			reply(409, api.ErrorBody{Error: &api.Error{Code: "incomplete"}})
			return
		}
		sum := sha256.Sum256(u.data)
		reply(201, api.Receipt{ID: "id", Desk: "d", Size: testLength, SHA256: hex.EncodeToString(sum[:])})
	case r.Method == "PATCH" && r.URL.Path == "/api/v1/uploads/tok":
		u.patch(w, r, reply)
	default:
		u.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(500)
	}
}

func (u *uploadRelay) patch(w http.ResponseWriter, r *http.Request, reply func(int, any)) {
	u.patches++
	off, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		u.t.Errorf("PATCH without an offset")
		reply(400, api.ErrorBody{Error: &api.Error{Code: "bad_request"}})
		return
	}
	if ahead := u.read.Load() - int64(len(u.data)); ahead > u.maxRead {
		u.maxRead = ahead
	}
	var f fault
	for _, x := range u.faults {
		if x.patch == u.patches {
			f = x
		}
	}
	if f.status != 0 {
		io.Copy(io.Discard, r.Body)
		reply(f.status, api.ErrorBody{Error: &api.Error{Code: "unavailable"}})
		return
	}
	if off != int64(len(u.data)) {
		cur := int64(len(u.data))
		io.Copy(io.Discard, r.Body)
		reply(409, api.ErrorBody{Error: &api.Error{Code: "offset_mismatch", Offset: &cur}})
		return
	}
	body := io.Reader(r.Body)
	if f.cut > 0 {
		body = io.LimitReader(body, int64(f.cut))
	}
	got, err := io.ReadAll(body)
	if err != nil {
		u.t.Errorf("reading a piece: %v", err)
		return
	}
	if f.cut > 0 {
		got = got[:len(got)/testCommit*testCommit]
	}
	if int64(len(u.data)+len(got)) > testLength {
		u.t.Errorf("piece at %d of %d bytes runs past the length", off, len(got))
		reply(413, api.ErrorBody{Error: &api.Error{Code: "too_long"}})
		return
	}
	u.data = append(u.data, got...)
	if f.cut != 0 {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			u.t.Fatal(err)
		}
		conn.Close()
		return
	}
	if u.waitAhead && u.patches == 1 {
		want := int64(min(2*testPiece, testLength))
		for deadline := time.Now().Add(20 * time.Second); u.read.Load() < want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				u.t.Errorf("the client read %d bytes while its first piece was unanswered, want %d: no read-ahead", u.read.Load(), want)
				break
			}
		}
	}
	reply(200, api.UploadState{Offset: int64(len(u.data)) + f.lie, Length: testLength})
}

// countingReader counts what is read from it, fails with failErr once
// failAt bytes are read (if failAt > 0), and reports any read after done
// is set.
type countingReader struct {
	t       *testing.T
	r       io.Reader
	n       *atomic.Int64
	failAt  int64
	failErr error
	// slow makes each read short and slow, so that Submit may end while
	// the read-ahead is in the middle of a piece.
	slow bool
	done atomic.Bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.done.Load() {
		c.t.Error("the body was read after Submit returned")
	}
	if c.failAt > 0 {
		left := c.failAt - c.n.Load()
		if left <= 0 {
			return 0, c.failErr
		}
		p = p[:min(int64(len(p)), left)]
	}
	if c.slow {
		p = p[:min(len(p), 4096)]
		time.Sleep(200 * time.Microsecond)
	}
	k, err := c.r.Read(p)
	if c.done.Load() {
		c.t.Error("the body was read after Submit returned")
	}
	c.n.Add(int64(k))
	return k, err
}

// TestSubmitReadAheadResume: Submit reads the next piece while one is in
// flight, holds at most two, and resumes a piece broken mid-way (or whose
// answer was lost, or refused for a while) from the relay's offset; every
// byte arrives once and in order. A relay that answers an offset outside
// the piece is refused, and a body that fails mid-piece ends the upload
// with that error, the failed piece never sent. Submit never returns while
// it still reads the body.
func TestSubmitReadAheadResume(t *testing.T) {
	src := make([]byte, testLength)
	rand.NewChaCha8([32]byte{9}).Read(src)
	readErr := errors.New("the disk went away")
	for _, tc := range []struct {
		name      string
		faults    []fault
		waitAhead bool
		offsetLie int64
		failAt    int64
		slow      bool
		wantErr   string
	}{
		{name: "no failure, the next piece read while the first is unanswered", waitAhead: true},
		{name: "cut mid-piece after two commits", faults: []fault{{patch: 3, cut: 3*testCommit - 100}}},
		{name: "cut mid-piece before any commit", faults: []fault{{patch: 2, cut: 1000}}},
		{name: "cut in the first piece and again in its resent rest", faults: []fault{{patch: 1, cut: testCommit + 5}, {patch: 2, cut: testCommit + 5}}},
		{name: "answer lost after the whole piece committed", faults: []fault{{patch: 4, cut: -1}}},
		{name: "the last piece cut", faults: []fault{{patch: 11, cut: 200}}},
		{name: "relay briefly unavailable", faults: []fault{{patch: 2, status: 503}, {patch: 3, status: 503}}},
		{name: "a slow body, cut mid-piece", faults: []fault{{patch: 5, cut: 2*testCommit + 1}}, slow: true},
		{name: "relay answers an offset past the piece", faults: []fault{{patch: 2, lie: 1}}, slow: true, wantErr: "relay answered offset"},
		{name: "relay reports an offset outside the piece", faults: []fault{{patch: 3, cut: 1000}}, offsetLie: testPiece + 1, slow: true, wantErr: "outside the piece"},
		{name: "body fails mid-piece", failAt: 3*testPiece + 1234, wantErr: "the disk went away"},
		{name: "body fails mid-piece while a piece is resumed", faults: []fault{{patch: 3, cut: testCommit + 1}}, failAt: 3*testPiece + 1234, wantErr: "the disk went away"},
	} {
		for _, inFlight := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s, in_flight %d", tc.name, inFlight), func(t *testing.T) {
				var read atomic.Int64
				u := &uploadRelay{t: t, faults: tc.faults, read: &read, waitAhead: tc.waitAhead, offsetLie: tc.offsetLie, inFlight: inFlight}
				ts := httptest.NewServer(u)
				defer ts.Close()
				c, err := New(ts.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				c.Backoff = time.Millisecond
				body := &countingReader{t: t, r: bytes.NewReader(src), n: &read, failAt: tc.failAt, failErr: readErr, slow: tc.slow}
				var last int64
				rc, err := c.Submit(context.Background(), "d", "", body, testLength, func(n int64) {
					if n <= last {
						t.Errorf("progress went from %d to %d", last, n)
					}
					last = n
				})
				body.done.Store(true)
				u.mu.Lock()
				defer u.mu.Unlock()
				if u.maxRead > 2*testPiece {
					t.Errorf("the client had read %d bytes past the relay's offset, more than two pieces (%d)", u.maxRead, 2*testPiece)
				}
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
					}
					if tc.failAt > 0 && int64(len(u.data)) > tc.failAt/testPiece*testPiece {
						t.Errorf("the relay holds %d bytes; the body failed in the piece from %d", len(u.data), tc.failAt/testPiece*testPiece)
					}
					if !bytes.Equal(u.data, src[:len(u.data)]) {
						t.Error("the relay holds bytes that differ from the body's")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(u.data, src) {
					t.Fatalf("the relay holds %d bytes that differ from the %d sent", len(u.data), len(src))
				}
				sum := sha256.Sum256(src)
				if rc.SHA256 != hex.EncodeToString(sum[:]) || last != testLength {
					t.Fatalf("receipt %+v, progress %d", rc, last)
				}
				want := 11
				for _, f := range tc.faults {
					if f.cut != -1 {
						want++ // the piece's rest is sent again
					}
				}
				if inFlight == 0 && u.patches != want {
					t.Errorf("%d PATCH requests, want %d", u.patches, want)
				}
			})
		}
	}
}

// TestReadAheadBuffers: the read-ahead never holds more than two buffers,
// whatever the piece count, and a short body is a read error.
func TestReadAheadBuffers(t *testing.T) {
	for _, tc := range []struct{ length, size int64 }{{10, 4}, {8, 4}, {4, 4}, {3, 4}, {1 << 20, 1000}} {
		t.Run(fmt.Sprintf("%d in %d", tc.length, tc.size), func(t *testing.T) {
			src := make([]byte, tc.length)
			rand.NewChaCha8([32]byte{1}).Read(src)
			pieces, stop := readAhead(bytes.NewReader(src), tc.length, tc.size)
			defer stop()
			bufs := map[*byte]bool{}
			var got []byte
			for p := range pieces {
				if p.err != nil {
					t.Fatal(p.err)
				}
				if p.start != int64(len(got)) {
					t.Fatalf("piece at %d after %d bytes", p.start, len(got))
				}
				bufs[&p.buf[:1][0]] = true
				got = append(got, p.buf[:p.n]...)
				p.done()
			}
			if !bytes.Equal(got, src) || len(bufs) > 2 {
				t.Fatalf("read %d of %d bytes in %d buffers", len(got), len(src), len(bufs))
			}
		})
	}
	pieces, stop := readAhead(bytes.NewReader(make([]byte, 5)), 10, 4)
	defer stop()
	var err error
	for p := range pieces {
		if err = p.err; err == nil {
			p.done()
		}
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: %v, want io.ErrUnexpectedEOF", err)
	}
}
