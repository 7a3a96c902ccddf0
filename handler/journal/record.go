package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// outboxEntry is a part waiting to be posted: ciphertext only.
type outboxEntry struct {
	Desk       string `json:"desk"`
	Category   string `json:"category"`
	Part       string `json:"part"`
	To         string `json:"to,omitempty"`
	Case       string `json:"case"`
	Author     string `json:"author"`
	Seq        uint64 `json:"seq"`
	Ciphertext []byte `json:"ciphertext"`
}

func (o *outboxEntry) name() string {
	return o.Case + "." + strings.TrimSuffix(eventName(o.Author, o.Seq, o.Part), ".age") + ".json"
}

// Record builds the next event of the journal's author on a case (seq,
// prev, seen, the clock after the highest effective clock held, and the time now: the
// author's honest clock, which orders only concurrent changes), checks the change against the trusted manifest's workflow and
// the case's route, signs it, seals the case part to the route and, when
// the desk names coordinators, the facts part to them, and stores it here
// durably first, then posts both parts. A part that fails to post waits in
// the outbox, which every Record and Sync flushes; receivers take a repeat
// as a duplicate. The event is returned also then, with an error wrapping
// ErrNotPosted.
func (j *Journal) Record(ctx context.Context, r Relay, t Trust, caseID string, ch crypto.Change) (*crypto.Event, error) {
	unlock, err := j.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := j.recover(); err != nil {
		return nil, err
	}
	ci, err := j.info(caseID)
	if err != nil {
		return nil, err
	}
	if ci == nil {
		return nil, fmt.Errorf("case %s is not held here", short(caseID))
	}
	m, err := t.Manifest(ci.meta.Desk)
	if err != nil {
		return nil, fmt.Errorf("desk %q: %w", ci.meta.Desk, err)
	}
	route, err := j.route(m, ci)
	if err != nil {
		return nil, err
	}
	me := j.self()
	if !onRoute(route, me) {
		return nil, fmt.Errorf("case %s: %w", short(caseID), ErrNotOnRoute)
	}
	ch = normalizeChange(ch)
	if err := validFor(m.Flow(), route, &ch); err != nil {
		return nil, err
	}
	h, err := j.load(caseID)
	if err != nil {
		return nil, err
	}
	e := &crypto.Event{
		Schema: crypto.EventDomain, Desk: ci.meta.Desk, Case: caseID, CaseSHA256: ci.meta.SHA256,
		Category: ci.category, Author: me, Seq: 1, Change: ch,
	}
	now := crypto.EventTime(j.now())
	seen := map[string]uint64{}
	// The clock follows the highest effective one held (§8.11.4 step 1):
	// an inflated clock cannot then block writing on the case.
	evs, fs, _ := h.eventsOf(ci)
	clock := maxEffClock(evs, fs)
	for k, he := range h.events {
		if k.author == me {
			if k.seq >= e.Seq {
				e.Seq, e.Prev = k.seq+1, he.digest()
			}
			continue
		}
		seen[k.author] = 0
	}
	for a := range seen {
		// The highest seq of a's applied without a gap.
		var q uint64
		for h.events[key{a, q + 1}] != nil {
			q++
		}
		if q == 0 {
			delete(seen, a)
		} else {
			seen[a] = q
		}
	}
	if len(seen) > 0 {
		e.Seen = seen
	}
	e.Time, e.Clock = now, clock+1
	if err := crypto.SignEvent(e, j.id); err != nil {
		return nil, fmt.Errorf("signing the change: %w", err)
	}
	js, err := crypto.MarshalEvent(e)
	if err != nil {
		return nil, fmt.Errorf("encoding the change: %w", err)
	}
	if len(js) >= crypto.MaxEventLen {
		return nil, fmt.Errorf("%w: the change is too large", ErrInvalidChange)
	}
	ct, err := crypto.SealEvent(route, js)
	if err != nil {
		return nil, fmt.Errorf("sealing the change: %w", err)
	}
	out := []*outboxEntry{{Desk: e.Desk, Category: e.Category, Part: PartCase, Case: caseID, Author: me, Seq: e.Seq, Ciphertext: ct}}
	files := []pending{{caseID, eventName(me, e.Seq, PartCase), ct}}
	if coords := m.CoordinatorCards(); len(coords) > 0 {
		f := crypto.FactsOf(e, ci.meta.Received)
		if err := crypto.SignFacts(f, j.id); err != nil {
			return nil, fmt.Errorf("signing the change's facts: %w", err)
		}
		fjs, err := crypto.MarshalFacts(f)
		if err != nil {
			return nil, fmt.Errorf("encoding the change's facts: %w", err)
		}
		fct, err := crypto.SealEvent(coords, fjs)
		if err != nil {
			return nil, fmt.Errorf("sealing the change's facts: %w", err)
		}
		out = append(out, &outboxEntry{Desk: e.Desk, Category: e.Category, Part: PartFacts, Case: caseID, Author: me, Seq: e.Seq, Ciphertext: fct})
		if m.IsCoordinator(me) {
			files = append(files, pending{caseID, eventName(me, e.Seq, PartFacts), fct})
		}
	}
	// The outbox first: a crash after it and before the event's own file
	// is mended by recover, which stores the case part from the outbox.
	for _, o := range out {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		if err := cases.WriteTemp(filepath.Join(j.dir, outboxDir, o.name()), b); err != nil {
			return nil, err
		}
	}
	if err := cases.SyncDir(filepath.Join(j.dir, outboxDir)); err != nil {
		return nil, err
	}
	if err := j.writeBatch(files); err != nil {
		return nil, err
	}
	if _, err := j.flush(ctx, r); err != nil {
		return e, fmt.Errorf("%w: %w", ErrNotPosted, err)
	}
	return e, nil
}

