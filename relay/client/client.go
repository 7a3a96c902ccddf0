// Package client is the Go client of Amana's relay API, used by the amana
// command: manifests, resumable submission uploads, and the handler's signed
// inbox, download and ack requests. It imports no server code.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// SingleMax is the largest submission Submit sends in one request; larger
// ones use the resumable upload.
const SingleMax = 1 << 20

// PieceSize is the piece size Submit uses, unless the relay allows less.
const PieceSize = 8 << 20

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
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body []byte, sign bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if sign {
		if c.Key == nil {
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
// where it stopped. progress, if not nil, gets the bytes confirmed so far.
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
	piece := int64(PieceSize)
	if st.MaxPiece > 0 {
		piece = min(piece, st.MaxPiece)
	}
	buf := make([]byte, piece)
	var off int64
	for off < length {
		start := off
		n, err := io.ReadFull(body, buf[:min(piece, length-start)])
		if err != nil {
			return nil, fmt.Errorf("reading submission: %w", err)
		}
		end := start + int64(n)
		for attempt := 0; off < end; attempt++ {
			got, err := c.putPiece(ctx, tok, off, buf[off-start:n])
			if err == nil {
				off = got
				progress(off)
				attempt = -1
				continue
			}
			if !retryable(err) || attempt >= c.retries() || ctx.Err() != nil {
				return nil, err
			}
			if err := sleep(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
			cur, serr := c.uploadOffset(ctx, tok)
			if serr != nil {
				continue
			}
			if cur < start || cur > end {
				return nil, fmt.Errorf("relay reports offset %d outside the piece being sent (%d to %d)", cur, start, end)
			}
			off = cur
		}
	}
	var rc api.Receipt
	var err error
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

// ErrInboxPaging: the relay's inbox pages do not move forward. Each page
// must list only IDs after the one it was asked after, each once, and none
// after the next page's start, which must itself lie after the last start.
// A relay that repeats a page or goes back would otherwise keep Inbox
// asking, and holding what it lists, without end.
var ErrInboxPaging = errors.New("the relay's inbox pages do not move forward")

// Inbox lists the submissions waiting for the handler whose key c holds, in
// the relay's order (by ID), asking for one page after another until the
// relay says there is no more. Each answer is read up to 16 MiB, which
// api.InboxPageMax items fit many times over. A page that does not move
// forward fails the whole listing with ErrInboxPaging.
func (c *Client) Inbox(ctx context.Context) ([]api.Item, error) {
	var all []api.Item
	after := ""
	for {
		path := "/inbox"
		if after != "" {
			// An ID is plain hex: the path is signed exactly as sent.
			path += "?after=" + after
		}
		var in api.Inbox
		if err := c.getJSON(ctx, "GET", path, nil, nil, true, &in); err != nil {
			return nil, err
		}
		if err := checkPage(after, &in); err != nil {
			return nil, err
		}
		all = append(all, in.Submissions...)
		if in.Next == "" {
			return all, nil
		}
		after = in.Next
	}
}

// checkPage checks that a page asked after the ID after moves forward: its
// items lie after after, each once, none after its next; and next, when
// set, is an ID (32 lower-case hex characters, which sort as the relay's
// keys do) after after. So pages list disjoint, rising spans of IDs,
// and a walk can neither repeat an item nor come back to a page.
func checkPage(after string, in *api.Inbox) error {
	if in.Next != "" && !api.ValidID(in.Next) {
		return fmt.Errorf("%w: a page's next is not a submission ID", ErrInboxPaging)
	}
	if in.Next != "" && in.Next <= after {
		return fmt.Errorf("%w: %s says the next starts after %s", ErrInboxPaging, pageName(after), in.Next)
	}
	seen := make(map[string]bool, len(in.Submissions))
	for _, it := range in.Submissions {
		switch {
		case it.ID <= after:
			return fmt.Errorf("%w: %s lists an item that is not after its start", ErrInboxPaging, pageName(after))
		case in.Next != "" && it.ID > in.Next:
			return fmt.Errorf("%w: %s lists an item after its next, %s", ErrInboxPaging, pageName(after), in.Next)
		case seen[it.ID]:
			return fmt.Errorf("%w: %s lists an item twice", ErrInboxPaging, pageName(after))
		}
		seen[it.ID] = true
	}
	return nil
}

// pageName names the page asked after the ID after, in an error.
func pageName(after string) string {
	if after == "" {
		return "the first page"
	}
	return "the page after " + after
}

// Download writes submission id from offset on to w, resuming after broken
// connections, and returns the bytes written.
func (c *Client) Download(ctx context.Context, id string, offset int64, w io.Writer) (int64, error) {
	var total int64
	for attempt := 0; ; attempt++ {
		hdr := http.Header{}
		if offset+total > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", offset+total))
		}
		resp, err := c.do(ctx, "GET", "/submissions/"+url.PathEscape(id), hdr, nil, true)
		if err == nil {
			if offset+total > 0 && resp.StatusCode != http.StatusPartialContent {
				resp.Body.Close()
				return total, fmt.Errorf("relay ignored the range request")
			}
			lw := &localWriter{w: w}
			n, cerr := io.Copy(lw, resp.Body)
			resp.Body.Close()
			total += n
			if cerr == nil {
				return total, nil
			}
			if lw.err != nil {
				return total, lw.err // the disk, not the network: retrying will not help
			}
			err = &NetError{cerr}
		}
		var ne *NetError
		if !errors.As(err, &ne) || permanent(err) || attempt >= c.retries() || ctx.Err() != nil {
			return total, err
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return total, err
		}
	}
}

// Ack tells the relay the handler has stored submission id.
func (c *Client) Ack(ctx context.Context, id string) (bool, error) {
	var a api.Ack
	err := c.getJSON(ctx, "POST", "/submissions/"+url.PathEscape(id)+"/ack", nil, nil, true, &a)
	return a.Deleted, err
}

// localWriter remembers an error from the local side of a copy.
type localWriter struct {
	w   io.Writer
	err error
}

func (l *localWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if err != nil {
		l.err = err
	}
	return n, err
}

// CheckMailbox lists the desk's replies in the mailbox of a lookup token.
// An unknown mailbox and an empty one look the same.
func (c *Client) CheckMailbox(ctx context.Context, token []byte) (*api.Mailbox, error) {
	body, _ := json.Marshal(api.MailboxRequest{Token: base64.RawURLEncoding.EncodeToString(token)})
	var m api.Mailbox
	err := c.getJSON(ctx, "POST", "/mailbox", http.Header{"Content-Type": {"application/json"}}, body, false, &m)
	return &m, err
}

// DownloadReply fetches one reply of the token's mailbox.
func (c *Client) DownloadReply(ctx context.Context, token []byte, id string) ([]byte, error) {
	body, _ := json.Marshal(api.MailboxRequest{Token: base64.RawURLEncoding.EncodeToString(token)})
	resp, err := c.do(ctx, "POST", "/mailbox/replies/"+url.PathEscape(id), http.Header{"Content-Type": {"application/json"}}, body, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &NetError{err}
	}
	return b, nil
}

// PostReply sends a handler's sealed reply to a mailbox; c.Key signs it.
func (c *Client) PostReply(ctx context.Context, mailbox, desk, category string, ciphertext []byte) (string, error) {
	var r api.ReplyPosted
	q := "?desk=" + url.QueryEscape(desk) + "&category=" + url.QueryEscape(category)
	err := c.getJSON(ctx, "POST", "/mailboxes/"+url.PathEscape(mailbox)+"/replies"+q,
		http.Header{"Content-Type": {"application/octet-stream"}}, ciphertext, true, &r)
	return r.ID, err
}

// PostFollowup sends a submitter's sealed follow-up to the token's mailbox.
// desk and category route it when the mailbox has no thread yet.
func (c *Client) PostFollowup(ctx context.Context, token []byte, desk, category string, ciphertext []byte) (*api.Receipt, error) {
	var rc api.Receipt
	q := "?desk=" + url.QueryEscape(desk) + "&category=" + url.QueryEscape(category)
	hdr := http.Header{"Content-Type": {"application/octet-stream"}, "Amana-Token": {base64.RawURLEncoding.EncodeToString(token)}}
	err := c.postOnce(ctx, "/mailbox/followups"+q, hdr, ciphertext, &rc)
	return &rc, err
}

// postOnce POSTs a whole submission under a fresh idempotency key and
// sends it again, with the same key, when the answer is lost: the relay
// keeps one copy and answers every try with the same receipt.
func (c *Client) postOnce(ctx context.Context, path string, hdr http.Header, body []byte, v any) error {
	var k [16]byte
	rand.Read(k[:])
	hdr = hdr.Clone()
	hdr.Set(api.IdempotencyHeader, base64.RawURLEncoding.EncodeToString(k[:]))
	for attempt := 0; ; attempt++ {
		err := c.getJSON(ctx, "POST", path, hdr, body, false, v)
		if err == nil || !retryable(err) || attempt >= c.retries() || ctx.Err() != nil {
			return err
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return err
		}
	}
}
