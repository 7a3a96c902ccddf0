package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
)

// journalFixture is the relay fixture with carol, a coordinator of the
// desk on no category's route, and a desk that names her: "incident"
// reaches alice and bob, "sea" alice alone, and a report with no category
// goes to "incident".
type journalFixture struct {
	*fixture
	carol   *crypto.Identity
	classic *crypto.Identity // a key of another stanza type, in no manifest
}

func newJournalFixture(t *testing.T) *journalFixture {
	t.Helper()
	return newJournalFixtureWith(t, newFixture(t))
}

// newJournalFixtureWith makes f a journal fixture.
func newJournalFixtureWith(t *testing.T, f *fixture) *journalFixture {
	t.Helper()
	carol, err := crypto.GenerateIdentity("carol", true)
	if err != nil {
		t.Fatal(err)
	}
	classic, err := crypto.GenerateIdentity("classic", false)
	if err != nil {
		t.Fatal(err)
	}
	j := &journalFixture{fixture: f, carol: carol, classic: classic}
	j.publishJournal(2, []string{"carol"})
	return j
}

func (j *journalFixture) publishJournal(serial uint64, coordinators []string) {
	j.t.Helper()
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: serial,
		Handlers: []string{j.alice.Card().String(), j.bob.Card().String(), j.carol.Card().String()},
		Categories: []crypto.Category{
			{ID: "incident", Title: "Incident", Handlers: []string{"alice", "bob"}},
			{ID: "sea", Title: "SEA", Handlers: []string{"alice"}},
		},
		DefaultRoute: "incident", Coordinators: coordinators,
		Limits: crypto.Limits{MaxSubmissionBytes: 8 << 20}}
	env, err := crypto.SignManifest(m, j.admin.SigningKey())
	if err != nil {
		j.t.Fatal(err)
	}
	j.publish(env, 200)
}

