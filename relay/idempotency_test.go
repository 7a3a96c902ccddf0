package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// dropAnswers lets requests reach the relay but loses the first n answers,
// as a Tor circuit that breaks after the relay stored the submission does.
type dropAnswers struct {
	n    int
	sent int
	keys []string
}

func (d *dropAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	d.sent++
	d.keys = append(d.keys, r.Header.Get(api.IdempotencyHeader))
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || d.n == 0 {
		return resp, err
	}
	d.n--
	resp.Body.Close()
	return nil, errors.New("circuit closed")
}

func TestLostAnswerKeepsOneCopy(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, []byte("report"), f.alice, f.bob)
	drop := &dropAnswers{n: 2}
	c, _ := client.New(f.ts.URL, &http.Client{Transport: drop})
	c.Backoff = time.Millisecond
	rc, err := c.Submit(context.Background(), "helpdesk", "incident", bytes.NewReader(ct), int64(len(ct)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if drop.sent != 3 {
		t.Fatalf("sent %d times, want 3", drop.sent)
	}
	if drop.keys[0] == "" || drop.keys[1] != drop.keys[0] || drop.keys[2] != drop.keys[0] {
		t.Fatalf("idempotency keys %q: want one key on every try", drop.keys)
	}
	subs, err := f.spool.Submissions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != rc.ID {
		t.Fatalf("stored %d submissions for one report (receipt %s)", len(subs), rc.ID)
	}

	// A second report gets a new key and a new submission.
	rc2, err := c.Submit(context.Background(), "helpdesk", "incident", bytes.NewReader(ct), int64(len(ct)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc2.ID == rc.ID {
		t.Fatal("a new submission of the same bytes was taken for a resend")
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, []byte("report"), f.alice, f.bob)
	other := encrypt(t, []byte("report"), f.alice, f.bob)
	path := "/api/v1/desks/helpdesk/submissions?category=incident"
	hdr := func(k string) http.Header {
		return http.Header{"Content-Type": {"application/octet-stream"}, api.IdempotencyHeader: {k}}
	}
	key := "0123456789abcdef_-XY"
	for _, tc := range []struct {
		name string
		key  string
		body []byte
		want int
		code string
	}{
		{"too short", "0123456789abcde", ct, 400, "bad_idempotency_key"},
		{"too long", strings.Repeat("a", 65), ct, 400, "bad_idempotency_key"},
		{"bad character", "0123456789abcdef.", ct, 400, "bad_idempotency_key"},
		{"first", key, ct, 201, ""},
		{"resend", key, ct, 201, ""},
		{"other bytes", key, other, 422, "idempotency_conflict"},
	} {
		resp := f.do("POST", path, hdr(tc.key), tc.body, tc.want)
		if tc.code != "" {
			var e struct{ Error api.Error }
			json.NewDecoder(resp.Body).Decode(&e)
			if e.Error.Code != tc.code || e.Error.Hint == "" {
				t.Errorf("%s: answer %+v, want code %s with a hint", tc.name, e.Error, tc.code)
			}
		}
	}
	subs, _ := f.spool.Submissions(nil)
	if len(subs) != 1 {
		t.Fatalf("%d submissions stored, want 1", len(subs))
	}
}

// TestLostUploadCreation: the answer to creating an upload is lost; the
// client creates another and completes that one. The first holds no bytes
// and is never a submission.
func TestLostUploadCreation(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, bytes.Repeat([]byte("long report "), (client.SingleMax+4096)/12), f.alice, f.bob)
	drop := &dropAnswers{n: 1}
	c, _ := client.New(f.ts.URL, &http.Client{Transport: drop})
	c.Backoff = time.Millisecond
	rc, err := c.Submit(context.Background(), "helpdesk", "incident", bytes.NewReader(ct), int64(len(ct)), nil)
	if err != nil {
		t.Fatalf("a lost answer to creating an upload ended the submission: %v", err)
	}
	subs, err := f.spool.Submissions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != rc.ID || subs[0].Size != int64(len(ct)) {
		t.Fatalf("stored %d submissions for one report", len(subs))
	}
}
