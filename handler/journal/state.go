package journal

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/amana-relay/amana/crypto"
)

// State is a case as its events make it: what Replay returns.
type State struct {
	Case, Desk, Category, Received string
	Status, Severity, CloseReason  string
	Assignees, Tags                []string // sorted; assignees are key IDs
	Notes                          []Note   // append-only, ordered (time, author, seq)
	Links                          []crypto.Link
	Referral                       *crypto.Referral
	Replies                        []Response // replies recorded, ordered
	// The time of the first event reaching each: a reply (FirstResponse),
	// a status other than the workflow's initial one (Acknowledged), a
	// final status (Resolved), the status "closed", or the last final
	// status of a workflow without one (Closed). "" when none did.
	FirstResponse, Acknowledged, Resolved, Closed string
	Reopened                                      int               // moves from a final status to another one
	ReceivedBy                                    map[string]string // key ID -> time (Received events)
	History                                       []Entry           // every applied event, in (time, author, seq) order
	Conflicts                                     []Conflict
	Gaps                                          []Gap
	FactsOnly                                     bool   // built from facts (a coordinator outside the route)
	Updated                                       string // time of the last event
	// Misplaced counts events kept for this case that name another
	// category, desk or report than the case itself; they are not applied.
	Misplaced int `json:",omitempty"`
}

// Note is an internal note.
type Note struct {
	Author, Time string
	Seq          uint64
	Text         string
}

// Response is a reply to the submitter recorded on the case.
type Response struct {
	Author, Time, Reply string
	Seq                 uint64 // the event's
}

// Entry is one applied event.
type Entry struct {
	Author, Time string
	Seq          uint64
	Change       crypto.Change
}

// Conflict is a register that two or more authors changed concurrently
// (neither had seen the other's change) to different values: Winner's
// change stands. Item names which assignee (key ID), tag or linked case it
// was, for the membership registers.
type Conflict struct {
	Field   string
	Item    string `json:",omitempty"`
	Authors []string
	Winner  string
}

// String renders the conflict, naming authors through name (a key ID to a
// handler name; nil shows key IDs): "alice and bob both changed the
// assignee; bob's change stands".
func (c Conflict) String(name func(keyID string) string) string {
	if name == nil {
		name = func(s string) string { return s }
	}
	ns := make([]string, len(c.Authors))
	for i, a := range c.Authors {
		ns[i] = name(a)
	}
	both := "both"
	if len(ns) > 2 {
		both = "all"
	}
	return fmt.Sprintf("%s %s changed the %s; %s's change stands", andList(ns), both, c.Field, name(c.Winner))
}

func andList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// Gap is an author's change that is missing: a later one of theirs on the
// same case is held.
type Gap struct {
	Case, Author string
	Seq          uint64
}

// String renders the gap, naming the author through name (nil shows the
// key ID): "alice's change 17 on this case has not arrived".
func (g Gap) String(name func(keyID string) string) string {
	a := g.Author
	if name != nil {
		a = name(a)
	}
	return fmt.Sprintf("%s's change %d on this case has not arrived", a, g.Seq)
}

// Field names of the registers, as Conflict.Field says them.
const (
	FieldStatus      = "status"
	FieldSeverity    = "severity"
	FieldCloseReason = "close reason"
	FieldReferral    = "referral"
	FieldAssignee    = "assignee"
	FieldTag         = "tag"
	FieldLink        = "link"
)

// op is one event as the merge sees it: case events and facts alike.
type op struct {
	kase, desk, category, received string
	author                         string
	seq                            uint64
	time                           string
	seen                           map[string]uint64
	ch                             crypto.Change
	facts                          bool
	fc                             crypto.FactChange
	clock                          uint64
	tie                            func() string // the digest, to choose between two different events with the same (author, seq)
	digest                         *string
}

// tieValue is tie's value, computed once.
func (o *op) tieValue() string {
	if o.digest == nil {
		d := o.tie()
		o.digest = &d
	}
	return *o.digest
}

func (a *op) concurrent(b *op) bool {
	return a.seen[b.author] < b.seq && b.seen[a.author] < a.seq
}

// write is one event writing one register, with the value it wrote.
type write struct {
	o   *op
	val string
}

type registers struct {
	order  []regKey
	writes map[regKey][]write
}

type regKey struct{ field, item string }

func (r *registers) add(field, item string, o *op, val string) {
	k := regKey{field, item}
	if r.writes == nil {
		r.writes = map[regKey][]write{}
	}
	if _, ok := r.writes[k]; !ok {
		r.order = append(r.order, k)
	}
	r.writes[k] = append(r.writes[k], write{o, val})
}