// sealTo is an age file of plain to the cards of ids, then of cards.
func sealTo(t *testing.T, plain []byte, ids []*crypto.Identity, cards ...*crypto.Card) []byte {
	t.Helper()
	for _, id := range ids {
		cards = append(cards, id.Card())
	}
	b, err := crypto.SealEvent(cards, plain)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventsPath(query string) string { return "/api/v1/desks/helpdesk/events?" + query }

// TestEventPostRouting posts every kind of part, right and wrong: who may
// post, to whom, and which stanzas the age header must have.
func TestEventPostRouting(t *testing.T) {
	j := newJournalFixture(t)
	a, b, c, o := j.alice, j.bob, j.carol, j.outsider
	ev := []byte(`{"schema":"amana-event/v1","marker":"MARKER-EVENT-TEXT"}`)
	ids := func(xs ...*crypto.Identity) []*crypto.Identity { return xs }
	for _, tc := range []struct {
		name   string
		author *crypto.Identity
		query  string
		to     []*crypto.Identity // recipients of the ciphertext
		body   []byte             // when not nil, the body instead
		status int
		code   string
	}{
		{"case part to the route", a, "category=incident&part=case", ids(a, b), nil, 201, ""},
		{"case part, route in another order", a, "category=incident&part=case", ids(b, a), nil, 201, ""},
		{"case part of the default route", b, "part=case", ids(a, b), nil, 201, ""},
		{"case part of the empty category named", b, "category=&part=case", ids(a, b), nil, 201, ""},
		{"case part, a stanza missing", a, "category=incident&part=case", ids(a), nil, 400, "wrong_recipients"},
		{"case part, a stanza extra", a, "category=incident&part=case", ids(a, b, c), nil, 400, "wrong_recipients"},
		{"case part, stanzas of another type", a, "category=incident&part=case", nil, encrypt(t, ev, j.classic, j.classic), 400, "wrong_recipients"},
		{"case part, not age", a, "category=incident&part=case", nil, []byte("MARKER-EVENT-TEXT not encrypted"), 400, "not_age"},
		{"case part by a handler off the route", b, "category=sea&part=case", ids(a), nil, 403, "not_on_route"},
		{"case part by a coordinator off the route", c, "category=incident&part=case", ids(a, b), nil, 403, "not_on_route"},
		{"case part by an outsider", o, "category=incident&part=case", ids(a, b), nil, 401, "unauthorized"},
		{"case part of an unknown category", a, "category=nope&part=case", ids(a, b), nil, 400, "unknown_category"},
		{"facts part to the coordinators", a, "category=sea&part=facts", ids(c), nil, 201, ""},
		{"facts part to the route as well", a, "category=incident&part=facts", ids(a, b, c), nil, 400, "wrong_recipients"},
		{"facts part to nobody's stanza", a, "category=incident&part=facts", ids(a, c), nil, 400, "wrong_recipients"},
		{"facts part by a handler off the route", b, "category=sea&part=facts", ids(c), nil, 403, "not_on_route"},
		{"share to a handler on the route", a, "category=incident&part=share&to=" + b.Card().KeyID(), ids(b), nil, 201, ""},
		{"share to a handler off the route", a, "category=sea&part=share&to=" + b.Card().KeyID(), ids(b), nil, 400, "share_not_on_route"},
		{"share to a coordinator off the route", a, "category=incident&part=share&to=" + c.Card().KeyID(), ids(c), nil, 400, "share_not_on_route"},
		{"share to an outsider", a, "category=incident&part=share&to=" + o.Card().KeyID(), ids(o), nil, 400, "share_not_on_route"},
		{"share to oneself", a, "category=incident&part=share&to=" + a.Card().KeyID(), ids(a), nil, 400, "share_not_on_route"},
		{"share with two stanzas", a, "category=incident&part=share&to=" + b.Card().KeyID(), ids(a, b), nil, 400, "wrong_recipients"},
		{"share naming nobody", a, "category=incident&part=share", ids(b), nil, 400, "bad_request"},
		{"case part naming a to", a, "category=incident&part=case&to=" + b.Card().KeyID(), ids(a, b), nil, 400, "bad_request"},
		{"no part", a, "category=incident", ids(a, b), nil, 400, "bad_request"},
		{"two parts", a, "category=incident&part=case&part=case", ids(a, b), nil, 400, "bad_request"},
		{"unknown part", a, "category=incident&part=note", ids(a, b), nil, 400, "bad_request"},
		{"two categories", a, "category=incident&category=sea&part=case", ids(a, b), nil, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = sealTo(t, ev, tc.to)
			}
			resp := j.signed(tc.author, "POST", eventsPath(tc.query), body, tc.status)
			if tc.status != 201 {
				if code := errCode(t, resp); code != tc.code {
					t.Fatalf("code %q, want %q", code, tc.code)
				}
				return
			}
			var p api.EventPosted
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || !api.ValidID(p.ID) {
				t.Fatalf("answer %+v: %v", p, err)
			}
		})
	}
	for _, l := range j.logs {
		if strings.Contains(l, "MARKER") {
			t.Fatalf("the relay logged a body: %q", l)
		}
	}

	// A desk with no coordinators has no facts part.
	j.publishJournal(3, nil)
	resp := j.signed(a, "POST", eventsPath("category=incident&part=facts"), sealTo(t, ev, ids(c)), 404)
	if code := errCode(t, resp); code != "no_coordinators" {
		t.Fatalf("facts to a desk without coordinators: %q", code)
	}
}

// listEvents is who's whole event listing.
func (j *journalFixture) listEvents(who *crypto.Identity) []api.Item {
	j.t.Helper()
	var in api.Inbox
	if err := json.NewDecoder(j.signed(who, "GET", "/api/v1/events", nil, 200).Body).Decode(&in); err != nil {
		j.t.Fatal(err)
	}
	if in.Next != "" {
		j.t.Fatalf("a second page of events: %+v", in)
	}
	return in.Submissions
}

func kinds(items []api.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Kind)
	}
	slices.Sort(out)
	return out
}

