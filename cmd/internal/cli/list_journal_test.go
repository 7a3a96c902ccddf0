package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
)

// row makes a case row of the default workflow: id's first letter names
// it, age in hours, severity and status as given ("" none), assignees by
// key ID, tags.
func row(id string, hours int, severity, status string, assignees []string, tags ...string) *caseRow {
	wf := crypto.DefaultWorkflow()
	s := &journal.State{Severity: severity, Status: status, Assignees: assignees, Tags: tags}
	return &caseRow{meta: &cases.Meta{ID: strings.Repeat(id, 32), Desk: "helpdesk", Category: "incident"}, state: s, wf: wf,
		status: statusOf(wf, s), age: time.Duration(hours) * time.Hour, held: true}
}

func ids(rows []*caseRow) string {
	var out []string
	for _, r := range rows {
		out = append(out, r.meta.ID[:1])
	}
	return strings.Join(out, "")
}

// TestListOrder: list sorts most severe first, then oldest first, then by
// ID; triage puts new unassigned cases first and leaves final ones out.
func TestListOrder(t *testing.T) {
	rows := []*caseRow{
		row("a", 1, "low", "open", []string{"k1"}),
		row("b", 50, "", "", nil), // new, unassigned, no severity, oldest
		row("c", 5, "critical", "acknowledged", []string{"k1"}),
		row("d", 9, "critical", "", nil),               // new, unassigned, critical
		row("e", 3, "high", "closed", nil),             // final
		row("f", 9, "critical", "new", []string{"k2"}), // new but assigned
		row("g", 2, "", "", nil),                       // new, unassigned, young
	}
	tests := []struct {
		name string
		sort func(a, b *caseRow) int
		drop bool
		want string
	}{
		{"list", bySeverityThenAge, false, "dfceabg"},
		{"triage", byTriage, true, "dbgfca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := slices.Clone(rows)
			if tt.drop {
				rs = slices.DeleteFunc(rs, func(r *caseRow) bool { return triageGroup(r) == 2 })
			}
			slices.SortFunc(rs, tt.sort)
			if got := ids(rs); got != tt.want {
				t.Errorf("order %s, want %s", got, tt.want)
			}
		})
	}
}

