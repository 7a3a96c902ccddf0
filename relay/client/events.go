package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/amana-relay/amana/relay/api"
)

// PostEvent sends one part of a case event (part api.PartCase or
// api.PartFacts), or a case's history (api.PartShare, to the handler key
// ID to), sealed to exactly that part's recipients; c.Key signs it. category
// is the report's own category, which routes it. It returns the event's ID
// on the relay.
func (c *Client) PostEvent(ctx context.Context, desk, category, part, to string, ciphertext []byte) (string, error) {
	switch {
	case part != api.PartCase && part != api.PartFacts && part != api.PartShare:
		return "", fmt.Errorf("posting an event: unknown part %q", part)
	case (part == api.PartShare) != (to != ""):
		return "", fmt.Errorf("posting an event: a share, and only a share, names the handler it goes to")
	case len(ciphertext) > api.MaxEvent:
		return "", fmt.Errorf("posting an event: %d bytes, more than the relay takes (%d)", len(ciphertext), api.MaxEvent)
	}
	q := "?category=" + url.QueryEscape(category) + "&part=" + url.QueryEscape(part)
	if to != "" {
		q += "&to=" + url.QueryEscape(to)
	}
	var p api.EventPosted
	err := c.getJSON(ctx, "POST", "/desks/"+url.PathEscape(desk)+"/events"+q,
		http.Header{"Content-Type": {"application/octet-stream"}}, ciphertext, true, &p)
	if err == nil && !api.ValidID(p.ID) {
		return "", fmt.Errorf("posting an event: the relay answered an ID that is not one")
	}
	return p.ID, err
}

// Events lists the events waiting for the handler whose key c holds, page
// after page, held to the same checks as Inbox: a listing that does not
// move forward fails with ErrInboxPaging. Every item's kind is the relay's
// word; what an event is comes from opening it.
func (c *Client) Events(ctx context.Context) ([]api.Item, error) { return c.walk(ctx, "/events") }

// DownloadEvent fetches an event's ciphertext whole, at most api.MaxEvent
// bytes. Checking its size and SHA-256 against the listed item is the
// caller's.
func (c *Client) DownloadEvent(ctx context.Context, id string) ([]byte, error) {
	if !api.ValidID(id) {
		return nil, fmt.Errorf("downloading an event: %q is not an event ID", id)
	}
	resp, err := c.do(ctx, "GET", "/events/"+id, nil, nil, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil && n > api.MaxEvent {
		return nil, fmt.Errorf("downloading an event: the relay sends %d bytes, more than an event has", n)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, api.MaxEvent+1))
	if err != nil {
		return nil, &NetError{err}
	}
	if len(b) > api.MaxEvent {
		return nil, fmt.Errorf("downloading an event: the relay sends more than an event has")
	}
	return b, nil
}

// AckEvent tells the relay the handler has stored event id. The answer is
// the relay's word, as Ack's.
func (c *Client) AckEvent(ctx context.Context, id string) (api.Ack, error) {
	var a api.Ack
	if !api.ValidID(id) {
		return a, fmt.Errorf("acknowledging an event: %q is not an event ID", id)
	}
	err := c.getJSON(ctx, "POST", "/events/"+id+"/ack", nil, nil, true, &a)
	return a, err
}