// TestEventDelivery: each recipient lists only the events routed to it,
// downloads them byte for byte, and acks them away; an event is deleted
// once every live recipient acked, and then no one lists it.
func TestEventDelivery(t *testing.T) {
	j := newJournalFixture(t)
	a, b, c := j.alice, j.bob, j.carol
	plain := []byte(`{"schema":"amana-event/v1"}`)
	caseCT := sealTo(t, plain, []*crypto.Identity{a, b})
	factsCT := sealTo(t, plain, []*crypto.Identity{c})
	shareCT := sealTo(t, plain, []*crypto.Identity{a})
	j.signed(a, "POST", eventsPath("category=incident&part=case"), caseCT, 201)
	j.signed(a, "POST", eventsPath("category=incident&part=facts"), factsCT, 201)
	j.signed(b, "POST", eventsPath("category=incident&part=share&to="+a.Card().KeyID()), shareCT, 201)
	// A report's submission is not an event: the inbox and the events are apart.
	j.do("POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, encrypt(t, []byte("report"), a, b), 201)

	for _, tc := range []struct {
		who   *crypto.Identity
		kinds []string
		ct    map[string][]byte
	}{
		{a, []string{api.KindShare}, map[string][]byte{api.KindShare: shareCT}},
		{b, []string{api.KindEvent}, map[string][]byte{api.KindEvent: caseCT}},
		{c, []string{api.KindFacts}, map[string][]byte{api.KindFacts: factsCT}},
		{j.outsider, nil, nil},
	} {
		if tc.who == j.outsider {
			j.signed(tc.who, "GET", "/api/v1/events", nil, 401)
			continue
		}
		items := j.listEvents(tc.who)
		if !slices.Equal(kinds(items), tc.kinds) {
			t.Fatalf("%s lists %v, want %v", tc.who.Name(), kinds(items), tc.kinds)
		}
		for _, it := range items {
			if it.Desk != "helpdesk" || it.Category != "incident" || it.Size != int64(len(tc.ct[it.Kind])) {
				t.Fatalf("%s: item %+v", tc.who.Name(), it)
			}
			resp := j.signed(tc.who, "GET", "/api/v1/events/"+it.ID, nil, 200)
			got, _ := io.ReadAll(resp.Body)
			if !bytes.Equal(got, tc.ct[it.Kind]) || resp.Header.Get("Amana-SHA256") != it.SHA256 {
				t.Fatalf("%s: downloaded %d bytes, sha256 %s", tc.who.Name(), len(got), resp.Header.Get("Amana-SHA256"))
			}
			// No one else reads it, nor acks it.
			for _, other := range []*crypto.Identity{a, b, c} {
				if other != tc.who && (it.Kind != api.KindEvent || other == c) {
					j.signed(other, "GET", "/api/v1/events/"+it.ID, nil, 404)
					j.signed(other, "POST", "/api/v1/events/"+it.ID+"/ack", nil, 404)
				}
			}
			var ack api.Ack
			json.NewDecoder(j.signed(tc.who, "POST", "/api/v1/events/"+it.ID+"/ack", nil, 200).Body).Decode(&ack)
			if !ack.Deleted || len(ack.Waiting) != 0 {
				t.Fatalf("%s: ack %+v: every recipient has it now", tc.who.Name(), ack)
			}
			j.signed(tc.who, "GET", "/api/v1/events/"+it.ID, nil, 404)
		}
		if left := j.listEvents(tc.who); len(left) != 0 {
			t.Fatalf("%s still lists %d events", tc.who.Name(), len(left))
		}
	}
	if st, _ := j.spool.Stats(); st.Events != 0 || st.Submissions != 1 {
		t.Fatalf("after every ack: %+v", st)
	}
}

// TestEventAckWaits: a case event to three handlers waits for each but its
// author, and not for a handler the desk removed.
func TestEventAckWaits(t *testing.T) {
	j := newJournalFixture(t)
	a, b, c := j.alice, j.bob, j.carol
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 3,
		Handlers: []string{a.Card().String(), b.Card().String(), c.Card().String()}, Limits: crypto.Limits{MaxSubmissionBytes: 8 << 20}}
	env, err := crypto.SignManifest(m, j.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	j.publish(env, 200)
	j.signed(a, "POST", eventsPath("part=case"), sealTo(t, []byte("{}"), []*crypto.Identity{a, b, c}), 201)
	items := j.listEvents(b)
	if len(items) != 1 || len(j.listEvents(a)) != 0 {
		t.Fatalf("bob lists %+v", items)
	}
	var ack api.Ack
	json.NewDecoder(j.signed(b, "POST", "/api/v1/events/"+items[0].ID+"/ack", nil, 200).Body).Decode(&ack)
	if ack.Deleted || !slices.Equal(ack.Waiting, []string{c.Card().KeyID()}) {
		t.Fatalf("bob's ack %+v, want carol waited for", ack)
	}
	if len(j.listEvents(b)) != 0 || len(j.listEvents(c)) != 1 {
		t.Fatal("an acked event is listed again, or carol's is gone")
	}
	// carol leaves the desk: no one is left waiting, and carol no longer
	// reads it. bob's ack again deletes it.
	m.Serial, m.Handlers = 4, m.Handlers[:2]
	if env, err = crypto.SignManifest(m, j.admin.SigningKey()); err != nil {
		t.Fatal(err)
	}
	var info api.DeskInfo
	json.NewDecoder(j.publish(env, 200).Body).Decode(&info)
	if info.Exposure == nil || info.Exposure.Events != 1 || info.Exposure.RemovedKeys != 1 {
		t.Fatalf("exposure %+v: one event waits encrypted to carol's key", info.Exposure)
	}
	json.NewDecoder(j.signed(b, "POST", "/api/v1/events/"+items[0].ID+"/ack", nil, 200).Body).Decode(&ack)
	if !ack.Deleted {
		t.Fatalf("ack %+v after carol left", ack)
	}
}

// TestEventReplayAndSize: a captured event post cannot be replayed, and a
// body declared larger than api.MaxEvent is refused before a byte of it is
// read.
func TestEventReplayAndSize(t *testing.T) {
	j := newJournalFixture(t)
	path := eventsPath("category=incident&part=case")
	body := sealTo(t, []byte("{}"), []*crypto.Identity{j.alice, j.bob})
	hdr := signedHeader(j.alice, "POST", path, body, j.now)
	j.do("POST", path, hdr, body, 201)
	if code := errCode(t, j.do("POST", path, hdr, body, 401)); code != "unauthorized" {
		t.Fatalf("replay: %q", code)
	}
	if n := len(j.listEvents(j.bob)); n != 1 {
		t.Fatalf("bob lists %d events after a replay, want 1", n)
	}

	for _, tc := range []struct {
		name   string
		length int64
		status int
		read   bool
	}{
		{"one byte over the bound", api.MaxEvent + 1, 401, false},
		{"16 MiB", 16 << 20, 401, false},
		{"at the bound, not age", api.MaxEvent, 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			big := make([]byte, tc.length)
			r := httptest.NewRequest("POST", path, nil)
			r.Header = signedHeader(j.alice, "POST", path, big, j.now)
			r.ContentLength = tc.length
			wb := &watchedBody{r: bytes.NewReader(big)}
			r.Body = wb
			rec := httptest.NewRecorder()
			j.srv.Handlers().ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if (wb.reads > 0) != tc.read {
				t.Fatalf("the relay read the body %d times; want read %v", wb.reads, tc.read)
			}
		})
	}
}