// normalizeChange sorts and deduplicates a change's lists, so that the
// same change always signs the same.
func normalizeChange(ch crypto.Change) crypto.Change {
	for _, l := range []*[]string{&ch.Assign, &ch.Unassign, &ch.Tag, &ch.Untag} {
		if len(*l) == 0 {
			*l = nil
			continue
		}
		s := slices.Clone(*l)
		slices.Sort(s)
		*l = slices.Compact(s)
	}
	return ch
}

// outbox reads the waiting entries, in name order (os.ReadDir sorts).
func (j *Journal) outbox() ([]*outboxEntry, []string, error) {
	dir := filepath.Join(j.dir, outboxDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the outbox: %w", err)
	}
	var out []*outboxEntry
	var names []string
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("reading the outbox: %w", err)
		}
		var o outboxEntry
		if err := json.Unmarshal(b, &o); err != nil || o.name() != ent.Name() || !validCase(o.Case) {
			return nil, nil, fmt.Errorf("the outbox entry %s is damaged", ent.Name())
		}
		out = append(out, &o)
		names = append(names, ent.Name())
	}
	return out, names, nil
}

// recover stores the case part of every outbox entry whose event file a
// crash kept from being written.
func (j *Journal) recover() error {
	out, _, err := j.outbox()
	if err != nil {
		return err
	}
	var files []pending
	for _, o := range out {
		name := eventName(o.Author, o.Seq, PartCase)
		if o.Part != PartCase {
			continue
		}
		if _, err := os.Stat(filepath.Join(j.caseDir(o.Case), name)); errors.Is(err, os.ErrNotExist) {
			files = append(files, pending{o.Case, name, o.Ciphertext})
		}
	}
	return j.writeBatch(files)
}

// flush posts every outbox entry and removes those posted. It returns how
// many still wait, and the first error.
func (j *Journal) flush(ctx context.Context, r Relay) (int, error) {
	out, names, err := j.outbox()
	if err != nil {
		return 0, err
	}
	var first error
	left := 0
	for i, o := range out {
		if _, err := r.PostEvent(ctx, o.Desk, o.Category, o.Part, o.To, o.Ciphertext); err != nil {
			left++
			if first == nil {
				first = fmt.Errorf("posting a change: %w", err)
			}
			continue
		}
		if err := os.Remove(filepath.Join(j.dir, outboxDir, names[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return left, err
		}
	}
	if len(out) > 0 {
		if err := cases.SyncDir(filepath.Join(j.dir, outboxDir)); err != nil && first == nil {
			first = err
		}
	}
	return left, first
}
