package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/amana-relay/amana/relay/api"
)

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