// TestListFilter: each filter keeps what it says, values are checked
// against the workflow with the valid ones in the hint.
func TestListFilter(t *testing.T) {
	me, err := crypto.GenerateIdentity("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	mine := me.Card().KeyID()
	rows := []*caseRow{
		row("a", 1, "low", "open", []string{mine}, "fraud", "urgent"),
		row("b", 50, "", "", nil, "fraud"),
		row("c", 30*24, "critical", "acknowledged", []string{"k1"}),
		row("d", 9, "critical", "closed", nil),
	}
	rows[2].meta.Category = "sea"
	tests := []struct {
		name string
		f    journalFilter
		want string
		err  string
	}{
		{"none", journalFilter{}, "abcd", ""},
		{"status", journalFilter{status: []string{"new", "closed"}}, "bd", ""},
		{"severity", journalFilter{severity: []string{"critical"}}, "cd", ""},
		{"category", journalFilter{category: []string{"sea"}}, "c", ""},
		{"tags all of", journalFilter{tags: []string{"fraud", "urgent"}}, "a", ""},
		{"tag", journalFilter{tags: []string{"fraud"}}, "ab", ""},
		{"me", journalFilter{assignee: "me"}, "a", ""},
		{"unassigned", journalFilter{unassigned: true}, "bd", ""},
		{"older than days", journalFilter{olderThan: "14d"}, "c", ""},
		{"older than hours", journalFilter{olderThan: "8h"}, "bcd", ""},
		{"bad status", journalFilter{status: []string{"opne"}}, "", `"opne" is not a status`},
		{"bad severity", journalFilter{severity: []string{"urgent"}}, "", "choose one of: critical, high, medium, low"},
		{"bad duration", journalFilter{olderThan: "3 weeks"}, "", "--older-than"},
		{"unknown handler", journalFilter{assignee: "zed"}, "", `no desk here has a handler "zed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.filter(rows, me)
			if tt.err != "" {
				var ue *Error
				if err == nil {
					t.Fatalf("no error, want %q", tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) && !(asError(err, &ue) && strings.Contains(ue.Hint, tt.err)) {
					t.Fatalf("error %q (hint %q), want %q", err, hintOf(err), tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != tt.want {
				t.Errorf("kept %s, want %s", ids(got), tt.want)
			}
		})
	}
}

func asError(err error, ue **Error) bool {
	e, ok := err.(*Error)
	*ue = e
	return ok
}

func hintOf(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Hint
	}
	return ""
}

// TestJournalTexts: conflicts and gaps read as the issue words them, with
// handler names from the manifest, escaped.
func TestJournalTexts(t *testing.T) {
	var cards, keys []string
	for _, n := range []string{"alice", "bob"} {
		id, err := crypto.GenerateIdentity(n, true)
		if err != nil {
			t.Fatal(err)
		}
		cards = append(cards, id.Card().String())
		keys = append(keys, id.Card().KeyID())
	}
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Help desk", Handlers: cards, Serial: 1}
	if err := m.Normalize(); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ got, want string }{
		{conflictText(m, journal.Conflict{Field: journal.FieldAssignee, Authors: keys, Winner: keys[1]}), "alice and bob both changed the assignee; bob's change stands"},
		{conflictText(m, journal.Conflict{Field: journal.FieldTag, Item: "x\x1b[2J", Authors: keys, Winner: keys[0]}), `alice and bob both changed the tag (x\x{1b}[2J); alice's change stands`},
		{gapText(m, journal.Gap{Author: keys[0], Seq: 17}), "alice's change 17 on this case has not arrived"},
		{gapText(m, journal.Gap{Author: keys[1], Seq: 4, To: 9}), "bob's changes 4 to 9 on this case have not arrived"},
		{claimText(m, journal.Claim{Desk: "helpdesk", Category: "sea", CaseSHA256: strings.Repeat("0f", 32), Authors: keys, Events: 3}), "alice, bob: desk helpdesk, category sea, report 0f0f0f0f0f0f (3 change(s))"},
		{changeText(m, crypto.Change{Status: "open", Assign: keys[:1], Tag: []string{"fraud"}, Note: "a\nb\n"}, nil), "status open, assigned alice, tagged fraud, note of 2 line(s)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

// TestRecordFailed: the journal's errors become the exit codes docs/cli.md
// gives, with a hint.
func TestRecordFailed(t *testing.T) {
	id := strings.Repeat("ab", 16)
	tests := []struct {
		err  error
		code int
	}{
		{fmt.Errorf("case x: %w", journal.ErrNotOnRoute), ExitTrust},
		{fmt.Errorf("%w: unknown status", crypto.ErrChangeWorkflow), ExitUsage},
		{fmt.Errorf("%w: too large", journal.ErrInvalidChange), ExitUsage},
		{journal.ErrCategoryUnknown, ExitKey},
		{errors.New("disk full"), ExitError},
	}
	for _, tt := range tests {
		var ue *Error
		if !errors.As(recordFailed(id, tt.err), &ue) || ue.Code != tt.code || ue.Hint == "" || !errors.Is(ue, tt.err) {
			t.Errorf("%v: got %+v, want code %d with a hint", tt.err, ue, tt.code)
		}
	}
}

// TestListJournalEscapes: whatever another handler's change or the relay
// put in a state (a tag, a status, a category), list prints it escaped.
func TestListJournalEscapes(t *testing.T) {
	r := row("a", 3, "high\x1b[1A", "open\u202e", nil, "fraud\x1b]0;pwned\x07")
	r.meta.Category = "sea\x1b[2J"
	var out, errb strings.Builder
	if err := printRows(&out, &errb, []*caseRow{r}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\u202e") {
		t.Fatalf("list printed control characters: %q", out.String())
	}
	for _, want := range []string{`fraud\x{1b}]0;pwned\x{7}`, `sea\x{1b}[2J`, `open\x{202e}`, `high\x{1b}[1A`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCaseShowEscapes: case show prints every text a handler wrote (a
// note, a referral, an outcome, a link) escaped; a note keeps its lines.
func TestCaseShowEscapes(t *testing.T) {
	id, err := crypto.GenerateIdentity("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Help desk", Handlers: []string{id.Card().String()}, Serial: 1}
	if err := m.Normalize(); err != nil {
		t.Fatal(err)
	}
	key := id.Card().KeyID()
	s := &journal.State{Status: "referred", Tags: []string{"t\x1b[0m"},
		Notes:    []journal.Note{{Author: key, Time: "2026-12-03T10:00:00Z", Seq: 1, Text: "line one\x1b[2J\nline two\u202e"}},
		Referral: &crypto.Referral{To: "Clinic\x1b]0;x\x07", Consent: true, Outcome: "seen\x1b[1A"},
		Links:    []crypto.Link{{Rel: "related", Case: "ab\x1b[K"}},
		History:  []journal.Entry{{Author: key, Time: "2026-12-03T10:00:00Z", Seq: 1, Change: crypto.Change{Referral: &crypto.Referral{To: "Clinic\x1b]0;x\x07"}}}}}
	c := &journalCase{meta: &cases.Meta{ID: strings.Repeat("ab", 16), Desk: "helpdesk", Received: "2026-12-03T09:00:00Z"}, id: id, man: m}
	var out strings.Builder
	printState(&out, c, m.Flow(), s, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	if strings.ContainsAny(out.String(), "\x1b\x07\u202e") {
		t.Fatalf("case show printed control characters: %q", out.String())
	}
	for _, want := range []string{"line one\\x{1b}[2J\nline two\\x{202e}", `to Clinic\x{1b}]0;x\x{7}, the submitter consented: yes, outcome: seen\x{1b}[1A`,
		`related ab\x{1b}[K`, `t\x{1b}[0m`, "alice (you), 2026-12-03T10:00:00Z (change 1)", "(3h ago)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("case show lacks %q:\n%s", want, out.String())
		}
	}
}
