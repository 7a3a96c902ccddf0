package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/amana-relay/amana/crypto"
)

// maxHistoryJSON keeps a history blob's padded plaintext within
// crypto.MaxEventLen (padding adds at most an eighth).
const maxHistoryJSON = crypto.MaxEventLen * 7 / 8

// Share posts the case's history (every event held, and the facts held)
// to the handler whose key ID is toKeyID, who must be on the case's route,
// as one or more history blobs sealed to that handler alone (part=share).
// The receiver checks each event inside as if it had come directly. It
// returns how many events and facts were sent.
func (j *Journal) Share(ctx context.Context, r Relay, t Trust, caseID, toKeyID string) (int, error) {
	unlock, err := j.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	ci, err := j.info(caseID)
	if err != nil {
		return 0, err
	}
	if ci == nil {
		return 0, fmt.Errorf("case %s is not held here", short(caseID))
	}
	m, err := t.Manifest(ci.meta.Desk)
	if err != nil {
		return 0, fmt.Errorf("desk %q: %w", ci.meta.Desk, err)
	}
	route, err := j.route(m, ci)
	if err != nil {
		return 0, err
	}
	if !onRoute(route, j.self()) {
		return 0, fmt.Errorf("case %s: %w", short(caseID), ErrNotOnRoute)
	}
	i := slices.IndexFunc(route, func(c *crypto.Card) bool { return c.KeyID() == toKeyID })
	if i < 0 {
		return 0, fmt.Errorf("case %s: the handler to share with is not a handler of its category", short(caseID))
	}
	to := route[i]
	h, err := j.load(caseID)
	if err != nil {
		return 0, err
	}
	events, facts, _ := h.eventsOf(ci)
	raws := func(n int, get func(int) []byte) [][]byte {
		out := make([][]byte, n)
		for k := range out {
			out[k] = get(k)
		}
		slices.SortFunc(out, bytes.Compare)
		return out
	}
	evRaw := raws(len(events), func(k int) []byte { return h.events[key{events[k].Author, events[k].Seq}].raw })
	fRaw := raws(len(facts), func(k int) []byte { return h.facts[key{facts[k].Author, facts[k].Seq}].raw })
	if len(evRaw)+len(fRaw) == 0 {
		return 0, fmt.Errorf("case %s has no changes to share", short(caseID))
	}
	var blobs []*crypto.History
	cur := &crypto.History{Schema: crypto.HistoryDomain, Desk: ci.meta.Desk, Case: caseID, Events: []json.RawMessage{}, Facts: []json.RawMessage{}}
	size := 0
	add := func(raw []byte, facts bool) {
		if size > 0 && size+len(raw)+1 > maxHistoryJSON-256 {
			blobs = append(blobs, cur)
			cur = &crypto.History{Schema: crypto.HistoryDomain, Desk: ci.meta.Desk, Case: caseID, Events: []json.RawMessage{}, Facts: []json.RawMessage{}}
			size = 0
		}
		if facts {
			cur.Facts = append(cur.Facts, raw)
		} else {
			cur.Events = append(cur.Events, raw)
		}
		size += len(raw) + 1
	}
	for _, raw := range evRaw {
		add(raw, false)
	}
	for _, raw := range fRaw {
		add(raw, true)
	}
	blobs = append(blobs, cur)
	sent := 0
	for _, b := range blobs {
		ct, err := crypto.SealHistory([]*crypto.Card{to}, b)
		if err != nil {
			return sent, fmt.Errorf("sealing the case history: %w", err)
		}
		if _, err := r.PostEvent(ctx, ci.meta.Desk, ci.category, PartShare, toKeyID, ct); err != nil {
			return sent, fmt.Errorf("posting the case history: %w", err)
		}
		sent += len(b.Events) + len(b.Facts)
	}
	return sent, nil
}
