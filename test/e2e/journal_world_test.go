package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// The journal's end-to-end tests share one desk, "complaints": three
// handlers (alice, bob, carol) and a coordinator (dana). The restricted
// category "sea" (sexual exploitation and abuse) goes to carol and alice
// only; "general" goes to everyone and is the default route. dana handles
// general cases and sees only the facts of sea cases.

const journalDesk = "complaints"

var journalPeople = []string{"alice", "bob", "carol", "dana"}

// jworld is a relay, an optional malicious proxy in front of it, and the
// desk's people, each with their own --home and identity file. Every
// command goes to url: the proxy's when there is one, else the relay's.
type jworld struct {
	t        *testing.T
	dir      string
	relay    *relayproc.Relay
	relayLog *relayproc.TailBuffer // everything the relay wrote on stderr
	url      string
	proxy    *evilRelay
	serial   uint64
	ids      map[string]*crypto.Identity
}

// newJournalWorld starts a relay (behind an evilRelay when evil is set),
// makes the five keys, and publishes the desk.
func newJournalWorld(t *testing.T, evil bool) *jworld {
	t.Helper()
	w := &jworld{t: t, dir: t.TempDir(), relayLog: &relayproc.TailBuffer{Max: 64 << 20}, ids: map[string]*crypto.Identity{}}
	for _, n := range append([]string{"admin"}, journalPeople...) {
		must(t, run(t, nil, nil, "amana", "keygen", "-o", w.path(n+".key"), "--name", n, "--classic", "--no-passphrase"))
		r := must(t, run(t, nil, nil, "amana", "card", "-i", w.path(n+".key")))
		if err := os.WriteFile(w.path(n+".card"), []byte(r.stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(w.path(n + ".key"))
		if err != nil {
			t.Fatal(err)
		}
		if w.ids[n], err = crypto.ParseIdentityFile(raw, nil); err != nil {
			t.Fatalf("reading %s's key: %v", n, err)
		}
	}
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", w.path("data"), "--admin", w.path("admin.card")))
	var err error
	w.relay, err = relayproc.StartRelay(context.Background(), filepath.Join(bin, "amana-relay"), w.path("data"), w.relayLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.relay.StopRelay() })
	w.url = w.relay.URL
	if evil {
		w.proxy = newEvilRelay(t, w.relay.URL)
		w.url = w.proxy.URL
	}
	w.publish(journalPeople...)
	return w
}

func (w *jworld) path(p string) string { return filepath.Join(w.dir, p) }

// publish signs and publishes, as the desk's admin with the commands, a
// new serial of the desk with the handlers named (in journalPeople order):
// sea goes to carol and alice, general to every handler named and is the
// default route, and dana is the coordinator.
func (w *jworld) publish(handlers ...string) {
	w.t.Helper()
	w.serial++
	path := w.path(fmt.Sprintf("desk-%d.json", w.serial))
	args := []string{"desk", "create", "--id", journalDesk, "--title", "Complaints desk",
		"--category", "sea=carol,alice", "--category-title", "sea=Sexual exploitation and abuse",
		"--category", "general=" + strings.Join(handlers, ","), "--default-route", "general",
		"--coordinator", "dana", "--serial", fmt.Sprint(w.serial), "-i", w.path("admin.key"), "-o", path}
	for _, h := range handlers {
		args = append(args, "--handler", w.path(h+".card"))
	}
	must(w.t, run(w.t, nil, nil, "amana", args...))
	must(w.t, run(w.t, nil, nil, "amana", "desk", "publish", path, "--relay", w.relay.URL, "-i", w.path("admin.key")))
	if m := w.manifest(); !slices.Equal(m.Coordinators, []string{"dana"}) || m.DefaultRoute != "general" {
		w.t.Fatalf("desk create made coordinators %v, default route %q", m.Coordinators, m.DefaultRoute)
	}
}

func (w *jworld) home(name string) string { return w.path("home-" + name) }

// keyID is name's key ID, as events and the relay name authors.
func (w *jworld) keyID(name string) string { return w.ids[name].Card().KeyID() }

// needsRelay lists the subcommands that talk to the relay; needsKey those
// that read or write the case journal, so need the identity.
var (
	needsRelay = map[string]bool{"pull": true, "sync": true, "reply": true, "submit": true,
		"set": true, "note": true, "close": true, "reopen": true, "link": true, "refer": true, "share": true}
	needsKey = map[string]bool{"pull": true, "sync": true, "reply": true, "show": true, "list": true, "triage": true,
		"set": true, "note": true, "close": true, "reopen": true, "link": true, "refer": true, "share": true}
)

// amana runs the amana program as who (their --home and key), adding
// --relay and -i where the subcommand takes them.
func (w *jworld) amana(who string, args ...string) result {
	w.t.Helper()
	sub := args[0]
	if sub == "case" && len(args) > 1 {
		sub = args[1]
	}
	args = slices.Clone(args)
	if needsRelay[sub] {
		args = append(args, "--relay", w.url)
	}
	if needsKey[sub] && who != "submitter" {
		args = append(args, "-i", w.path(who+".key"))
	}
	return run(w.t, []string{"AMANA_HOME=" + w.home(who)}, nil, "amana", args...)
}

// ok is amana that fails the test unless the command succeeds.
func (w *jworld) ok(who string, args ...string) result {
	w.t.Helper()
	r := w.amana(who, args...)
	if r.code != 0 {
		w.t.Fatalf("%s: amana %s: exit %d\nstdout: %s\nstderr: %s", who, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// file writes text to a new file in the world's directory and returns its path.
func (w *jworld) file(name, text string) string {
	w.t.Helper()
	p := w.path(name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// submit sends a report in category ("" for none) with the attachments
// given, and returns its ID.
func (w *jworld) submit(category, text string, files ...string) string {
	w.t.Helper()
	args := []string{"submit", "--desk", journalDesk, "--message-file", w.file(fmt.Sprintf("msg-%d.txt", time.Now().UnixNano()), text)}
	if category != "" {
		args = append(args, "--category", category)
	}
	for _, f := range files {
		args = append(args, "--file", f)
	}
	r := w.ok("submitter", args...)
	m := receiptID.FindStringSubmatch(r.stdout)
	if m == nil {
		w.t.Fatalf("no receipt in %q", r.stdout)
	}
	return m[1]
}

// pullAll has each person pull (cases, then events).
func (w *jworld) pullAll(who ...string) {
	w.t.Helper()
	if len(who) == 0 {
		who = journalPeople
	}
	for _, p := range who {
		w.ok(p, "pull")
	}
}

// syncAll has each person sync events.
func (w *jworld) syncAll(who ...string) {
	w.t.Helper()
	if len(who) == 0 {
		who = journalPeople
	}
	for _, p := range who {
		w.ok(p, "sync")
	}
}

// caseJSON is what 'amana case show --json' prints, as far as these tests
// read it. Handlers are given by key ID and by name.
type caseJSON struct {
	Case          string           `json:"case"`
	Desk          string           `json:"desk"`
	Category      string           `json:"category"`
	Status        string           `json:"status"`
	Severity      string           `json:"severity"`
	CloseReason   string           `json:"close_reason"`
	Assignees     []handlerRefJSON `json:"assignees"`
	Tags          []string         `json:"tags"`
	Notes         []noteJSON       `json:"notes"`
	Links         []crypto.Link    `json:"links"`
	Referral      *crypto.Referral `json:"referral"`
	Replies       []any            `json:"replies"`
	FirstResponse string           `json:"first_response"`
	Acknowledged  string           `json:"acknowledged"`
	Resolved      string           `json:"resolved"`
	Closed        string           `json:"closed"`
	Reopened      int              `json:"reopened"`
	History       []historyJSON    `json:"history"`
	Conflicts     []conflictJSON   `json:"conflicts"`
	Gaps          []gapJSON        `json:"gaps"`
	FactsOnly     bool             `json:"facts_only"`
	Updated       string           `json:"updated"`
}

type handlerRefJSON struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

type noteJSON struct {
	Author handlerRefJSON `json:"author"`
	Time   string         `json:"time"`
	Seq    uint64         `json:"seq"`
	Text   string         `json:"text"`
}

type historyJSON struct {
	Author handlerRefJSON `json:"author"`
	Time   string         `json:"time"`
	Seq    uint64         `json:"seq"`
	Change crypto.Change  `json:"change"`
}

type conflictJSON struct {
	Field   string           `json:"field"`
	Authors []handlerRefJSON `json:"authors"`
	Winner  handlerRefJSON   `json:"winner"`
	Text    string           `json:"text"`
}

type gapJSON struct {
	Author handlerRefJSON `json:"author"`
	Seq    uint64         `json:"seq"`
	Text   string         `json:"text"`
}

// assigned is the names of the case's assignees, sorted.
func (c *caseJSON) assigned() []string {
	var out []string
	for _, a := range c.Assignees {
		out = append(out, a.Name)
	}
	slices.Sort(out)
	return out
}

// show is who's 'amana case show ID --json'.
func (w *jworld) show(who, id string) *caseJSON {
	w.t.Helper()
	r := w.ok(who, "case", "show", id, "--json")
	var c caseJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		w.t.Fatalf("%s: case show %s --json: %v\n%s", who, id, err, r.stdout)
	}
	return &c
}

// tryShow is show that reports a failed command as an error of the test
// and goes on; it returns nil then.
func (w *jworld) tryShow(who, id string) *caseJSON {
	w.t.Helper()
	r := w.amana(who, "case", "show", id, "--json")
	var c caseJSON
	if r.code != 0 {
		w.t.Errorf("%s: case show %s --json: exit %d\n%s", who, id[:8], r.code, r.stderr)
		return nil
	}
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		w.t.Errorf("%s: case show %s --json: %v\n%s", who, id[:8], err, r.stdout)
		return nil
	}
	return &c
}

// agreed is the part of a case's state that every reader must agree on,
// with handlers by key ID.
func (c *caseJSON) agreed() string {
	keys := func(hs []handlerRefJSON) []string {
		out := []string{}
		for _, h := range hs {
			out = append(out, h.Key)
		}
		return out
	}
	var h, notes, gaps, conflicts []string
	for _, e := range c.History {
		h = append(h, fmt.Sprintf("%s/%d@%s", e.Author.Key, e.Seq, e.Time))
	}
	for _, n := range c.Notes {
		notes = append(notes, fmt.Sprintf("%s/%d@%s: %s", n.Author.Key, n.Seq, n.Time, n.Text))
	}
	for _, g := range c.Gaps {
		gaps = append(gaps, fmt.Sprintf("%s/%d", g.Author.Key, g.Seq))
	}
	for _, x := range c.Conflicts {
		conflicts = append(conflicts, fmt.Sprintf("%s %v %s", x.Field, keys(x.Authors), x.Winner.Key))
	}
	b, _ := json.Marshal(map[string]any{
		"status": c.Status, "severity": c.Severity, "close_reason": c.CloseReason, "category": c.Category,
		"assignees": keys(c.Assignees), "tags": c.Tags, "notes": notes, "links": c.Links, "referral": c.Referral,
		"replies": len(c.Replies), "first_response": c.FirstResponse, "acknowledged": c.Acknowledged,
		"resolved": c.Resolved, "closed": c.Closed, "reopened": c.Reopened,
		"history": h, "conflicts": conflicts, "gaps": gaps, "updated": c.Updated,
	})
	return string(b)
}

// authorSeqs is every (author key, seq) in the case's history, in order.
func (c *caseJSON) authorSeqs() []string {
	var out []string
	for _, e := range c.History {
		out = append(out, fmt.Sprintf("%s/%d", e.Author.Key, e.Seq))
	}
	return out
}

// listJSON is who's 'amana list --json' with the filters given: the IDs
// listed, and each entry as decoded.
func (w *jworld) list(who string, filters ...string) ([]string, map[string]map[string]any) {
	w.t.Helper()
	r := w.ok(who, append([]string{"list", "--json"}, filters...)...)
	var entries []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		w.t.Fatalf("%s: list --json %v: %v\n%s", who, filters, err, r.stdout)
	}
	var ids []string
	byID := map[string]map[string]any{}
	for _, e := range entries {
		id, _ := e["id"].(string)
		ids = append(ids, id)
		byID[id] = e
	}
	return ids, byID
}

// triage is the case IDs of who's 'amana triage --json', in its order.
func (w *jworld) triage(who string) []string {
	w.t.Helper()
	r := w.ok(who, "triage", "--json")
	var entries []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		w.t.Fatalf("%s: triage --json: %v\n%s", who, err, r.stdout)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	return ids
}

// wantIDs fails unless got holds exactly want, in any order.
func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	g, wt := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(wt)
	if !slices.Equal(g, wt) {
		t.Errorf("%s: got %v, want %v", what, short(g), short(wt))
	}
}

func short(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(8, len(id))]
	}
	return out
}

// markersIn fails the test for every file under dir holding one of markers.
func markersIn(t *testing.T, where, dir string, markers ...string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err // sockets (the control socket) hold nothing
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s: %s holds the plaintext marker %q", where, p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: walking %s: %v", where, dir, err)
	}
	if n == 0 {
		t.Fatalf("%s: %s holds no file: the check would prove nothing", where, dir)
	}
}

// markersInText fails the test when text holds one of markers.
func markersInText(t *testing.T, where, text string, markers ...string) {
	t.Helper()
	for _, m := range markers {
		if strings.Contains(text, m) {
			t.Errorf("%s holds the marker %q", where, m)
		}
	}
}

// gapLine is how the CLI reports a missing event.
func gapLine(who string, seq uint64) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("%s's change %d on this case has not arrived", who, seq)))
}
