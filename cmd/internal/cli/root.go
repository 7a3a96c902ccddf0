// Package cli implements the amana command: key generation, handler cards,
// desk manifests, submission, and the handler's pull, list, show and export.
// One file per subcommand; each has an options struct and a run function.
package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay/client"
)

// Exit codes; see package ui.
const (
	ExitOK      = ui.ExitOK
	ExitError   = ui.ExitError
	ExitUsage   = ui.ExitUsage
	ExitTrust   = ui.ExitTrust
	ExitNetwork = ui.ExitNetwork
	ExitRefused = ui.ExitRefused
	ExitKey     = ui.ExitKey
	ExitPartial = ui.ExitPartial
	// ExitAttention: 'amana sla' found a case breached or an escalation due.
	ExitAttention = ui.ExitAttention
)

const exitHelp = `Exit codes:
  0  success
  1  error not listed below
  2  bad flags or arguments
  3  trust failure: a signature, fingerprint or serial check failed, a case
     change was refused, or no verified manifest of the case's desk is kept
  4  the relay could not be reached (a case change is kept; 'amana sync' sends it)
  5  the relay refused the request
  6  a key could not be read, or it does not open the case
  7  partial: some items failed, the others succeeded
  8  attention ('amana sla'): a case is breached or an escalation is due`

// Error is a user-facing error; see ui.Error.
type Error = ui.Error

var fail = ui.Fail

// env carries the streams and global options into every subcommand.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	home           string
	passFile       string
	quiet          bool
	tor            torOptions
	ctx            context.Context
}

// Main runs the amana command with args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, ctx: ctx}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	return ui.Report(stderr, "amana", err, classify)
}

// torNotes say, for each setting a tor failure points at, what amana's
// own flags do about it.
var torNotes = map[onion.Setting]string{
	onion.SettingTorPath:   "the path goes in --tor-path",
	onion.SettingTorrc:     "bridges go in the file given with --torrc",
	onion.SettingSocks:     "give --tor-socks HOST:PORT, or use --tor-launch",
	onion.SettingClientKey: "give your identity with -i and use --tor-launch, or add the line from 'amana onion-auth' to your tor's ClientOnionAuthDir",
}

// classify turns errors that escaped a subcommand into user errors.
func classify(err error) *Error {
	var ce *client.Error
	var ne *client.NetError
	var oe *onion.Error
	switch {
	case errors.As(err, &oe):
		return ui.TorError(err, oe, torNotes)
	case errors.Is(err, context.Canceled):
		return &Error{Code: ExitError, Msg: "interrupted", Hint: "run the command again; uploads and downloads resume"}
	case errors.As(err, &ce):
		return &Error{Code: ExitRefused, Msg: err.Error(), Hint: ce.Body.Hint}
	case errors.As(err, &ne):
		return &Error{Code: ExitNetwork, Msg: err.Error(), Hint: "check the relay URL and that the relay is running"}
	case errors.Is(err, client.ErrInboxPaging):
		return &Error{Code: ExitError, Msg: err.Error(), Hint: "nothing was downloaded or acknowledged; the relay's listing is broken or tampered with: tell its operator"}
	case errors.Is(err, crypto.ErrPassphrase):
		return &Error{Code: ExitKey, Msg: err.Error(), Hint: "check the passphrase of the identity file"}
	}
	return nil
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:     "amana",
		Version: ui.Version(),
		Short:   "end-to-end encrypted intake for sensitive reports",
		Long: `amana is the companion of amana-relay. Handlers use it to make their keys, pull
submissions from a relay, open them on their own machine and follow each case
through the desk's workflow ('amana case', 'amana triage'); desk admins use it to
sign and publish desk manifests; technical submitters and partner organisations use
it to submit.

The relay never holds a key that opens a submission: amana encrypts before it sends
and decrypts after it receives.

` + exitHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			e.resolveHome()
			if e.passFile == "" {
				e.passFile = os.Getenv("AMANA_PASSPHRASE_FILE")
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fail(ExitUsage, "run '"+c.CommandPath()+" --help' to see the usage", nil, "%v", err)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&e.home, "home", "", "directory for local state: cases and known desks (default $AMANA_HOME, else $XDG_DATA_HOME/amana, else ~/.local/share/amana)")
	pf.StringVar(&e.passFile, "passphrase-file", "", "read key passphrases from this file instead of the terminal (or $AMANA_PASSPHRASE_FILE)")
	pf.BoolVarP(&e.quiet, "quiet", "q", false, "print no progress")
	e.tor.addFlags(root)
	root.AddCommand(newKeygen(e), newCard(e), newDesk(e), newSubmit(e), newPull(e), newList(e), newShow(e), newExport(e), newOnionAuth(e), newReply(e), newCheck(e), newFollowup(e), newCase(e), newSync(e), newTriage(e), newSLA(e), newReport(e), newEvidence(e))
	e.registerCompletions(root)
	return root
}

func defaultHome() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "amana")
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "freebsd" || runtime.GOOS == "openbsd" {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".local", "share", "amana")
		}
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "amana")
	}
	return ".amana"
}
