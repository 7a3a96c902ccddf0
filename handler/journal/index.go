package journal

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

const indexVersion = 2 // 2: states carry disputes and gap runs

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
	return j.replayHeld(t, ms, ci, h)
}

// claimKey is what the events of a case whose report is not held claim
// about it (§8.11.5 rule 4).
type claimKey struct{ desk, category, sha string }

// replayHeld replays what h holds of a case (ci nil: its report is not
// held) under the trusted manifest of its desk; ms caches manifests (nil:
// none). With the report held, only the events and facts that match it
// are applied, the others counted misplaced. Without it, they are grouped
// by their (desk, category, case_sha256) claim: one group gives the
// state, more than one a disputed state that applies none.
func (j *Journal) replayHeld(t Trust, ms map[string]*crypto.Manifest, ci *caseInfo, h *held) (*State, error) {
	caseID := h.caseID
	events, facts, misplaced := h.eventsOf(ci)
	var claim claimKey
	if ci != nil {
		claim = claimKey{ci.meta.Desk, ci.category, ci.meta.SHA256}
	} else {
		groups := map[claimKey]*Claim{}
		add := func(k claimKey, author string) {
			c := groups[k]
			if c == nil {
				c = &Claim{Desk: k.desk, Category: k.category, CaseSHA256: k.sha}
				groups[k] = c
			}
			if !slices.Contains(c.Authors, author) {
				c.Authors = append(c.Authors, author)
			}
			c.Events++
		}
		for _, e := range events {
			add(claimKey{e.Desk, e.Category, e.CaseSHA256}, e.Author)
		}
		for _, f := range facts {
			add(claimKey{f.Desk, f.Category, f.CaseSHA256}, f.Author)
		}
		switch len(groups) {
		case 0:
			return nil, cases.ErrNotFound
		case 1:
			for k := range groups {
				claim = k
			}
		default:
			s := &State{Case: caseID, Disputed: true, ReceivedBy: map[string]string{}}
			for _, c := range groups {
				slices.Sort(c.Authors)
				s.Claims = append(s.Claims, *c)
			}
			slices.SortFunc(s.Claims, func(a, b Claim) int {
				return cmp.Or(cmp.Compare(a.Desk, b.Desk), cmp.Compare(a.Category, b.Category), cmp.Compare(a.CaseSHA256, b.CaseSHA256))
			})
			return s, nil
		}
	}
	desk := claim.desk
	m, ok := ms[desk]
	if !ok {
		var err error
		if m, err = t.Manifest(desk); err != nil {
			return nil, fmt.Errorf("case %s: desk %q: %w", short(caseID), desk, err)
		}
		if ms != nil {
			ms[desk] = m
		}
	}
	if m == nil {
		return nil, fmt.Errorf("case %s: desk %q is not one this handler trusts", short(caseID), desk)
	}
	var cards []*crypto.Card
	var err error
	if ci != nil {
		cards, err = j.route(m, ci)
	} else {
		cards, err = m.Route(claim.category)
	}
	route := []string{} // no route: no seen entry counts
	if err == nil {
		for _, c := range cards {
			route = append(route, c.KeyID())
		}
	}
	var s *State
	if len(events) > 0 || len(facts) == 0 {
		s = replayEvents(m.Flow(), route, events)
	} else {
		s = replayFacts(m.Flow(), route, facts)
	}
	s.Case, s.Desk, s.Misplaced = caseID, desk, misplaced
	s.Category = claim.category
	if ci != nil {
		s.Received = ci.meta.Received
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
// A case that cannot be replayed (a damaged event file, an untrusted
// desk) does not fail the others: it is left out, and the error returned
// with them is a *StatesError listing each such case.
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
	var problems []CaseProblem
	tried := map[string]bool{}
	consider := func(id string) {
		if tried[id] {
			return
		}
		tried[id] = true
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
				problems = append(problems, CaseProblem{Case: id, Err: err})
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
			problems = append(problems, CaseProblem{Err: err})
		}
	}
	if len(problems) > 0 {
		slices.SortFunc(problems, func(a, b CaseProblem) int { return cmp.Compare(a.Case, b.Case) })
		return out, &StatesError{Problems: problems}
	}
	return out, nil
}

// StatesError is what States returns with the states of the cases it
// could replay: the cases it could not, each with its error.
type StatesError struct {
	Problems []CaseProblem
}

// CaseProblem is one case States left out, and why; Case "" is a problem
// of no one case (the index could not be saved: the states are right,
// and the next States replays them again).
type CaseProblem struct {
	Case string
	Err  error
}

func (e *StatesError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Err.Error())
	}
	return b.String()
}

// Unwrap gives the problems' errors, for errors.Is.
func (e *StatesError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p.Err
	}
	return errs
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
	sealed, err := j.sealOwn(b)
	if err != nil {
		return fmt.Errorf("sealing the case index: %w", err)
	}
	if err := cases.WriteTemp(filepath.Join(j.dir, indexFile), sealed); err != nil {
		return err
	}
	return cases.SyncDir(j.dir)
}
