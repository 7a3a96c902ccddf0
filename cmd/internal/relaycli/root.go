// Package relaycli implements the amana-relay command: init, serve, status,
// compact, doctor, backup and restore. One file per subcommand.
package relaycli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

const exitHelp = `Exit codes:
  0  success
  1  error not listed below
  2  bad flags or arguments
  3  the admin card does not verify
  4  tor failed: not installed, did not connect, could not publish, or stopped
  8  the data directory is in use by another amana-relay`

type env struct {
	stdout, stderr io.Writer
	ctx            context.Context
}

// Main runs amana-relay with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, ctx: ctx}
	root := &cobra.Command{
		Use:     "amana-relay",
		Version: ui.Version(),
		Short:   "the Amana relay: stores end-to-end encrypted reports for a helpdesk",
		Long: `amana-relay is the server of Amana. It receives reports that submitters' clients have
already encrypted to a desk's handlers, stores only that ciphertext in a bbolt spool,
and hands it to the handlers, who decrypt on their own machines. It never holds a
key that opens a report.

Start with 'amana-relay init', then 'amana-relay serve'.

` + exitHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return ui.Fail(ui.ExitUsage, "run '"+c.CommandPath()+" --help' to see the usage", nil, "%v", err)
	})
	root.AddCommand(newInit(e), newServe(e), newStatus(e), newCompact(e), newDoctor(e), newBackup(e), newRestore(e))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		return ui.Report(stderr, "amana-relay", err, classify)
	}
	return ui.ExitOK
}

// torNotes say, for each setting a tor failure points at, what
// amana-relay's own flags do about it.
var torNotes = map[onion.Setting]string{
	onion.SettingTorPath: "the path goes in --tor-path",
	onion.SettingControl: "--tor-control gives the control port",
	onion.SettingTorrc:   "bridges go in the file given with --torrc",
	onion.SettingOwnTor:  "leave out --tor-control, so that amana-relay starts its own tor",
}

func classify(err error) *ui.Error {
	var oe *onion.Error
	switch {
	case errors.As(err, &oe):
		return ui.TorError(err, oe, torNotes)
	case errors.Is(err, store.ErrLocked):
		return &ui.Error{Code: ui.ExitBusy, Msg: err.Error(), Hint: "another amana-relay is using this data directory; stop it first, or use 'amana-relay status'"}
	}
	var me *store.ModeError
	if errors.As(err, &me) {
		return &ui.Error{Code: ui.ExitError, Msg: err.Error(), Hint: fmt.Sprintf("chmod %o %s, and make sure it belongs to the relay's user", me.Want, me.Path)}
	}
	if errors.Is(err, store.ErrNewerSchema) {
		return &ui.Error{Code: ui.ExitError, Msg: err.Error(), Hint: "this spool was written by a newer amana-relay: upgrade amana-relay, or restore a backup made by this version"}
	}
	var le *daemon.ListenError
	if errors.As(err, &le) {
		hint := "choose another port, or stop what is using it"
		if le.Metrics {
			hint = "choose another port for --metrics"
		}
		return &ui.Error{Code: ui.ExitError, Msg: err.Error(), Hint: hint}
	}
	var ne *daemon.NotInitialisedError
	if errors.As(err, &ne) {
		return &ui.Error{Code: ui.ExitUsage, Msg: err.Error(), Hint: "run 'amana-relay init --data " + ne.Dir + " --admin admin.card' first"}
	}
	return nil
}

func dataFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "data", os.Getenv("AMANA_RELAY_DATA"), "the relay's data directory (or $AMANA_RELAY_DATA)")
}

func needData(dir string) error {
	if dir == "" {
		return ui.Fail(ui.ExitUsage, "give --data DIR or set $AMANA_RELAY_DATA", nil, "no data directory given")
	}
	return nil
}

// needExisting is needData for commands that must not create anything.
func needExisting(dir string) error {
	if err := needData(dir); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
		return ui.Fail(ui.ExitUsage, "run 'amana-relay init --data "+dir+" --admin admin.card' first, or check --data", nil,
			"there is no relay spool in %s", dir)
	}
	return nil
}
