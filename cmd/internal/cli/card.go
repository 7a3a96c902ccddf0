package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
)

type cardOptions struct {
	identity    string
	fingerprint bool
	verify      string
	json        bool
}

func newCard(e *env) *cobra.Command {
	var o cardOptions
	cmd := &cobra.Command{
		Use:   "card -i KEY [--fingerprint] | card --verify CARDFILE",
		Short: "print a handler's public card or its fingerprint",
		Long: `Print the public handler card of an identity: one line with the handler's name, age
recipient, Ed25519 signing key and Tor client-authorization key, self-signed. Desk
admins put cards in desk manifests.

--fingerprint prints a short fingerprint to compare aloud with the desk admin, so
nobody can slip another key in. --verify checks a card file and prints its
fingerprint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runCard(e, &o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.identity, "identity", "i", "", "identity file made by 'amana keygen'")
	f.BoolVar(&o.fingerprint, "fingerprint", false, "print only the card's fingerprint")
	f.StringVar(&o.verify, "verify", "", "check this card file and print its name and fingerprint")
	f.BoolVar(&o.json, "json", false, "print the card's details as JSON (docs/cli.md)")
	return cmd
}

func runCard(e *env, o *cardOptions) error {
	if o.verify != "" {
		b, err := os.ReadFile(o.verify)
		if err != nil {
			return fail(ExitError, "check the path", err, "cannot read card %s", o.verify)
		}
		c, err := crypto.ParseCard(string(b))
		if err != nil {
			return fail(ExitTrust, "ask the handler for their card again, made with 'amana card'", err, "%s is not a valid card", o.verify)
		}
		if o.json {
			return writeJSON(e.stdout, cardToJSON(c, ""))
		}
		fmt.Fprintf(e.stdout, "%s %s\n", c.Name, c.Fingerprint())
		return nil
	}
	id, err := e.loadIdentity(o.identity)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(e.stdout, cardToJSON(id.Card(), ""))
	}
	if o.fingerprint {
		fmt.Fprintln(e.stdout, id.Card().Fingerprint())
		return nil
	}
	fmt.Fprintln(e.stdout, id.Card().String())
	return nil
}
