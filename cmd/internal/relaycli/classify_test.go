package relaycli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

// TestClassifyStoreErrors: the spool says what is wrong in its own words;
// amana-relay adds what to do.
func TestClassifyStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		hint string
	}{
		{fmt.Errorf("opening the spool: %w", &store.ModeError{Path: "/var/lib/amana", Mode: 0o755, Want: 0o700}), "chmod 700 /var/lib/amana"},
		{fmt.Errorf("opening the spool: %w", &store.ModeError{Path: "/var/lib/amana/spool.db", Mode: 0o644, Want: 0o600}), "chmod 600 /var/lib/amana/spool.db"},
		{&store.SchemaError{Found: 9, Known: 3}, "upgrade amana-relay"},
		{store.ErrLocked, "stop it first"},
	} {
		e := classify(tc.err)
		if e == nil || !strings.Contains(e.Hint, tc.hint) || strings.Contains(e.Msg, "hint") {
			t.Errorf("classify(%v) = %+v, want a hint with %q", tc.err, e, tc.hint)
		}
	}
}

// TestClassifyTorErrors: the onion package speaks of tor; amana-relay adds
// its flags for the setting at fault, and an unsafe key is not a network
// failure.
func TestClassifyTorErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		hint string
	}{
		{&onion.Error{Kind: onion.KindControl, Setting: onion.SettingControl, Msg: "cannot reach tor's control port", Hint: "check the address"}, ui.ExitNetwork, "check the address; --tor-control gives the control port"},
		{&onion.Error{Kind: onion.KindPublish, Setting: onion.SettingOwnTor, Msg: "needs the relay's own tor", Hint: "publish it from a tor that this process starts"}, ui.ExitNetwork, "leave out --tor-control"},
		{&onion.Error{Kind: onion.KindNotInstalled, Setting: onion.SettingTorPath, Msg: "tor is not installed", Hint: "install tor"}, ui.ExitNetwork, "install tor; the path goes in --tor-path"},
		{fmt.Errorf("publishing: %w", &onion.Error{Kind: onion.KindKey, Msg: "onion key k is readable by others", Hint: "chmod 600 k"}), ui.ExitError, "chmod 600 k"},
	} {
		e := classify(tc.err)
		if e == nil || e.Code != tc.code || !strings.Contains(e.Hint, tc.hint) || e.Msg != tc.err.Error() {
			t.Errorf("classify(%v) = %+v, want code %d and a hint with %q", tc.err, e, tc.code, tc.hint)
		}
	}
}

// TestClassifyDaemonErrors: the daemon's errors print as serve printed them
// before the daemon had a package of its own.
func TestClassifyDaemonErrors(t *testing.T) {
	inUse := errors.New("bind: address already in use")
	for _, tc := range []struct {
		err       error
		code      int
		msg, hint string
	}{
		{&daemon.ListenError{Addr: "127.0.0.1:8080", Err: inUse}, ui.ExitError,
			"cannot listen on 127.0.0.1:8080: bind: address already in use", "choose another port, or stop what is using it"},
		{&daemon.ListenError{Addr: "127.0.0.1:9464", Metrics: true, Err: inUse}, ui.ExitError,
			"cannot listen on 127.0.0.1:9464: bind: address already in use", "choose another port for --metrics"},
		{&daemon.NotInitialisedError{Dir: "rd"}, ui.ExitUsage,
			"relay in rd is not initialised", "run 'amana-relay init --data rd --admin admin.card' first"},
	} {
		e := classify(tc.err)
		if e == nil || e.Code != tc.code || e.Error() != tc.msg || e.Hint != tc.hint {
			t.Errorf("classify(%v) = %+v", tc.err, e)
		}
	}
}
