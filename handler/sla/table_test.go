package sla

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
)

// testFlow is the default workflow with the clock paused while waiting,
// targets (minutes) for three of its four severities and four escalation
// steps.
func testFlow() crypto.Workflow {
	wf := crypto.DefaultWorkflow()
	wf.Paused = []string{"waiting"}
	targets := map[string]*crypto.Targets{
		"critical": {Acknowledge: 60, FirstResponse: 120, Update: 240, Resolve: 480},
		"high":     {Acknowledge: 120, FirstResponse: 240, Update: 480, Resolve: 1440},
		"medium":   {Resolve: 2880},
	}
	for i := range wf.Severities {
		wf.Severities[i].Targets = targets[wf.Severities[i].ID]
	}
	wf.Escalation = []crypto.Escalation{
		{AfterMinutes: 60, Unless: crypto.UnlessAcknowledged, Notify: []string{"lead"}, Label: "shift leads"},
		{AfterMinutes: 90, Unless: crypto.UnlessAcknowledged, Notify: []string{"coord"}, Label: "coordinator"},
		{AfterMinutes: 300, Unless: crypto.UnlessResolved, Severities: []string{"critical"}, Notify: []string{"coord"}},
		{AfterMinutes: 200, Unless: crypto.UnlessFirstResponse, Severities: []string{"high"}, Notify: []string{"lead"}},
	}
	return wf
}

// received is every scripted case's received hour.
var received = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

const (
	testCase = "0123456789abcdef0123456789abcdef"
	alice    = "alice-key"
	bob      = "bob-key"
)

// scriptEvents turns a script into events: space-separated
// KIND[:VALUE]@MINUTES[/bob], KIND one of st (status), sv (severity), re
// (a reply), no (a note), rx (received: the author pulled the case), at
// that many minutes after the received hour, by alice unless /bob. Only
// the events up to at exist yet. Each author's seq counts up; each event
// has seen every earlier one, so the merge order is the script's.
func scriptEvents(t *testing.T, script string, at int) []*crypto.Event {
	t.Helper()
	var out []*crypto.Event
	seqs := map[string]uint64{}
	for i, w := range strings.Fields(script) {
		author := alice
		if s, ok := strings.CutSuffix(w, "/bob"); ok {
			w, author = s, bob
		}
		what, mins, ok := strings.Cut(w, "@")
		m, err := strconv.Atoi(mins)
		if !ok || err != nil {
			t.Fatalf("bad script word %q", w)
		}
		if m > at {
			continue
		}
		kind, val, _ := strings.Cut(what, ":")
		var ch crypto.Change
		switch kind {
		case "st":
			ch.Status = val
		case "sv":
			ch.Severity = val
		case "re":
			ch.Reply = fmt.Sprintf("%032x", i)
		case "no":
			ch.Note = "a note"
		case "rx":
			ch.Received = true
		default:
			t.Fatalf("bad script kind %q", kind)
		}
		seen := map[string]uint64{}
		for a, q := range seqs {
			if a != author {
				seen[a] = q
			}
		}
		seqs[author]++
		out = append(out, &crypto.Event{Desk: "helpdesk", Case: testCase, Category: "incident", Author: author,
			Seq: seqs[author], Clock: uint64(i + 1), Seen: seen,
			Time: crypto.EventTime(received.Add(time.Duration(m) * time.Minute)), Change: ch})
	}
	return out
}

// replayed is the case's state at minute at, from its events (a handler
// of the case) or from their facts (a coordinator).
func replayed(t *testing.T, wf crypto.Workflow, script string, at int, facts bool) *journal.State {
	t.Helper()
	evs := scriptEvents(t, script, at)
	hour := crypto.EventTime(received)
	var s *journal.State
	if facts {
		fs := make([]*crypto.Facts, len(evs))
		for i, e := range evs {
			fs[i] = crypto.FactsOf(e, hour)
		}
		s = journal.ReplayFacts(wf, fs)
	} else {
		s = journal.Replay(wf, evs)
	}
	// What the case store adds: a case with no change has an empty state.
	s.Case, s.Desk, s.Received = testCase, "helpdesk", hour
	return s
}

// attention is the breach set: every clock breached (!), missed (x) or
// about to breach (~), as a letter (a, f, u, r: acknowledge, first
// response, update, resolve) and the mark, then every escalation step
// due, as e and its index.
func attention(c *Case) []string {
	var out []string
	letter := map[string]string{Acknowledge: "a", FirstResponse: "f", Update: "u", Resolve: "r"}
	mark := map[string]string{Breached: "!", Missed: "x", Soon: "~"}
	for _, k := range c.Clocks {
		if m, ok := mark[k.State]; ok {
			out = append(out, letter[k.Name]+m)
		}
	}
	for _, s := range c.Due {
		out = append(out, "e"+strconv.Itoa(s.Index))
	}
	return out
}

