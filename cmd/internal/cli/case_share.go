package cli

import (
	"fmt"

	"github.com/amana-relay/amana/crypto"

	"github.com/spf13/cobra"
)

type caseShareOptions struct {
	caseFlags
	to, reason string
}

func newCaseShare(e *env) *cobra.Command {
	var o caseShareOptions
	cmd := &cobra.Command{
		Use:   "share ID --to NAME -i KEY",
		Short: "send a case's history to another handler of its category",
		Long: `Send every change of a case held here, as their authors signed them, to one
other handler of the case's category: a colleague added to the category later, or
a colleague's new machine. To get the history on a second machine of your own,
ask a colleague to share it to you: the relay never sends you back what your own
key sent. The history is encrypted to that handler alone;
their 'amana sync' verifies every original signature against the desk's manifest
and refuses what does not verify. The relay keeps it like any other change, no
longer than the desk's retention. The share is recorded in the case's custody log
('amana case custody'), with --reason.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseShare(e, &o, args[0]) },
	}
	o.caseFlags.add(cmd)
	cmd.Flags().Lookup("json").Usage = "print what was sent as JSON (docs/cli.md)"
	cmd.Flags().StringVar(&o.to, "to", "", "the handler to send it to, by name (required)")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why it is shared (one line; kept in the custody log)")
	cmd.MarkFlagRequired("to")
	return cmd
}

func runCaseShare(e *env, o *caseShareOptions, prefix string) error {
	if err := oneLine("--reason", o.reason, 1024); err != nil {
		return err
	}
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	key, err := handlerKey(c.man, c.id, o.to)
	if err != nil {
		return err
	}
	if key == c.id.Card().KeyID() {
		return fail(ExitUsage, fmt.Sprintf("the relay never sends your own key back what it sent: on another machine of yours, have a colleague of the case's category run 'amana case share %s --to %s'", c.meta.ID[:12], clean(c.id.Name(), false)),
			nil, "a case's history cannot be shared with yourself")
	}
	if err := c.onRoute(key, o.to); err != nil {
		return err
	}
	relay := o.relay
	if relay == "" {
		relay = c.meta.Relay
	}
	cl, done, err := e.relayClient(relay, c.id)
	if err != nil {
		return err
	}
	defer done()
	cl.Key = c.id.SigningKey()
	n, err := c.j.Share(e.ctx, cl, c.trust, c.meta.ID, key)
	if err != nil {
		return recordFailed(c.meta.ID, err)
	}
	// The share goes into the custody log, sent with it.
	to := rawName(c.man, key)
	ch := crypto.Change{Custody: &crypto.Custody{Action: crypto.CustodyShare, Reason: o.reason,
		Detail: fmt.Sprintf("the case's history (%d change(s)) to %s, key %s", n, to, key)}}
	if ev, err := c.j.Record(e.ctx, cl, c.trust, c.meta.ID, ch); err != nil && ev == nil {
		fmt.Fprintf(e.stderr, "amana: warning: the share is NOT in the case's custody log: %s\n", clean(err.Error(), false))
	} else if err != nil {
		fmt.Fprintf(e.stderr, "amana: case %s: the share's custody event is recorded here but not sent yet; 'amana sync' sends it\n", c.meta.ID[:12])
	}
	if o.json {
		return writeJSON(e.stdout, struct {
			Case   string      `json:"case"`
			To     handlerJSON `json:"to"`
			Events int         `json:"events"`
		}{c.meta.ID, handlerRef(c.man, key), n})
	}
	fmt.Fprintf(e.stderr, "shared case %s: %d change(s) encrypted to %s alone; their 'amana sync' verifies each signature\n", c.meta.ID[:12], n, nameOf(c.man, key, c.id))
	return nil
}
