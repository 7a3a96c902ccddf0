package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/amana-relay/amana/crypto"
)

// SyncResult says what Sync did.
type SyncResult struct {
	Accepted, Duplicates int
	Refused              []Refusal // acknowledged too, so that they do not come back
	Acked                int
	Gaps                 []Gap // of the cases an event arrived for
	// Retry lists events that did not download whole or did not match
	// the relay's size and SHA-256: not acknowledged, fetched again by
	// the next Sync.
	Retry []Refusal
	// Unsent counts this handler's own parts still waiting in the outbox.
	Unsent int
}

// Refusal is one event not accepted. Reason is human text, to be escaped
// by whoever shows it.
type Refusal struct {
	EventID string
	Case    string
	Author  string
	Seq     uint64
	Reason  string
}

// Sync flushes the outbox, then lists the events the relay holds for this
// handler, downloads each, checks it against the relay's size and SHA-256,
// decrypts it, applies the accept rules, stores every event accepted
// durably (one sync batch), and only then acknowledges them all, the
// refused ones included. A posting error leaves the parts in the outbox
// and is not an error of Sync (SyncResult.Unsent counts them).
func (j *Journal) Sync(ctx context.Context, r Relay, t Trust) (*SyncResult, error) {
	unlock, err := j.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := j.recover(); err != nil {
		return nil, err
	}
	res := &SyncResult{}
	res.Unsent, _ = j.flush(ctx, r)
	items, err := r.Events(ctx)
	if err != nil {
		return res, fmt.Errorf("listing events: %w", err)
	}
	b := &batch{j: j, t: t, manifests: map[string]*crypto.Manifest{}, cases: map[string]*held{}, infos: map[string]*caseInfo{}}
	var ack []string
	for _, it := range items {
		ct, err := r.DownloadEvent(ctx, it.ID)
		if err != nil {
			res.Retry = append(res.Retry, Refusal{EventID: it.ID, Reason: "it did not download: " + err.Error()})
			continue
		}
		sum := sha256.Sum256(ct)
		if int64(len(ct)) != it.Size || hex.EncodeToString(sum[:]) != it.SHA256 {
			res.Retry = append(res.Retry, Refusal{EventID: it.ID, Reason: "it does not match the relay's size and SHA-256"})
			continue
		}
		ack = append(ack, it.ID)
		for _, o := range b.take(it.ID, it.Kind, ct) {
			switch o.verdict {
			case accepted:
				res.Accepted++
			case duplicate:
				res.Duplicates++
			case refused:
				res.Refused = append(res.Refused, o.Refusal)
			}
		}
	}
	if err := j.writeBatch(b.files); err != nil {
		return res, err
	}
	for _, id := range ack {
		if _, err := r.AckEvent(ctx, id); err != nil {
			res.Retry = append(res.Retry, Refusal{EventID: id, Reason: "stored here, but the acknowledgement failed (it is sent again on the next sync): " + err.Error()})
			continue
		}
		res.Acked++
	}
	ids := make([]string, 0, len(b.touched))
	for id := range b.touched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if st, err := j.replayHeld(t, b.manifests, b.infos[id], b.cases[id]); err == nil {
			res.Gaps = append(res.Gaps, st.Gaps...)
		}
	}
	return res, nil
}

// batch is one Sync's accepting of events.
type batch struct {
	j         *Journal
	t         Trust
	manifests map[string]*crypto.Manifest
	cases     map[string]*held
	infos     map[string]*caseInfo
	touched   map[string]bool
	files     []pending
}

type outcome struct {
	verdict
	Refusal
}

func (b *batch) manifest(desk string) *crypto.Manifest {
	if m, ok := b.manifests[desk]; ok {
		return m
	}
	m, err := b.t.Manifest(desk)
	if err != nil {
		m = nil
	}
	b.manifests[desk] = m
	return m
}

// held returns the case's events, loaded once per batch; a case that does
// not load is refused its events.
func (b *batch) held(caseID string) (*held, *caseInfo, error) {
	if h, ok := b.cases[caseID]; ok {
		return h, b.infos[caseID], nil
	}
	ci, err := b.j.info(caseID)
	if err != nil {
		return nil, nil, err
	}
	h, err := b.j.load(caseID)
	if err != nil {
		return nil, nil, err
	}
	b.cases[caseID], b.infos[caseID] = h, ci
	return h, ci, nil
}

