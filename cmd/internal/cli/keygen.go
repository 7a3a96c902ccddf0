package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
)

type keygenOptions struct {
	out          string
	name         string
	classic      bool
	noPassphrase bool
	json         bool
}

func newKeygen(e *env) *cobra.Command {
	var o keygenOptions
	cmd := &cobra.Command{
		Use:   "keygen -o FILE --name NAME",
		Short: "make a handler identity",
		Long: `Make a handler identity: one age secret key from which the handler's signing key
and Tor client-authorization key are derived. It is a standard age identity file, so
'age -d -i FILE' opens the handler's cases even without amana.

By default the key is post-quantum (ML-KEM-768 + X25519) and the file is encrypted
with a passphrase (age scrypt), asked on the terminal or read from --passphrase-file.
Back the file up: it is the handler's only secret.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runKeygen(e, &o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "", "write the identity to this file (required; never overwritten)")
	f.StringVar(&o.name, "name", "", "handler name: 1 to 32 characters from a-z, 0-9, '.', '_', '-' (required)")
	f.BoolVar(&o.classic, "classic", false, "make a classic X25519 key instead of a post-quantum one (for age older than v1.3)")
	f.BoolVar(&o.noPassphrase, "no-passphrase", false, "write the key unencrypted (mode 0600); only for disposable or automated set-ups")
	f.BoolVar(&o.json, "json", false, "print the new identity's public details as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("output")
	cmd.MarkFlagRequired("name")
	return cmd
}

func runKeygen(e *env, o *keygenOptions) error {
	if !crypto.ValidName(o.name) {
		return fail(ExitUsage, "use 1 to 32 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit", nil, "invalid name %q", o.name)
	}
	id, err := crypto.GenerateIdentity(o.name, o.classic)
	if err != nil {
		return err
	}
	data := id.MarshalText(time.Now())
	if !o.noPassphrase {
		p, err := e.newPassphrase()
		if err != nil {
			return err
		}
		if data, err = crypto.ProtectIdentityFile(data, p); err != nil {
			return err
		}
	}
	if err := writeNew(o.out, data); err != nil {
		return err
	}
	if o.noPassphrase {
		fmt.Fprintf(e.stderr, "amana: warning: %s is not protected by a passphrase; anyone who can read it can open your cases\n", o.out)
	}
	kind := "post-quantum (ML-KEM-768 + X25519)"
	if o.classic {
		kind = "classic X25519"
	}
	if o.json {
		if err := writeJSON(e.stdout, cardToJSON(id.Card(), o.out)); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "wrote %s identity %q to %s\n", kind, o.name, o.out)
	fmt.Fprintf(e.stderr, "card fingerprint: %s\n", id.Card().Fingerprint())
	fmt.Fprintf(e.stderr, "next: 'amana card -i %s > %s.card' and give the card to your desk admin\n", o.out, o.name)
	return nil
}