// conflicts lists, for every register, the authors whose write was
// concurrent with the standing one and wrote another value.
func (r *registers) conflicts() []Conflict {
	var out []Conflict
	for _, k := range r.order {
		ws := r.writes[k]
		win := ws[len(ws)-1]
		var authors []string
		for _, w := range ws[:len(ws)-1] {
			if w.o.author != win.o.author && w.val != win.val && w.o.concurrent(win.o) && !slices.Contains(authors, w.o.author) {
				authors = append(authors, w.o.author)
			}
		}
		if len(authors) == 0 {
			continue
		}
		slices.Sort(authors)
		authors = append(authors, win.o.author)
		out = append(out, Conflict{Field: k.field, Item: k.item, Authors: authors, Winner: win.o.author})
	}
	slices.SortFunc(out, func(a, b Conflict) int {
		return cmp.Or(cmp.Compare(a.Field, b.Field), cmp.Compare(a.Item, b.Item))
	})
	return out
}

// Replay merges a case's events into its state. It is pure and
// deterministic: the same set of events, in any order and with any
// repeats, gives the same State (docs/protocol.md §8.11.4). Of two
// different events with the same author and seq, the first by digest
// counts. Events are applied in (Clock, Time, Author, Seq) order; each
// register takes the value of the greatest event writing it; the history,
// notes and replies are kept in (Time, Author, Seq) order. Gaps are the seqs missing
// below each author's highest, held or named in a held event's Seen.
func Replay(wf crypto.Workflow, events []*crypto.Event) *State {
	ops := make([]*op, 0, len(events))
	for _, e := range events {
		if e == nil {
			continue
		}
		ops = append(ops, &op{kase: e.Case, desk: e.Desk, category: e.Category, author: e.Author, clock: e.Clock, seq: e.Seq, time: e.Time, seen: e.Seen, ch: e.Change,
			tie: func() string { return crypto.EventDigest(e) }})
	}
	return replay(wf, ops)
}

// ReplayFacts is Replay for a coordinator who holds only the facts of a
// case: the state has no notes, tags, links or referral text.
func ReplayFacts(wf crypto.Workflow, facts []*crypto.Facts) *State {
	ops := make([]*op, 0, len(facts))
	for _, f := range facts {
		if f == nil {
			continue
		}
		ops = append(ops, &op{kase: f.Case, desk: f.Desk, category: f.Category, received: f.Received, author: f.Author, clock: f.Clock, seq: f.Seq, time: f.Time, seen: f.Seen, facts: true, fc: f.Change,
			tie: func() string { return factsDigest(f) }})
	}
	s := replay(wf, ops)
	s.FactsOnly = true
	return s
}

// factsDigest orders two different facts with the same time, author and
// seq: their JSON (encoding/json writes maps in key order).
func factsDigest(f *crypto.Facts) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// compareOps is the merge order: (clock, time, author, seq).
func compareOps(a, b *op) int {
	return cmp.Or(cmp.Compare(a.clock, b.clock), cmp.Compare(a.time, b.time), cmp.Compare(a.author, b.author), cmp.Compare(a.seq, b.seq))
}

// byTime is the order of notes and replies: (time, author, seq).
func byTime(at, bt, aa, ba string, as, bs uint64) int {
	return cmp.Or(cmp.Compare(at, bt), cmp.Compare(aa, ba), cmp.Compare(as, bs))
}

// dedupe keeps one event per (author, seq): of two different ones, the
// first by digest.
func dedupe(ops []*op) []*op {
	type as struct {
		a string
		s uint64
	}
	first := make(map[as]*op, len(ops))
	out := ops[:0:0]
	for _, o := range ops {
		k := as{o.author, o.seq}
		old, ok := first[k]
		if !ok {
			first[k] = o
			continue
		}
		if o.tieValue() < old.tieValue() {
			first[k] = o
		}
	}
	for _, o := range ops {
		if first[as{o.author, o.seq}] == o {
			out = append(out, o)
		}
	}
	return out
}

