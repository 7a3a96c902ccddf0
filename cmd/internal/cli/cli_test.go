package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay/client"
)

func TestSafeName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"photo.jpg", true},
		{"صورة المستند.pdf", true},
		{"report (1).txt", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"/etc/passwd", false},
		{`..\x`, false},
		{".bashrc", false},
		{"C:evil", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"invoice\u202egpj.exe", false},
		{"zero\u200bwidth", false},
		{"arabic\u061cmark", false},
		{"line\u2028separator", false},
		{"c1\u0085control", false},
		{"تقرير.pdf", true},
		{strings.Repeat("a", 256), false},
		{"\xff\xfe", false},
	} {
		if got := SafeName(tc.name) == ""; got != tc.ok {
			t.Errorf("SafeName(%q) ok = %v, want %v (%s)", tc.name, got, tc.ok, SafeName(tc.name))
		}
	}
}

func TestCleanNeutralisesTerminalControl(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"\x1b]0;pwned\x07title", `\x{1b}]0;pwned\x{7}title`},
		{"مرحبا", "مرحبا"},
		{"a\u202eb", `a\x{202e}b`},
		{"line\nbreak", `line\x{a}break`},
	} {
		if got := ui.Clean(tc.in, false); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := ui.Clean("two\nlines\x1b[2J", true); got != "two\nlines\\x{1b}[2J" {
		t.Errorf("multiline Clean = %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "2GiB": 2 << 30, "500MiB": 500 << 20, "10G": 10 << 30, "1 KiB": 1024} {
		if got, err := ui.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "1.5GiB", "lots", "99999999999999999999"} {
		if _, err := ui.ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"72h", "90d", "1h30m", "-1d", "106752d", "99999999999d", "d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ui.ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4096", "2GiB", "1 KiB", "-1", "9999999999T", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ui.ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

// TestClassifyInboxPaging: a relay whose inbox pages do not move forward
// is reported with a hint, as an error of its own.
func TestClassifyInboxPaging(t *testing.T) {
	e := classify(fmt.Errorf("listing: %w", client.ErrInboxPaging))
	if e == nil || e.Code != ExitError || !strings.Contains(e.Hint, "nothing was downloaded") {
		t.Fatalf("classify gave %+v", e)
	}
}

// TestClassifyTorErrors: the onion package speaks of tor; amana adds its
// own flags for the setting at fault.
func TestClassifyTorErrors(t *testing.T) {
	for _, tc := range []struct {
		err  *onion.Error
		hint string
	}{
		{&onion.Error{Kind: onion.KindUnreachable, Setting: onion.SettingSocks, Msg: "no tor SOCKS port at 127.0.0.1:9050", Hint: "start tor (systemctl start tor)"},
			"start tor (systemctl start tor); give --tor-socks HOST:PORT, or use --tor-launch"},
		{&onion.Error{Kind: onion.KindClientAuthMissing, Setting: onion.SettingClientKey, Msg: "cannot reach x.onion", Hint: "this is a handler onion: the tor in use needs your client-authorization key"},
			"client-authorization key; give your identity with -i and use --tor-launch, or add the line from 'amana onion-auth'"},
		{&onion.Error{Kind: onion.KindClientAuthWrong, Msg: "cannot reach x.onion", Hint: "ask the desk admin"}, "ask the desk admin"},
	} {
		e := classify(fmt.Errorf("reaching the relay: %w", tc.err))
		if e == nil || e.Code != ExitNetwork || !strings.Contains(e.Hint, tc.hint) {
			t.Errorf("classify(%v) = %+v, want a hint with %q", tc.err, e, tc.hint)
		}
	}
}
