package ui

import (
	"strings"

	"github.com/amana-relay/amana/onion"
)

// TorError turns err, a tor failure oe with the context it was wrapped in,
// into a user error: the onion package's
// hint, which speaks of tor alone, followed by the program's own note on
// the setting the failure points at (notes, keyed by onion.Setting), which
// names the program's flags. An unsafe onion key file is a local error;
// every other tor failure is a network one.
func TorError(err error, oe *onion.Error, notes map[onion.Setting]string) *Error {
	code := ExitNetwork
	if oe.Kind == onion.KindKey {
		code = ExitError
	}
	var hint []string
	for _, h := range []string{oe.Hint, notes[oe.Setting]} {
		if h != "" {
			hint = append(hint, h)
		}
	}
	return &Error{Code: code, Msg: err.Error(), Hint: strings.Join(hint, "; ")}
}
