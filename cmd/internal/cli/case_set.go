package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
)

// caseFlags are the flags every command that records a change has.
type caseFlags struct {
	relay    string
	identity string
	json     bool
}

func (o *caseFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.relay, "relay", "", "the relay to send the change through (default: the relay the case came from)")
	f.StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	f.BoolVar(&o.json, "json", false, "print the recorded change as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("identity")
}

// statusFlag is --no-status-message, of the commands that change a
// case's status.
type statusFlag struct{ noStatusMessage bool }

func (o *statusFlag) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.noStatusMessage, "no-status-message", false, "do not queue the status message the desk's workflow has for the new status")
}

// statusMessageHelp is what the help of set, close and reopen says of the
// status message.
const statusMessageHelp = `

When the desk's workflow has a text for the submitter for the new status
(submitter_status in its manifest) and the report came with a receipt, a status
message with that text is sealed here, signed, to the submitter and the handlers
of the case's category, and queued: 'amana sync' sends it (see 'amana case
notify'). --no-status-message leaves it out.`

type caseSetOptions struct {
	caseFlags
	statusFlag
	status, severity string
	assign, unassign []string
	tag, untag       []string
}

func newCaseSet(e *env) *cobra.Command {
	var o caseSetOptions
	cmd := &cobra.Command{
		Use:   "set ID [--status S] [--severity S] [--assign NAME|me]... [--unassign NAME|me]... [--tag T]... [--untag T]... -i KEY",
		Short: "change a case's status, severity, assignees or tags",
		Long: `Change a case's status, severity, assignees or tags, as one signed change. The
statuses, severities and close reasons are the desk's (its manifest's workflow;
'amana desk show' lists them); an assignee is a handler of the case's category,
by their name in the manifest, or "me". Tags are free; the desk may suggest some.

The change is signed with your key and encrypted on this machine to exactly the
handlers of the case's category (and, without its text, to the desk's
coordinators), stored here first, then sent through the relay. A change that could
not be sent is kept and sent by the next 'amana sync'.` + statusMessageHelp,
		Example: `  amana case set 3f2a --status acknowledged --severity high --assign me -i alice.key`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runCaseSet(e, &o, args[0]) },
	}
	o.caseFlags.add(cmd)
	o.statusFlag.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.status, "status", "", "the new status")
	f.StringVar(&o.severity, "severity", "", "the new severity")
	f.StringArrayVar(&o.assign, "assign", nil, "assign a handler, by name or me (repeat)")
	f.StringArrayVar(&o.unassign, "unassign", nil, "unassign a handler, by name or me (repeat)")
	f.StringArrayVar(&o.tag, "tag", nil, "add a tag (repeat)")
	f.StringArrayVar(&o.untag, "untag", nil, "remove a tag (repeat)")
	return cmd
}

func runCaseSet(e *env, o *caseSetOptions, prefix string) error {
	if o.status == "" && o.severity == "" && len(o.assign)+len(o.unassign)+len(o.tag)+len(o.untag) == 0 {
		return fail(ExitUsage, "give at least one of --status, --severity, --assign, --unassign, --tag, --untag", nil, "nothing to change")
	}
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	wf := c.man.Flow()
	var ch crypto.Change
	if o.status != "" {
		if err := oneOf("status", o.status, c.man.Desk, wf.Statuses); err != nil {
			return err
		}
		if isFinal(wf, o.status) {
			return fail(ExitUsage, fmt.Sprintf("use 'amana case close %s --reason R': a case is closed with a reason", c.meta.ID[:12]), nil, "%q is a final status", o.status)
		}
		ch.Status = o.status
	}
	if o.severity != "" {
		if err := oneOf("severity", o.severity, c.man.Desk, severityIDs(wf)); err != nil {
			return err
		}
		ch.Severity = o.severity
	}
	if ch.Assign, err = c.keys(o.assign, true); err != nil {
		return err
	}
	if ch.Unassign, err = c.keys(o.unassign, false); err != nil {
		return err
	}
	if ch.Tag, err = tags(o.tag); err != nil {
		return err
	}
	if ch.Untag, err = tags(o.untag); err != nil {
		return err
	}
	c.notify = !o.noStatusMessage
	return e.recorded(c, o.relay, o.json, ch)
}

// keys turns handler names into key IDs; an assignee must be on the case's
// route, since only they can read it.
func (c *journalCase) keys(names []string, route bool) ([]string, error) {
	var out []string
	for _, n := range names {
		k, err := handlerKey(c.man, c.id, n)
		if err != nil {
			return nil, err
		}
		if route {
			if err := c.onRoute(k, n); err != nil {
				return nil, err
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// tags checks tags: names as the desk's ids are (1 to 32 of a-z, 0-9, '.',
// '_', '-'), each once.
func tags(in []string) ([]string, error) {
	if len(in) > crypto.MaxEventList {
		return nil, fail(ExitUsage, "split them over several changes", nil, "more than %d tags in one change", crypto.MaxEventList)
	}
	seen := map[string]bool{}
	for _, t := range in {
		if !crypto.ValidName(t) {
			return nil, fail(ExitUsage, "a tag is 1 to 32 characters from a-z, 0-9, '.', '_', '-', like fraud or needs-interpreter", nil, "invalid tag %q", clean(t, false))
		}
		if seen[t] {
			return nil, fail(ExitUsage, "give each tag once", nil, "tag %q given twice", t)
		}
		seen[t] = true
	}
	return in, nil
}

// recorded records ch, then says what was recorded, or prints it as JSON.
func (e *env) recorded(c *journalCase, relay string, asJSON bool, ch crypto.Change) error {
	wf := c.man.Flow()
	prev := ""
	if ch.Status != "" {
		if s, serr := c.j.State(c.trust, c.meta.ID); serr == nil {
			prev = statusOf(wf, s)
		}
	}
	ev, err := e.record(c, relay, ch)
	if ev == nil {
		return err
	}
	defer func() {
		if ev.Change.Status == "" {
			return
		}
		queued := false
		if c.notify {
			var qerr error
			if queued, qerr = e.queueStatusMessage(c, ev.Change.Status, false); qerr != nil {
				fmt.Fprintf(e.stderr, "amana: note: case %s: the submitter's status message was not queued (%s); 'amana case notify %s' queues it\n",
					c.meta.ID[:12], clean(qerr.Error(), false), c.meta.ID[:12])
			}
		}
		// Leaving a final status of a desk that asks the survey: only a
		// later status message takes the question back (protocol §8.10.3).
		if !queued && wf.Survey && isFinal(wf, prev) && !isFinal(wf, ev.Change.Status) {
			why := fmt.Sprintf("the desk has no text for status %q", clean(ev.Change.Status, false))
			if !c.notify {
				why = "--no-status-message"
			}
			fmt.Fprintf(e.stderr, "amana: warning: case %s: the submitter still sees status %q and the satisfaction question, and answers still count (%s)\n"+
				"hint: to take them back, move the case to a status the desk has a text for ('amana desk show' lists them), or have the desk's admin add one for %q (workflow submitter_status), then run 'amana case notify %s'\n",
				c.meta.ID[:12], clean(prev, false), why, clean(ev.Change.Status, false), c.meta.ID[:12])
		}
	}()
	if asJSON {
		if jerr := writeJSON(e.stdout, recordJSON{Case: c.meta.ID, Event: eventToJSON(c.man, ev), Sent: err == nil}); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "case %s: %s (change %d, signed by %s, sent)\n", c.meta.ID[:12], changeText(c.man, ev.Change, c.id), ev.Seq, clean(c.id.Name(), false))
	return nil
}
