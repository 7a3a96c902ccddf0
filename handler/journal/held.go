package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// key names one author's event on a case.
type key struct {
	author string
	seq    uint64
}

type heldEvent struct {
	e   *crypto.Event
	raw []byte // its canonical JSON
	dig string // its digest, once asked for
}

// digest is the event's digest (crypto.EventDigest), computed once: a
// replay needs none.
func (he *heldEvent) digest() string {
	if he.dig == "" {
		he.dig = crypto.EventDigest(he.e)
	}
	return he.dig
}

type heldFacts struct {
	f   *crypto.Facts
	raw []byte
}

// held is every event of one case the journal keeps (or is about to).
type held struct {
	caseID string
	events map[key]*heldEvent
	facts  map[key]*heldFacts
}

func newHeld(caseID string) *held {
	return &held{caseID: caseID, events: map[key]*heldEvent{}, facts: map[key]*heldFacts{}}
}

// load decrypts every event kept for a case. Files a crash may have left
// half-written are temporary names, never event names, and are skipped.
func (j *Journal) load(caseID string) (*held, error) {
	h := newHeld(caseID)
	ents, err := os.ReadDir(j.caseDir(caseID))
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the journal of case %s: %w", short(caseID), err)
	}
	for _, ent := range ents {
		author, seq, part, ok := parseEventName(ent.Name())
		if !ok {
			continue
		}
		ct, err := os.ReadFile(filepath.Join(j.caseDir(caseID), ent.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading the journal of case %s: %w", short(caseID), err)
		}
		js, err := crypto.OpenEvent(ct, j.id.Age())
		if err != nil {
			return nil, fmt.Errorf("case %s: event %s is damaged: %w", short(caseID), ent.Name(), err)
		}
		switch part {
		case PartCase:
			e, err := crypto.ParseEvent(js)
			if err != nil || e.Author != author || e.Seq != seq || e.Case != caseID {
				return nil, fmt.Errorf("case %s: event %s is damaged", short(caseID), ent.Name())
			}
			h.events[key{author, seq}] = &heldEvent{e: e, raw: js}
		case PartFacts:
			f, err := crypto.ParseFacts(js)
			if err != nil || f.Author != author || f.Seq != seq || f.Case != caseID {
				return nil, fmt.Errorf("case %s: facts %s are damaged", short(caseID), ent.Name())
			}
			h.facts[key{author, seq}] = &heldFacts{f: f, raw: js}
		}
	}
	return h, nil
}

// eventsOf returns the held events that belong to the case as ci
// describes it (all of them when it is not held), and how many do not.
func (h *held) eventsOf(ci *caseInfo) (events []*crypto.Event, facts []*crypto.Facts, misplaced int) {
	for _, he := range h.events {
		if ci != nil && (he.e.Desk != ci.meta.Desk || he.e.Category != ci.category || he.e.CaseSHA256 != ci.meta.SHA256) {
			misplaced++
			continue
		}
		events = append(events, he.e)
	}
	for _, hf := range h.facts {
		if ci != nil && (hf.f.Desk != ci.meta.Desk || hf.f.Category != ci.category || hf.f.CaseSHA256 != ci.meta.SHA256) {
			misplaced++
			continue
		}
		facts = append(facts, hf.f)
	}
	return events, facts, misplaced
}

// pending is a file to write in a batch.
type pending struct {
	caseID, name string
	data         []byte
}

// writeBatch writes every file through a temporary name, synced and
// renamed, then syncs each directory touched once: afterwards every file
// exists completely, and before it a file either exists completely or not.
func (j *Journal) writeBatch(files []pending) error {
	dirs := map[string]bool{}
	for _, p := range files {
		dir := j.caseDir(p.caseID)
		if !dirs[dir] {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("creating the journal of case %s: %w", short(p.caseID), err)
			}
			dirs[dir] = true
		}
		if err := cases.WriteTemp(filepath.Join(dir, p.name), p.data); err != nil {
			return err
		}
	}
	for dir := range dirs {
		if err := cases.SyncDir(dir); err != nil {
			return err
		}
	}
	if len(dirs) > 0 {
		return cases.SyncDir(j.dir)
	}
	return nil
}

// validCase reports whether s is a case ID (a submission ID).
func validCase(s string) bool { return cases.ValidID(s) }
