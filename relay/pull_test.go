package relay

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
)

// TestPullTwoRelaysOneReport: behind one Onionbalance address, a report
// sent again after a lost answer can land on a second relay. Pulling from
// both keeps one case and acknowledges both copies.
func TestPullTwoRelaysOneReport(t *testing.T) {
	f := newFixture(t)
	sp2, err := store.Open(filepath.Join(t.TempDir(), "data2"), &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp2.Close()
	srv2, err := New(sp2, Config{Admin: f.admin.Card().SignKey})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(srv2.Combined())
	defer ts2.Close()
	admin2, _ := client.New(ts2.URL, nil)
	admin2.Key = f.admin.SigningKey()
	if _, err := admin2.Publish(context.Background(), "helpdesk", f.manifest(1)); err != nil {
		t.Fatal(err)
	}

	ct := encrypt(t, []byte("sent twice"), f.alice, f.bob)
	f.do("POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, ct, 201)
	resp, err := http.Post(ts2.URL+"/api/v1/desks/helpdesk/submissions?category=incident", "application/octet-stream", bytes.NewReader(ct))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("second relay: %v %v", resp, err)
	}
	resp.Body.Close()
	other := encrypt(t, []byte("only on the second relay"), f.alice, f.bob)
	resp, _ = http.Post(ts2.URL+"/api/v1/desks/helpdesk/submissions?category=incident", "application/octet-stream", bytes.NewReader(other))
	resp.Body.Close()

	st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	pull := func(url string) *handler.PullResult {
		c, _ := client.New(url, nil)
		c.Key = f.alice.SigningKey()
		res, err := handler.Pull(context.Background(), c, st, nil, url, nil)
		if err != nil || len(res.Problems) > 0 {
			t.Fatalf("pull from %s: %v %+v", url, err, res.Problems)
		}
		return res
	}
	if r := pull(f.ts.URL); len(r.Pulled) != 1 || r.Duplicates != 0 || r.Acked != 1 {
		t.Fatalf("first relay: %+v", r)
	}
	if r := pull(ts2.URL); len(r.Pulled) != 1 || r.Duplicates != 1 || r.Acked != 2 {
		t.Fatalf("second relay: pulled %d, duplicates %d, acked %d; want 1, 1, 2", len(r.Pulled), r.Duplicates, r.Acked)
	}
	metas, _ := st.List()
	if len(metas) != 2 {
		t.Fatalf("%d cases, want 2", len(metas))
	}
	// Both copies on the second relay carry alice's acknowledgement.
	subs, _ := sp2.Submissions(nil)
	for _, s := range subs {
		if len(s.Acks) != 1 {
			t.Errorf("submission %s on the second relay: acks %v", s.ID, s.Acks)
		}
	}
}

// TestPullTwinFromRebuiltIndex: a twin known only from a rebuilt index
// (not known durable) lets a pull acknowledge the second relay's copy only
// once it is verified whole, and Sync then marks it synced; a torn twin
// makes the pull download the copy instead of acknowledging it.
func TestPullTwinFromRebuiltIndex(t *testing.T) {
	for _, torn := range []bool{false, true} {
		f := newFixture(t)
		sp2, err := store.Open(filepath.Join(t.TempDir(), "data2"), &store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sp2.Close()
		srv2, err := New(sp2, Config{Admin: f.admin.Card().SignKey})
		if err != nil {
			t.Fatal(err)
		}
		ts2 := httptest.NewServer(srv2.Combined())
		defer ts2.Close()
		admin2, _ := client.New(ts2.URL, nil)
		admin2.Key = f.admin.SigningKey()
		if _, err := admin2.Publish(context.Background(), "helpdesk", f.manifest(1)); err != nil {
			t.Fatal(err)
		}
		ct := encrypt(t, []byte("sent twice"), f.alice, f.bob)
		f.do("POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, ct, 201)
		resp, err := http.Post(ts2.URL+"/api/v1/desks/helpdesk/submissions?category=incident", "application/octet-stream", bytes.NewReader(ct))
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("second relay: %v %v", resp, err)
		}
		resp.Body.Close()

		st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
		if err != nil {
			t.Fatal(err)
		}
		pull := func(url string) *handler.PullResult {
			c, _ := client.New(url, nil)
			c.Key = f.alice.SigningKey()
			res, err := handler.Pull(context.Background(), c, st, nil, url, nil)
			if err != nil || len(res.Problems) > 0 {
				t.Fatalf("pull from %s: %v %+v", url, err, res.Problems)
			}
			return res
		}
		first := pull(f.ts.URL)
		if len(first.Pulled) != 1 {
			t.Fatalf("first relay: %+v", first)
		}
		twin := first.Pulled[0]
		// A lost index, rebuilt with no entry known durable; and, torn, a
		// power cut that left the twin short.
		if err := os.Remove(filepath.Join(st.Dir(), cases.IndexFile)); err != nil {
			t.Fatal(err)
		}
		if idx, err := st.Index(); err != nil || idx[twin].Synced {
			t.Fatalf("rebuilt index: %v %v", idx, err)
		}
		if torn {
			if err := os.Truncate(st.BundlePath(twin), int64(len(ct)/2)); err != nil {
				t.Fatal(err)
			}
		}
		r := pull(ts2.URL)
		wantPulled, wantDup := 0, 1
		if torn {
			wantPulled, wantDup = 1, 0
		}
		if len(r.Pulled) != wantPulled || r.Duplicates != wantDup || r.Acked != 1 {
			t.Fatalf("torn %v: pulled %d, duplicates %d, acked %d; want %d, %d, 1", torn, len(r.Pulled), r.Duplicates, r.Acked, wantPulled, wantDup)
		}
		idx, err := st.Index()
		if err != nil {
			t.Fatal(err)
		}
		if torn {
			if st.Has(twin) {
				t.Errorf("the torn twin is still held")
			}
			if ok, err := st.Verify(r.Pulled[0], int64(len(ct)), idx[r.Pulled[0]].SHA256); !ok || err != nil || !idx[r.Pulled[0]].Synced {
				t.Errorf("the copy downloaded instead: ok %v, %v, index %+v", ok, err, idx[r.Pulled[0]])
			}
		} else if !idx[twin].Synced {
			t.Errorf("the verified twin is not marked synced after the pull: %+v", idx[twin])
		}
	}
}
