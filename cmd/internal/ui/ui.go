// Package ui holds what both command-line programs share in talking to
// people: errors that carry a hint and an exit code, the way they are
// printed, and parsers for sizes and durations.
package ui

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Exit codes, documented in each program's --help.
const (
	ExitOK      = 0
	ExitError   = 1 // anything not listed below
	ExitUsage   = 2 // bad flags or arguments
	ExitTrust   = 3 // a signature, fingerprint or serial check failed
	ExitNetwork = 4 // the relay could not be reached
	ExitRefused = 5 // the relay refused the request
	ExitKey     = 6 // a key could not be read or does not open the case
	ExitPartial = 7 // some items failed; the others succeeded
	ExitBusy    = 8 // amana-relay: the data directory is in use by another process
	// ExitAttention is amana's 8 (amana never exits with ExitBusy): amana
	// sla found a case breached or an escalation step due.
	ExitAttention = 8
)

// Error is an error for a person: what happened, what to do next, and the
// exit code.
type Error struct {
	Code int
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

// Fail makes an Error. err, if not nil, is appended to the message.
func Fail(code int, hint string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Hint: hint, Err: err}
}

// Report prints err as "prog: message" with a "hint:" line, the way age
// does, and returns its exit code. classify turns other errors into Errors;
// it may be nil.
func Report(w io.Writer, prog string, err error, classify func(error) *Error) int {
	var ue *Error
	if !errors.As(err, &ue) {
		if classify != nil {
			ue = classify(err)
		}
		if ue == nil {
			ue = &Error{Code: ExitError, Msg: err.Error()}
			if IsUsage(err) {
				ue.Code, ue.Hint = ExitUsage, "run with --help to see the usage"
			}
		}
	}
	// Messages can carry text from a relay or a file: never let it drive
	// the terminal.
	fmt.Fprintf(w, "%s: %s\n", prog, Clean(lower(ue.Error()), false))
	if ue.Hint != "" {
		fmt.Fprintf(w, "hint: %s\n", Clean(ue.Hint, false))
	}
	return ue.Code
}

// breaksText reports the code points never shown as they are, even in
// running text: control characters, the replacement character, the line
// and paragraph separators, and the bidirectional embedding, override and
// isolate characters, which can make text read other than it is.
func breaksText(r rune) bool {
	return r == unicode.ReplacementChar || unicode.IsControl(r) || r == 0x2028 || r == 0x2029 ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// UnsafeInName reports the code points a name (a file's, a desk's) must
// not hold: those that break text, and the invisible marks (zero-width
// spaces and joiners, the left-to-right, right-to-left and Arabic letter
// marks, the byte-order mark), which belong in running text, Arabic
// above all, but in a name let one pass for another.
func UnsafeInName(r rune) bool {
	return breaksText(r) || r >= 0x200b && r <= 0x200f || r == 0x061c || r == 0xfeff
}

// Clean makes untrusted text safe for a terminal: what breaksText reports
// (escape sequences among it) is shown as \x{...} and never interpreted,
// and so, in a single line such as a name, is everything UnsafeInName
// reports. Newlines and tabs are kept when multiline is set. Right-to-left
// text itself is untouched.
func Clean(s string, multiline bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case breaksText(r), !multiline && UnsafeInName(r):
			fmt.Fprintf(&b, "\\x{%x}", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// IsUsage reports whether err is one of cobra's usage errors.
func IsUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown command", "unknown shorthand", "required flag", "accepts ", "requires ", "invalid argument", "flag needs an argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func lower(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// Size formats a byte count for people.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// SizeFlag writes n as a size flag shows its default: in the largest binary
// unit that divides it, like "10GiB" or "128MiB", which ParseSize reads back.
func SizeFlag(n int64) string {
	for _, u := range []struct {
		suf string
		m   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.suf
		}
	}
	return strconv.FormatInt(n, 10)
}

// DurationFlag writes d as a duration flag shows its default: in the
// largest of hours, minutes and seconds that divides it, like "24h" or
// "10m", which ParseDuration reads back.
func DurationFlag(d time.Duration) string {
	for _, u := range []struct {
		suf string
		d   time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if d != 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.suf
		}
	}
	return d.String()
}

// ParseSize reads "2GiB", "500MiB", "10G", "4096" and the like.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: use a number with an optional unit, like 500MiB or 2GiB", s)
	}
	return n * mult, nil
}

// ParseDuration reads Go durations ("72h") and whole days ("90d").
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || int64(n) > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("invalid duration %q: use forms like 72h or 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: use forms like 72h or 90d", s)
	}
	return d, nil
}
