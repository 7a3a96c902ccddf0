package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// ids are submission IDs in ID order.
var ids = func() []string {
	var out []string
	for i := range 6 {
		out = append(out, fmt.Sprintf("%032x", (i+1)*0x1111))
	}
	return out
}()

func items(ids ...string) []api.Item {
	var out []api.Item
	for _, id := range ids {
		out = append(out, api.Item{ID: id, Desk: "d", Size: 1, SHA256: strings.Repeat("0", 64), Received: "2026-12-01T10:00:00Z"})
	}
	return out
}

// pageRelay serves GET /api/v1/inbox with page(after), checking that each
// request is signed over its path and query exactly as sent, and records
// the request targets. After 20 requests it ends the listing, so that a
// client that would go on for ever makes the test fail rather than hang.
type pageRelay struct {
	t       *testing.T
	page    func(after string) api.Inbox
	mu      sync.Mutex
	targets []string
}

func (p *pageRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, err := crypto.ParseRequestAuth(r.Header.Get("Authorization"))
	if err != nil || !a.Verify(r.Method, r.URL.RequestURI(), sha256.Sum256(nil)) {
		p.t.Errorf("request for %s is not signed over its target", r.URL.RequestURI())
		w.WriteHeader(401)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.URL.RequestURI())
	n := len(p.targets)
	p.mu.Unlock()
	in := api.Inbox{Submissions: []api.Item{}}
	if n <= 20 {
		in = p.page(r.URL.Query().Get("after"))
	}
	json.NewEncoder(w).Encode(in)
}

func (p *pageRelay) inbox(t *testing.T) ([]api.Item, error) {
	ts := httptest.NewServer(p)
	defer ts.Close()
	c, err := New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, c.Key, _ = ed25519.GenerateKey(nil)
	return c.Inbox(context.Background())
}

// pages serves ids in pages of two, honestly.
func pages(after string) api.Inbox {
	i, _ := slices.BinarySearch(ids, after)
	if i < len(ids) && ids[i] == after {
		i++
	}
	end := min(i+2, len(ids))
	in := api.Inbox{Submissions: items(ids[i:end]...)}
	if end < len(ids) {
		in.Next = ids[end-1]
	}
	return in
}

func TestInboxWalksPages(t *testing.T) {
	p := &pageRelay{t: t, page: pages}
	got, err := p.inbox(t)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, it := range got {
		gotIDs = append(gotIDs, it.ID)
	}
	if !slices.Equal(gotIDs, ids) {
		t.Fatalf("listed %v, want %v", gotIDs, ids)
	}
	want := []string{"/api/v1/inbox", "/api/v1/inbox?after=" + ids[1], "/api/v1/inbox?after=" + ids[3]}
	if !slices.Equal(p.targets, want) {
		t.Fatalf("asked for %v, want %v", p.targets, want)
	}
}

// TestInboxRefusesLyingRelay: a relay whose pages do not move forward is
// refused at the first such page, instead of being asked again and again.
func TestInboxRefusesLyingRelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		page func(after string) api.Inbox
	}{
		{"next repeats the cursor", func(after string) api.Inbox {
			if after == "" {
				return pages(after)
			}
			return api.Inbox{Submissions: items(ids[2]), Next: after}
		}},
		{"next goes back", func(after string) api.Inbox {
			if after == "" {
				return pages(after)
			}
			return api.Inbox{Submissions: items(ids[2]), Next: ids[0]}
		}},
		{"the same page again and again", func(string) api.Inbox {
			return api.Inbox{Submissions: items(ids[0], ids[1]), Next: ids[1]}
		}},
		{"an item not after the cursor", func(after string) api.Inbox {
			if after == "" {
				return pages(after)
			}
			return api.Inbox{Submissions: items(ids[2], ids[1])}
		}},
		{"an item after next", func(string) api.Inbox {
			return api.Inbox{Submissions: items(ids[0], ids[3]), Next: ids[2]}
		}},
		{"an item twice", func(string) api.Inbox {
			return api.Inbox{Submissions: items(ids[0], ids[0])}
		}},
		{"next is not an ID", func(string) api.Inbox {
			return api.Inbox{Submissions: items(ids[0]), Next: strings.ToUpper(ids[1])}
		}},
		{"next on an empty page, then the same", func(after string) api.Inbox {
			return api.Inbox{Submissions: []api.Item{}, Next: ids[0]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pageRelay{t: t, page: tc.page}
			got, err := p.inbox(t)
			if !errors.Is(err, ErrInboxPaging) || got != nil {
				t.Fatalf("listed %d items, error %v; want ErrInboxPaging", len(got), err)
			}
			if len(p.targets) > 2 {
				t.Fatalf("asked %d times before refusing: %v", len(p.targets), p.targets)
			}
		})
	}
}

func (p *pageRelay) events(t *testing.T) ([]api.Item, error) {
	ts := httptest.NewServer(p)
	defer ts.Close()
	c, err := New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, c.Key, _ = ed25519.GenerateKey(nil)
	return c.Events(context.Background())
}

// TestEventsWalkPages: the event listing is walked and checked as the
// inbox is.
func TestEventsWalkPages(t *testing.T) {
	p := &pageRelay{t: t, page: pages}
	got, err := p.events(t)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("listed %d events: %v", len(got), err)
	}
	want := []string{"/api/v1/events", "/api/v1/events?after=" + ids[1], "/api/v1/events?after=" + ids[3]}
	if !slices.Equal(p.targets, want) {
		t.Fatalf("asked for %v, want %v", p.targets, want)
	}
	for _, page := range []func(string) api.Inbox{
		func(string) api.Inbox { return api.Inbox{Submissions: items(ids[0], ids[1]), Next: ids[1]} },
		func(string) api.Inbox { return api.Inbox{Submissions: items(ids[0], ids[0])} },
	} {
		p := &pageRelay{t: t, page: page}
		if got, err := p.events(t); !errors.Is(err, ErrInboxPaging) || got != nil {
			t.Fatalf("listed %d events, error %v; want ErrInboxPaging", len(got), err)
		}
	}
}

// TestEventArgumentsRefused: what the client can tell is wrong never
// reaches the relay.
func TestEventArgumentsRefused(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request %s %s reached the relay", r.Method, r.URL.RequestURI())
		w.WriteHeader(500)
	}))
	defer ts.Close()
	c, _ := New(ts.URL, nil)
	_, c.Key, _ = ed25519.GenerateKey(nil)
	ctx := context.Background()
	key := strings.Repeat("A", 43)
	for _, tc := range []struct {
		name, part, to string
		n              int
	}{
		{"unknown part", "note", "", 10},
		{"a share to nobody", "share", "", 10},
		{"a case part to someone", "case", key, 10},
		{"too large", "case", "", api.MaxEvent + 1},
	} {
		if _, err := c.PostEvent(ctx, "d", "", tc.part, tc.to, make([]byte, tc.n)); err == nil {
			t.Errorf("%s: posted", tc.name)
		}
	}
	if _, err := c.DownloadEvent(ctx, "../submissions/x"); err == nil {
		t.Error("downloaded a path that is not an event ID")
	}
	if _, err := c.AckEvent(ctx, strings.Repeat("AB", 16)); err == nil {
		t.Error("acked an ID that is not one")
	}
}
