package relaycli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

type initOptions struct {
	data  string
	admin string
	force bool
}

func newInit(e *env) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --data DIR --admin admin.card",
		Short: "create a relay's data directory and pin the desk admin's key",
		Long: `Create the data directory (mode 0700) and its spool, and pin the desk admin's key
from their card (made with 'amana card'). From then on the relay accepts only desk
manifests signed by that key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runInit(e, &o) },
	}
	dataFlag(cmd, &o.data)
	cmd.Flags().StringVar(&o.admin, "admin", "", "the desk admin's card file (required)")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace an already pinned admin key")
	cmd.MarkFlagRequired("admin")
	return cmd
}

func runInit(e *env, o *initOptions) error {
	if err := needData(o.data); err != nil {
		return err
	}
	b, err := os.ReadFile(o.admin)
	if err != nil {
		return ui.Fail(ui.ExitError, "check the --admin path", err, "cannot read the admin card")
	}
	card, err := crypto.ParseCard(string(b))
	if err != nil {
		return ui.Fail(ui.ExitTrust, "make the card with 'amana card -i admin.key'", err, "invalid admin card")
	}
	sp, err := store.Open(o.data, nil)
	if err != nil {
		return err
	}
	defer sp.Close()
	if cur, err := sp.Setting(daemon.SettingAdmin); err != nil {
		return err
	} else if cur != nil && !o.force {
		old, _ := crypto.ParseCard(string(cur))
		if old != nil && old.KeyID() == card.KeyID() {
			fmt.Fprintf(e.stderr, "relay in %s is already initialised with this admin\n", o.data)
			return nil
		}
		return ui.Fail(ui.ExitUsage, "pass --force to pin a new admin key; existing desks must then be republished by the new admin", nil,
			"relay in %s already has an admin key pinned", o.data)
	}
	if err := sp.SetSetting(daemon.SettingAdmin, []byte(card.String())); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "initialised relay in %s\nadmin %q, desk fingerprint %s\n", o.data, card.Name, crypto.KeyFingerprint(card.SignKey))
	fmt.Fprintf(e.stderr, "next: amana-relay serve --data %s\n", o.data)
	return nil
}
