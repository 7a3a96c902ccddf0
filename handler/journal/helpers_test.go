package journal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
)

// world is a desk of handlers, each with a case store and a journal, and
// a fake relay between them.
//
// Handlers: alice, bob, carol on the general category (the default route);
// alice and bob alone on restricted; dave is the coordinator, on no route.
type world struct {
	t        *testing.T
	ids      map[string]*crypto.Identity
	trust    *trust
	relay    *fakeRelay
	journals map[string]*Journal
	stores   map[string]*cases.Store
	dirs     map[string]string
	clock    time.Time
}

var handlerNames = []string{"alice", "bob", "carol", "dave"}

var (
	identMu    sync.Mutex
	identCache = map[string]*crypto.Identity{}
)

// ident is a classic identity per name, made once per test binary.
func ident(t testing.TB, name string) *crypto.Identity {
	identMu.Lock()
	defer identMu.Unlock()
	if id, ok := identCache[name]; ok {
		return id
	}
	id, err := crypto.GenerateIdentity(name, true)
	if err != nil {
		t.Fatal(err)
	}
	identCache[name] = id
	return id
}

func manifest(t testing.TB, serial uint64, names []string, coordinators []string) *crypto.Manifest {
	m := &crypto.Manifest{Version: 1, Desk: "d", Title: "Desk", Serial: serial, DefaultRoute: "general", Coordinators: coordinators}
	var general, restricted []string
	for _, n := range names {
		m.Handlers = append(m.Handlers, ident(t, n).Card().String())
		if n != "dave" {
			general = append(general, n)
		}
		if n == "alice" || n == "bob" {
			restricted = append(restricted, n)
		}
	}
	m.Categories = []crypto.Category{{ID: "general", Title: "General", Handlers: general}, {ID: "restricted", Title: "Restricted", Handlers: restricted}}
	if err := m.Normalize(); err != nil {
		t.Fatal(err)
	}
	return m
}

type trust struct {
	mu sync.Mutex
	m  map[string]*crypto.Manifest
}

func (tr *trust) Manifest(desk string) (*crypto.Manifest, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if m, ok := tr.m[desk]; ok {
		return m, nil
	}
	return nil, fmt.Errorf("desk %q is not trusted", desk)
}

func (tr *trust) set(m *crypto.Manifest) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.m[m.Desk] = m
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, ids: map[string]*crypto.Identity{}, journals: map[string]*Journal{}, stores: map[string]*cases.Store{},
		dirs: map[string]string{}, clock: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	w.trust = &trust{m: map[string]*crypto.Manifest{}}
	w.trust.set(manifest(t, 1, handlerNames, []string{"dave"}))
	w.relay = newFakeRelay(w.trust)
	root := t.TempDir()
	for _, n := range handlerNames {
		w.ids[n] = ident(t, n)
		w.dirs[n] = filepath.Join(root, n)
		w.reopen(n)
	}
	return w
}

// reopen opens a handler's journal again, as a new process would.
func (w *world) reopen(n string) *Journal {
	st, err := cases.Open(w.dirs[n])
	if err != nil {
		w.t.Fatal(err)
	}
	j, err := Open(st, w.ids[n])
	if err != nil {
		w.t.Fatal(err)
	}
	j.now = func() time.Time { return w.clock }
	w.stores[n], w.journals[n] = st, j
	return j
}

func (w *world) key(n string) string { return w.ids[n].Card().KeyID() }

func (w *world) name(key string) string {
	for n, id := range w.ids {
		if id.Card().KeyID() == key {
			return n
		}
	}
	return key
}

// tick moves the shared clock on.
func (w *world) tick(d time.Duration) { w.clock = w.clock.Add(d) }

type testCase struct {
	id, sha, category string
	ct                []byte
}

// newCase seals a report in category and stores it in the case store of
// every handler on its route (as pull would, with the category learnt when
// learn is set).
func (w *world) newCase(category string, learn bool) *testCase {
	return w.newCaseAt(category, learn, nil)
}

