package cli

import (
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
)

// The --json outputs of the case journal commands (docs/cli.md, "JSON
// output"). Handlers are given by key ID ("key") and by their name in the
// desk's manifest as this machine trusts it ("name", empty for a key the
// manifest does not list). Texts are as their authors wrote them: a JSON
// reader must escape them before showing them.

type handlerJSON struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

func handlerRef(m *crypto.Manifest, key string) handlerJSON {
	return handlerJSON{Key: key, Name: rawName(m, key)}
}

func handlerRefs(m *crypto.Manifest, keys []string) []handlerJSON {
	out := []handlerJSON{}
	for _, k := range keys {
		out = append(out, handlerRef(m, k))
	}
	return out
}

// eventJSON is one change: who made it, their sequence number, when, and
// what it changes (the event's change as signed; assignees by key ID).
type eventJSON struct {
	Author handlerJSON   `json:"author"`
	Seq    uint64        `json:"seq"`
	Time   string        `json:"time"`
	Change crypto.Change `json:"change"`
}

func eventToJSON(m *crypto.Manifest, ev *crypto.Event) eventJSON {
	return eventJSON{Author: handlerRef(m, ev.Author), Seq: ev.Seq, Time: ev.Time, Change: ev.Change}
}

// recordJSON is what set, note, close, reopen, link and refer print:
// the change recorded, and whether the relay took it (false: it is in the
// outbox, and 'amana sync' sends it).
type recordJSON struct {
	Case  string    `json:"case"`
	Event eventJSON `json:"event"`
	Sent  bool      `json:"sent"`
}

// stateJSON is what 'amana case show --json' prints.
type stateJSON struct {
	Case          string           `json:"case"`
	Desk          string           `json:"desk"`
	Category      string           `json:"category"`
	Received      string           `json:"received"`
	Status        string           `json:"status"`
	Severity      string           `json:"severity"`
	CloseReason   string           `json:"close_reason"`
	Assignees     []handlerJSON    `json:"assignees"`
	Tags          []string         `json:"tags"`
	Notes         []noteJSON       `json:"notes"`
	Links         []crypto.Link    `json:"links"`
	Referral      *crypto.Referral `json:"referral"`
	Replies       []replyRecJSON   `json:"replies"`
	FirstResponse string           `json:"first_response"`
	Acknowledged  string           `json:"acknowledged"`
	Resolved      string           `json:"resolved"`
	Closed        string           `json:"closed"`
	Reopened      int              `json:"reopened"`
	// Satisfaction is the submitter's latest survey answer recorded, or
	// null; its comment stays in the follow-up.
	Satisfaction *satisfactionJSON `json:"satisfaction"`
	ReceivedBy   []receivedJSON    `json:"received_by"`
	History      []eventJSON       `json:"history"`
	Conflicts    []conflictJSON    `json:"conflicts"`
	Gaps         []gapJSON         `json:"gaps"`
	FactsOnly    bool              `json:"facts_only"`
	Updated      string            `json:"updated"`
	// Disputed: the case is not held here and its changes claim more
	// than one report; none is applied. Claims says who claims which.
	Disputed bool        `json:"disputed"`
	Claims   []claimJSON `json:"claims"`
}

type satisfactionJSON struct {
	Score    int    `json:"score"`
	Followup string `json:"followup"`
	Time     string `json:"time"`
}

type noteJSON struct {
	Author handlerJSON `json:"author"`
	Seq    uint64      `json:"seq"`
	Time   string      `json:"time"`
	Text   string      `json:"text"`
}

type replyRecJSON struct {
	Author handlerJSON `json:"author"`
	Time   string      `json:"time"`
	Reply  string      `json:"reply"`
}

type receivedJSON struct {
	Handler handlerJSON `json:"handler"`
	Time    string      `json:"time"`
}

type conflictJSON struct {
	Field   string        `json:"field"`
	Item    string        `json:"item,omitempty"`
	Authors []handlerJSON `json:"authors"`
	Winner  handlerJSON   `json:"winner"`
	Text    string        `json:"text"`
}

type gapJSON struct {
	Author handlerJSON `json:"author"`
	Seq    uint64      `json:"seq"`
	// To is the last of a run of missing changes, Seq to To; 0 for one.
	To   uint64 `json:"to,omitempty"`
	Text string `json:"text"`
}

// claimJSON is one group of a disputed case (see State.Disputed).
type claimJSON struct {
	Desk       string        `json:"desk"`
	Category   string        `json:"category"`
	CaseSHA256 string        `json:"case_sha256"`
	Authors    []handlerJSON `json:"authors"`
	Events     int           `json:"events"`
}

