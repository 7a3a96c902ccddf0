package relay

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/client"
)

// TestPullAcksInBatches: a pull downloads small cases in one signed
// request (POST /api/v1/bulk) and acknowledges what it stored in one more
// (POST /api/v1/acks), and from a relay without those routes one by one;
// either way the relay lists nothing afterwards.
func TestPullAcksInBatches(t *testing.T) {
	for _, old := range []bool{false, true} {
		t.Run(fmt.Sprintf("old relay %v", old), func(t *testing.T) {
			f := newFixture(t)
			f.seedInbox(25, "sea", f.alice)
			var batches, singles, bulks, downloads atomic.Int64
			h := f.srv.Combined()
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/api/v1/acks" || r.URL.Path == "/api/v1/bulk":
					if r.URL.Path == "/api/v1/acks" {
						batches.Add(1)
					} else {
						bulks.Add(1)
					}
					if old {
						http.NotFound(w, r)
						return
					}
				case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/api/v1/submissions/"):
					downloads.Add(1)
				case r.Method == "POST" && filepath.Base(r.URL.Path) == "ack":
					singles.Add(1)
				}
				h.ServeHTTP(w, r)
			}))
			defer ts.Close()
			st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
			if err != nil {
				t.Fatal(err)
			}
			c, _ := client.New(ts.URL, nil)
			c.Key = f.alice.SigningKey()
			res, err := handler.Pull(context.Background(), c, st, nil, ts.URL, nil)
			if err != nil || len(res.Problems) > 0 || len(res.Pulled) != 25 || res.Acked != 25 {
				t.Fatalf("pull: %v %+v", err, res)
			}
			if in, _ := f.inboxPage(f.alice, ""); len(in.Submissions) != 0 {
				t.Fatalf("%d still listed", len(in.Submissions))
			}
			want := [4]int64{1, 0, 1, 0}
			if old {
				want = [4]int64{1, 25, 1, 25}
			}
			if got := [4]int64{batches.Load(), singles.Load(), bulks.Load(), downloads.Load()}; got != want {
				t.Fatalf("batch acks, single acks, bulk and single downloads %v, want %v", got, want)
			}
		})
	}
}

// TestPullVerifiesHeldCases: a case the store holds and the relay still
// lists (as a power cut before the store's sync can leave it, short) is
// checked before it is acknowledged again, and fetched again when it does
// not match.
func TestPullVerifiesHeldCases(t *testing.T) {
	f := newFixture(t)
	ids := f.seedInbox(3, "sea", f.alice)
	h := f.srv.Combined()
	var refuse atomic.Bool
	refuse.Store(true)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && r.Method == "POST" && (r.URL.Path == "/api/v1/acks" || filepath.Base(r.URL.Path) == "ack") {
			http.Error(w, "no", 500)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(ts.URL, nil)
	c.Key = f.alice.SigningKey()
	res, err := handler.Pull(context.Background(), c, st, nil, ts.URL, nil)
	if err != nil || len(res.Pulled) != 3 || res.Acked != 0 {
		t.Fatalf("first pull: %v %+v", err, res)
	}
	// A power cut before the store's sync: the case left short, and its
	// line in the index, written only after the sync, missing.
	short := ids[1]
	if err := os.Truncate(st.BundlePath(short), 3); err != nil {
		t.Fatal(err)
	}
	ipath := filepath.Join(st.Dir(), cases.IndexFile)
	idx, err := os.ReadFile(ipath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(idx), "\n") {
		if l != "" && !strings.HasPrefix(l, short) {
			kept = append(kept, l+"\n")
		}
	}
	if len(kept) != 2 {
		t.Fatalf("the index holds %d other lines, want 2:\n%s", len(kept), idx)
	}
	if err := os.WriteFile(ipath, []byte(strings.Join(kept, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	refuse.Store(false)
	res, err = handler.Pull(context.Background(), c, st, nil, ts.URL, nil)
	if err != nil || len(res.Problems) > 0 || res.Acked != 3 || len(res.Pulled) != 1 || res.Pulled[0] != short {
		t.Fatalf("second pull: %v %+v", err, res)
	}
	for _, id := range ids {
		b, err := os.ReadFile(st.BundlePath(id))
		if err != nil || len(b) < len("submission 0") {
			t.Fatalf("case %s: %q %v", id, b, err)
		}
	}
	if in, _ := f.inboxPage(f.alice, ""); len(in.Submissions) != 0 {
		t.Fatalf("%d still listed", len(in.Submissions))
	}
}
