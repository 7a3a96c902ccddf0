package relaycli

import (
	"fmt"
	"strings"
	"testing"

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
