package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

type syncOptions struct {
	relays   []string
	identity string
	json     bool
}

func newSync(e *env) *cobra.Command {
	var o syncOptions
	cmd := &cobra.Command{
		Use:   "sync --relay URL [--relay URL…] -i KEY",
		Short: "exchange case changes with the other handlers",
		Long: `Send the changes recorded here that the relay has not taken yet, and fetch the
changes the other handlers recorded (status, severity, assignees, tags, notes,
links, referrals, closings, shared histories), and post the submitters' status
messages queued by 'amana case set', 'close', 'reopen' and 'notify' to their
mailboxes (each removed from the queue only once the relay took it). 'amana pull'
does the same after fetching new cases.

First it fetches each desk's manifest and verifies it as pull does, against the
key this machine remembers. Each change is then checked before it is kept: its
signature against its author's card in that manifest, its author against the
handlers of the case's category, its place in its author's sequence (a change
repeated with other content, or rewinding the sequence, is refused), and, for a
case held here, that it names that very case. A change is acknowledged to the
relay only once it is stored on this machine; a refused one is acknowledged too,
so that it does not come back, and is never applied. A change of another handler
that has not arrived is reported as a gap.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runSync(e, &o) },
	}
	cmd.Flags().StringArrayVar(&o.relays, "relay", nil, "relay URL, the handler onion (required; repeat for several relays)")
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print what was exchanged as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("relay")
	cmd.MarkFlagRequired("identity")
	return cmd
}

func runSync(e *env, o *syncOptions) error {
	id, err := e.loadIdentity(o.identity)
	if err != nil {
		return err
	}
	st, err := e.cases()
	if err != nil {
		return err
	}
	j, err := e.openJournal(st, id)
	if err != nil {
		return err
	}
	total := &syncTotal{}
	for _, relay := range o.relays {
		c, done, err := e.relayClient(relay, id)
		if err != nil {
			return err
		}
		c.Key = id.SigningKey()
		lr := e.refreshDesks(c, st, id, relay)
		res, err := j.Sync(e.ctx, lr, e.syncTrust(st, relay))
		if err == nil {
			e.sendStatusMessages(c, st, j, relay)
		}
		done()
		if err != nil {
			if len(o.relays) > 1 {
				return fmt.Errorf("%s: %w", clean(relay, false), err)
			}
			return err
		}
		total.add(res)
	}
	return e.reportSync(st, id, total, o.json, true)
}

// syncTrust trusts relay's copy of a desk's manifest first, then the
// copies of the relays the cases came from.
func (e *env) syncTrust(st *cases.Store, relay string) *deskTrust {
	t := e.trust(relay)
	if all, err := st.List(); err == nil {
		for _, m := range all {
			t.add(m.Relay)
		}
	}
	// And the relays this machine remembers desks of: a coordinator may
	// hold no case of a desk it follows.
	if _, known, err := e.knownDesks(); err == nil {
		for _, k := range sortedKeys(known) {
			if r, _, ok := strings.Cut(k, " "); ok {
				t.add(r)
			}
		}
	}
	return t
}

// refreshDesks fetches and verifies, as pull does, the manifest of every
// desk the journal may need from relay, and keeps it: the journal checks
// changes against the handlers and workflow it names. Those desks are the
// desks of the cases held from relay, the desks remembered for it, and the
// desks the relay lists changes of (listed, the relay's word); a desk
// this machine has no record of yet is trusted on first use, as reply
// does, and only when it lists this handler's key. A desk that does not
// verify is said, and its copy kept before stays in use. It returns the
// relay with the listing of changes kept for the sync that follows.
func (e *env) refreshDesks(c *client.Client, st *cases.Store, id *crypto.Identity, relay string) journal.Relay {
	relay = strings.TrimRight(relay, "/")
	var desks []string
	if all, err := st.List(); err == nil {
		for _, m := range all {
			if strings.TrimRight(m.Relay, "/") == relay {
				desks = appendNew(desks, m.Desk)
			}
		}
	}
	_, known, _ := e.knownDesks()
	for k := range known {
		if r, desk, ok := strings.Cut(k, " "); ok && r == relay {
			desks = appendNew(desks, desk)
		}
	}
	lr := &listedRelay{Client: c}
	lr.items, lr.err = c.Events(e.ctx)
	for _, it := range lr.items {
		desks = appendNew(desks, it.Desk)
	}
	me := id.Card().KeyID()
	for _, desk := range desks {
		if !crypto.ValidName(desk) {
			continue
		}
		_, remembered := known[knownDeskKey(relay, desk)]
		man, remember, err := e.fetchDesk(c, relay, desk, "", allowFirstContact, recordUnpinned)
		if err == nil && !remembered && man.Handler(me) == nil {
			continue // a desk that is not this handler's: nothing to trust
		}
		if err == nil {
			err = remember()
		}
		if err == nil {
			err = e.keepDesk(relay, man)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "amana: note: the manifest of desk %q could not be refreshed (%s): its changes are checked against the copy verified before\n",
				clean(desk, false), clean(err.Error(), false))
		}
	}
	return lr
}

// listedRelay is a relay client whose first Events answer is the listing
// refreshDesks already read, so a sync lists once.
type listedRelay struct {
	*client.Client
	items []api.Item
	err   error
	used  bool
}

func (r *listedRelay) Events(ctx context.Context) ([]api.Item, error) {
	if !r.used {
		r.used = true
		return r.items, r.err
	}
	return r.Client.Events(ctx)
}

// syncTotal adds up the results of several relays.
type syncTotal struct{ journal.SyncResult }

func (t *syncTotal) add(r *journal.SyncResult) {
	if r == nil {
		return
	}
	t.Accepted += r.Accepted
	t.Duplicates += r.Duplicates
	t.Acked += r.Acked
	t.Refused = append(t.Refused, r.Refused...)
	t.Gaps = append(t.Gaps, r.Gaps...)
	t.Retry = append(t.Retry, r.Retry...)
	t.Unsent += r.Unsent
}

func (t *syncTotal) toJSON(st *cases.Store, trust *deskTrust) syncJSON {
	out := syncJSON{Accepted: t.Accepted, Duplicates: t.Duplicates, Acked: t.Acked, Refused: []refusalJSON{}, Gaps: []syncGapJSON{}, Retry: []refusalJSON{}}
	for _, r := range t.Refused {
		out.Refused = append(out.Refused, refusalJSON{Event: r.EventID, Case: r.Case, Author: r.Author, Seq: r.Seq, Reason: r.Reason})
	}
	for _, g := range t.Gaps {
		out.Gaps = append(out.Gaps, syncGapJSON{Case: g.Case, Author: handlerRef(caseManifest(st, trust, g.Case), g.Author), Seq: g.Seq})
	}
	for _, r := range t.Retry {
		out.Retry = append(out.Retry, refusalJSON{Event: r.EventID, Case: r.Case, Author: r.Author, Seq: r.Seq, Reason: r.Reason})
	}
	out.Unsent = t.Unsent
	return out
}

// caseManifest is the trusted manifest of a case held here, or nil.
func caseManifest(st *cases.Store, t *deskTrust, id string) *crypto.Manifest {
	if !cases.ValidID(id) {
		return nil
	}
	m, err := st.Meta(id)
	if err != nil {
		return nil
	}
	man, _ := t.Manifest(m.Desk)
	return man
}

// reportSync says what a sync did: each refusal and each gap, then a
// summary; with asJSON (and standalone, as 'amana sync' rather than pull)
// it prints syncJSON too. Refused changes make it fail with ExitTrust,
// once all is said.
func (e *env) reportSync(st *cases.Store, id *crypto.Identity, t *syncTotal, asJSON, standalone bool) error {
	trust := e.syncTrust(st, "")
	if asJSON && standalone {
		if err := writeJSON(e.stdout, t.toJSON(st, trust)); err != nil {
			return err
		}
	}
	for _, r := range t.Refused {
		if r.Case == "" || r.Seq == 0 {
			// It did not decrypt or parse: nothing in it can be named.
			fmt.Fprintf(e.stderr, "amana: refused event %s: %s\n", clean(r.EventID, false), clean(r.Reason, false))
			continue
		}
		fmt.Fprintf(e.stderr, "amana: refused change %d of %s on case %s: %s\n", r.Seq, nameOf(caseManifest(st, trust, r.Case), r.Author, id),
			clean(shortID(r.Case), false), clean(r.Reason, false))
	}
	for _, r := range t.Retry {
		fmt.Fprintf(e.stderr, "amana: event %s: %s; not acknowledged, the next sync fetches it again\n", clean(r.EventID, false), clean(r.Reason, false))
	}
	for _, g := range t.Gaps {
		fmt.Fprintf(e.stderr, "case %s: %s\n", clean(shortID(g.Case), false), gapText(caseManifest(st, trust, g.Case), g))
	}
	fmt.Fprintf(e.stderr, "synced: %d new change(s) from other handlers", t.Accepted)
	if t.Duplicates > 0 {
		fmt.Fprintf(e.stderr, ", %d already held", t.Duplicates)
	}
	if len(t.Refused) > 0 {
		fmt.Fprintf(e.stderr, ", %d refused", len(t.Refused))
	}
	fmt.Fprintf(e.stderr, "; %d acknowledged to the relay\n", t.Acked)
	if t.Unsent > 0 {
		fmt.Fprintf(e.stderr, "amana: note: %d of your own change part(s) are still not sent; the next sync tries again\n", t.Unsent)
	}
	if len(t.Refused) > 0 {
		return fail(ExitTrust, "the other changes were applied and a refused change never is; tell the desk admin: it was forged, replayed, or written by someone who may not change the case",
			nil, "%d change(s) refused", len(t.Refused))
	}
	return nil
}

// recordReceived records, for each case pulled now whose desk names
// coordinators, that this handler has it: the coordinators see when each
// case reached whom, never what it says. A failure is said, and the pull
// goes on.
func (e *env) recordReceived(c *client.Client, st *cases.Store, j *journal.Journal, relay string, pulled []string) {
	t := e.syncTrust(st, relay)
	for _, cid := range pulled {
		m, err := st.Meta(cid)
		if err != nil || !isCase(m) {
			continue
		}
		man, err := t.Manifest(m.Desk)
		if err != nil || len(man.Coordinators) == 0 {
			continue
		}
		ev, err := j.Record(e.ctx, c, t, cid, crypto.Change{Received: true})
		switch {
		case err != nil && ev != nil:
			fmt.Fprintf(e.stderr, "amana: note: case %s: that it reached you is recorded, not yet sent to the desk's coordinators (%s); 'amana sync' sends it\n", cid[:12], clean(err.Error(), false))
		case err != nil:
			fmt.Fprintf(e.stderr, "amana: note: case %s: the desk's coordinators were not told it reached you (%s)\n", cid[:12], clean(err.Error(), false))
		}
	}
}
