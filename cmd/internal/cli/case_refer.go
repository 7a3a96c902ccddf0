package cli

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
)

type caseReferOptions struct {
	caseFlags
	to, consent, outcome string
}

func newCaseRefer(e *env) *cobra.Command {
	var o caseReferOptions
	cmd := &cobra.Command{
		Use:   "refer ID --to ORG --consent yes|no [--outcome TEXT] -i KEY",
		Short: "record a case's referral to another organisation",
		Long: `Record that a case was referred to another organisation: to whom, whether the
submitter consented, and later its outcome (run it again with --outcome). This
records the referral only; nothing is sent to the organisation. The organisation's
name and the outcome are encrypted to the handlers of the case's category; the
desk's coordinators learn only that the case was referred, and whether with
consent. 'amana case set ID --status referred' sets the status too. The referral
is also recorded in the case's custody log ('amana case custody').`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseRefer(e, &o, args[0]) },
	}
	o.caseFlags.add(cmd)
	cmd.Flags().StringVar(&o.to, "to", "", "the organisation the case was referred to (required)")
	cmd.Flags().StringVar(&o.consent, "consent", "", "yes or no: did the submitter consent to the referral (required)")
	cmd.Flags().StringVar(&o.outcome, "outcome", "", "what came of the referral")
	cmd.MarkFlagRequired("to")
	cmd.MarkFlagRequired("consent")
	return cmd
}

func runCaseRefer(e *env, o *caseReferOptions, prefix string) error {
	var consent bool
	switch strings.ToLower(o.consent) {
	case "yes":
		consent = true
	case "no":
	default:
		return fail(ExitUsage, "give --consent yes or --consent no", nil, "--consent is %q", clean(o.consent, false))
	}
	for _, t := range []struct {
		flag, v string
		max     int
	}{{"--to", o.to, 200}, {"--outcome", o.outcome, 1024}} {
		if strings.ContainsAny(t.v, "\r\n") || len(t.v) > t.max || !utf8.ValidString(t.v) {
			return fail(ExitUsage, fmt.Sprintf("keep it to one line of at most %d bytes; 'amana case note' can say more", t.max), nil, "%s is too long or not one line of text", t.flag)
		}
	}
	if strings.TrimSpace(o.to) == "" {
		return fail(ExitUsage, "name the organisation in --to", nil, "--to is empty")
	}
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	// The referral is also a custody event of the case's files: one
	// signed change carries both.
	return e.recorded(c, o.relay, o.json, crypto.Change{Referral: &crypto.Referral{To: o.to, Consent: consent, Outcome: o.outcome},
		Custody: &crypto.Custody{Action: crypto.CustodyRefer, Detail: "to " + o.to}})
}
