// Package client is the Go client of Amana's relay API, used by the amana
// command: manifests, resumable submission uploads, and the handler's signed
// inbox, download and ack requests. It imports no server code.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// SingleMax is the largest submission Submit sends in one request; larger
// ones use the resumable upload.
const SingleMax = 1 << 20

// PieceSize is the piece size Submit uses, unless the relay allows less.
const PieceSize = 16 << 20

// Error is an error answer from the relay.
type Error struct {
	Status int
	Body   api.Error
}

func (e *Error) Error() string {
	if e.Body.Message == "" {
		return fmt.Sprintf("relay answered %d", e.Status)
	}
	return fmt.Sprintf("relay refused the request: %s (%s)", strings.TrimSuffix(e.Body.Message, "."), e.Body.Code)
}

// NetError is a failure to reach the relay or a connection lost mid-way.
type NetError struct{ Err error }

func (e *NetError) Error() string { return "cannot reach the relay: " + e.Err.Error() }
func (e *NetError) Unwrap() error { return e.Err }

// Client talks to one relay.
type Client struct {
	base *url.URL
	http *http.Client
	// Key signs handler and admin requests. Nil for submitters.
	Key ed25519.PrivateKey
	// Retries is how many times a broken upload piece or download is resumed.
	// Zero means 8.
	Retries int
	// Backoff is the first wait before a retry; it doubles each time. Zero
	// means one second.
	Backoff time.Duration
	// Now is the clock for request signatures. Nil means time.Now.
	Now func() time.Time
}

// New returns a client for the relay at base (http://host:port, or an onion
// URL when hc routes through Tor). A nil hc means a default client.
func New(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid relay URL %q: expected http://HOST[:PORT]", base)
	}
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			ResponseHeaderTimeout: 2 * time.Minute,
			IdleConnTimeout:       time.Minute,
		}}
	}
	return &Client{base: u, http: hc}, nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) retries() int {
	if c.Retries == 0 {
		return 8
	}
	return c.Retries
}

func (c *Client) backoff(i int) time.Duration {
	b := c.Backoff
	if b == 0 {
		b = time.Second
	}
	return min(b<<i, 30*time.Second)
}

func (c *Client) url(path string) string { return c.base.String() + api.Prefix + path }

// do sends a request. body, when not nil, is sent with its length. If sign
// is set the request is signed with c.Key, and the body's hash goes ahead
// of it in its own header, so the relay checks the signature before it
// reads the body.
//
// The response's Body.Close, and do itself when it returns an error, wait
// until the transport is done with body (it closes a request's body once
// it has written it, or given up): a relay may answer before it has read
// a piece (409 to a follower), while the transport still writes it, and
// the caller reuses body's buffer as soon as the request is over.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body []byte, sign bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	var bodies *bodyTracker
	if body != nil {
		bodies = &bodyTracker{data: body}
		req.Body, req.ContentLength = bodies.open(), int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return bodies.open(), nil }
		if len(body) == 0 {
			req.Body.Close()
			req.Body, req.GetBody = http.NoBody, nil
		}
	}
	resp, err := c.send(req, hdr, body, sign)
	if err != nil {
		bodies.wait()
		return nil, err
	}
	if bodies != nil {
		resp.Body = &waitingBody{ReadCloser: resp.Body, bodies: bodies}
	}
	return resp, nil
}

// bodyTracker hands out readers of a request's body, one for the request
// and one for each time the transport asks for it again (GetBody), and
// waits until every one is closed.
type bodyTracker struct {
	data []byte
	wg   sync.WaitGroup
}

func (t *bodyTracker) open() io.ReadCloser {
	t.wg.Add(1)
	return &trackedBody{Reader: bytes.NewReader(t.data), t: t}
}

// wait returns once the transport has closed every reader of the body.
func (t *bodyTracker) wait() {
	if t != nil {
		t.wg.Wait()
	}
}

type trackedBody struct {
	*bytes.Reader
	t    *bodyTracker
	once sync.Once
}

func (b *trackedBody) Close() error {
	b.once.Do(b.t.wg.Done)
	return nil
}

// waitingBody is a response body whose Close also waits until the request's
// body is no longer read.
type waitingBody struct {
	io.ReadCloser
	bodies *bodyTracker
}

func (b *waitingBody) Close() error {
	err := b.ReadCloser.Close()
	b.bodies.wait()
	return err
}

