package ui

import (
	"testing"
	"time"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in        string
		multiline bool
		want      string
	}{
		{"plain", false, "plain"},
		{"تقرير عن حادثة", false, "تقرير عن حادثة"},
		{"\x1b[31mred", false, `\x{1b}[31mred`},
		{"a\nb\tc", true, "a\nb\tc"},
		{"a\nb", false, `a\x{a}b`},
		{"invoice\u202efdp.exe", true, `invoice\x{202e}fdp.exe`},
		{"\u2066isolate\u2069", true, `\x{2066}isolate\x{2069}`},
		{"line\u2028sep", true, `line\x{2028}sep`},
		// Invisible marks stay in running text and are shown in names.
		{"مرحبا\u200fبكم", true, "مرحبا\u200fبكم"},
		{"مرحبا\u200fبكم", false, `مرحبا\x{200f}بكم`},
		{"a\u061cb\ufeffc\u200bd", false, `a\x{61c}b\x{feff}c\x{200b}d`},
		{"bad\xffbyte", false, `bad\x{fffd}byte`},
	} {
		if got := Clean(tc.in, tc.multiline); got != tc.want {
			t.Errorf("Clean(%q, %v) = %q, want %q", tc.in, tc.multiline, got, tc.want)
		}
	}
}

// TestNameAndLineAgree: a name refused by UnsafeInName is exactly one that
// Clean changes on a single line, so that export's check and what the
// terminal shows cannot drift apart; and multiline text is changed only
// by what breaks text.
func TestNameAndLineAgree(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		s := string(r)
		if changed := Clean(s, false) != s; changed != UnsafeInName(r) {
			t.Fatalf("U+%04X: Clean changes it %v, UnsafeInName %v", r, changed, UnsafeInName(r))
		}
		if r != '\n' && r != '\t' {
			if changed := Clean(s, true) != s; changed != breaksText(r) {
				t.Fatalf("U+%04X: multiline Clean changes it %v, breaksText %v", r, changed, breaksText(r))
			}
		}
		if breaksText(r) && !UnsafeInName(r) {
			t.Fatalf("U+%04X breaks text but is allowed in a name", r)
		}
	}
}

func TestSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{512, "512"},
		{1 << 10, "1KiB"},
		{1536, "1536"},
		{1<<20 + 1<<10, "1025KiB"},
		{64 << 20, "64MiB"},
		{128 << 20, "128MiB"},
		{2 << 30, "2GiB"},
		{10 << 30, "10GiB"},
		{3 << 40, "3TiB"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got := SizeFlag(tc.n)
			if got != tc.want {
				t.Fatalf("SizeFlag(%d) = %q, want %q", tc.n, got, tc.want)
			}
			if back, err := ParseSize(got); err != nil || back != tc.n {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", got, back, err, tc.n)
			}
		})
	}
}

func TestDurationFlag(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{time.Second, "1s"},
		{90 * time.Second, "90s"},
		{time.Minute, "1m"},
		{10 * time.Minute, "10m"},
		{90 * time.Minute, "90m"},
		{time.Hour, "1h"},
		{6 * time.Hour, "6h"},
		{24 * time.Hour, "24h"},
		{1500 * time.Millisecond, "1.5s"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got := DurationFlag(tc.d)
			if got != tc.want {
				t.Fatalf("DurationFlag(%v) = %q, want %q", tc.d, got, tc.want)
			}
			if back, err := ParseDuration(got); err != nil || back != tc.d {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tc.d)
			}
		})
	}
}
