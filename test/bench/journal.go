package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// eventsPerCase is how many events each case of the replay measurement has.
const eventsPerCase = 100

type journalResult struct {
	Events          int     `json:"events"`
	ReplaySeconds   float64 `json:"replay_seconds"`
	DecryptSeconds  float64 `json:"in_memory_decrypt_seconds"`
	ReplayRatio     float64 `json:"replay_ratio"`
	Cases           int     `json:"cases"`
	StatesSeconds   float64 `json:"states_seconds"`
	MetaReadSeconds float64 `json:"meta_read_seconds"`
	StatesRatio     float64 `json:"states_ratio"`
	Matched         int     `json:"matched"` // cases the filter kept
}

func (r *journalResult) print(out io.Writer) {
	printLine(out, fmt.Sprintf("case journal replay (%d events)", r.Events),
		fmt.Sprintf("replay %.2fs  in-memory decrypt %.2fs  ratio %.2fx (aim <= 2x)", r.ReplaySeconds, r.DecryptSeconds, r.ReplayRatio))
	printLine(out, fmt.Sprintf("case list from the index (%d cases)", r.Cases),
		fmt.Sprintf("states+filter %.1fms  reading case.json files %.1fms  ratio %.2fx (aim <= 1.5x)",
			r.StatesSeconds*1e3, r.MetaReadSeconds*1e3, r.StatesRatio))
}

type benchTrust struct{ m *crypto.Manifest }

func (t benchTrust) Manifest(desk string) (*crypto.Manifest, error) {
	if desk != t.m.Desk {
		return nil, fmt.Errorf("desk %q is not trusted", desk)
	}
	return t.m, nil
}

