package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// earlyAnswer is a transport that answers 409 offset_mismatch at once and
// reads the request's body afterwards, as Go's transport may still be
// writing a piece when the relay has answered.
type earlyAnswer struct {
	read    atomic.Bool // the body was read to its end
	closing atomic.Bool // and then its Close was called
}

func (t *earlyAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	go func() {
		time.Sleep(50 * time.Millisecond)
		if _, err := io.Copy(io.Discard, req.Body); err == nil {
			t.read.Store(true)
		}
		// putPiece may return from within Close, so the call is recorded
		// just before it.
		t.closing.Store(true)
		req.Body.Close()
	}()
	body := `{"error":{"code":"offset_mismatch","message":"m","hint":"h","offset":0}}`
	return &http.Response{StatusCode: 409, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

// TestPutPieceWaitsForBody: a piece answered before its body was written
// returns only once the transport is done with the body, so that its
// buffer can be read into again.
func TestPutPieceWaitsForBody(t *testing.T) {
	tr := &earlyAnswer{}
	c, err := New("http://relay.test", &http.Client{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 1<<20)
	_, err = c.putPiece(context.Background(), "tok", 5, data)
	var ae *Error
	if !errors.As(err, &ae) || ae.Body.Code != "offset_mismatch" {
		t.Fatalf("putPiece: %v, want offset_mismatch", err)
	}
	if !tr.read.Load() || !tr.closing.Load() {
		t.Fatal("putPiece returned while the transport still read the piece's body")
	}
}
