package cli

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/relay/client"
)

// What the case commands share: the trusted manifests as the journal's
// Trust, the case a command names, handler names, and the workflow's
// checks. Every name, tag, note and referral text that came from another
// handler passes through clean before it reaches the terminal.

// deskTrust is the journal's Trust: the manifests this machine verified and
// kept (deskcache.go), never the relay's word of the moment. relays are the
// relays whose copy of a desk counts, in order of preference: the one a
// command talks to, then those the cases came from.
type deskTrust struct {
	e      *env
	relays []string
	cache  map[string]*crypto.Manifest
}

// errNoManifest: no verified manifest of the desk is kept on this machine.
var errNoManifest = errors.New("no verified manifest of the desk is kept on this machine")

func (e *env) trust(relays ...string) *deskTrust {
	t := &deskTrust{e: e, cache: map[string]*crypto.Manifest{}}
	for _, r := range relays {
		t.add(r)
	}
	return t
}

// add puts relay at the end of the preference order, once.
func (t *deskTrust) add(relay string) {
	relay = strings.TrimRight(relay, "/")
	if relay != "" && !slices.Contains(t.relays, relay) {
		t.relays = append(t.relays, relay)
		clear(t.cache)
	}
}

// Manifest implements journal.Trust.
func (t *deskTrust) Manifest(desk string) (*crypto.Manifest, error) {
	if m, ok := t.cache[desk]; ok {
		return m, nil
	}
	for _, r := range t.relays {
		if m := t.e.keptDesk(r, desk); m != nil {
			t.cache[desk] = m
			return m, nil
		}
	}
	return nil, fmt.Errorf("desk %q: %w", desk, errNoManifest)
}

// flow is desk's workflow, or the default one when no manifest is kept.
func (t *deskTrust) flow(desk string) crypto.Workflow {
	if m, err := t.Manifest(desk); err == nil {
		return m.Flow()
	}
	return crypto.DefaultWorkflow()
}

// noManifest is the error for a desk whose manifest is not kept here.
func noManifest(desk string) error {
	return fail(ExitTrust, "run 'amana sync --relay URL -i KEY' (or 'amana pull'): it fetches the desk's manifest and verifies it against the key this machine remembers",
		nil, "no verified manifest of desk %q on this machine", clean(desk, false))
}

// journalCase is a case the journal commands work on: always a report (or
// a self-sealed case), never a follow-up or a reply, whose changes are
// recorded on its report.
type journalCase struct {
	st    *cases.Store
	meta  *cases.Meta
	id    *crypto.Identity
	j     *journal.Journal
	trust *deskTrust
	man   *crypto.Manifest
	// notify: a change of status queues the submitter's status message
	// (case set, close and reopen without --no-status-message).
	notify bool
}

// resolveCase finds the case prefix names, with the hints a handler needs.
func resolveCase(st *cases.Store, prefix string) (*cases.Meta, error) {
	cid, err := st.Resolve(prefix)
	switch {
	case errors.Is(err, cases.ErrNotFound):
		return nil, fail(ExitUsage, "run 'amana list' to see the case IDs", nil, "no case %q", prefix)
	case errors.Is(err, cases.ErrAmbiguous):
		return nil, fail(ExitUsage, "give more characters of the ID", nil, "%q matches more than one case", prefix)
	case err != nil:
		return nil, err
	}
	m, err := st.Meta(cid)
	if err != nil {
		return nil, fail(ExitError, "", err, "cannot read case %s", cid[:12])
	}
	return m, nil
}

// isCase reports whether m is a case of its own (a report or a
// self-sealed file), which the journal follows.
func isCase(m *cases.Meta) bool { return !handler.InThread(m) }

// openJournalCase resolves prefix to a case, loads the identity and opens
// the journal. relay, if not empty, is the relay the command talks to; its
// copy of the desk's manifest is preferred.
func (e *env) openJournalCase(prefix, identity, relay string) (*journalCase, error) {
	st, err := e.cases()
	if err != nil {
		return nil, err
	}
	meta, err := resolveCase(st, prefix)
	if err != nil {
		return nil, err
	}
	if !isCase(meta) {
		hint := "its report is not in this case store; 'amana pull' fetches it"
		if all, err := st.List(); err == nil {
			if rep := handler.ThreadOf(all, meta.Mailbox); rep != nil {
				hint = "use its report's ID: amana case … " + rep.ID[:12]
			}
		}
		return nil, fail(ExitUsage, hint, nil, "%s is a %s; changes are recorded on the report of its thread", meta.ID[:12], clean(meta.Kind, false))
	}
	id, err := e.loadIdentity(identity)
	if err != nil {
		return nil, err
	}
	j, err := e.openJournal(st, id)
	if err != nil {
		return nil, err
	}
	t := e.trust(relay, meta.Relay)
	man, err := t.Manifest(meta.Desk)
	if err != nil {
		return nil, noManifest(meta.Desk)
	}
	return &journalCase{st: st, meta: meta, id: id, j: j, trust: t, man: man}, nil
}