// benchJournal times the case journal on one handler's machine: replaying
// cfg.events events from the journal on disk (reading, decrypting,
// parsing and merging them, as 'amana case show' does for each case)
// against decrypting the same ciphertexts in memory; and the state of
// cfg.journalCases cases (two events each) from the sealed index, filtered
// as 'amana list --unassigned' does, against reading the cases' case.json
// files.
func benchJournal(ctx context.Context, cfg *config, dir string) (*journalResult, error) {
	d, err := newDesk(3, cfg.classic, 0)
	if err != nil {
		return nil, err
	}
	res := &journalResult{Events: cfg.events, Cases: cfg.journalCases}

	// Replay.
	st, err := cases.Open(filepath.Join(dir, "replay"))
	if err != nil {
		return nil, err
	}
	nCases := (cfg.events + eventsPerCase - 1) / eventsPerCase
	ids, err := makeCases(st, nCases)
	if err != nil {
		return nil, err
	}
	cts, err := writeEvents(ctx, st, d, ids, cfg.events)
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(st, d.Handlers[0])
	if err != nil {
		return nil, err
	}
	tr := benchTrust{d.Manifest}
	start := time.Now()
	applied := 0
	for _, id := range ids {
		s, err := j.State(tr, id)
		if err != nil {
			return nil, fmt.Errorf("replaying case %s: %w", id, err)
		}
		applied += len(s.History)
	}
	replay := time.Since(start)
	if applied != cfg.events {
		return nil, fmt.Errorf("replayed %d events of %d", applied, cfg.events)
	}
	start = time.Now()
	for _, ct := range cts {
		r, err := age.Decrypt(bytes.NewReader(ct), d.Handlers[0].Age())
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
	}
	base := time.Since(start)
	res.ReplaySeconds, res.DecryptSeconds = replay.Seconds(), base.Seconds()
	res.ReplayRatio = ratio(replay.Seconds(), base.Seconds())

	// The index.
	st, err = cases.Open(filepath.Join(dir, "list"))
	if err != nil {
		return nil, err
	}
	ids, err = makeCases(st, cfg.journalCases)
	if err != nil {
		return nil, err
	}
	if _, err := writeEvents(ctx, st, d, ids, 2*cfg.journalCases); err != nil {
		return nil, err
	}
	j, err = journal.Open(st, d.Handlers[0])
	if err != nil {
		return nil, err
	}
	if _, err := j.States(tr); err != nil { // builds the index
		return nil, err
	}
	// Until the index is older than its racy window, cases changed just
	// before it was built are replayed again: wait it out, and let one
	// more call save the index that trusts them all.
	time.Sleep(3 * time.Second)
	if _, err := j.States(tr); err != nil {
		return nil, err
	}
	matched := 0
	best := func(fn func() error) (time.Duration, error) {
		var min time.Duration
		for range 3 {
			start := time.Now()
			if err := fn(); err != nil {
				return 0, err
			}
			if took := time.Since(start); min == 0 || took < min {
				min = took
			}
		}
		return min, nil
	}
	me := d.Handlers[0].Card().KeyID()
	states, err := best(func() error {
		all, err := j.States(tr)
		if err != nil {
			return err
		}
		matched = 0
		for _, s := range all {
			if !slices.Contains(s.Assignees, me) && s.Status != "closed" {
				matched++
			}
		}
		if len(all) != cfg.journalCases {
			return fmt.Errorf("%d states for %d cases", len(all), cfg.journalCases)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Matched = matched
	metas, err := best(func() error {
		for _, id := range ids {
			b, err := os.ReadFile(filepath.Join(st.Dir(), id, "case.json"))
			if err != nil {
				return err
			}
			var m cases.Meta
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.StatesSeconds, res.MetaReadSeconds = states.Seconds(), metas.Seconds()
	res.StatesRatio = ratio(states.Seconds(), metas.Seconds())
	return res, nil
}

// makeCases stores n reports (small opaque bodies: the journal reads only
// their metadata, which names their own category as pull learns it),
// written straight into the case store's layout without syncing: only the
// measurements after it matter.
func makeCases(st *cases.Store, n int) ([]string, error) {
	ids := make([]string, n)
	cat := ""
	for i := range ids {
		b := make([]byte, 16)
		rand.Read(b)
		ids[i] = hex.EncodeToString(b)
		body := make([]byte, 512)
		rand.Read(body)
		sum := sha256.Sum256(body)
		m := cases.Meta{ID: ids[i], Relay: "bench", Desk: deskID, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]),
			Received: "2026-12-01T09:00:00Z", ReportCategory: &cat}
		dir := filepath.Join(st.Dir(), ids[i])
		js, err := json.Marshal(&m)
		if err != nil {
			return nil, err
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "case.json"), js, 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(st.BundlePath(ids[i]), body, 0o600); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// writeEvents writes n events over the cases, round robin, by the desk's
// three handlers in turn, sealed to all of them, straight into the
// journal's layout (<casestore>/journal/<case>/<author>-<seq>.case.age),
// as Sync would have stored them; it returns the ciphertexts.
func writeEvents(ctx context.Context, st *cases.Store, d *relayproc.Desk, ids []string, n int) ([][]byte, error) {
	metas := make([]*cases.Meta, len(ids))
	for i, id := range ids {
		m, err := st.Meta(id)
		if err != nil {
			return nil, err
		}
		metas[i] = m
		if err := os.MkdirAll(filepath.Join(st.Dir(), "journal", id), 0o700); err != nil {
			return nil, err
		}
	}
	cts := make([][]byte, n)
	statuses := []string{"acknowledged", "open", "waiting", "escalated", "open"}
	err := parallel(ctx, 2, len(ids), func(_ context.Context, _, c int) error {
		seqs := map[string]uint64{}
		prev := map[string]string{}
		k := 0
		for i := c; i < n; i += len(ids) {
			h := d.Handlers[k%len(d.Handlers)]
			k++
			key := h.Card().KeyID()
			seqs[key]++
			e := &crypto.Event{Desk: deskID, Case: ids[c], CaseSHA256: metas[c].SHA256, Seq: seqs[key], Clock: uint64(k), Prev: prev[key],
				Time: crypto.EventTime(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second))}
			switch i % 4 {
			case 0:
				e.Change.Status = statuses[(i/4)%len(statuses)]
			case 1:
				e.Change.Assign = []string{d.Handlers[0].Card().KeyID()}
			case 2:
				e.Change.Severity = "medium"
			case 3:
				e.Change.Note = "a note of the journal benchmark, about as long as a short one typed in a hurry"
			}
			if err := crypto.SignEvent(e, h); err != nil {
				return err
			}
			prev[key] = crypto.EventDigest(e)
			js, err := crypto.MarshalEvent(e)
			if err != nil {
				return err
			}
			ct, err := crypto.SealEvent(d.Cards(), js)
			if err != nil {
				return err
			}
			cts[i] = ct
			name := key + "-" + strconv.FormatUint(e.Seq, 10) + ".case.age"
			if err := os.WriteFile(filepath.Join(st.Dir(), "journal", ids[c], name), ct, 0o600); err != nil {
				return err
			}
		}
		return nil
	})
	return cts, err
}
