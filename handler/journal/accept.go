package journal

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/amana-relay/amana/crypto"
)

// verdict is what Accept decides for one event.
type verdict int

const (
	accepted verdict = iota
	duplicate
	refused
)

// part is what an event and its facts twin share, as acceptance reads it.
type part struct {
	desk, cas, sum, category, author string
	seq                              uint64
	time                             string
}

// checkPart applies the rules an event and its facts share: the signature
// (verify) by an author the trusted manifest m puts on the route of the
// category, the case and report copy held (ci, nil when not held), and the
// sequence number and time. It returns the route, or why p is refused.
func (j *Journal) checkPart(m *crypto.Manifest, ci *caseInfo, p part, verify func([]*crypto.Card) error) ([]*crypto.Card, string) {
	if reason := j.checkAuthor(m, p.desk, p.author, verify); reason != "" {
		return nil, reason
	}
	route, reason := j.placed(m, ci, p.cas, p.desk, p.category, p.author)
	if reason != "" {
		return nil, reason
	}
	if ci != nil && p.sum != ci.meta.SHA256 {
		return nil, "misplaced: it names another copy of the report than the one held"
	}
	if reason := checkSeqTime(p.seq, p.time); reason != "" {
		return nil, reason
	}
	return route, ""
}

// acceptEvent applies the accept rules to e (whose canonical JSON is raw),
// a case event of the case h holds, described by ci (nil when the case is
// not held). m is the trusted manifest of e.Desk, nil when there is none.
// An accepted event is added to h.
func (j *Journal) acceptEvent(m *crypto.Manifest, ci *caseInfo, h *held, e *crypto.Event, raw []byte) (verdict, string) {
	route, reason := j.checkPart(m, ci, part{e.Desk, e.Case, e.CaseSHA256, e.Category, e.Author, e.Seq, e.Time}, func(cards []*crypto.Card) error {
		_, err := crypto.VerifyEvent(e, cards)
		return err
	})
	if reason != "" {
		return refused, reason
	}
	k := key{e.Author, e.Seq}
	if old, ok := h.events[k]; ok {
		if bytes.Equal(old.raw, raw) {
			return duplicate, ""
		}
		return refused, fmt.Sprintf("it repeats change %d of its author with other content", e.Seq)
	}
	digest := crypto.EventDigest(e)
	switch before, ok := h.events[key{e.Author, e.Seq - 1}]; {
	case e.Seq == 1 && e.Prev != "":
		return refused, "it rewinds its author's changes: change 1 names a previous one"
	case ok && e.Prev != before.digest():
		return refused, fmt.Sprintf("it forks its author's changes: change %d does not follow the change %d held", e.Seq, e.Seq-1)
	}
	if after, ok := h.events[key{e.Author, e.Seq + 1}]; ok && after.e.Prev != digest {
		return refused, fmt.Sprintf("it forks its author's changes: the change %d held does not follow it", e.Seq+1)
	}
	if reason := fits(m.Flow(), route, &e.Change); reason != "" {
		return refused, reason
	}
	h.events[k] = &heldEvent{e: e, raw: raw, dig: digest}
	return accepted, ""
}

// acceptFacts is acceptEvent for a coordinators' facts twin.
func (j *Journal) acceptFacts(m *crypto.Manifest, ci *caseInfo, h *held, f *crypto.Facts, raw []byte) (verdict, string) {
	route, reason := j.checkPart(m, ci, part{f.Desk, f.Case, f.CaseSHA256, f.Category, f.Author, f.Seq, f.Time}, func(cards []*crypto.Card) error {
		_, err := crypto.VerifyFacts(f, cards)
		return err
	})
	if reason != "" {
		return refused, reason
	}
	k := key{f.Author, f.Seq}
	if old, ok := h.facts[k]; ok {
		if bytes.Equal(old.raw, raw) {
			return duplicate, ""
		}
		return refused, fmt.Sprintf("it repeats change %d of its author with other content", f.Seq)
	}
	fc := f.Change
	if reason := fits(m.Flow(), route, &crypto.Change{Status: fc.Status, Severity: fc.Severity, Assign: fc.Assign,
		Unassign: fc.Unassign, CloseReason: fc.CloseReason}); reason != "" {
		return refused, reason
	}
	h.facts[k] = &heldFacts{f: f, raw: raw}
	return accepted, ""
}