func (e *env) openJournal(st *cases.Store, id *crypto.Identity) (*journal.Journal, error) {
	j, err := journal.Open(st, id)
	if err != nil {
		return nil, fail(ExitError, "", err, "cannot open the case journal")
	}
	return j, nil
}

// handlerKey is the key ID of the handler name names in m: "me" is the
// identity's own key.
func handlerKey(m *crypto.Manifest, me *crypto.Identity, name string) (string, error) {
	if name == "me" {
		k := me.Card().KeyID()
		if m.Handler(k) == nil {
			return "", fail(ExitUsage, "ask the desk admin to add your card, or use -i with the key the manifest lists", nil, "you (%s) are not a handler of desk %q", clean(me.Name(), false), clean(m.Desk, false))
		}
		return k, nil
	}
	for _, c := range m.Cards() {
		if c.Name == name {
			return c.KeyID(), nil
		}
	}
	return "", fail(ExitUsage, "choose one of: "+strings.Join(handlerNames(m), ", ")+" (or me)", nil, "desk %q has no handler %q", clean(m.Desk, false), clean(name, false))
}

// onRoute checks that key is a handler of the case's category: only they
// can read it, so only they can be assigned it or be shared its history.
func (c *journalCase) onRoute(key, name string) error {
	route, err := c.man.Route(c.meta.Category)
	if err != nil {
		return fail(ExitTrust, "the desk's manifest changed; run 'amana sync' and ask the desk admin", err, "case %s has no route", c.meta.ID[:12])
	}
	var names []string
	for _, card := range route {
		if card.KeyID() == key {
			return nil
		}
		names = append(names, clean(card.Name, false))
	}
	return fail(ExitUsage, "choose one of: "+strings.Join(names, ", "), nil, "%s cannot read case %s: not a handler of its category", clean(name, false), c.meta.ID[:12])
}

// handlerNames are the names of m's handlers, escaped.
func handlerNames(m *crypto.Manifest) []string {
	var out []string
	for _, c := range m.Cards() {
		out = append(out, clean(c.Name, false))
	}
	return out
}

// nameOf is how a key ID is shown: the handler's name in m, escaped, else
// the key's fingerprint. me, if not nil, marks the identity's own key.
func nameOf(m *crypto.Manifest, key string, me *crypto.Identity) string {
	you := ""
	if me != nil && me.Card().KeyID() == key {
		you = " (you)"
	}
	if m != nil {
		if c := m.Handler(key); c != nil {
			return clean(c.Name, false) + you
		}
	}
	if b, err := base64.RawURLEncoding.DecodeString(key); err == nil && len(b) == ed25519.PublicKeySize {
		return "key " + crypto.KeyFingerprint(ed25519.PublicKey(b)) + you
	}
	return "an unknown key"
}

// rawName is a key's handler name as the manifest has it (for JSON), or "".
func rawName(m *crypto.Manifest, key string) string {
	if m != nil {
		if c := m.Handler(key); c != nil {
			return c.Name
		}
	}
	return ""
}

// oneOf checks v against the workflow's valid values of a kind.
func oneOf(kind, v, desk string, valid []string) error {
	if slices.Contains(valid, v) {
		return nil
	}
	return fail(ExitUsage, "choose one of: "+strings.Join(valid, ", "), nil, "%q is not a %s of desk %q", clean(v, false), kind, clean(desk, false))
}

func severityIDs(wf crypto.Workflow) []string {
	var out []string
	for _, s := range wf.Severities {
		out = append(out, s.ID)
	}
	return out
}

// severityRank is s's place on the scale, most severe first; a case with
// no severity, or one the scale no longer has, comes after all.
func severityRank(wf crypto.Workflow, s string) int {
	for i, v := range wf.Severities {
		if v.ID == s {
			return i
		}
	}
	return len(wf.Severities)
}

// isFinal reports whether status is one of wf's final statuses.
func isFinal(wf crypto.Workflow, status string) bool { return slices.Contains(wf.Final, status) }

