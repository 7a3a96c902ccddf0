package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
)

// indexFile is the name of the derived index, sealed to the handler.
const indexFile = "index.age"

// racyWindow: a directory changed this close before the index was built
// may have changed again within its timestamp's granularity, so its
// cached state is not trusted (git's racy-clean rule).
const racyWindow = int64(2 * time.Second)

// index is the state of every case, and what it was derived from.
type index struct {
	Version int                    `json:"version"`
	Built   int64                  `json:"built"` // unix ns when the scan that built it began
	Store   int64                  `json:"store"` // mtime of the case store's directory
	Serials map[string]uint64      `json:"serials"`
	Cases   map[string]*indexEntry `json:"cases"`
}

type indexEntry struct {
	Dir   int64  `json:"dir"` // mtime of the case's journal directory; 0 without one
	Held  bool   `json:"held"`
	State *State `json:"state"`
}

const indexVersion = 1

// State decrypts the events kept for a case and replays them, under the
// workflow of the trusted manifest of its desk. A case not held here (a
// coordinator outside its route holds only its facts) has the state its
// events give. It fails with cases.ErrNotFound for a case neither held nor
// with any event.
func (j *Journal) State(t Trust, caseID string) (*State, error) {
	if !validCase(caseID) {
		return nil, cases.ErrNotFound
	}
	return j.state(t, caseID, nil)
}

// state is State with a cache of manifests (nil: none).
func (j *Journal) state(t Trust, caseID string, ms map[string]*crypto.Manifest) (*State, error) {
	ci, err := j.info(caseID)
	if err != nil {
		return nil, err
	}
	h, err := j.load(caseID)
	if err != nil {
		return nil, err
	}
	events, facts, misplaced := h.eventsOf(ci)
	desk := ""
	switch {
	case ci != nil:
		desk = ci.meta.Desk
	case len(events) > 0:
		desk = events[0].Desk
	case len(facts) > 0:
		desk = facts[0].Desk
	default:
		return nil, cases.ErrNotFound
	}
	m, ok := ms[desk]
	if !ok {
		if m, err = t.Manifest(desk); err != nil {
			return nil, fmt.Errorf("case %s: desk %q: %w", short(caseID), desk, err)
		}
		if ms != nil {
			ms[desk] = m
		}
	}
	var s *State
	if len(events) > 0 || len(facts) == 0 {
		s = Replay(m.Flow(), events)
	} else {
		s = ReplayFacts(m.Flow(), facts)
	}
	s.Case, s.Desk, s.Misplaced = caseID, desk, misplaced
	if ci != nil {
		s.Category, s.Received = ci.category, ci.meta.Received
	}
	for i := range s.Gaps {
		s.Gaps[i].Case = caseID
	}
	return s, nil
}

// States returns the state of every case: each held report and each case
// that only events name, without its History (State has it), which a list
// does not need. It reads them from the index (index.age, sealed to the
// handler's own key) and replays only the cases whose journal changed
// since, or whose desk's manifest did, then saves the index again.
// A case that cannot be replayed is left out and its error joined to the
// error returned with the others.
func (j *Journal) States(t Trust) (map[string]*State, error) {
	unlock, err := j.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	start := time.Now().UnixNano()
	idx := j.readIndex()
	fresh := idx == nil
	if idx == nil {
		idx = &index{}
	}
	fi, err := os.Stat(j.cs.Dir())
	if err != nil {
		return nil, fmt.Errorf("reading the case store: %w", err)
	}
	storeTime := fi.ModTime().UnixNano()
	held := map[string]bool{}
	if fresh || storeTime != idx.Store || storeTime >= idx.Built-racyWindow {
		metas, err := j.cs.List()
		if err != nil {
			return nil, err
		}
		for _, m := range metas {
			if m.Kind == "" || m.Kind == api.KindSelf {
				held[m.ID] = true
			}
		}
	} else {
		for id, e := range idx.Cases {
			if e.Held {
				held[id] = true
			}
		}
	}
	dirs := map[string]int64{}
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("reading the case journal: %w", err)
	}
	for _, ent := range ents {
		if !ent.IsDir() || !validCase(ent.Name()) {
			continue
		}
		info, err := ent.Info()
		if err != nil {
			continue
		}
		dirs[ent.Name()] = info.ModTime().UnixNano()
	}
	ms := map[string]*crypto.Manifest{}
	serial := func(desk string) (uint64, bool) {
		m, ok := ms[desk]
		if !ok {
			m, _ = t.Manifest(desk)
			ms[desk] = m
		}
		if m == nil {
			return 0, false
		}
		return m.Serial, true
	}
	next := &index{Version: indexVersion, Built: start, Store: storeTime, Serials: map[string]uint64{}, Cases: map[string]*indexEntry{}}
	out := map[string]*State{}
	changed := fresh || len(idx.Cases) != len(held)
	var errs []error
	consider := func(id string) {
		if _, done := next.Cases[id]; done {
			return
		}
		dir := dirs[id]
		e := idx.Cases[id]
		if e != nil && e.State != nil && e.Held == held[id] && e.Dir == dir && (dir == 0 || dir < idx.Built-racyWindow) {
			if s, ok := serial(e.State.Desk); ok && s == idx.Serials[e.State.Desk] {
				next.Cases[id] = e
				next.Serials[e.State.Desk] = s
				out[id] = e.State
				return
			}
		}
		changed = true
		s, err := j.state(t, id, ms)
		if err != nil {
			if !errors.Is(err, cases.ErrNotFound) {
				errs = append(errs, err)
			}
			return
		}
		if sr, ok := serial(s.Desk); ok {
			next.Serials[s.Desk] = sr
		}
		s.History = nil
		next.Cases[id] = &indexEntry{Dir: dir, Held: held[id], State: s}
		out[id] = s
	}
	for id := range held {
		consider(id)
	}
	for id := range dirs {
		consider(id)
	}
	if len(next.Cases) != len(idx.Cases) {
		changed = true
	}
	if changed {
		if err := j.writeIndex(next); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// readIndex returns the index, or nil when there is none or it does not
// open (it is then rebuilt).
func (j *Journal) readIndex() *index {
	f, err := os.Open(filepath.Join(j.dir, indexFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	r, err := age.Decrypt(f, j.id.Age())
	if err != nil {
		return nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil
	}
	var idx index
	if err := json.Unmarshal(b, &idx); err != nil || idx.Version != indexVersion {
		return nil
	}
	return &idx
}

func (j *Journal) writeIndex(idx *index) error {
	b, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encoding the case index: %w", err)
	}
	rcpt, err := crypto.ParseRecipient(j.id.Recipient())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcpt)
	if err != nil {
		return fmt.Errorf("sealing the case index: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("sealing the case index: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("sealing the case index: %w", err)
	}
	if err := writeFile(filepath.Join(j.dir, indexFile), buf.Bytes()); err != nil {
		return err
	}
	return syncDir(j.dir)
}
