package cli

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

type caseLinkOptions struct {
	caseFlags
	duplicateOf, related string
	remove               bool
}

func newCaseLink(e *env) *cobra.Command {
	var o caseLinkOptions
	cmd := &cobra.Command{
		Use:   "link ID (--duplicate-of ID2 | --related ID2) [--remove] -i KEY",
		Short: "link a case to another: a duplicate of it, or related",
		Long: `Link a case to another case: --duplicate-of ID2 says it reports what ID2 already
does (close it with --reason duplicate when you are done), --related ID2 that the
two belong together. --remove takes the link back. ID2 may be a prefix of a case
held here, or the full ID of a case this machine does not hold.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseLink(e, &o, args[0]) },
	}
	o.caseFlags.add(cmd)
	cmd.Flags().StringVar(&o.duplicateOf, "duplicate-of", "", "the case this one duplicates")
	cmd.Flags().StringVar(&o.related, "related", "", "a case related to this one")
	cmd.Flags().BoolVar(&o.remove, "remove", false, "remove the link instead")
	cmd.MarkFlagsMutuallyExclusive("duplicate-of", "related")
	cmd.MarkFlagsOneRequired("duplicate-of", "related")
	return cmd
}

func runCaseLink(e *env, o *caseLinkOptions, prefix string) error {
	link := &crypto.Link{Rel: "duplicate-of", Case: o.duplicateOf}
	if o.related != "" {
		link = &crypto.Link{Rel: "related", Case: o.related}
	}
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	other, err := c.st.Resolve(link.Case)
	switch {
	case errors.Is(err, cases.ErrNotFound) && cases.ValidID(strings.ToLower(link.Case)):
		other = strings.ToLower(link.Case)
	case errors.Is(err, cases.ErrNotFound):
		return fail(ExitUsage, "give a prefix of a case 'amana list' shows, or the full 32-character ID of another", nil, "no case %q", clean(link.Case, false))
	case errors.Is(err, cases.ErrAmbiguous):
		return fail(ExitUsage, "give more characters of the ID", nil, "%q matches more than one case", clean(link.Case, false))
	case err != nil:
		return err
	}
	if other == c.meta.ID {
		return fail(ExitUsage, "give the ID of another case", nil, "a case cannot be linked to itself")
	}
	link.Case = other
	ch := crypto.Change{Link: link}
	if o.remove {
		ch = crypto.Change{Unlink: link}
	}
	return e.recorded(c, o.relay, o.json, ch)
}