// TestEventRetention: an event is kept for the desk's keep_unacked_days
// and waits for every live route, whatever the desk's after_first_ack:
// one colleague's ack must not lose it for a handler who is away (the
// spool's tests sweep it).
func TestEventRetention(t *testing.T) {
	j := newJournalFixture(t)
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 3,
		Handlers:  []string{j.alice.Card().String(), j.bob.Card().String()},
		Retention: crypto.Retention{KeepUnackedDays: 7, DeleteAfterAckHours: 5, AfterFirstAck: true},
		Limits:    crypto.Limits{MaxSubmissionBytes: 8 << 20}}
	env, err := crypto.SignManifest(m, j.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	j.publish(env, 200)
	before := time.Now()
	j.signed(j.alice, "POST", eventsPath("part=case"), sealTo(t, []byte("{}"), []*crypto.Identity{j.alice, j.bob}), 201)
	evs, err := j.spool.Events(nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("%d events: %v", len(evs), err)
	}
	ev := evs[0]
	week := 7 * 24 * time.Hour
	if ev.KeepUntil.Before(before.Add(week)) || ev.KeepUntil.After(time.Now().Add(week+2*time.Hour)) || ev.DeleteAfterAck != 0 {
		t.Fatalf("kept until %v, %v after the first ack; want a week, and no deletion after the first ack", ev.KeepUntil, ev.DeleteAfterAck)
	}
	if !slices.Equal(ev.Acks, []string{j.alice.Card().KeyID()}) || !ev.FirstAck.IsZero() {
		t.Fatalf("acks %v, first ack %v: the author's own starts no clock", ev.Acks, ev.FirstAck)
	}
}

