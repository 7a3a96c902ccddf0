package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/amana-relay/amana/relay/api"
)

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
func (c *Client) Inbox(ctx context.Context) ([]api.Item, error) { return c.walk(ctx, "/inbox") }

// walk lists every page of the listing at path (the inbox, or the events),
// each page held to checkPage.
func (c *Client) walk(ctx context.Context, base string) ([]api.Item, error) {
	var all []api.Item
	after := ""
	for {
		path := base
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

// Ack tells the relay the handler has stored submission id. The answer
// says whether the relay deleted it and which other handlers' keys it
// still waits for; both are the relay's word.
func (c *Client) Ack(ctx context.Context, id string) (api.Ack, error) {
	var a api.Ack
	err := c.getJSON(ctx, "POST", "/submissions/"+url.PathEscape(id)+"/ack", nil, nil, true, &a)
	return a, err
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

// AckMany tells the relay the handler has stored every submission ids
// names (at most api.MaxAckBatch, each once), in one signed request that
// the relay commits in one transaction. It returns one item per ID, in the
// order given: an item with Error "not_found" was not recorded. An answer
// that does not list exactly the IDs asked, in order, fails with
// ErrAckAnswer. A relay from before the route answers 404 (an *Error with
// code not_found): see AckManyUnsupported.
func (c *Client) AckMany(ctx context.Context, ids []string) ([]api.AckItem, error) {
	if len(ids) == 0 || len(ids) > api.MaxAckBatch {
		return nil, fmt.Errorf("acknowledging %d submissions at once: 1 to %d", len(ids), api.MaxAckBatch)
	}
	body, err := json.Marshal(api.AckBatch{IDs: ids})
	if err != nil {
		return nil, err
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	var res api.AckBatchResult
	err = c.whenNotBusy(ctx, func() error {
		res = api.AckBatchResult{}
		return c.getJSON(ctx, "POST", "/acks", hdr, body, true, &res)
	})
	if err != nil {
		return nil, err
	}
	if len(res.Acks) != len(ids) {
		return nil, fmt.Errorf("%w: %d items for %d IDs", ErrAckAnswer, len(res.Acks), len(ids))
	}
	for i, a := range res.Acks {
		if a.ID != ids[i] {
			return nil, fmt.Errorf("%w: item %d is not for the ID asked", ErrAckAnswer, i)
		}
	}
	return res.Acks, nil
}

// ErrAckAnswer: the relay's answer to a batch acknowledgement does not
// match what was asked.
var ErrAckAnswer = errors.New("the relay's answer to the acknowledgements does not match them")

// AckManyUnsupported reports whether err is a relay's answer that it has
// no POST /api/v1/acks (a relay from before it): the caller then sends
// one acknowledgement per submission.
func AckManyUnsupported(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed)
}

// whenNotBusy runs fn, and again after a short wait while the relay
// answers 503 busy, up to c.retries() times. The relay reads one signed
// body per handler key at a time, and may not have let go of the last
// request's when the client, holding its whole answer, sends the next.
func (c *Client) whenNotBusy(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || attempt >= c.retries() {
			return err
		}
		if err := sleep(ctx, min(20*time.Millisecond<<attempt, c.backoff(attempt))); err != nil {
			return err
		}
	}
}