// take decrypts and accepts what one relay item holds: an event, facts,
// or a history blob of several.
func (b *batch) take(itemID, kind string, ct []byte) []outcome {
	refuse := func(reason string) []outcome {
		return []outcome{{refused, Refusal{EventID: itemID, Reason: reason}}}
	}
	js, err := crypto.OpenEvent(ct, b.j.id.Age())
	if err != nil {
		return refuse("it does not decrypt with this handler's key")
	}
	switch kind {
	case kindEvent:
		e, err := crypto.ParseEvent(js)
		if err != nil {
			return refuse("it is not a valid event")
		}
		return []outcome{b.event(itemID, e, js, ct)}
	case kindFacts:
		f, err := crypto.ParseFacts(js)
		if err != nil {
			return refuse("it is not a valid facts record")
		}
		return []outcome{b.facts(itemID, f, js, ct)}
	case kindShare:
		hist, err := crypto.ParseHistory(js)
		if err != nil {
			return refuse("it is not a valid case history")
		}
		var out []outcome
		for _, raw := range hist.Events {
			e, err := crypto.ParseEvent(raw)
			if err != nil || e.Desk != hist.Desk || e.Case != hist.Case {
				out = append(out, refuse("it holds an invalid event, or one of another case")...)
				continue
			}
			out = append(out, b.event(itemID, e, raw, nil))
		}
		for _, raw := range hist.Facts {
			f, err := crypto.ParseFacts(raw)
			if err != nil || f.Desk != hist.Desk || f.Case != hist.Case {
				out = append(out, refuse("it holds an invalid facts record, or one of another case")...)
				continue
			}
			out = append(out, b.facts(itemID, f, raw, nil))
		}
		return out
	}
	return refuse("the relay lists it as an unknown kind")
}

// event accepts one case event; ct is its ciphertext as received, or nil
// when it came inside a history blob and is sealed to this handler alone.
func (b *batch) event(itemID string, e *crypto.Event, js, ct []byte) outcome {
	r := Refusal{EventID: itemID, Case: e.Case, Author: e.Author, Seq: e.Seq}
	if !validCase(e.Case) {
		r.Reason = "it names no valid case"
		return outcome{refused, r}
	}
	h, ci, err := b.held(e.Case)
	if err != nil {
		r.Reason = "its case cannot be read here: " + err.Error()
		return outcome{refused, r}
	}
	v, reason := b.j.acceptEvent(b.manifest(e.Desk), ci, h, e, js)
	r.Reason = reason
	if v != accepted {
		return outcome{v, r}
	}
	if ct == nil {
		if ct, err = crypto.SealEvent([]*crypto.Card{b.j.id.Card()}, js); err != nil {
			delete(h.events, key{e.Author, e.Seq})
			r.Reason = "it could not be sealed here: " + err.Error()
			return outcome{refused, r}
		}
	}
	b.keep(e.Case, eventName(e.Author, e.Seq, PartCase), ct)
	return outcome{v, r}
}

// facts accepts one facts record, as event does.
func (b *batch) facts(itemID string, f *crypto.Facts, js, ct []byte) outcome {
	r := Refusal{EventID: itemID, Case: f.Case, Author: f.Author, Seq: f.Seq}
	if !validCase(f.Case) {
		r.Reason = "it names no valid case"
		return outcome{refused, r}
	}
	h, ci, err := b.held(f.Case)
	if err != nil {
		r.Reason = "its case cannot be read here: " + err.Error()
		return outcome{refused, r}
	}
	m := b.manifest(f.Desk)
	if m != nil && !m.IsCoordinator(b.j.self()) {
		r.Reason = "facts are for the desk's coordinators, and this handler is not one"
		return outcome{refused, r}
	}
	v, reason := b.j.acceptFacts(m, ci, h, f, js)
	r.Reason = reason
	if v != accepted {
		return outcome{v, r}
	}
	if ct == nil {
		if ct, err = crypto.SealEvent([]*crypto.Card{b.j.id.Card()}, js); err != nil {
			delete(h.facts, key{f.Author, f.Seq})
			r.Reason = "it could not be sealed here: " + err.Error()
			return outcome{refused, r}
		}
	}
	b.keep(f.Case, eventName(f.Author, f.Seq, PartFacts), ct)
	return outcome{v, r}
}

func (b *batch) keep(caseID, name string, ct []byte) {
	if b.touched == nil {
		b.touched = map[string]bool{}
	}
	b.touched[caseID] = true
	b.files = append(b.files, pending{caseID, name, ct})
}
