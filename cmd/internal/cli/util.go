package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
)

// passphrase returns a function that reads a passphrase from the
// --passphrase-file, or else from the terminal.
func (e *env) passphrase(prompt string) func() (string, error) {
	return func() (string, error) {
		if e.passFile != "" {
			b, err := os.ReadFile(e.passFile)
			if err != nil {
				return "", fail(ExitKey, "check the --passphrase-file path", err, "cannot read the passphrase file")
			}
			p := strings.TrimRight(string(b), "\r\n")
			if p == "" {
				return "", fail(ExitKey, "write the passphrase in the file; a final newline is ignored", nil, "the passphrase file is empty")
			}
			return p, nil
		}
		return readTerminal(prompt)
	}
}

func readTerminal(prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fail(ExitKey, "give the passphrase with --passphrase-file or $AMANA_PASSPHRASE_FILE", nil,
			"a passphrase is needed and there is no terminal to ask for it")
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fail(ExitKey, "", err, "reading the passphrase")
	}
	return string(p), nil
}

// newPassphrase asks for a new passphrase twice on the terminal, or reads it
// from the passphrase file.
func (e *env) newPassphrase() (string, error) {
	if e.passFile != "" {
		return e.passphrase("")()
	}
	p, err := readTerminal("new passphrase for the key: ")
	if err != nil {
		return "", err
	}
	if len(p) < 10 {
		return "", fail(ExitUsage, "choose a passphrase of at least 10 characters; a few random words work well", nil, "passphrase too short")
	}
	q, err := readTerminal("the same passphrase again: ")
	if err != nil {
		return "", err
	}
	if p != q {
		return "", fail(ExitUsage, "run the command again and type the same passphrase twice", nil, "the passphrases do not match")
	}
	return p, nil
}

// loadIdentity reads an identity file, asking for its passphrase if it is
// protected.
func (e *env) loadIdentity(path string) (*crypto.Identity, error) {
	if path == "" {
		return nil, fail(ExitUsage, "give your identity file with -i FILE (made by 'amana keygen')", nil, "no identity file given")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail(ExitKey, "check the -i path", err, "cannot read identity file %s", path)
	}
	id, err := crypto.ParseIdentityFile(data, e.passphrase("passphrase for "+path+": "))
	if err != nil {
		var ue *Error
		if errors.As(err, &ue) {
			return nil, err
		}
		if errors.Is(err, crypto.ErrPassphrase) {
			return nil, fail(ExitKey, "check the passphrase; it is the one chosen at 'amana keygen'", nil, "incorrect passphrase for %s", path)
		}
		return nil, fail(ExitKey, "give a file made by 'amana keygen'", err, "cannot read identity file %s", path)
	}
	return id, nil
}

// clean makes untrusted text safe for a terminal; see ui.Clean.
var clean = ui.Clean

// bar returns a progress bar on stderr when it is a terminal and output is
// not quiet, or nil.
func (e *env) bar(total int64, desc string) *progressbar.ProgressBar {
	f, ok := e.stderr.(*os.File)
	if e.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// writeNew writes a new file with mode 0600, refusing to overwrite.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fail(ExitError, "choose another path, or move the existing file away first", nil, "%s already exists", path)
	}
	if err != nil {
		return fail(ExitError, "", err, "cannot create %s", path)
	}
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		f.Close()
		return fail(ExitError, "", err, "writing %s", path)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fail(ExitError, "", err, "writing %s", path)
	}
	return f.Close()
}