func (c *Client) send(req *http.Request, hdr http.Header, body []byte, sign bool) (*http.Response, error) {
	method := req.Method
	for k, v := range hdr {
		req.Header[k] = v
	}
	if sign {
		if c.Key == nil {
			req.Body.Close() // never sent
			return nil, errors.New("this request needs a handler key")
		}
		req.Header.Set("Authorization", crypto.SignRequest(c.Key, method, req.URL.RequestURI(), body, c.now()))
		req.Header.Set(crypto.BodySHA256Header, crypto.BodySHA256(body))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &NetError{err}
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func readError(resp *http.Response) error {
	var eb api.ErrorBody
	e := &Error{Status: resp.StatusCode}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb) == nil && eb.Error != nil {
		e.Body = *eb.Error
	}
	return e
}

func (c *Client) getJSON(ctx context.Context, method, path string, hdr http.Header, body []byte, sign bool, v any) error {
	resp, err := c.do(ctx, method, path, hdr, body, sign)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		return &NetError{fmt.Errorf("reading answer: %w", err)}
	}
	return nil
}

// Health checks the relay answers.
func (c *Client) Health(ctx context.Context) error {
	var h api.Health
	return c.getJSON(ctx, "GET", "/health", nil, nil, false, &h)
}

// Desks lists the relay's desks.
func (c *Client) Desks(ctx context.Context) ([]api.DeskInfo, error) {
	var d api.Desks
	err := c.getJSON(ctx, "GET", "/desks", nil, nil, false, &d)
	return d.Desks, err
}

// Manifest fetches a desk's signed manifest envelope, unverified.
func (c *Client) Manifest(ctx context.Context, desk string) ([]byte, error) {
	resp, err := c.do(ctx, "GET", "/desks/"+url.PathEscape(desk)+"/manifest", nil, nil, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, crypto.MaxManifestLen+1))
	if err != nil {
		return nil, &NetError{err}
	}
	return b, nil
}

// Publish sends a signed manifest envelope; c.Key must be the admin key.
func (c *Client) Publish(ctx context.Context, desk string, envelope []byte) (*api.DeskInfo, error) {
	var d api.DeskInfo
	hdr := http.Header{"Content-Type": {"application/json"}}
	err := c.getJSON(ctx, "PUT", "/admin/desks/"+url.PathEscape(desk), hdr, envelope, true, &d)
	return &d, err
}