// statusOf is the state's status, or the workflow's initial one for a case
// with no change yet.
func statusOf(wf crypto.Workflow, s *journal.State) string {
	if s != nil && s.Status != "" {
		return s.Status
	}
	if len(wf.Statuses) > 0 {
		return wf.Statuses[0]
	}
	return "new"
}

// record records ch on the case and sends it through the relay at
// relayURL (the case's own relay when empty). A change recorded but not
// sent is kept in the journal's outbox, which the next 'amana sync' sends.
func (e *env) record(c *journalCase, relayURL string, ch crypto.Change) (*crypto.Event, error) {
	if relayURL == "" {
		relayURL = c.meta.Relay
	}
	cl, done, err := e.relayClient(relayURL, c.id)
	if err != nil {
		return nil, err
	}
	defer done()
	cl.Key = c.id.SigningKey()
	ev, err := c.j.Record(e.ctx, cl, c.trust, c.meta.ID, ch)
	if err != nil && ev != nil {
		fmt.Fprintf(e.stderr, "amana: case %s: change %d is recorded on this machine but not sent yet; 'amana sync' sends it\n", c.meta.ID[:12], ev.Seq)
		return ev, err
	}
	if err != nil {
		return nil, recordFailed(c.meta.ID, err)
	}
	return ev, nil
}

// recordFailed explains why a change was not recorded at all.
func recordFailed(id string, err error) error {
	var ue *Error
	var ce *client.Error
	var ne *client.NetError
	switch {
	case errors.As(err, &ue) || errors.As(err, &ce) || errors.As(err, &ne):
		return err
	case errors.Is(err, journal.ErrNotOnRoute):
		return fail(ExitTrust, "the desk's manifest, as this machine trusts it, no longer routes the case's category to you: ask the desk admin", err, "cannot record the change on case %s", id[:12])
	case errors.Is(err, journal.ErrInvalidChange), errors.Is(err, crypto.ErrChangeWorkflow), errors.Is(err, journal.ErrNotACase):
		return fail(ExitUsage, "check the values against 'amana desk show'", err, "cannot record the change on case %s", id[:12])
	case errors.Is(err, journal.ErrCategoryUnknown):
		return fail(ExitKey, "the case must open with your key for its category to be read: check -i", err, "cannot record the change on case %s", id[:12])
	}
	return fail(ExitError, "nothing was recorded; check the values against 'amana desk show', then run the command again", err, "cannot record the change on case %s", id[:12])
}

// joinNames writes names as "alice", "alice and bob", "alice, bob and carol".
func joinNames(names []string) string {
	switch len(names) {
	case 0:
		return "nobody"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// conflictText says what a concurrent conflict was and whose change stands:
// "alice and bob both changed the assignee; bob's change stands". For a
// membership (an assignee, a tag, a link) it says which one in brackets.
// Names are plain ("alice's change stands", never "alice (you)'s").
func conflictText(m *crypto.Manifest, cf journal.Conflict) string {
	var names []string
	for _, a := range cf.Authors {
		names = append(names, nameOf(m, a, nil))
	}
	both := "both"
	if len(names) > 2 {
		both = "all"
	}
	field := "the " + clean(cf.Field, false)
	switch {
	case cf.Item == "":
	case cf.Field == journal.FieldAssignee:
		field += " (" + nameOf(m, cf.Item, nil) + ")"
	case cf.Field == journal.FieldLink:
		field += " (" + clean(shortID(cf.Item), false) + ")"
	default:
		field += " (" + clean(cf.Item, false) + ")"
	}
	return fmt.Sprintf("%s %s changed %s; %s's change stands", joinNames(names), both, field, nameOf(m, cf.Winner, nil))
}

// gapText says which changes have not arrived: "alice's change 17 on this
// case has not arrived", "alice's changes 4 to 9 on this case have not
// arrived".
func gapText(m *crypto.Manifest, g journal.Gap) string {
	if g.To > g.Seq {
		return fmt.Sprintf("%s's changes %d to %d on this case have not arrived", nameOf(m, g.Author, nil), g.Seq, g.To)
	}
	return fmt.Sprintf("%s's change %d on this case has not arrived", nameOf(m, g.Author, nil), g.Seq)
}

// claimText says what one group of a disputed case claims, and who.
func claimText(m *crypto.Manifest, c journal.Claim) string {
	cat := c.Category
	if cat == "" {
		cat = "no category"
	}
	return fmt.Sprintf("%s: desk %s, category %s, report %s (%d change(s))", namesOr(m, c.Authors, nil, "nobody"),
		clean(c.Desk, false), clean(cat, false), clean(shortID(c.CaseSHA256), false), c.Events)
}
