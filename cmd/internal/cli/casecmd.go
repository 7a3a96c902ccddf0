package cli

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
)

func newCase(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "case",
		Short: "follow a case: its status, severity, assignees, tags, notes, links, referral",
		Long: `Follow a case through the desk's workflow. Every change is signed with your key,
encrypted on this machine to exactly the handlers of the case's category, and
exchanged through the relay, which cannot read it ('amana sync', or 'amana pull').
Names are handler names from the desk's manifest ("me" is you); statuses,
severities and close reasons are the desk's ('amana desk show' lists them).

'amana case delete' removes a case from this machine only.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCaseShow(e), newCaseSet(e), newCaseNote(e), newCaseClose(e), newCaseReopen(e), newCaseNotify(e),
		newCaseLink(e), newCaseRefer(e), newCaseShare(e), newCaseCustody(e), newCaseDelete(e))
	return cmd
}

type caseDeleteOptions struct{ yes bool }

func newCaseDelete(e *env) *cobra.Command {
	var o caseDeleteOptions
	cmd := &cobra.Command{
		Use:   "delete ID [--yes]",
		Short: "remove a case, and for a report its thread, from this machine",
		Long: `Remove a case from the local case store on this machine: for a report, its
follow-ups and reply copies too (as 'amana list' shows them under it); for a
follow-up or a reply, that item only. The relay is not contacted and keeps
whatever it still holds; other handlers keep their copies.

Each file of the case (the ciphertext, a partial download, case.json) is
overwritten with zeros in place and synced before it is removed. That is as far
as a program can go: on an SSD, a copy-on-write filesystem (btrfs, ZFS, APFS),
with snapshots, backups or a data journal, earlier copies of the blocks may
survive (docs/threat-model.md, "The handler's case store"). The case store holds
ciphertext only; exports ('amana export') are plaintext and are not touched:
delete them yourself.

It asks before deleting, unless --yes is given. ID may be any unique prefix.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseDelete(e, &o, args[0]) },
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "delete without asking")
	return cmd
}

func runCaseDelete(e *env, o *caseDeleteOptions, prefix string) error {
	st, err := e.cases()
	if err != nil {
		return err
	}
	cid, err := st.Resolve(prefix)
	if errors.Is(err, cases.ErrNotFound) {
		return fail(ExitUsage, "run 'amana list' to see the case IDs", nil, "no case %q", prefix)
	} else if errors.Is(err, cases.ErrAmbiguous) {
		return fail(ExitUsage, "give more characters of the ID", nil, "%q matches more than one case", prefix)
	} else if err != nil {
		return err
	}
	all, err := st.List()
	if err != nil {
		return err
	}
	var target *cases.Meta
	for _, m := range all {
		if m.ID == cid {
			target = m
		}
	}
	ids := []string{cid}
	if target != nil && handler.IsReport(target) && target.Mailbox != "" && handler.ThreadOf(all, target.Mailbox) == target {
		for _, m := range all {
			if handler.InThread(m) && m.Mailbox == target.Mailbox {
				ids = append(ids, m.ID)
			}
		}
	}
	what := fmt.Sprintf("case %s", cid[:12])
	if n := len(ids) - 1; n > 0 {
		what += fmt.Sprintf(" and the %d follow-up(s) and reply(ies) of its thread", n)
	}
	if !o.yes {
		fmt.Fprintf(e.stderr, "delete %s from this machine? this cannot be undone [y/N] ", what)
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(e.stderr)
			return fail(ExitUsage, "answer y to delete, or pass --yes", nil, "nothing deleted")
		}
	}
	// The thread first, the report last: a failure leaves no thread
	// without its report.
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		if err := st.Remove(id); err != nil {
			if i == len(ids)-1 {
				return fail(ExitError, "", err, "cannot delete case %s", id[:12])
			}
			return fail(ExitPartial, "run 'amana case delete' again on what 'amana list' still shows", err, "case %s was only partly deleted", cid[:12])
		}
	}
	fmt.Fprintf(e.stderr, "deleted %s: each file overwritten with zeros, then removed\n", what)
	fmt.Fprintln(e.stderr, "note: on an SSD or a copy-on-write filesystem earlier copies may survive; exports and backups are not touched")
	return nil
}
