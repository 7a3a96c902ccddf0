package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
)

type fixture struct {
	t        testing.TB
	srv      *Server
	spool    *store.Spool
	ts       *httptest.Server
	admin    *crypto.Identity
	alice    *crypto.Identity // handler in every category
	bob      *crypto.Identity // handler of "incident" only
	outsider *crypto.Identity // not in the manifest
	now      time.Time
	dataDir  string
	mu       sync.Mutex
	logs     []string
}

func newFixture(t testing.TB) *fixture { return newFixtureWith(t, store.Options{Quota: 4 << 30}) }

// newFixtureWith is newFixture over a spool opened with o.
func newFixtureWith(t testing.TB, o store.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, now: time.Now()}
	var err error
	_, bench := t.(*testing.B) // benchmarks measure the durable spool
	f.dataDir = filepath.Join(t.TempDir(), "data")
	o.NoSync = !bench
	f.spool, err = store.Open(f.dataDir, &o)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string) *crypto.Identity {
		id, err := crypto.GenerateIdentity(name, true)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	f.admin, f.alice, f.bob, f.outsider = mk("admin"), mk("alice"), mk("bob"), mk("outsider")
	f.srv, err = New(f.spool, Config{
		Admin:     f.admin.Card().SignKey,
		MaxSingle: 256 << 10,
		MaxPiece:  2 << 20,
		Now:       func() time.Time { return f.now },
		Logf:      f.log,
		Eventf:    f.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	f.ts = httptest.NewServer(f.srv.Combined())
	t.Cleanup(func() {
		f.ts.Close()
		if _, err := f.spool.Verify(); err != nil {
			t.Errorf("spool inconsistent: %v", err)
		}
		f.spool.Close()
	})
	f.publish(f.manifest(1), 200)
	return f
}

func (f *fixture) log(format string, args ...any) {
	f.mu.Lock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fixture) manifest(serial uint64) []byte { return f.manifestLimit(serial, 8<<20) }

func (f *fixture) manifestLimit(serial uint64, limit int64) []byte {
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: serial,
		Handlers: []string{f.alice.Card().String(), f.bob.Card().String()},
		Categories: []crypto.Category{
			{ID: "incident", Title: "Incident", Handlers: []string{"alice", "bob"}},
			{ID: "sea", Title: "SEA", Handlers: []string{"alice"}},
		},
		Limits: crypto.Limits{MaxSubmissionBytes: limit}}
	env, err := crypto.SignManifest(m, f.admin.SigningKey())
	if err != nil {
		f.t.Fatal(err)
	}
	return env
}

func (f *fixture) publish(env []byte, want int) *http.Response {
	return f.signed(f.admin, "PUT", "/api/v1/admin/desks/helpdesk", env, want)
}

// req sends a request and checks the status.
// anyStatus, as a fixture request's wanted status, takes any: the test
// looks at it.
const anyStatus = -1

func (f *fixture) req(r *http.Request, want int) *http.Response {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if want != anyStatus && resp.StatusCode != want {
		f.t.Fatalf("%s %s: status %d, want %d: %s", r.Method, r.URL.Path, resp.StatusCode, want, body)
	}
	return resp
}

func (f *fixture) do(method, path string, hdr http.Header, body []byte, want int) *http.Response {
	f.t.Helper()
	r, _ := http.NewRequest(method, f.ts.URL+path, bytes.NewReader(body))
	for k, v := range hdr {
		r.Header[k] = v
	}
	return f.req(r, want)
}

func (f *fixture) signed(id *crypto.Identity, method, path string, body []byte, want int) *http.Response {
	f.t.Helper()
	return f.do(method, path, signedHeader(id, method, path, body, f.now), body, want)
}

func errCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error == nil {
		t.Fatalf("error body is not JSON: %v", err)
	}
	if eb.Error.Message == "" || eb.Error.Hint == "" {
		t.Fatalf("error %q lacks a message or a hint", eb.Error.Code)
	}
	return eb.Error.Code
}

func encrypt(t testing.TB, plain []byte, ids ...*crypto.Identity) []byte {
	t.Helper()
	var cards []*crypto.Card
	for _, id := range ids {
		cards = append(cards, id.Card())
	}
	rs, err := crypto.Recipients(cards)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, _ := age.Encrypt(&b, rs...)
	w.Write(plain)
	w.Close()
	return b.Bytes()
}

