package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// seedInbox stores n small submissions for desk helpdesk in category cat,
// routed to ids, and returns their IDs in ID order.
func (f *fixture) seedInbox(n int, cat string, ids ...*crypto.Identity) []string {
	f.t.Helper()
	var routes []string
	for _, id := range ids {
		routes = append(routes, id.Card().KeyID())
	}
	// From a few goroutines, since each PutSubmission waits for others to
	// share its commit.
	out := make([]string, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				spec := store.UploadSpec{Desk: "helpdesk", Category: cat, Routes: routes, Stanzas: []string{"X25519"},
					DeleteAfterAck: time.Hour, KeepUnacked: 24 * time.Hour}
				sub, err := f.spool.PutSubmission(spec, fmt.Appendf(nil, "submission %d", i))
				if err != nil {
					f.t.Error(err)
					return
				}
				out[i] = sub.ID
			}
		}()
	}
	wg.Wait()
	if f.t.Failed() {
		f.t.FailNow()
	}
	slices.Sort(out)
	return out
}

// inboxPage asks for one page as id and returns it, with the raw answer.
func (f *fixture) inboxPage(id *crypto.Identity, query string) (api.Inbox, string) {
	f.t.Helper()
	path := "/api/v1/inbox"
	if query != "" {
		path += "?" + query
	}
	raw, _ := io.ReadAll(f.signed(id, "GET", path, nil, 200).Body)
	var in api.Inbox
	if err := json.Unmarshal(raw, &in); err != nil {
		f.t.Fatalf("inbox answer: %v", err)
	}
	return in, string(raw)
}

func itemIDs(in api.Inbox) []string {
	var out []string
	for _, it := range in.Submissions {
		out = append(out, it.ID)
	}
	return out
}

// TestInboxPages walks the inbox page by page: in ID order, each item once,
// next on every page but the last, and only what the caller may read.
func TestInboxPages(t *testing.T) {
	f := newFixture(t)
	both := f.seedInbox(5, "incident", f.alice, f.bob)
	aliceOnly := f.seedInbox(2, "sea", f.alice)
	all := slices.Sorted(slices.Values(append(slices.Clone(both), aliceOnly...)))

	var got []string
	after, pages := "", 0
	for {
		pages++
		q := "limit=3"
		if after != "" {
			q = "after=" + after + "&limit=3"
		}
		in, raw := f.inboxPage(f.alice, q)
		got = append(got, itemIDs(in)...)
		if in.Next == "" {
			if strings.Contains(raw, `"next"`) {
				t.Fatalf("the last page names a next: %s", raw)
			}
			break
		}
		if len(in.Submissions) != 3 || in.Next != in.Submissions[2].ID {
			t.Fatalf("page %d: %d items, next %q", pages, len(in.Submissions), in.Next)
		}
		after = in.Next
	}
	if !slices.Equal(got, all) || pages != 3 {
		t.Fatalf("alice's walk: %d pages, %v; want 3 pages, %v", pages, got, all)
	}

	// Without a query: the first page, at most api.InboxPageMax items.
	if in, _ := f.inboxPage(f.alice, ""); !slices.Equal(itemIDs(in), all) || in.Next != "" {
		t.Fatalf("alice's inbox without a query: %v, next %q", itemIDs(in), in.Next)
	}
	// Bob sees only what was routed to him, and not what he acked.
	f.signed(f.bob, "POST", "/api/v1/submissions/"+both[0]+"/ack", nil, 200)
	if in, _ := f.inboxPage(f.bob, "after="+both[1]); !slices.Equal(itemIDs(in), both[2:]) {
		t.Fatalf("bob's inbox after %s: %v, want %v", both[1], itemIDs(in), both[2:])
	}
	if in, _ := f.inboxPage(f.bob, ""); !slices.Equal(itemIDs(in), both[1:]) {
		t.Fatalf("bob's inbox after his ack: %v, want %v", itemIDs(in), both[1:])
	}
	// An after that names no submission starts after where it would be.
	if in, _ := f.inboxPage(f.alice, "after="+strings.Repeat("f", 32)); len(in.Submissions) != 0 || in.Next != "" {
		t.Fatalf("inbox after ff…: %+v", in)
	}
}

