package onion

import (
	"errors"
	"fmt"
)

// Error is a tor failure a person will meet, with what to do about it.
// Hint says so in terms of tor alone; Setting names the input of the
// caller's that the failure points at, so that each program can add how
// its own users change it (a flag, a file). The package never names a
// program's flags.
type Error struct {
	Kind    string // stable: not_installed, bootstrap, publish, unreachable, client_auth_missing, client_auth_wrong, control, key_file
	Setting Setting
	Msg     string
	Hint    string
	Err     error
}

// Setting is an input of the caller's that an Error points at.
type Setting string

// Settings an Error may point at.
const (
	SettingNone      Setting = ""
	SettingTorPath   Setting = "tor_path"   // Options.TorPath, the tor binary
	SettingControl   Setting = "control"    // Options.Control, an attached tor's control port
	SettingTorrc     Setting = "torrc"      // Options.Torrc, where bridges go
	SettingOwnTor    Setting = "own_tor"    // the service needs a launched tor, not an attached one
	SettingSocks     Setting = "socks"      // Dialer.Socks, the SOCKS port in use
	SettingClientKey Setting = "client_key" // the client-authorization key the caller's tor holds
)

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Kinds of Error.
const (
	KindNotInstalled      = "not_installed"
	KindBootstrap         = "bootstrap"
	KindPublish           = "publish"
	KindUnreachable       = "unreachable"
	KindClientAuthMissing = "client_auth_missing"
	KindClientAuthWrong   = "client_auth_wrong"
	KindControl           = "control"
	KindKey               = "key_file" // an onion service's key file is unsafe or unreadable
)

func fail(kind, hint string, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Hint: hint, Err: err}
}

// about marks the Error as pointing at setting s.
func (e *Error) about(s Setting) *Error {
	e.Setting = s
	return e
}

// IsKind reports whether err is an *Error of the given kind.
func IsKind(err error, kind string) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

// Permanent reports whether trying again cannot help: tor is missing, a
// key is missing or refused, or tor's control port is out of reach.
// Clients use it to stop retrying.
func (e *Error) Permanent() bool {
	switch e.Kind {
	case KindNotInstalled, KindClientAuthMissing, KindClientAuthWrong, KindControl, KindKey:
		return true
	}
	return false
}