func TestSubmitAndPull(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, []byte("a report"), f.alice)
	resp := f.do("POST", "/api/v1/desks/helpdesk/submissions?category=sea", nil, ct, 201)
	var rc api.Receipt
	json.NewDecoder(resp.Body).Decode(&rc)
	sum := sha256.Sum256(ct)
	if rc.SHA256 != hex.EncodeToString(sum[:]) || rc.Size != int64(len(ct)) || !strings.HasSuffix(rc.Received, ":00:00Z") {
		t.Fatalf("receipt %+v", rc)
	}
	// Bob is not in "sea": he does not see it and cannot fetch it.
	var in api.Inbox
	json.NewDecoder(f.signed(f.bob, "GET", "/api/v1/inbox", nil, 200).Body).Decode(&in)
	if len(in.Submissions) != 0 {
		t.Fatal("bob sees a submission not routed to him")
	}
	f.signed(f.bob, "GET", "/api/v1/submissions/"+rc.ID, nil, 404)
	json.NewDecoder(f.signed(f.alice, "GET", "/api/v1/inbox", nil, 200).Body).Decode(&in)
	if len(in.Submissions) != 1 || in.Submissions[0].ID != rc.ID {
		t.Fatalf("alice's inbox %+v", in)
	}
	got, _ := io.ReadAll(f.signed(f.alice, "GET", "/api/v1/submissions/"+rc.ID, nil, 200).Body)
	if !bytes.Equal(got, ct) {
		t.Fatal("downloaded bytes differ")
	}
	// A broken download resumes with Range.
	r, _ := http.NewRequest("GET", f.ts.URL+"/api/v1/submissions/"+rc.ID, nil)
	r.Header = signedHeader(f.alice, "GET", "/api/v1/submissions/"+rc.ID, nil, f.now)
	r.Header.Set("Range", "bytes=10-")
	resp = f.req(r, 206)
	part, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(part, ct[10:]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-%d/%d", len(ct)-1, len(ct)) {
		t.Fatalf("range answer %q", resp.Header.Get("Content-Range"))
	}
	var ack api.Ack
	json.NewDecoder(f.signed(f.alice, "POST", "/api/v1/submissions/"+rc.ID+"/ack", nil, 200).Body).Decode(&ack)
	if !ack.Deleted {
		t.Fatal("not deleted after its only handler acked")
	}
	f.signed(f.alice, "GET", "/api/v1/submissions/"+rc.ID, nil, 404)
}

// TestAckWaitsForEveryHandler: by default, a submission routed to alice
// and bob stays after alice acks, listed for bob, and the ack says the
// relay waits for bob's key; it goes when bob acks.
func TestAckWaitsForEveryHandler(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, []byte("a report"), f.alice, f.bob)
	var rc api.Receipt
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/submissions", nil, ct, 201).Body).Decode(&rc)
	ackPath := "/api/v1/submissions/" + rc.ID + "/ack"
	var ack api.Ack
	json.NewDecoder(f.signed(f.alice, "POST", ackPath, nil, 200).Body).Decode(&ack)
	if ack.Deleted || len(ack.Waiting) != 1 || ack.Waiting[0] != f.bob.Card().KeyID() {
		t.Fatalf("alice's ack answered %+v, want waiting for bob's key", ack)
	}
	var in api.Inbox
	json.NewDecoder(f.signed(f.bob, "GET", "/api/v1/inbox", nil, 200).Body).Decode(&in)
	if len(in.Submissions) != 1 || in.Submissions[0].ID != rc.ID {
		t.Fatalf("bob's inbox after alice acked: %+v", in)
	}
	f.signed(f.bob, "GET", "/api/v1/submissions/"+rc.ID, nil, 200)
	ack = api.Ack{}
	json.NewDecoder(f.signed(f.bob, "POST", ackPath, nil, 200).Body).Decode(&ack)
	if !ack.Deleted || len(ack.Waiting) != 0 {
		t.Fatalf("bob's ack answered %+v, want deleted", ack)
	}
	f.signed(f.bob, "GET", "/api/v1/submissions/"+rc.ID, nil, 404)
}