// scenarios are 20 scripted cases, each looked at five times: 100 cases
// with known event times, and the breach set expected at each moment
// (minutes after the received hour → the set, "" for none). Windows of
// "about to breach": a quarter of the target, at least 15 minutes.
var scenarios = []struct {
	name   string
	script string
	want   map[int]string
}{
	{"critical untouched", "sv:critical@0",
		map[int]string{30: "", 50: "a~", 61: "a!,e0", 100: "a!,f~,e0,e1", 500: "a!,f!,u!,r!,e0,e1,e2"}},
	{"critical handled in time", "sv:critical@0 st:acknowledged@20 re@40 st:resolved@300",
		map[int]string{10: "", 30: "", 150: "", 250: "u~", 600: ""}},
	{"critical waiting on the submitter", "sv:critical@0 st:acknowledged@10 re@20 st:waiting@30 st:open@400",
		map[int]string{200: "", 420: "", 640: "u~", 641: "u!", 700: "u!,e2"}},
	{"high resolved, reopened, closed late", "sv:high@0 st:acknowledged@30 re@60 st:resolved@600 st:open@2000 st:closed@3000",
		map[int]string{700: "", 2100: "", 2500: "u!,r~", 2900: "u!,r!", 3100: "rx"}},
	{"no severity untouched", "",
		map[int]string{30: "", 60: "e0", 89: "e0", 90: "e0,e1", 1000: "e0,e1"}},
	{"no severity acknowledged", "st:acknowledged@45",
		map[int]string{30: "", 44: "", 50: "", 100: "", 10000: ""}},
	{"medium paused twice", "sv:medium@0 st:open@60 st:waiting@120 st:open@1000 st:waiting@2000 st:open@3000 st:resolved@4000",
		map[int]string{1500: "", 2500: "", 3500: "", 3999: "", 4100: ""}},
	{"medium escalated twice, no pause", "sv:medium@0 st:open@60 st:escalated@120 st:open@1000 st:escalated@2000 st:open@3000 st:resolved@4000",
		map[int]string{1500: "", 2500: "r~", 2881: "r!", 3999: "r!", 4100: "rx"}},
	{"critical answered late", "sv:critical@0 st:acknowledged@5 no@100 re@150 st:resolved@400",
		map[int]string{90: "f~", 121: "f!", 160: "fx", 380: "fx,u~,r~,e2", 450: "fx"}},
	{"high never answered", "sv:high@0 st:open@10 no@100",
		map[int]string{150: "", 190: "f~", 200: "f~,e3", 241: "f!,e3", 600: "f!,u!,e3"}},
	{"high rejected in time, reopened", "sv:high@0 st:rejected@30 st:open@6000",
		map[int]string{20: "", 40: "", 5000: "", 6100: "", 6200: "f~,e3"}},
	{"high closed without a reply, late", "sv:high@0 st:open@30 st:closed@300",
		map[int]string{100: "", 200: "f~,e3", 250: "f!,e3", 310: "fx", 10000: "fx"}},
	{"critical, a pull is no update", "sv:critical@0 st:acknowledged@10 re@20 rx@200/bob",
		map[int]string{250: "u~", 261: "u!", 301: "u!,e2", 370: "u!,r~,e2", 481: "u!,r!,e2"}},
	{"low raised to critical", "sv:low@0 st:open@10 sv:critical@200",
		map[int]string{100: "", 150: "", 210: "f!", 301: "f!,e2", 500: "f!,u!,r!,e2"}},
	{"critical waiting from the start", "sv:critical@0 st:waiting@10 st:open@1000 re@1010",
		map[int]string{500: "", 1005: "", 1100: "", 1330: "u!,e2", 1400: "u!,r~,e2"}},
	{"high untouched, the edges", "sv:high@0",
		map[int]string{60: "e0", 90: "a~,e0,e1", 120: "a~,e0,e1", 121: "a!,e0,e1", 200: "a!,f~,e0,e1,e3"}},
	{"critical resolved then closed", "sv:critical@0 st:acknowledged@10 re@30 st:resolved@470 st:closed@600",
		map[int]string{100: "", 300: "u!,e2", 469: "u!,r~,e2", 470: "", 700: ""}},
	{"critical reopened twice", "sv:critical@0 st:acknowledged@5 re@10 st:resolved@100 st:open@200 st:resolved@300 st:open@400 no@410",
		map[int]string{150: "", 250: "", 350: "", 600: "u~,r~,e2", 700: "u!,r!,e2"}},
	{"high acknowledged by another", "sv:high@0 st:acknowledged@100/bob",
		map[int]string{59: "", 60: "e0", 95: "a~,e0,e1", 100: "", 130: ""}},
	{"critical waiting unanswered", "sv:critical@0 st:acknowledged@10 st:waiting@100 st:open@1000",
		map[int]string{99: "f~", 100: "", 500: "", 1021: "f!", 1200: "f!,u~,e2"}},
}

// TestBreachTable: 100 scripted cases give exactly the expected breach
// set, replayed from the events and from their facts alike.
func TestBreachTable(t *testing.T) {
	wf := testFlow()
	n := 0
	for _, sc := range scenarios {
		ats := make([]int, 0, len(sc.want))
		for at := range sc.want {
			ats = append(ats, at)
		}
		slices.Sort(ats)
		for _, at := range ats {
			n++
			var want []string
			if w := sc.want[at]; w != "" {
				want = strings.Split(w, ",")
			}
			now := received.Add(time.Duration(at) * time.Minute)
			for _, facts := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/at%d/facts=%v", sc.name, at, facts), func(t *testing.T) {
					c, err := Check(wf, replayed(t, wf, sc.script, at, facts), now, Options{})
					if err != nil {
						t.Fatal(err)
					}
					got := attention(c)
					if !slices.Equal(got, want) {
						t.Errorf("breach set %v, want %v (clocks %+v)", got, want, c.Clocks)
					}
					if c.Attention() != (slices.ContainsFunc(want, func(s string) bool { return strings.HasSuffix(s, "!") || s[0] == 'e' })) {
						t.Errorf("Attention() = %v with %v", c.Attention(), got)
					}
				})
			}
		}
	}
	if n != 100 {
		t.Fatalf("%d scripted cases, want 100", n)
	}
}
