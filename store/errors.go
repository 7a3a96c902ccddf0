package store

import (
	"errors"
	"fmt"
	"os"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrLocked: another process holds the spool open.
	ErrLocked = errors.New("spool is in use by another process")
	// ErrInsecureDir: the data directory or spool file can be read by others.
	ErrInsecureDir = errors.New("data directory is accessible to other users")
	// ErrNewerSchema: the spool was written by a newer Amana.
	ErrNewerSchema = errors.New("spool was written by a newer version of amana-relay")
	// ErrQuota: accepting this would take the spool past its quota.
	ErrQuota = errors.New("spool quota exceeded")
	// ErrNotFound: no such upload or submission (or it expired).
	ErrNotFound = errors.New("not found")
	// ErrTooLong: more bytes than the upload declared.
	ErrTooLong = errors.New("more bytes than the upload declared")
	// ErrIncomplete: completing an upload before all its bytes arrived.
	ErrIncomplete = errors.New("upload is incomplete")
	// ErrStaleSerial: a desk manifest whose serial is not newer than the stored one.
	ErrStaleSerial = errors.New("desk manifest serial is not newer than the current one")
	// ErrStorage: the disk refused a write (full, or failing). Nothing stored
	// before is affected.
	ErrStorage = errors.New("storage write failed")
	// ErrIdempotency: an idempotency key sent again with different bytes.
	ErrIdempotency = errors.New("idempotency key already names a different submission")
	// ErrCursor: a page's starting point is not a submission ID (32 hex
	// characters). It need not name a stored submission.
	ErrCursor = errors.New("listing cursor is not a submission ID")
)

// OffsetError is returned when a piece is written at an offset other than
// the upload's current one. It wraps ErrOffset.
type OffsetError struct{ Current int64 }

// ErrOffset: a piece written at the wrong offset.
var ErrOffset = errors.New("upload offset mismatch")

func (e *OffsetError) Error() string {
	return fmt.Sprintf("%v: current offset is %d", ErrOffset, e.Current)
}
func (e *OffsetError) Unwrap() error { return ErrOffset }

// ModeError says that a file or directory of the spool can be reached by
// other users. It wraps ErrInsecureDir; Want is the mode it needs.
type ModeError struct {
	Path       string
	Mode, Want os.FileMode
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("%v: %s has mode %04o", ErrInsecureDir, e.Path, e.Mode)
}
func (e *ModeError) Unwrap() error { return ErrInsecureDir }

// SchemaError says the spool was written by a newer version. It wraps
// ErrNewerSchema.
type SchemaError struct{ Found, Known int64 }

func (e *SchemaError) Error() string {
	return fmt.Sprintf("%v (spool schema %d, this version knows %d)", ErrNewerSchema, e.Found, e.Known)
}
func (e *SchemaError) Unwrap() error { return ErrNewerSchema }