// newCaseAt is newCase storing the case only with the handlers named
// (nil: all of its route).
func (w *world) newCaseAt(category string, learn bool, at []string) *testCase {
	m, _ := w.trust.Manifest("d")
	route, err := m.Route(category)
	if err != nil {
		w.t.Fatal(err)
	}
	r := &crypto.Report{Desk: "d", Category: category, Submitted: crypto.SubmittedAt(w.clock), SealedBy: crypto.SealedByClient,
		Answers: []crypto.Answer{{Field: "message", Value: "report text"}}}
	rd, _, err := crypto.SealBundle(route, r, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	ct, err := io.ReadAll(rd)
	if err != nil {
		w.t.Fatal(err)
	}
	idb := make([]byte, 16)
	rand.Read(idb)
	sum := sha256.Sum256(ct)
	c := &testCase{id: hex.EncodeToString(idb), sha: hex.EncodeToString(sum[:]), category: category, ct: ct}
	for _, card := range route {
		if n := w.name(card.KeyID()); at == nil || slices.Contains(at, n) {
			w.store(n, c, learn)
		}
	}
	return c
}

func (w *world) store(n string, c *testCase, learn bool) {
	meta := cases.Meta{ID: c.id, Relay: "r", Desk: "d", Category: c.category, Size: int64(len(c.ct)), SHA256: c.sha,
		Received: "2026-12-01T09:00:00Z"}
	if learn {
		cat := c.category
		meta.ReportCategory = &cat
	}
	err := w.stores[n].Receive(meta, func(off int64, wr io.Writer) error {
		_, err := wr.Write(c.ct[off:])
		return err
	}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) record(n string, c *testCase, ch crypto.Change) *crypto.Event {
	w.t.Helper()
	e, err := w.journals[n].Record(context.Background(), w.relay.as(w.key(n)), w.trust, c.id, ch)
	if err != nil {
		w.t.Fatalf("%s records %+v: %v", n, ch, err)
	}
	return e
}

func (w *world) sync(n string) *SyncResult {
	w.t.Helper()
	res, err := w.journals[n].Sync(context.Background(), w.relay.as(w.key(n)), w.trust)
	if err != nil {
		w.t.Fatalf("%s syncs: %v", n, err)
	}
	return res
}

func (w *world) state(n string, c *testCase) *State {
	w.t.Helper()
	s, err := w.journals[n].State(w.trust, c.id)
	if err != nil {
		w.t.Fatalf("%s's state of the case: %v", n, err)
	}
	return s
}

// craft builds, signs and seals an event by author (not through Record),
// for the accept rules; mut changes it before signing, resign false keeps
// the signature of the event before mut.
func (w *world) craft(author string, c *testCase, seq uint64, prev string, ch crypto.Change, mut func(*crypto.Event)) (*crypto.Event, []byte) {
	w.t.Helper()
	e := &crypto.Event{Desk: "d", Case: c.id, CaseSHA256: c.sha, Category: c.category, Seq: seq, Clock: seq, Prev: prev,
		Time: crypto.EventTime(w.clock), Change: ch}
	if err := crypto.SignEvent(e, w.ids[author]); err != nil {
		w.t.Fatal(err)
	}
	if mut != nil {
		mut(e)
	}
	js, err := crypto.MarshalEvent(e)
	if err != nil {
		w.t.Fatal(err)
	}
	return e, js
}

// seal seals an event's JSON to a category's route.
func (w *world) seal(category string, js []byte) []byte {
	m, _ := w.trust.Manifest("d")
	route, err := m.Route(category)
	if err != nil {
		w.t.Fatal(err)
	}
	ct, err := crypto.SealEvent(route, js)
	if err != nil {
		w.t.Fatal(err)
	}
	return ct
}

// fakeRelay keeps events in memory and lists them to the keys they are
// routed to, like the relay; it also lets a test misbehave as a malicious
// relay would: drop, reorder, duplicate, replay and swap events, and fail.
type fakeRelay struct {
	mu     sync.Mutex
	trust  Trust
	next   int
	blobs  map[string]*blob
	order  []string
	posted int
	// Failure injection: called before each operation; an error fails it.
	fail func(op, id string) error
	// list, when set, rewrites what Events returns to a key.
	list func(key string, items []api.Item) []api.Item
	// afterAck, when set, runs after each acknowledgement.
	afterAck func()
}

type blob struct {
	item   api.Item
	part   string
	ct     []byte
	routes map[string]bool // key ID -> acked
}

func newFakeRelay(t Trust) *fakeRelay { return &fakeRelay{trust: t, blobs: map[string]*blob{}} }

// as is the relay as one handler's client sees it.
func (f *fakeRelay) as(key string) Relay { return &fakeClient{f: f, key: key} }

func (f *fakeRelay) check(op, id string) error {
	if f.fail != nil {
		return f.fail(op, id)
	}
	return nil
}

// inject stores a blob as if author had posted it.
func (f *fakeRelay) inject(author, desk, category, part, to string, ct []byte) (string, error) {
	m, err := f.trust.Manifest(desk)
	if err != nil {
		return "", err
	}
	var cards []*crypto.Card
	switch part {
	case PartCase:
		cards, err = m.Route(category)
	case PartFacts:
		cards = m.CoordinatorCards()
	case PartShare:
		cards = []*crypto.Card{m.Handler(to)}
	}
	if err != nil || len(cards) == 0 || cards[0] == nil {
		return "", errors.New("fake relay: no route")
	}
	f.next++
	id := fmt.Sprintf("%032x", f.next)
	kind := map[string]string{PartCase: kindEvent, PartFacts: kindFacts, PartShare: kindShare}[part]
	sum := sha256.Sum256(ct)
	b := &blob{item: api.Item{ID: id, Desk: desk, Category: category, Kind: kind, Size: int64(len(ct)), SHA256: hex.EncodeToString(sum[:]),
		Received: "2026-12-01T09:00:00Z"}, part: part, ct: ct, routes: map[string]bool{}}
	for _, c := range cards {
		b.routes[c.KeyID()] = c.KeyID() == author
	}
	f.blobs[id] = b
	f.order = append(f.order, id)
	f.posted++
	return id, nil
}

// pending lists the blob IDs not yet acked by key.
func (f *fakeRelay) pending(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range f.order {
		if acked, ok := f.blobs[id].routes[key]; ok && !acked {
			out = append(out, id)
		}
	}
	return out
}

type fakeClient struct {
	f   *fakeRelay
	key string
}

func (c *fakeClient) PostEvent(ctx context.Context, desk, category, part, to string, ct []byte) (string, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.f.check("post", part); err != nil {
		return "", err
	}
	return c.f.inject(c.key, desk, category, part, to, ct)
}

func (c *fakeClient) Events(ctx context.Context) ([]api.Item, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.f.check("list", ""); err != nil {
		return nil, err
	}
	var out []api.Item
	for _, id := range c.f.order {
		b := c.f.blobs[id]
		if acked, ok := b.routes[c.key]; ok && !acked {
			out = append(out, b.item)
		}
	}
	if c.f.list != nil {
		out = c.f.list(c.key, slices.Clone(out))
	}
	return out, nil
}

func (c *fakeClient) DownloadEvent(ctx context.Context, id string) ([]byte, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.f.check("download", id); err != nil {
		return nil, err
	}
	b, ok := c.f.blobs[id]
	if !ok {
		return nil, errors.New("fake relay: no such event")
	}
	return slices.Clone(b.ct), nil
}

func (c *fakeClient) AckEvent(ctx context.Context, id string) (api.Ack, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if err := c.f.check("ack", id); err != nil {
		return api.Ack{}, err
	}
	b, ok := c.f.blobs[id]
	if !ok {
		return api.Ack{}, errors.New("fake relay: no such event")
	}
	if _, ok := b.routes[c.key]; !ok {
		return api.Ack{}, errors.New("fake relay: not routed to the caller")
	}
	b.routes[c.key] = true
	if c.f.afterAck != nil {
		c.f.afterAck()
	}
	return api.Ack{}, nil
}

// savedRelay is a fake relay's state on disk, for a child process.
type savedRelay struct {
	Next  int
	Order []string
	Blobs map[string]*savedBlob
}

type savedBlob struct {
	Item   api.Item
	Part   string
	CT     []byte
	Routes map[string]bool
}

// save writes the relay's state to dir, atomically.
func (f *fakeRelay) save(dir string) error {
	s := savedRelay{Next: f.next, Order: f.order, Blobs: map[string]*savedBlob{}}
	for id, b := range f.blobs {
		s.Blobs[id] = &savedBlob{b.item, b.part, b.ct, b.routes}
	}
	js, err := json.Marshal(&s)
	if err != nil {
		return err
	}
	return cases.WriteFileSync(filepath.Join(dir, "relay.json"), js)
}

func loadFakeRelay(dir string, t Trust) (*fakeRelay, error) {
	js, err := os.ReadFile(filepath.Join(dir, "relay.json"))
	if err != nil {
		return nil, err
	}
	var s savedRelay
	if err := json.Unmarshal(js, &s); err != nil {
		return nil, err
	}
	f := newFakeRelay(t)
	f.next, f.order = s.Next, s.Order
	for id, b := range s.Blobs {
		f.blobs[id] = &blob{b.Item, b.Part, b.CT, b.Routes}
	}
	return f, nil
}
