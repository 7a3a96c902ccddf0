package onion

import (
	"errors"
	"fmt"
)

// Error is a tor failure a person will meet, with what to do about it.
type Error struct {
	Kind string // stable: not_installed, bootstrap, publish, unreachable, client_auth_missing, client_auth_wrong, control
	Msg  string
	Hint string
	Err  error
}

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
)

func fail(kind, hint string, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Hint: hint, Err: err}
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
	case KindNotInstalled, KindClientAuthMissing, KindClientAuthWrong, KindControl:
		return true
	}
	return false
}