// TestAckDoesNotWaitForRemovedHandler: once the desk drops bob's key, the
// relay no longer waits for him (he may no longer pull it): alice's ack
// deletes a submission routed to both.
func TestAckDoesNotWaitForRemovedHandler(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, []byte("a report"), f.alice, f.bob)
	var rc api.Receipt
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/submissions", nil, ct, 201).Body).Decode(&rc)
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 2, Handlers: []string{f.alice.Card().String()}}
	env, err := crypto.SignManifest(m, f.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	f.publish(env, 200)
	var ack api.Ack
	json.NewDecoder(f.signed(f.alice, "POST", "/api/v1/submissions/"+rc.ID+"/ack", nil, 200).Body).Decode(&ack)
	if !ack.Deleted || len(ack.Waiting) != 0 {
		t.Fatalf("alice's ack answered %+v, want deleted", ack)
	}
	if _, err := f.spool.Submission(rc.ID); err == nil {
		t.Fatal("still stored after its last remaining handler acked")
	}
}

// TestAfterFirstAckDesk: a desk whose retention sets after_first_ack
// stores its submissions with the first-ack deadline; by default they
// have none.
func TestAfterFirstAckDesk(t *testing.T) {
	f := newFixture(t)
	for _, first := range []bool{false, true} {
		m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: uint64(map[bool]int{false: 2, true: 3}[first]),
			Handlers:  []string{f.alice.Card().String(), f.bob.Card().String()},
			Retention: crypto.Retention{DeleteAfterAckHours: 5, AfterFirstAck: first}}
		env, err := crypto.SignManifest(m, f.admin.SigningKey())
		if err != nil {
			t.Fatal(err)
		}
		f.publish(env, 200)
		var rc api.Receipt
		json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/submissions", nil, encrypt(t, []byte("r"), f.alice, f.bob), 201).Body).Decode(&rc)
		sub, err := f.spool.Submission(rc.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := time.Duration(0)
		if first {
			want = 5 * time.Hour
		}
		if sub.DeleteAfterAck != want {
			t.Fatalf("after_first_ack %v: stored DeleteAfterAck %v, want %v", first, sub.DeleteAfterAck, want)
		}
	}
}

func TestResumableUpload(t *testing.T) {
	f := newFixture(t)
	plain := bytes.Repeat([]byte("x"), 3<<20)
	ct := encrypt(t, plain, f.alice, f.bob)
	body, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: int64(len(ct))})
	var st api.UploadState
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
	tok := st.Upload
	piece := func(off, end int, want int) *http.Response {
		return f.do("PATCH", "/api/v1/uploads/"+tok, http.Header{"Upload-Offset": {fmt.Sprint(off)}}, ct[off:end], want)
	}
	piece(0, 1<<20, 200)
	// Resending a piece that already arrived says where to continue.
	resp := piece(0, 1<<20, 409)
	var eb api.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	if eb.Error.Code != "offset_mismatch" || *eb.Error.Offset != 1<<20 {
		t.Fatalf("offset mismatch answer %+v", eb.Error)
	}
	json.NewDecoder(f.do("GET", "/api/v1/uploads/"+tok, nil, nil, 200).Body).Decode(&st)
	if st.Offset != 1<<20 {
		t.Fatalf("offset %d", st.Offset)
	}
	if code := errCode(t, f.do("POST", "/api/v1/uploads/"+tok+"/complete", nil, nil, 409)); code != "incomplete" {
		t.Fatalf("early complete: %s", code)
	}
	piece(1<<20, 2<<20, 200)
	piece(2<<20, len(ct), 200)
	var rc api.Receipt
	json.NewDecoder(f.do("POST", "/api/v1/uploads/"+tok+"/complete", nil, nil, 201).Body).Decode(&rc)
	got, _ := io.ReadAll(f.signed(f.bob, "GET", "/api/v1/submissions/"+rc.ID, nil, 200).Body)
	if !bytes.Equal(got, ct) {
		t.Fatal("uploaded bytes differ")
	}
}