// TestEventClient: the Go client's event methods against the relay.
func TestEventClient(t *testing.T) {
	j := newJournalFixture(t)
	ctx := context.Background()
	as := func(id *crypto.Identity) *client.Client {
		c, err := client.New(j.ts.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Key, c.Now = id.SigningKey(), func() time.Time { return j.now }
		return c
	}
	alice, bob, carol := as(j.alice), as(j.bob), as(j.carol)
	ct := sealTo(t, []byte("{}"), []*crypto.Identity{j.alice, j.bob})
	id, err := alice.PostEvent(ctx, "helpdesk", "incident", api.PartCase, "", ct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PostEvent(ctx, "helpdesk", "incident", api.PartFacts, "", sealTo(t, []byte("{}"), []*crypto.Identity{j.carol})); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PostEvent(ctx, "helpdesk", "incident", api.PartShare, j.bob.Card().KeyID(), sealTo(t, []byte("{}"), []*crypto.Identity{j.bob})); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if _, err := bob.PostEvent(ctx, "helpdesk", "sea", api.PartCase, "", sealTo(t, []byte("{}"), []*crypto.Identity{j.alice})); !errors.As(err, &ce) || ce.Body.Code != "not_on_route" {
		t.Fatalf("bob posting off his route: %v", err)
	}
	items, err := bob.Events(ctx)
	if err != nil || !slices.Equal(kinds(items), []string{api.KindEvent, api.KindShare}) {
		t.Fatalf("bob's events %+v: %v", items, err)
	}
	for _, it := range items {
		b, err := bob.DownloadEvent(ctx, it.ID)
		sum := sha256.Sum256(b)
		if err != nil || int64(len(b)) != it.Size || hex.EncodeToString(sum[:]) != it.SHA256 || it.ID == id && !bytes.Equal(b, ct) {
			t.Fatalf("download of %s: %d bytes, %v", it.Kind, len(b), err)
		}
		if a, err := bob.AckEvent(ctx, it.ID); err != nil || !a.Deleted {
			t.Fatalf("ack of %s: %+v %v", it.Kind, a, err)
		}
	}
	if _, err := carol.DownloadEvent(ctx, id); !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("carol downloading the case part: %v", err)
	}
	if items, err := carol.Events(ctx); err != nil || len(items) != 1 || items[0].Kind != api.KindFacts {
		t.Fatalf("carol's events %+v: %v", items, err)
	}
}

// TestEventRateLimit: each handler key posts events from its own token
// bucket, checked once the signature verifies; past it the key is told
// 429 busy with a hint, other keys are not, and the bucket refills.
func TestEventRateLimit(t *testing.T) {
	for _, tc := range []struct {
		rate, burst int
		want        *keyLimits[string] // nil: off
	}{
		{0, 0, newKeyLimits[string](DefaultEventRate, DefaultEventBurst)},
		{5, 7, newKeyLimits[string](5, 7)},
		{-1, 0, nil},
	} {
		f := newFixture(t)
		srv, err := New(f.spool, Config{Admin: f.admin.Card().SignKey, EventRate: tc.rate, EventBurst: tc.burst})
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.eventPosts; (got == nil) != (tc.want == nil) || got != nil && (got.rate != tc.want.rate || got.burst != tc.want.burst) {
			t.Errorf("EventRate %d, EventBurst %d: limits %+v, want %+v", tc.rate, tc.burst, got, tc.want)
		}
	}

	j := newJournalFixture(t)
	j.srv.eventPosts = newKeyLimits[string](1, 2) // the fixture's clock stands still
	post := func(who *crypto.Identity, status int) {
		t.Helper()
		body := sealTo(t, []byte("{}"), []*crypto.Identity{j.alice, j.bob})
		resp := j.signed(who, "POST", eventsPath("category=incident&part=case"), body, status)
		if status == 429 {
			if code := errCode(t, resp); code != "busy" {
				t.Fatalf("code %q, want busy", code)
			}
		}
	}
	post(j.alice, 201)
	post(j.alice, 201)
	post(j.alice, 429)
	post(j.bob, 201)
	j.now = j.now.Add(time.Second)
	post(j.alice, 201)
	post(j.alice, 429)
	// Listing is not limited by it.
	if n := len(j.listEvents(j.bob)); n != 3 {
		t.Fatalf("bob lists %d events, want 3", n)
	}
}

// TestEventSpecErrorIsInternal: a spec the relay should never make is an
// internal error, not a full disk.
func TestEventSpecErrorIsInternal(t *testing.T) {
	f := newFixture(t)
	_, err := f.spool.PutEvent(store.EventSpec{Desk: "helpdesk", Kind: store.KindEvent}, []byte("x"))
	if err == nil {
		t.Fatal("an event with no routes was stored")
	}
	w := httptest.NewRecorder()
	f.srv.storeError(w, err)
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"internal"`) {
		t.Fatalf("answer %d %s", w.Code, w.Body)
	}
}

// TestEventExposure: a publication that removes a key counts the desk's
// events routed to it (without loading them all).
func TestEventExposure(t *testing.T) {
	j := newJournalFixture(t)
	for i := 0; i < 3; i++ {
		j.signed(j.alice, "POST", eventsPath("category=incident&part=case"), sealTo(t, []byte("{}"), []*crypto.Identity{j.alice, j.bob}), 201)
	}
	j.signed(j.alice, "POST", eventsPath("category=sea&part=facts"), sealTo(t, []byte("{}"), []*crypto.Identity{j.carol}), 201)
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 3,
		Handlers:   []string{j.alice.Card().String(), j.carol.Card().String()},
		Categories: []crypto.Category{{ID: "incident", Title: "Incident", Handlers: []string{"alice"}}},
		Limits:     crypto.Limits{MaxSubmissionBytes: 8 << 20}}
	env, err := crypto.SignManifest(m, j.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	var info api.DeskInfo
	json.NewDecoder(j.publish(env, 200).Body).Decode(&info)
	if info.Exposure == nil || info.Exposure.Events != 3 {
		t.Fatalf("exposure %+v, want 3 events", info.Exposure)
	}
}

// TestEventFloodLeavesSubmissions: a handler key that floods a desk with
// events fills the desk's event quota, and is told 507, but the desk
// still takes submissions up to its whole desk quota, which the events
// did not touch.
func TestEventFloodLeavesSubmissions(t *testing.T) {
	j := newJournalFixtureWith(t, newFixtureWith(t, store.Options{Quota: 4 << 20, DeskQuota: 256 << 10, EventQuota: 64 << 10}))
	body := sealTo(t, bytes.Repeat([]byte("e"), 8<<10), []*crypto.Identity{j.alice, j.bob})
	n := 0
	for ; n < 20; n++ {
		resp := j.signed(j.alice, "POST", eventsPath("category=incident&part=case"), body, anyStatus)
		if resp.StatusCode == 507 {
			if code := errCode(t, resp); code != "storage_full" {
				t.Fatalf("code %q", code)
			}
			break
		}
		if resp.StatusCode != 201 {
			t.Fatalf("event %d: status %d", n, resp.StatusCode)
		}
	}
	if n == 0 || n == 20 {
		t.Fatalf("%d events fit in an event quota of 64 KiB", n)
	}
	sub := encrypt(t, bytes.Repeat([]byte("s"), 200<<10), j.alice, j.bob)
	j.do("POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, sub, 201)
}