// Submit sends a ciphertext of exactly length bytes to desk. Small ones go
// in one request; larger ones through the resumable upload, each piece held
// in memory until the relay confirms it, so a broken connection resumes
// where it stopped. While a piece is on its way the next one is read from
// body (and so, for a sealing reader, sealed): at most two pieces are held.
// Submit has stopped reading body when it returns. progress, if not nil,
// gets the bytes confirmed so far.
func (c *Client) Submit(ctx context.Context, desk, category string, body io.Reader, length int64, progress func(int64)) (*api.Receipt, error) {
	if progress == nil {
		progress = func(int64) {}
	}
	if length <= SingleMax {
		data := make([]byte, length)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, fmt.Errorf("reading submission: %w", err)
		}
		q := ""
		if category != "" {
			q = "?category=" + url.QueryEscape(category)
		}
		var rc api.Receipt
		hdr := http.Header{"Content-Type": {"application/octet-stream"}}
		if err := c.postOnce(ctx, "/desks/"+url.PathEscape(desk)+"/submissions"+q, hdr, data, &rc); err != nil {
			return nil, err
		}
		progress(length)
		return &rc, nil
	}
	var st api.UploadState
	req, _ := json.Marshal(api.CreateUpload{Category: category, Length: length})
	hdr := http.Header{"Content-Type": {"application/json"}}
	// Creating an upload is sent again like a piece: an upload made by an
	// attempt whose answer was lost holds no bytes and expires unused.
	for attempt := 0; ; attempt++ {
		err := c.getJSON(ctx, "POST", "/desks/"+url.PathEscape(desk)+"/uploads", hdr, req, false, &st)
		if err == nil {
			break
		}
		if !transient(err) || attempt >= c.retries() || ctx.Err() != nil {
			return nil, err
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return nil, err
		}
	}
	tok := st.Upload
	size := int64(PieceSize)
	if st.MaxPiece > 0 {
		size = min(size, st.MaxPiece)
	}
	pieces, stop := readAhead(body, length, size)
	// Submit returns only once nothing reads body any more, so the caller
	// may close it (or read a hash it feeds) as soon as Submit returns.
	defer stop()
	off, err := c.sendPieces(ctx, tok, pieces, st.InFlight >= 2, progress)
	if err != nil {
		return nil, err
	}
	if off != length {
		return nil, fmt.Errorf("reading submission: %w", io.ErrUnexpectedEOF)
	}
	var rc api.Receipt
	for attempt := 0; ; attempt++ {
		err = c.getJSON(ctx, "POST", "/uploads/"+tok+"/complete", nil, nil, false, &rc)
		var ne *NetError
		if err == nil || !errors.As(err, &ne) || attempt >= c.retries() {
			break
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	return &rc, nil
}

// piece is one piece of an upload read ahead from the body: buf[:n] holds
// the bytes from start, or err says why reading them failed.
type piece struct {
	start int64
	buf   []byte
	n     int
	err   error
	free  chan<- []byte
}

// done gives the piece's buffer back for the piece after the next.
func (p *piece) done() { p.free <- p.buf }

// readAhead reads body in pieces of size bytes, up to length in all, on a
// goroutine of its own, one piece ahead of the one being sent: two buffers
// take turns, and a buffer is read into again only once its piece is done.
// A failed read is the last piece. stop ends the goroutine and returns once
// it no longer reads body; it may be called more than once.
func readAhead(body io.Reader, length, size int64) (<-chan *piece, func()) {
	pieces := make(chan *piece)
	free := make(chan []byte, 2)
	quit := make(chan struct{})
	exited := make(chan struct{})
	free <- make([]byte, min(size, length))
	if length > size {
		free <- make([]byte, min(size, length-size))
	}
	go func() {
		defer close(exited)
		defer close(pieces)
		for start := int64(0); start < length; {
			var buf []byte
			select {
			case buf = <-free:
			case <-quit:
				return
			}
			p := &piece{start: start, buf: buf, free: free}
			p.n, p.err = io.ReadFull(body, buf[:min(int64(len(buf)), length-start)])
			select {
			case pieces <- p:
			case <-quit:
				return
			}
			if p.err != nil {
				return
			}
			start += int64(p.n)
		}
	}()
	var once bool
	return pieces, func() {
		if !once {
			once = true
			close(quit)
		}
		<-exited
	}
}

// sendPieces sends the pieces in order and returns the offset reached.
// With follow (the relay takes a piece while the one before it is being
// stored, §10.6), the next piece's first attempt starts, on a connection of
// its own, as soon as the current one is written whole and the next piece is
// read: the relay reads it while it commits the end of the current one.
// Each piece is then finished in order, resumed from the relay's offset
// after a failure.
func (c *Client) sendPieces(ctx context.Context, tok string, pieces <-chan *piece, follow bool, progress func(int64)) (int64, error) {
	var off int64
	var early *attempt // the first attempt of the next piece, under way
	defer func() {
		if early != nil {
			early.cancel()
			<-early.res
		}
	}()
	cur, ok := <-pieces
	for ok {
		if cur.err != nil {
			return off, fmt.Errorf("reading submission: %w", cur.err)
		}
		if cur.start != off {
			return off, fmt.Errorf("internal error: piece at %d, upload at %d", cur.start, off)
		}
		a, speculative := early, early != nil
		early = nil
		if a == nil {
			a = c.startPiece(ctx, tok, cur, off)
		}
		wrote := a.wrote
		var more <-chan *piece
		var next *piece
		taken, nextOK := false, false
		var r attemptResult
		for waiting := true; waiting; {
			select {
			case <-wrote:
				wrote = nil
				if follow {
					more = pieces
				}
			case next, nextOK = <-more:
				more, taken = nil, true
				if nextOK && next.err == nil {
					early = c.startPiece(ctx, tok, next, next.start)
				}
			case r = <-a.res:
				waiting = false
			}
		}
		a.cancel()
		// With the next piece sent, the relay's offset may pass this
		// piece's end: this one was stored, its answer lost.
		beyond := cur.start + int64(cur.n)
		if early != nil {
			beyond = next.start + int64(next.n)
		}
		if err := c.finishPiece(ctx, tok, cur, &off, r, speculative, beyond, progress); err != nil {
			return off, err
		}
		cur.done()
		if taken {
			cur, ok = next, nextOK
		} else {
			cur, ok = <-pieces
		}
	}
	return off, nil
}

// attempt is one PATCH of a piece's bytes, under way.
type attempt struct {
	wrote  chan struct{} // closed once the request is written whole, or it ended
	res    chan attemptResult
	cancel context.CancelFunc
}

type attemptResult struct {
	got int64
	err error
}

// startPiece sends p's bytes from off in a request of their own.
func (c *Client) startPiece(ctx context.Context, tok string, p *piece, off int64) *attempt {
	ctx, cancel := context.WithCancel(ctx)
	a := &attempt{wrote: make(chan struct{}), res: make(chan attemptResult, 1), cancel: cancel}
	var once sync.Once
	wrote := func() { once.Do(func() { close(a.wrote) }) }
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote() }})
	go func() {
		got, err := c.putPiece(ctx, tok, off, p.buf[off-p.start:p.n])
		wrote()
		a.res <- attemptResult{got, err}
	}()
	return a
}