// checkAuthor: the trusted manifest of desk lists the author, and the
// signature verifies against its cards.
func (j *Journal) checkAuthor(m *crypto.Manifest, desk, author string, verify func([]*crypto.Card) error) string {
	if m == nil {
		return fmt.Sprintf("desk %q is not one this handler trusts", desk)
	}
	if m.Desk != desk {
		return "it names another desk than the manifest it was checked against"
	}
	c := m.Handler(author)
	if c == nil {
		return "its author is not a handler of the desk"
	}
	if err := verify([]*crypto.Card{c}); errors.Is(err, crypto.ErrEventMalformed) {
		return "it is malformed"
	} else if err != nil {
		return "its signature does not verify"
	}
	return ""
}

// placed: the event belongs to the case as held (desk, the report's own
// category), and its author is on that category's route, which it returns.
func (j *Journal) placed(m *crypto.Manifest, ci *caseInfo, caseID, desk, category, author string) ([]*crypto.Card, string) {
	if !validCase(caseID) {
		return nil, "it names no valid case"
	}
	var route []*crypto.Card
	var err error
	if ci != nil {
		if desk != ci.meta.Desk {
			return nil, "misplaced: it names another desk than the case's"
		}
		if category != ci.category {
			return nil, "misplaced: it names another category than the report's own"
		}
		route, err = j.route(m, ci)
	} else {
		route, err = m.Route(category)
	}
	if err != nil {
		return nil, "it names a category the desk does not route"
	}
	if !onRoute(route, author) {
		return nil, "its author is not a handler of the case's category"
	}
	return route, ""
}

func checkSeqTime(seq uint64, at string) string {
	if seq < 1 || seq > crypto.MaxSeq {
		return "its change number is out of range"
	}
	if !crypto.ValidEventTime(at) {
		return "its time is not in the journal's form"
	}
	return ""
}

// fits checks a change against the trusted manifest (§8.11.5 rule 7):
// its status, severity and close reason are the workflow's, a close reason
// comes with a final status, and the assignees are handlers of the case.
func fits(wf crypto.Workflow, route []*crypto.Card, ch *crypto.Change) string {
	switch {
	case ch.Status != "" && !slices.Contains(wf.Statuses, ch.Status):
		return fmt.Sprintf("it sets status %q, which the desk's workflow lacks", ch.Status)
	case ch.Severity != "" && !slices.ContainsFunc(wf.Severities, func(s crypto.Severity) bool { return s.ID == ch.Severity }):
		return fmt.Sprintf("it sets severity %q, which the desk's workflow lacks", ch.Severity)
	case ch.CloseReason != "" && !slices.Contains(wf.CloseReasons, ch.CloseReason):
		return fmt.Sprintf("it sets close reason %q, which the desk's workflow lacks", ch.CloseReason)
	case ch.CloseReason != "" && !slices.Contains(wf.Final, ch.Status):
		return "it gives a close reason without a final status"
	}
	for _, a := range slices.Concat(ch.Assign, ch.Unassign) {
		if !onRoute(route, a) {
			return "it assigns a key that is not a handler of the case"
		}
	}
	return ""
}

// validFor checks a change a handler is about to record: crypto's bounds
// and the trusted manifest's workflow and route.
func validFor(wf crypto.Workflow, route []*crypto.Card, ch *crypto.Change) error {
	if isEmpty(ch) {
		return fmt.Errorf("%w: nothing to record", ErrInvalidChange)
	}
	e := crypto.Event{Schema: crypto.EventDomain, Desk: "d", Case: strings.Repeat("0", 32), CaseSHA256: strings.Repeat("0", 64),
		Author: route[0].KeyID(), Seq: 1, Clock: 1, Time: "2000-01-01T00:00:00Z", Change: *ch}
	if err := e.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidChange, err)
	}
	if reason := fits(wf, route, ch); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidChange, strings.TrimPrefix(reason, "it "))
	}
	return nil
}

func isEmpty(ch *crypto.Change) bool {
	return ch.Status == "" && ch.Severity == "" && len(ch.Assign) == 0 && len(ch.Unassign) == 0 &&
		len(ch.Tag) == 0 && len(ch.Untag) == 0 && ch.Note == "" && ch.CloseReason == "" && ch.Link == nil &&
		ch.Unlink == nil && ch.Referral == nil && ch.Reply == "" && !ch.Received && ch.Custody == nil && ch.Satisfaction == nil
}
