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
	// Satisfaction is the score (1 to 5) of the submitter's survey answer
	// the latest satisfaction event in merge order recorded (one per
	// case), SatisfactionFollowup that follow-up's submission ID and
	// SatisfactionTime when it was recorded; 0 and "" when none.
	Satisfaction                           int
	SatisfactionFollowup, SatisfactionTime string
	History                                []Entry // every applied event, in (time, author, seq) order
	Conflicts                              []Conflict
	Gaps                                   []Gap
	FactsOnly                              bool   // built from facts (a coordinator outside the route)
	Updated                                string // time of the last event
	// Misplaced counts events kept for this case that name another
	// category, desk or report than the case itself; they are not applied.
	Misplaced int `json:",omitempty"`
	// Disputed: the report is not held here and its events and facts
	// claim more than one (desk, category, report SHA-256); Claims says
	// who claims which, and no group is applied (§8.11.5 rule 4): the
	// registers, notes and history are empty.
	Disputed bool    `json:",omitempty"`
	Claims   []Claim `json:",omitempty"`
}

// Claim is one group of a disputed case: the events and facts that name
// the same desk, category and report SHA-256, and who authored them.
type Claim struct {
	Desk, Category, CaseSHA256 string
	Authors                    []string // key IDs, sorted
	Events                     int      // events and facts in the group
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

// Gap is a run of an author's changes that are missing: a later one of
// theirs on the same case is held, or a held event's seen names one.
// Seq is the first missing, To the last (To == Seq: one change).
type Gap struct {
	Case, Author string
	Seq          uint64
	To           uint64
}

// String renders the gap, naming the author through name (nil shows the
// key ID): "alice's change 17 on this case has not arrived", or "alice's
// changes 4 to 9 on this case have not arrived".
func (g Gap) String(name func(keyID string) string) string {
	a := g.Author
	if name != nil {
		a = name(a)
	}
	if g.To > g.Seq {
		return fmt.Sprintf("%s's changes %d to %d on this case have not arrived", a, g.Seq, g.To)
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
	eff                            uint64        // the effective clock (§8.11.4 step 1)
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
// counts. Events are applied in (effective clock, Time, Author, Seq)
// order; each register takes the value of the greatest event writing it;
// the history, notes and replies are kept in (Time, Author, Seq) order.
// Gaps are the runs of seqs missing below each author's highest, held or
// named in a held event's Seen; Replay knows no route, so a Seen entry
// counts only for a key that authored one of the events (State, which
// knows the case's route, counts the route's keys).
func Replay(wf crypto.Workflow, events []*crypto.Event) *State {
	return replayEvents(wf, nil, events)
}

// replayEvents is Replay with the case's route (key IDs; nil: see Replay).
func replayEvents(wf crypto.Workflow, route []string, events []*crypto.Event) *State {
	ops := make([]*op, 0, len(events))
	for _, e := range events {
		if e == nil {
			continue
		}
		ops = append(ops, &op{kase: e.Case, desk: e.Desk, category: e.Category, author: e.Author, clock: e.Clock, seq: e.Seq, time: e.Time, seen: e.Seen, ch: e.Change,
			tie: func() string { return crypto.EventDigest(e) }})
	}
	return replay(wf, ops, route)
}

// ReplayFacts is Replay for a coordinator who holds only the facts of a
// case: the state has no notes, tags, links or referral text.
func ReplayFacts(wf crypto.Workflow, facts []*crypto.Facts) *State {
	return replayFacts(wf, nil, facts)
}

// replayFacts is ReplayFacts with the case's route (nil: see Replay).
func replayFacts(wf crypto.Workflow, route []string, facts []*crypto.Facts) *State {
	ops := make([]*op, 0, len(facts))
	for _, f := range facts {
		if f == nil {
			continue
		}
		ops = append(ops, &op{kase: f.Case, desk: f.Desk, category: f.Category, received: f.Received, author: f.Author, clock: f.Clock, seq: f.Seq, time: f.Time, seen: f.Seen, facts: true, fc: f.Change,
			tie: func() string { return factsDigest(f) }})
	}
	s := replay(wf, ops, route)
	s.FactsOnly = true
	return s
}

// factsDigest orders two different facts with the same time, author and
// seq: their JSON (encoding/json writes maps in key order).
func factsDigest(f *crypto.Facts) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// compareOps is the merge order: (effective clock, time, author, seq).
func compareOps(a, b *op) int {
	return cmp.Or(cmp.Compare(a.eff, b.eff), cmp.Compare(a.time, b.time), cmp.Compare(a.author, b.author), cmp.Compare(a.seq, b.seq))
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

// effClocks sets every op's effective clock (§8.11.4 step 1): its clock,
// but at most one more than the highest effective clock of the ops it
// declares it had seen: its author's earlier ones, and another author's
// up to its seen entry. It is a function of the set alone. The ops and
// what each declares seen form a graph that forged claims can make
// cyclic (an event claiming a later one it cannot have seen), so it is
// taken by strongly connected components, dependencies first (Tarjan's
// order): within a component only what lies outside it counts, so a
// cycle cannot carry an inflated clock either. Each op points at its
// author's previous held op and, per seen author, at the latest held op
// the entry covers; hi, the highest effective clock of an author's ops up
// to one, stands for all the ops below it. ops hold one op per (author,
// seq).
func effClocks(ops []*op) {
	n := len(ops)
	byAuthor := map[string][]int{}
	var names []string // in the order of ops: no map is ranged over (see replay)
	for i, o := range ops {
		if byAuthor[o.author] == nil {
			names = append(names, o.author)
		}
		byAuthor[o.author] = append(byAuthor[o.author], i)
	}
	for _, a := range names {
		ix := byAuthor[a]
		slices.SortFunc(ix, func(a, b int) int { return cmp.Compare(ops[a].seq, ops[b].seq) })
	}
	upTo := func(author string, q uint64) int { // the op of author with the greatest seq <= q, or -1
		ix := byAuthor[author]
		k, found := slices.BinarySearchFunc(ix, q, func(i int, q uint64) int { return cmp.Compare(ops[i].seq, q) })
		if found {
			return ix[k]
		}
		if k == 0 {
			return -1
		}
		return ix[k-1]
	}
	prev := make([]int, n)
	edges := make([][]int, n)
	for i, o := range ops {
		prev[i] = -1
		if o.seq > 1 {
			prev[i] = upTo(o.author, o.seq-1)
		}
		if prev[i] >= 0 {
			edges[i] = append(edges[i], prev[i])
		}
		for _, a := range names {
			if q, ok := o.seen[a]; ok && a != o.author {
				if t := upTo(a, q); t >= 0 {
					edges[i] = append(edges[i], t)
				}
			}
		}
	}
	index, low, comp := make([]int, n), make([]int, n), make([]int, n)
	onStack := make([]bool, n)
	hi := make([]uint64, n)
	var stack []int
	next := 1
	var strong func(v int)
	strong = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range edges[v] {
			if index[w] == 0 {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var c []int
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp[w] = v + 1
			c = append(c, w)
			if w == v {
				break
			}
		}
		for _, x := range c {
			var m uint64
			for _, t := range edges[x] {
				if comp[t] != v+1 {
					m = max(m, hi[t])
				}
			}
			ops[x].eff = min(ops[x].clock, m+1)
		}
		slices.SortFunc(c, func(a, b int) int { return cmp.Compare(ops[a].seq, ops[b].seq) })
		for _, x := range c {
			hi[x] = ops[x].eff
			if p := prev[x]; p >= 0 {
				hi[x] = max(hi[x], hi[p])
			}
		}
	}
	for i := range ops {
		if index[i] == 0 {
			strong(i)
		}
	}
}

// maxEffClock is the highest effective clock of a case's events and of
// its facts (each merged on its own): what a writer's clock follows.
func maxEffClock(events []*crypto.Event, facts []*crypto.Facts) uint64 {
	var hi uint64
	ops := make([]*op, 0, len(events))
	for _, e := range events {
		ops = append(ops, &op{author: e.Author, seq: e.Seq, clock: e.Clock, seen: e.Seen})
	}
	effClocks(ops)
	for _, o := range ops {
		hi = max(hi, o.eff)
	}
	ops = ops[:0]
	for _, f := range facts {
		ops = append(ops, &op{author: f.Author, seq: f.Seq, clock: f.Clock, seen: f.Seen})
	}
	effClocks(ops)
	for _, o := range ops {
		hi = max(hi, o.eff)
	}
	return hi
}

// replay merges ops. Maps are never ranged over where the order could
// change what runs (a sort's work, a traversal): FuzzReplay's coverage
// must be a function of its input, or the fuzzer spends its time trying
// to reproduce coverage that came from map order.
func replay(wf crypto.Workflow, ops []*op, route []string) *State {
	var onRoute map[string]bool
	if route != nil {
		onRoute = make(map[string]bool, len(route))
		for _, k := range route {
			onRoute[k] = true
		}
	}
	ops = dedupe(ops)
	effClocks(ops)
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
	var assignees, tags orderedSet[string]
	var links orderedSet[crypto.Link]
	heldSeqs := map[string][]uint64{}
	var authors []string // authors of ops, then the route's keys: who may have gaps
	for _, o := range ops {
		if heldSeqs[o.author] == nil {
			authors = append(authors, o.author)
		}
		heldSeqs[o.author] = append(heldSeqs[o.author], o.seq)
	}
	for _, k := range route {
		if heldSeqs[k] == nil {
			authors = append(authors, k)
		}
	}
	highest := map[string]uint64{}
	for _, o := range ops {
		highest[o.author] = max(highest[o.author], o.seq)
		for a, q := range o.seen {
			if onRoute != nil && onRoute[a] || onRoute == nil && heldSeqs[a] != nil {
				highest[a] = max(highest[a], q)
			}
		}
		ch := o.ch
		if o.facts {
			ch = crypto.Change{Status: o.fc.Status, Severity: o.fc.Severity, Assign: o.fc.Assign, Unassign: o.fc.Unassign,
				CloseReason: o.fc.CloseReason, Received: o.fc.Received}
			if o.fc.Custody {
				// Which action, and on what, stays with the case's route.
				ch.Custody = &crypto.Custody{}
			}
			if o.fc.Satisfaction > 0 {
				ch.Satisfaction = &crypto.Satisfaction{Score: o.fc.Satisfaction}
			}
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
			assignees.set(a, true)
		}
		for _, a := range ch.Unassign {
			regs.add(FieldAssignee, a, o, "-")
			assignees.set(a, false)
		}
		for _, t := range ch.Tag {
			regs.add(FieldTag, t, o, "+")
			tags.set(t, true)
		}
		for _, t := range ch.Untag {
			regs.add(FieldTag, t, o, "-")
			tags.set(t, false)
		}
		if l := ch.Link; l != nil {
			regs.add(FieldLink, l.Rel+" "+l.Case, o, "+")
			links.set(*l, true)
		}
		if l := ch.Unlink; l != nil {
			regs.add(FieldLink, l.Rel+" "+l.Case, o, "-")
			links.set(*l, false)
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
		// One answer per case: the latest satisfaction event in merge
		// order (ops are sorted), whatever the authors' clocks say.
		if sat := ch.Satisfaction; sat != nil {
			s.Satisfaction, s.SatisfactionFollowup, s.SatisfactionTime = sat.Score, sat.Followup, o.time
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
	s.Assignees = assignees.members()
	slices.Sort(s.Assignees)
	s.Tags = tags.members()
	slices.Sort(s.Tags)
	s.Links = links.members()
	slices.SortFunc(s.Links, func(a, b crypto.Link) int { return cmp.Or(cmp.Compare(a.Rel, b.Rel), cmp.Compare(a.Case, b.Case)) })
	s.Conflicts = regs.conflicts()
	authors = slices.DeleteFunc(authors, func(a string) bool { return highest[a] == 0 })
	slices.Sort(authors)
	for _, a := range authors {
		seqs := heldSeqs[a]
		slices.Sort(seqs)
		next, n := uint64(1), 0 // the first seq not known held
		for _, q := range append(seqs, highest[a]+1) {
			if q > next && n < maxGaps {
				s.Gaps = append(s.Gaps, Gap{Case: s.Case, Author: a, Seq: next, To: q - 1})
				n++
			}
			next = max(next, q+1)
		}
	}
	return s
}

// maxGaps bounds the runs of gaps reported for one author of one case.
const maxGaps = 20

// orderedSet is a set of memberships that remembers the order in which
// its keys were first set, so that listing it ranges over no map.
type orderedSet[K comparable] struct {
	in    map[K]bool
	order []K
}

func (o *orderedSet[K]) set(k K, in bool) {
	if o.in == nil {
		o.in = map[K]bool{}
	}
	if _, ok := o.in[k]; !ok {
		o.order = append(o.order, k)
	}
	o.in[k] = in
}

// members lists the keys in the set, in the order first set.
func (o *orderedSet[K]) members() []K {
	var out []K
	for _, k := range o.order {
		if o.in[k] {
			out = append(out, k)
		}
	}
	return out
}
