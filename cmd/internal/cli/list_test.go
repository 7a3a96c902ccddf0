package cli

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amana-relay/amana/handler/cases"
)

// TestListEscapesRelayMetadata: what a relay said about a case (its kind,
// desk, category, hour) is printed by 'amana list' only escaped, so a relay
// cannot drive the handler's terminal (threat model §8.5).
func TestListEscapesRelayMetadata(t *testing.T) {
	home := t.TempDir()
	st, err := cases.Open(filepath.Join(home, "cases"))
	if err != nil {
		t.Fatal(err)
	}
	ct := []byte("not opened here")
	m := cases.Meta{ID: strings.Repeat("ab", 16), Relay: "http://relay", Desk: "desk\x1b]0;pwned\x07", Category: "sea\u202e",
		Kind: "followup\x1b[2J", Mailbox: strings.Repeat("cd", 16), Size: int64(len(ct)), SHA256: sha256Hex(ct), Received: "2026-12-02T06:00:00Z\x1b[1A"}
	if err := st.Receive(m, func(off int64, w io.Writer) error { _, err := w.Write(ct[off:]); return err }, nil); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"list", "--home", home}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("list: exit %d: %s", code, errb.String())
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\u202e") {
		t.Fatalf("list printed control characters: %q", out.String())
	}
	for _, want := range []string{`followup\x{1b}[2J`, `desk\x{1b}]0;pwned\x{7}`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list output lacks %q:\n%s", want, out.String())
		}
	}
}