func stateToJSON(m *crypto.Manifest, wf crypto.Workflow, meta *cases.Meta, s *journal.State) stateJSON {
	out := stateJSON{Case: meta.ID, Desk: meta.Desk, Category: meta.Category, Received: meta.Received, Status: statusOf(wf, s),
		Assignees: []handlerJSON{}, Tags: []string{}, Notes: []noteJSON{}, Links: []crypto.Link{}, Replies: []replyRecJSON{},
		ReceivedBy: []receivedJSON{}, History: []eventJSON{}, Conflicts: []conflictJSON{}, Gaps: []gapJSON{}, Claims: []claimJSON{}}
	if s == nil {
		return out
	}
	if s.Category != "" {
		out.Category = s.Category
	}
	if s.Received != "" {
		out.Received = s.Received
	}
	out.Severity, out.CloseReason, out.Referral = s.Severity, s.CloseReason, s.Referral
	out.Assignees = handlerRefs(m, s.Assignees)
	out.Tags = append(out.Tags, s.Tags...)
	for _, n := range s.Notes {
		out.Notes = append(out.Notes, noteJSON{Author: handlerRef(m, n.Author), Seq: n.Seq, Time: n.Time, Text: n.Text})
	}
	out.Links = append(out.Links, s.Links...)
	for _, r := range s.Replies {
		out.Replies = append(out.Replies, replyRecJSON{Author: handlerRef(m, r.Author), Time: r.Time, Reply: r.Reply})
	}
	out.FirstResponse, out.Acknowledged, out.Resolved, out.Closed, out.Reopened = s.FirstResponse, s.Acknowledged, s.Resolved, s.Closed, s.Reopened
	if s.Satisfaction > 0 {
		out.Satisfaction = &satisfactionJSON{Score: s.Satisfaction, Followup: s.SatisfactionFollowup, Time: s.SatisfactionTime}
	}
	for _, k := range sortedKeys(s.ReceivedBy) {
		out.ReceivedBy = append(out.ReceivedBy, receivedJSON{Handler: handlerRef(m, k), Time: s.ReceivedBy[k]})
	}
	for _, h := range s.History {
		out.History = append(out.History, eventJSON{Author: handlerRef(m, h.Author), Seq: h.Seq, Time: h.Time, Change: h.Change})
	}
	for _, c := range s.Conflicts {
		out.Conflicts = append(out.Conflicts, conflictJSON{Field: c.Field, Item: c.Item, Authors: handlerRefs(m, c.Authors), Winner: handlerRef(m, c.Winner), Text: conflictText(m, c)})
	}
	for _, g := range s.Gaps {
		out.Gaps = append(out.Gaps, gapJSON{Author: handlerRef(m, g.Author), Seq: g.Seq, To: g.To, Text: gapText(m, g)})
	}
	out.FactsOnly, out.Updated, out.Disputed = s.FactsOnly, s.Updated, s.Disputed
	for _, c := range s.Claims {
		out.Claims = append(out.Claims, claimJSON{Desk: c.Desk, Category: c.Category, CaseSHA256: c.CaseSHA256, Authors: handlerRefs(m, c.Authors), Events: c.Events})
	}
	return out
}

// listCaseJSON is one case as 'amana list --json -i KEY' and 'amana
// triage --json' print it.
type listCaseJSON struct {
	ID         string        `json:"id"`
	Desk       string        `json:"desk"`
	Category   string        `json:"category"`
	Received   string        `json:"received"`
	AgeSeconds int64         `json:"age_seconds"`
	Status     string        `json:"status"`
	Severity   string        `json:"severity"`
	Assignees  []handlerJSON `json:"assignees"`
	Tags       []string      `json:"tags"`
	Updated    string        `json:"updated"`
	Conflicts  int           `json:"conflicts"`
	Gaps       int           `json:"gaps"`
	// Held: the case is in the case store; FactsOnly: its state comes
	// from the coordinators' facts, without text.
	Held      bool `json:"held"`
	FactsOnly bool `json:"facts_only"`
	Disputed  bool `json:"disputed"`
}

func (r *caseRow) toJSON() listCaseJSON {
	out := listCaseJSON{ID: r.meta.ID, Desk: r.meta.Desk, Category: r.category(), Received: r.received(), AgeSeconds: int64(r.age / time.Second),
		Status: r.status, Severity: "", Assignees: []handlerJSON{}, Tags: []string{}, Held: r.held}
	if s := r.state; s != nil {
		out.Severity, out.Updated, out.Conflicts, out.Gaps = s.Severity, s.Updated, len(s.Conflicts), len(s.Gaps)
		out.Assignees = handlerRefs(r.man, s.Assignees)
		out.Tags = append(out.Tags, s.Tags...)
		out.FactsOnly, out.Disputed = s.FactsOnly, s.Disputed
	}
	return out
}

// syncJSON is what 'amana sync --json' prints, and the "journal" member of
// 'amana pull --json'.
type syncJSON struct {
	Accepted   int           `json:"accepted"`
	Duplicates int           `json:"duplicates"`
	Acked      int           `json:"acked"`
	Refused    []refusalJSON `json:"refused"`
	Gaps       []syncGapJSON `json:"gaps"`
	// Retry: not downloaded whole or not matching the listing, so not
	// acknowledged; the next sync fetches them again. Unsent: your own
	// change parts still in the outbox.
	Retry  []refusalJSON `json:"retry"`
	Unsent int           `json:"unsent"`
}

type refusalJSON struct {
	Event  string `json:"event"`
	Case   string `json:"case"`
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

type syncGapJSON struct {
	Case   string      `json:"case"`
	Author handlerJSON `json:"author"`
	Seq    uint64      `json:"seq"`
}
