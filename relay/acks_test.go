package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

// TestAckBatch: POST /api/v1/acks acknowledges many submissions in one
// answer, by the rules of the one-ID route: what the caller may not ack is
// "not_found" and left alone, the rest is recorded, and a submission no
// one else waits for is deleted.
func TestAckBatch(t *testing.T) {
	f := newFixture(t)
	both := f.seedInbox(3, "incident", f.alice, f.bob)
	aliceOnly := f.seedInbox(2, "sea", f.alice)
	bobOnly := f.seedInbox(1, "incident", f.bob)
	unknown := strings.Repeat("ab", 16)
	ids := append(append(append(slices.Clone(both), aliceOnly...), bobOnly...), unknown)
	body, _ := json.Marshal(api.AckBatch{IDs: ids})
	var res api.AckBatchResult
	if err := json.NewDecoder(f.signed(f.alice, "POST", "/api/v1/acks", body, 200).Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Acks) != len(ids) {
		t.Fatalf("%d answers for %d IDs", len(res.Acks), len(ids))
	}
	for i, a := range res.Acks {
		if a.ID != ids[i] {
			t.Fatalf("answer %d is for %s, asked %s", i, a.ID, ids[i])
		}
		switch {
		case i < len(both):
			if a.Deleted || a.Error != "" || !slices.Equal(a.Waiting, []string{f.bob.Card().KeyID()}) {
				t.Errorf("shared %d: %+v, want waiting for bob", i, a)
			}
		case i < len(both)+len(aliceOnly):
			if !a.Deleted || a.Error != "" {
				t.Errorf("alice's own %d: %+v, want deleted", i, a)
			}
		default:
			if a.Error != "not_found" || a.Deleted {
				t.Errorf("%d: %+v, want not_found", i, a)
			}
		}
	}
	if in, _ := f.inboxPage(f.alice, ""); len(in.Submissions) != 0 {
		t.Fatalf("alice still lists %d", len(in.Submissions))
	}
	if in, _ := f.inboxPage(f.bob, ""); !slices.Equal(itemIDs(in), slices.Sorted(slices.Values(append(slices.Clone(both), bobOnly...)))) {
		t.Fatalf("bob lists %v", itemIDs(in))
	}
	if _, err := f.spool.Verify(); err != nil {
		t.Fatal(err)
	}
	// A key that is no handler is refused, as on every handler route.
	body, _ = json.Marshal(api.AckBatch{IDs: bobOnly})
	f.signed(f.outsider, "POST", "/api/v1/acks", body, 401)
}

// TestAckBatchBody: bodies that are not exactly a list of distinct IDs are
// refused before anything is recorded.
func TestAckBatchBody(t *testing.T) {
	f := newFixture(t)
	id := f.seedInbox(1, "sea", f.alice)[0]
	many := make([]string, api.MaxAckBatch+1)
	for i := range many {
		many[i] = fmt.Sprintf("%032x", i)
	}
	tooMany, _ := json.Marshal(api.AckBatch{IDs: many})
	for _, b := range []string{
		``, `{}`, `{"ids":[]}`, `{"ids":["` + id + `","` + id + `"]}`, `{"ids":["` + strings.ToUpper(id) + `"]}`,
		`{"ids":["` + id + `"],"x":1}`, `{"ids":["` + id + `"]} {}`, `[` + id + `]`, `{"ids":"` + id + `"}`, string(tooMany),
	} {
		code := 400
		if len(b) > api.MaxAckBody || b == "" {
			continue // refused by the signed-body bound or the route's need of a body: below
		}
		if got := errCode(t, f.signed(f.alice, "POST", "/api/v1/acks", []byte(b), code)); got != "bad_request" {
			t.Errorf("body %.60q: %s", b, got)
		}
	}
	if in, _ := f.inboxPage(f.alice, ""); len(in.Submissions) != 1 {
		t.Fatalf("a refused body acked something: %d listed", len(in.Submissions))
	}
	f.signed(f.alice, "POST", "/api/v1/acks", nil, 400)
}

// TestBulk: POST /api/v1/bulk sends, in the order asked, each submission
// the caller may read and "-" for the others, then "end"; a submission
// over api.BulkMaxItem makes the whole request a 400.
func TestBulk(t *testing.T) {
	f := newFixture(t)
	mine := f.seedInbox(3, "sea", f.alice)
	bobs := f.seedInbox(1, "incident", f.bob)
	ids := []string{mine[2], bobs[0], mine[0], strings.Repeat("cd", 16)}
	body, _ := json.Marshal(api.AckBatch{IDs: ids})
	raw, _ := io.ReadAll(f.signed(f.alice, "POST", "/api/v1/bulk", body, 200).Body)
	var want bytes.Buffer
	want.WriteString(api.BulkMagic)
	for _, id := range ids {
		sub, err := f.spool.Submission(id)
		if err != nil || !slices.Contains(sub.Routes, f.alice.Card().KeyID()) {
			fmt.Fprintf(&want, "%s -\n", id)
			continue
		}
		r, _ := f.spool.OpenSubmission(id, 0)
		b, _ := io.ReadAll(r)
		fmt.Fprintf(&want, "%s %d\n%s", id, len(b), b)
	}
	want.WriteString("end\n")
	if string(raw) != want.String() {
		t.Fatalf("bulk answer:\n%q\nwant\n%q", raw, want.String())
	}
	// Nothing is acknowledged by a download.
	if in, _ := f.inboxPage(f.alice, ""); len(in.Submissions) != 3 {
		t.Fatalf("alice lists %d after a bulk download", len(in.Submissions))
	}
	big, err := f.spool.PutSubmission(store.UploadSpec{Desk: "helpdesk", Category: "sea", Routes: []string{f.alice.Card().KeyID()}, Stanzas: []string{"X25519"},
		KeepUnacked: time.Hour}, make([]byte, api.BulkMaxItem+1))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(api.AckBatch{IDs: []string{mine[0], big.ID}})
	if code := errCode(t, f.signed(f.alice, "POST", "/api/v1/bulk", body, 400)); code != "bad_request" {
		t.Fatalf("a bulk download with a large item: %s", code)
	}
}