// TestBadInput sends each kind of bad request and checks the exact answer,
// and that nothing already stored is touched.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	keep := encrypt(t, []byte("kept"), f.alice)
	var rc api.Receipt
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/submissions?category=sea", nil, keep, 201).Body).Decode(&rc)

	good := encrypt(t, []byte("report"), f.alice, f.bob)
	// A file cut inside its last STREAM chunk, so that chunk would hold
	// less than one byte of plaintext: impossible for a whole age file.
	long := encrypt(t, make([]byte, 64<<10+10), f.alice, f.bob)
	cut := long[:len(long)-21]
	sig := signedHeader
	replayed := sig(f.alice, "GET", "/api/v1/inbox", nil, f.now)
	f.do("GET", "/api/v1/inbox", replayed, nil, 200)
	tampered := sig(f.alice, "GET", "/api/v1/inbox", nil, f.now)
	auth := tampered.Get("Authorization")
	i := strings.LastIndex(auth, "sig=") + 4
	raw, _ := base64.RawURLEncoding.DecodeString(auth[i:])
	raw[10] ^= 1
	tampered.Set("Authorization", auth[:i]+base64.RawURLEncoding.EncodeToString(raw))
	trunc, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: int64(len(good)) - 1})
	huge, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: 9 << 20})
	for _, tc := range []struct {
		name         string
		method, path string
		hdr          http.Header
		body         []byte
		status       int
		code         string
	}{
		{"not age", "POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, []byte("plain text report, not encrypted"), 400, "not_age"},
		{"too few stanzas", "POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, encrypt(t, []byte("r"), f.alice), 400, "wrong_recipients"},
		{"wrong handler", "POST", "/api/v1/desks/helpdesk/submissions?category=sea", nil, encrypt(t, []byte("r"), f.bob, f.alice, f.outsider), 400, "wrong_recipients"},
		{"truncated body", "POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, cut, 400, "bad_length"},
		{"oversize single", "POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, make([]byte, 257<<10), 413, "use_upload"},
		{"oversize upload", "POST", "/api/v1/desks/helpdesk/uploads", nil, huge, 413, "too_large"},
		{"unknown desk", "POST", "/api/v1/desks/nosuch/submissions", nil, good, 404, "unknown_desk"},
		{"unknown desk manifest", "GET", "/api/v1/desks/nosuch/manifest", nil, nil, 404, "unknown_desk"},
		{"unknown category", "POST", "/api/v1/desks/helpdesk/submissions?category=fraud", nil, good, 400, "unknown_category"},
		{"unsigned inbox", "GET", "/api/v1/inbox", nil, nil, 401, "unauthorized"},
		{"bad signature", "GET", "/api/v1/inbox", tampered, nil, 401, "unauthorized"},
		{"replayed signature", "GET", "/api/v1/inbox", replayed, nil, 401, "unauthorized"},
		{"stale signature", "GET", "/api/v1/inbox", sig(f.alice, "GET", "/api/v1/inbox", nil, f.now.Add(-10*time.Minute)), nil, 401, "unauthorized"},
		{"future signature", "GET", "/api/v1/inbox", sig(f.alice, "GET", "/api/v1/inbox", nil, f.now.Add(10*time.Minute)), nil, 401, "unauthorized"},
		{"signed for another path", "GET", "/api/v1/inbox", sig(f.alice, "GET", "/api/v1/inbox?all=1", nil, f.now), nil, 401, "unauthorized"},
		{"key not in manifest", "GET", "/api/v1/inbox", sig(f.outsider, "GET", "/api/v1/inbox", nil, f.now), nil, 401, "unauthorized"},
		{"handler publishing", "PUT", "/api/v1/admin/desks/helpdesk", sig(f.alice, "PUT", "/api/v1/admin/desks/helpdesk", f.manifest(5), f.now), f.manifest(5), 401, "unauthorized"},
		{"empty manifest", "PUT", "/api/v1/admin/desks/helpdesk", sig(f.admin, "PUT", "/api/v1/admin/desks/helpdesk", nil, f.now), nil, 400, "bad_manifest"},
		{"manifest for another desk path", "PUT", "/api/v1/admin/desks/other", sig(f.admin, "PUT", "/api/v1/admin/desks/other", f.manifest(9), f.now), f.manifest(9), 400, "bad_manifest"},
		{"declared length not a whole age file", "POST", "/api/v1/desks/helpdesk/uploads", nil, trunc, 201, ""},
		{"bad upload token", "GET", "/api/v1/uploads/AAAAAAAAAAAAAAAAAAAAAA", nil, nil, 404, "not_found"},
		{"unknown route", "GET", "/api/v1/nothing", nil, nil, 404, "not_found"},
		{"bad range", "GET", "/api/v1/submissions/" + rc.ID, func() http.Header {
			h := sig(f.alice, "GET", "/api/v1/submissions/"+rc.ID, nil, f.now)
			h.Set("Range", "bytes=99999-")
			return h
		}(), nil, 416, "bad_range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.do(tc.method, tc.path, tc.hdr, tc.body, tc.status)
			if tc.code != "" {
				if got := errCode(t, resp); got != tc.code {
					t.Fatalf("code %q, want %q", got, tc.code)
				}
			}
		})
	}
	// Publishing an older serial after a newer one is refused.
	f.publish(f.manifest(3), 200)
	if code := errCode(t, f.publish(f.manifest(2), 409)); code != "stale_serial" {
		t.Fatalf("old serial: %s", code)
	}
	// The submission stored before all this is intact.
	got, _ := io.ReadAll(f.signed(f.alice, "GET", "/api/v1/submissions/"+rc.ID, nil, 200).Body)
	if !bytes.Equal(got, keep) {
		t.Fatal("stored submission changed")
	}
}

func TestTruncatedUpload(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, bytes.Repeat([]byte("y"), 100<<10), f.alice, f.bob)
	// Declaring a length that leaves the last STREAM chunk with no room for
	// plaintext is refused at the first piece, before anything is stored.
	cut := int64(len(ct)) - (100<<10 - 64<<10 + 16) + 5
	body, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: cut})
	var st api.UploadState
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
	resp := f.do("PATCH", "/api/v1/uploads/"+st.Upload, http.Header{"Upload-Offset": {"0"}}, ct[:cut], 400)
	if code := errCode(t, resp); code != "bad_length" {
		t.Fatalf("code %s", code)
	}
	// A first piece too short to hold the header is refused too.
	body, _ = json.Marshal(api.CreateUpload{Category: "incident", Length: int64(len(ct))})
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
	resp = f.do("PATCH", "/api/v1/uploads/"+st.Upload, http.Header{"Upload-Offset": {"0"}}, ct[:40], 400)
	if code := errCode(t, resp); code != "not_age" {
		t.Fatalf("code %s", code)
	}
	// Too many bytes.
	f.do("PATCH", "/api/v1/uploads/"+st.Upload, http.Header{"Upload-Offset": {"0"}}, append(bytes.Clone(ct), 1, 2, 3), 400)
}

