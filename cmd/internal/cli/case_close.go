package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
)

type caseCloseOptions struct {
	caseFlags
	statusFlag
	reason      string
	messageFile string
}

func newCaseClose(e *env) *cobra.Command {
	var o caseCloseOptions
	cmd := &cobra.Command{
		Use:   "close ID --reason R [--message-file FILE] -i KEY",
		Short: "close a case, with a reason",
		Long: `Close a case: its status becomes closed (or, on a desk whose workflow has no
"closed", its last final status), with one of the desk's close reasons (by
default completed, no-action-possible, referred, duplicate, spam,
out-of-mandate). --message-file adds an internal note in the same change.
'amana case reopen' opens it again.` + statusMessageHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseClose(e, &o, args[0]) },
	}
	o.caseFlags.add(cmd)
	o.statusFlag.add(cmd)
	cmd.Flags().StringVar(&o.reason, "reason", "", "the close reason (required)")
	cmd.Flags().StringVar(&o.messageFile, "message-file", "", "a note to record with it: a file, or - for standard input")
	cmd.MarkFlagRequired("reason")
	return cmd
}

// closedStatus is the status a case is closed with under wf.
func closedStatus(wf crypto.Workflow) string {
	if slices.Contains(wf.Statuses, "closed") || len(wf.Final) == 0 {
		return "closed"
	}
	return wf.Final[len(wf.Final)-1]
}

func runCaseClose(e *env, o *caseCloseOptions, prefix string) error {
	note, err := optionalNote(e, o.messageFile)
	if err != nil {
		return err
	}
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	wf := c.man.Flow()
	if err := oneOf("close reason", o.reason, c.man.Desk, wf.CloseReasons); err != nil {
		return err
	}
	c.notify = !o.noStatusMessage
	return e.recorded(c, o.relay, o.json, crypto.Change{Status: closedStatus(wf), CloseReason: o.reason, Note: note})
}

type caseReopenOptions struct {
	caseFlags
	statusFlag
	status      string
	messageFile string
}

func newCaseReopen(e *env) *cobra.Command {
	var o caseReopenOptions
	cmd := &cobra.Command{
		Use:   "reopen ID [--status S] [--message-file FILE] -i KEY",
		Short: "open a closed case again",
		Long: `Open a case that is in a final status again: its status becomes open (or --status,
any status of the desk that is not final), and the reopening is counted.
--message-file adds an internal note in the same change.` + statusMessageHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseReopen(e, &o, args[0]) },
	}
	o.caseFlags.add(cmd)
	o.statusFlag.add(cmd)
	cmd.Flags().StringVar(&o.status, "status", "", "the status to reopen it with (default: open)")
	cmd.Flags().StringVar(&o.messageFile, "message-file", "", "a note to record with it: a file, or - for standard input")
	return cmd
}

// openStatus is the status a case is reopened with under wf: "open", else
// the first status that is not final after the initial one.
func openStatus(wf crypto.Workflow) string {
	if slices.Contains(wf.Statuses, "open") {
		return "open"
	}
	for i, s := range wf.Statuses {
		if i > 0 && !isFinal(wf, s) {
			return s
		}
	}
	return wf.Statuses[0]
}

func runCaseReopen(e *env, o *caseReopenOptions, prefix string) error {
	note, err := optionalNote(e, o.messageFile)
	if err != nil {
		return err
	}
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	wf := c.man.Flow()
	status := o.status
	if status == "" {
		status = openStatus(wf)
	}
	if err := oneOf("status", status, c.man.Desk, wf.Statuses); err != nil {
		return err
	}
	if isFinal(wf, status) {
		return fail(ExitUsage, fmt.Sprintf("use 'amana case close %s --reason R' to close it", c.meta.ID[:12]), nil, "%q is a final status", status)
	}
	s, err := c.j.State(c.trust, c.meta.ID)
	if err != nil {
		return fail(ExitError, "run 'amana sync' to fetch the case's changes again", err, "cannot read the journal of case %s", c.meta.ID[:12])
	}
	if cur := statusOf(wf, s); !isFinal(wf, cur) {
		return fail(ExitUsage, fmt.Sprintf("'amana case set %s --status S' changes the status of an open case", c.meta.ID[:12]), nil, "case %s is not closed: its status is %s", c.meta.ID[:12], clean(cur, false))
	}
	c.notify = !o.noStatusMessage
	return e.recorded(c, o.relay, o.json, crypto.Change{Status: status, Note: note})
}

// optionalNote is the note of --message-file path, "" when none is given.
func optionalNote(e *env, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	return readNote(e, path)
}