// finishPiece moves *off to the end of p, given the result r of the
// attempt already made, resuming from the relay's offset after a failure.
// A speculative attempt (sent while the piece before was in flight) that
// failed is sent again at once. The relay's offset may be up to beyond, the
// end of the next piece if that was sent: then p is stored whole.
func (c *Client) finishPiece(ctx context.Context, tok string, p *piece, off *int64, r attemptResult, speculative bool, beyond int64, progress func(int64)) error {
	end := p.start + int64(p.n)
	// moveTo continues from the relay's offset cur.
	moveTo := func(cur int64) error {
		if cur < p.start || cur > beyond {
			return fmt.Errorf("relay reports offset %d outside the piece being sent (%d to %d)", cur, p.start, end)
		}
		if cur > end {
			cur = end
			progress(end)
		}
		*off = cur
		return nil
	}
	for attempt := 0; ; {
		var ae *Error
		switch {
		case r.err == nil:
			if r.got <= *off || r.got > end {
				return fmt.Errorf("relay answered offset %d for a piece from %d to %d", r.got, *off, end)
			}
			*off = r.got
			progress(r.got)
			attempt = 0
		case speculative && ctx.Err() == nil:
		case errors.As(r.err, &ae) && ae.Body.Code == "offset_mismatch" && ae.Body.Offset != nil && attempt < c.retries():
			// The answer says where to continue.
			attempt++
			if err := moveTo(*ae.Body.Offset); err != nil {
				return err
			}
		default:
			if !retryable(r.err) || attempt >= c.retries() || ctx.Err() != nil {
				return r.err
			}
			if err := sleep(ctx, c.backoff(attempt)); err != nil {
				return err
			}
			attempt++
			if cur, serr := c.uploadOffset(ctx, tok); serr == nil {
				if err := moveTo(cur); err != nil {
					return err
				}
			}
		}
		speculative = false
		if *off >= end {
			return nil
		}
		r.got, r.err = c.putPiece(ctx, tok, *off, p.buf[*off-p.start:p.n])
	}
}

// permanent reports whether err says trying again cannot help (a missing
// client-authorization key, no tor installed); the dialer's errors say so.
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transient reports whether a request failed on the way (the connection
// broke) or the relay was briefly unavailable.
func transient(err error) bool {
	if permanent(err) {
		return false
	}
	var ne *NetError
	var ae *Error
	return errors.As(err, &ne) || errors.As(err, &ae) && (ae.Status == 502 || ae.Status == 503 || ae.Status == 504)
}

// retryable reports whether a failed piece may be sent again: the
// connection broke, the relay was briefly unavailable (transient), or it
// timed the piece out or found it at the wrong offset.
func retryable(err error) bool {
	if transient(err) {
		return true
	}
	var ae *Error
	if permanent(err) || !errors.As(err, &ae) {
		return false
	}
	switch ae.Body.Code {
	case "offset_mismatch", "timeout", "bad_request":
		return true
	}
	return false
}

func (c *Client) putPiece(ctx context.Context, tok string, off int64, data []byte) (int64, error) {
	var st api.UploadState
	hdr := http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Upload-Offset": {strconv.FormatInt(off, 10)},
	}
	if err := c.getJSON(ctx, "PATCH", "/uploads/"+tok, hdr, data, false, &st); err != nil {
		return 0, err
	}
	return st.Offset, nil
}

func (c *Client) uploadOffset(ctx context.Context, tok string) (int64, error) {
	var st api.UploadState
	err := c.getJSON(ctx, "GET", "/uploads/"+tok, nil, nil, false, &st)
	return st.Offset, err
}