func replay(wf crypto.Workflow, ops []*op) *State {
	ops = dedupe(ops)
	slices.SortFunc(ops, compareOps)
	s := &State{ReceivedBy: map[string]string{}}
	if len(ops) > 0 {
		s.Case, s.Desk, s.Category, s.Received = ops[0].kase, ops[0].desk, ops[0].category, ops[0].received
	}
	if len(wf.Statuses) > 0 {
		s.Status = wf.Statuses[0]
	}
	initial := s.Status
	closed := ""
	if slices.Contains(wf.Statuses, "closed") {
		closed = "closed"
	} else if len(wf.Final) > 0 {
		closed = wf.Final[len(wf.Final)-1]
	}
	var regs registers
	assignees, tags := map[string]bool{}, map[string]bool{}
	links := map[crypto.Link]bool{}
	type as struct {
		a string
		s uint64
	}
	applied := map[as]bool{}
	highest := map[string]uint64{}
	for _, o := range ops {
		applied[as{o.author, o.seq}] = true
		highest[o.author] = max(highest[o.author], o.seq)
		for a, q := range o.seen {
			highest[a] = max(highest[a], q)
		}
		ch := o.ch
		if o.facts {
			ch = crypto.Change{Status: o.fc.Status, Severity: o.fc.Severity, Assign: o.fc.Assign, Unassign: o.fc.Unassign,
				CloseReason: o.fc.CloseReason, Received: o.fc.Received}
		}
		if ch.Status != "" {
			regs.add(FieldStatus, "", o, ch.Status)
			was := s.Status
			s.Status = ch.Status
			if slices.Contains(wf.Final, was) && !slices.Contains(wf.Final, ch.Status) {
				s.Reopened++
			}
			if ch.Status != initial && s.Acknowledged == "" {
				s.Acknowledged = o.time
			}
			if slices.Contains(wf.Final, ch.Status) && s.Resolved == "" {
				s.Resolved = o.time
			}
			if ch.Status == closed && closed != "" && s.Closed == "" {
				s.Closed = o.time
			}
		}
		if ch.Severity != "" {
			regs.add(FieldSeverity, "", o, ch.Severity)
			s.Severity = ch.Severity
		}
		if ch.CloseReason != "" {
			regs.add(FieldCloseReason, "", o, ch.CloseReason)
			s.CloseReason = ch.CloseReason
		}
		for _, a := range ch.Assign {
			regs.add(FieldAssignee, a, o, "+")
			assignees[a] = true
		}
		for _, a := range ch.Unassign {
			regs.add(FieldAssignee, a, o, "-")
			assignees[a] = false
		}
		for _, t := range ch.Tag {
			regs.add(FieldTag, t, o, "+")
			tags[t] = true
		}
		for _, t := range ch.Untag {
			regs.add(FieldTag, t, o, "-")
			tags[t] = false
		}
		if l := ch.Link; l != nil {
			regs.add(FieldLink, l.Rel+" "+l.Case, o, "+")
			links[*l] = true
		}
		if l := ch.Unlink; l != nil {
			regs.add(FieldLink, l.Rel+" "+l.Case, o, "-")
			links[*l] = false
		}
		if r := ch.Referral; r != nil {
			regs.add(FieldReferral, "", o, r.To+"\x00"+fmt.Sprint(r.Consent)+"\x00"+r.Outcome)
			rc := *r
			s.Referral = &rc
		}
		if o.facts && o.fc.Referred {
			regs.add(FieldReferral, "", o, fmt.Sprint(o.fc.ReferralConsent))
			s.Referral = &crypto.Referral{Consent: o.fc.ReferralConsent}
		}
		if ch.Note != "" {
			s.Notes = append(s.Notes, Note{Author: o.author, Time: o.time, Seq: o.seq, Text: ch.Note})
		}
		if ch.Reply != "" || (o.facts && o.fc.Replied) {
			s.Replies = append(s.Replies, Response{Author: o.author, Time: o.time, Reply: ch.Reply, Seq: o.seq})
		}
		if ch.Received {
			if _, ok := s.ReceivedBy[o.author]; !ok {
				s.ReceivedBy[o.author] = o.time
			}
		}
		s.History = append(s.History, Entry{Author: o.author, Time: o.time, Seq: o.seq, Change: ch})
		s.Updated = max(s.Updated, o.time)
	}
	slices.SortFunc(s.History, func(a, b Entry) int { return byTime(a.Time, b.Time, a.Author, b.Author, a.Seq, b.Seq) })
	slices.SortFunc(s.Notes, func(a, b Note) int { return byTime(a.Time, b.Time, a.Author, b.Author, a.Seq, b.Seq) })
	slices.SortFunc(s.Replies, func(a, b Response) int { return byTime(a.Time, b.Time, a.Author, b.Author, a.Seq, b.Seq) })
	if len(s.Replies) > 0 {
		s.FirstResponse = s.Replies[0].Time
	}
	s.Assignees = members(assignees)
	s.Tags = members(tags)
	for l, in := range links {
		if in {
			s.Links = append(s.Links, l)
		}
	}
	slices.SortFunc(s.Links, func(a, b crypto.Link) int { return cmp.Or(cmp.Compare(a.Rel, b.Rel), cmp.Compare(a.Case, b.Case)) })
	s.Conflicts = regs.conflicts()
	authors := make([]string, 0, len(highest))
	for a := range highest {
		authors = append(authors, a)
	}
	slices.Sort(authors)
	for _, a := range authors {
		n := 0
		for q := uint64(1); q <= highest[a] && n < maxGaps; q++ {
			if !applied[as{a, q}] {
				s.Gaps = append(s.Gaps, Gap{Case: s.Case, Author: a, Seq: q})
				n++
			}
		}
	}
	return s
}

// maxGaps bounds the gaps reported for one author of one case: the seqs
// Accept takes are bounded, but Replay takes any events.
const maxGaps = 100

func members(m map[string]bool) []string {
	var out []string
	for k, in := range m {
		if in {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