func TestRestartRefusesOldSignatures(t *testing.T) {
	f := newFixture(t)
	before := signedHeader(f.alice, "GET", "/api/v1/inbox", nil, f.now.Add(-30*time.Second))
	srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Combined())
	defer ts.Close()
	r, _ := http.NewRequest("GET", ts.URL+"/api/v1/inbox", nil)
	r.Header = before
	f.req(r, 401)
}

func TestNoSecretsInLogs(t *testing.T) {
	f := newFixture(t)
	ct := encrypt(t, []byte("MARKER-report-text"), f.alice, f.bob)
	body, _ := json.Marshal(api.CreateUpload{Category: "incident", Length: int64(len(ct))})
	var st api.UploadState
	json.NewDecoder(f.do("POST", "/api/v1/desks/helpdesk/uploads", nil, body, 201).Body).Decode(&st)
	f.do("PATCH", "/api/v1/uploads/"+st.Upload, http.Header{"Upload-Offset": {"0"}}, ct, 200)
	var rc api.Receipt
	json.NewDecoder(f.do("POST", "/api/v1/uploads/"+st.Upload+"/complete", nil, nil, 201).Body).Decode(&rc)
	f.signed(f.alice, "GET", "/api/v1/submissions/"+rc.ID, nil, 200)
	all := strings.Join(f.logs, "\n")
	for _, secret := range []string{st.Upload, rc.ID, "127.0.0.1", f.alice.Card().KeyID(), "MARKER"} {
		if strings.Contains(all, secret) {
			t.Errorf("log contains %q:\n%s", secret, all)
		}
	}
	if len(f.logs) == 0 {
		t.Error("no log lines at all")
	}
}

func TestHTTPErrorsLoseAddresses(t *testing.T) {
	var got []string
	s := &scrubber{eventf: func(f string, a ...any) { got = append(got, fmt.Sprintf(f, a...)) }}
	s.Write([]byte("http: panic serving 203.0.113.7:53122: boom\n"))
	s.Write([]byte("http: Accept error: [2001:db8::1]:443 refused; also 10.0.0.1 and abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion"))
	all := strings.Join(got, "\n")
	for _, leak := range []string{"203.0.113.7", "53122", "2001:db8", "10.0.0.1", ".onion"} {
		if strings.Contains(all, leak) {
			t.Errorf("scrubbed line still has %q: %s", leak, all)
		}
	}
	if !strings.Contains(all, "boom") {
		t.Errorf("the error itself was lost: %s", all)
	}
}

func TestAdminIsNotAHandler(t *testing.T) {
	f := newFixture(t)
	f.signed(f.admin, "GET", "/api/v1/inbox", nil, 401)
	f.signed(f.alice, "PUT", "/api/v1/admin/desks/helpdesk", f.manifest(2), 401)
}
