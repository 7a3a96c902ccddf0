package journal

import (
	"cmp"
	"slices"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// SignedEvent is an event as its author signed it: the parsed event and
// its canonical JSON, which anyone can verify with the author's key
// (docs/protocol.md §8.11).
type SignedEvent struct {
	Event *crypto.Event
	JSON  []byte
}

// CustodyEvents returns the custody events held for a report held here
// (those whose change has Custody), of the case as the case store has it
// (events naming another desk, category or report are left out, as State
// leaves them out), in (time, author, seq) order. Each was verified when
// it was accepted; callers that hand them on may verify them again.
func (j *Journal) CustodyEvents(caseID string) ([]SignedEvent, error) {
	if !validCase(caseID) {
		return nil, cases.ErrNotFound
	}
	ci, err := j.info(caseID)
	if err != nil {
		return nil, err
	}
	if ci == nil {
		return nil, cases.ErrNotFound
	}
	h, err := j.load(caseID)
	if err != nil {
		return nil, err
	}
	var out []SignedEvent
	for _, he := range h.events {
		e := he.e
		if e.Change.Custody == nil || e.Desk != ci.meta.Desk || e.Category != ci.category || e.CaseSHA256 != ci.meta.SHA256 {
			continue
		}
		out = append(out, SignedEvent{Event: e, JSON: slices.Clone(he.raw)})
	}
	slices.SortFunc(out, func(a, b SignedEvent) int {
		return cmp.Or(cmp.Compare(a.Event.Time, b.Event.Time), cmp.Compare(a.Event.Author, b.Event.Author), cmp.Compare(a.Event.Seq, b.Event.Seq))
	})
	return out, nil
}