// TestInboxPageMax: a page holds api.InboxPageMax items at most, and a
// limit above it is refused.
func TestInboxPageMax(t *testing.T) {
	f := newFixture(t)
	ids := f.seedInbox(api.InboxPageMax+1, "sea", f.alice)
	in, _ := f.inboxPage(f.alice, "")
	if len(in.Submissions) != api.InboxPageMax || in.Next != ids[api.InboxPageMax-1] {
		t.Fatalf("first page: %d items, next %q", len(in.Submissions), in.Next)
	}
	if in, _ = f.inboxPage(f.alice, "after="+in.Next); !slices.Equal(itemIDs(in), ids[api.InboxPageMax:]) || in.Next != "" {
		t.Fatalf("second page: %v, next %q", itemIDs(in), in.Next)
	}
	f.signed(f.alice, "GET", fmt.Sprintf("/api/v1/inbox?limit=%d", api.InboxPageMax+1), nil, 400)
}

// TestInboxQuery: what the inbox accepts after ? and what it refuses.
func TestInboxQuery(t *testing.T) {
	f := newFixture(t)
	id := strings.Repeat("0a", 16)
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", 200},
		{"after=", 200},
		{"after=" + id, 200},
		{"limit=1", 200},
		{"limit=1000", 200},
		{"after=" + id + "&limit=7", 200},
		{"limit=7&after=" + id, 200},
		{"other=1", 200}, // unknown parameters are ignored, as on every route
		{"limit=0", 400},
		{"limit=1001", 400},
		{"limit=-1", 400},
		{"limit=+1", 400},
		{"limit=01", 400},
		{"limit=", 400},
		{"limit=ten", 400},
		{"limit=99999999999999999999", 400},
		{"limit=1&limit=1", 400},
		{"after=" + id[:31], 400},
		{"after=" + id + "0", 400},
		{"after=" + strings.ToUpper(id), 400},
		{"after=" + strings.Repeat("g", 32), 400},
		{"after=" + id + "&after=" + id, 400},
		{"after=%zz", 400},
		{"after=" + id + ";limit=1", 400},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp := f.signed(f.alice, "GET", "/api/v1/inbox?"+tc.query, nil, tc.want)
			if tc.want == 400 {
				if code := errCode(t, resp); code != "bad_request" {
					t.Fatalf("code %q, want bad_request", code)
				}
			}
		})
	}
}

// TestInboxQuerySigned: the query is part of the signed text, so a
// request whose query was changed after signing is refused. (A refused
// signature does not use up the nonce, §7.3, so the same header then
// passes with the query it was signed for.)
func TestInboxQuerySigned(t *testing.T) {
	f := newFixture(t)
	f.seedInbox(2, "sea", f.alice)
	signed := signedHeader(f.alice, "GET", "/api/v1/inbox?limit=1", nil, f.now)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/v1/inbox?limit=2", 401},
		{"/api/v1/inbox", 401},
		{"/api/v1/inbox?limit=1", 200},
	} {
		r, _ := http.NewRequest("GET", f.ts.URL+tc.path, bytes.NewReader(nil))
		r.Header = signed.Clone()
		f.req(r, tc.want)
	}
}

// TestWireKinds: every kind the spool keeps has an inbox kind, and no two
// stored kinds look alike on the wire.
func TestWireKinds(t *testing.T) {
	seen := map[string]string{}
	for _, k := range store.Kinds {
		w, ok := wireKinds[k]
		if !ok {
			t.Errorf("stored kind %q has no inbox kind", k)
		}
		if other, dup := seen[w]; dup {
			t.Errorf("stored kinds %q and %q are both %q on the wire", other, k, w)
		}
		seen[w] = k
	}
	if len(wireKinds) != len(store.Kinds) {
		t.Errorf("wireKinds maps %d kinds, the spool keeps %d", len(wireKinds), len(store.Kinds))
	}
	// Events: every stored kind has a wire kind, each from one posted part.
	seen = map[string]string{}
	for _, k := range store.EventKinds {
		w, ok := wireEventKinds[k]
		if !ok {
			t.Errorf("stored event kind %q has no wire kind", k)
		}
		if other, dup := seen[w]; dup {
			t.Errorf("stored event kinds %q and %q are both %q on the wire", other, k, w)
		}
		seen[w] = k
	}
	parts := map[string]bool{}
	for p, k := range eventKinds {
		if !slices.Contains(store.EventKinds, k) || parts[k] {
			t.Errorf("part %q is stored as %q", p, k)
		}
		parts[k] = true
	}
	if len(wireEventKinds) != len(store.EventKinds) || len(eventKinds) != len(store.EventKinds) {
		t.Errorf("%d wire and %d posted kinds of event, the spool keeps %d", len(wireEventKinds), len(eventKinds), len(store.EventKinds))
	}
}
