package relayproc

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestQuickDefaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		wantN int
		wantD time.Duration
	}{
		{"defaults replaced", nil, 60, 20 * time.Second},
		{"explicit value kept", []string{"-n", "7"}, 7, 20 * time.Second},
		{"explicit default kept", []string{"-d", "5m"}, 60, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			n := fs.Int("n", 300, "")
			d := fs.Duration("d", 5*time.Minute, "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := QuickDefaults(fs, map[string]string{"n": "60", "d": "20s"}); err != nil {
				t.Fatal(err)
			}
			if *n != tc.wantN || *d != tc.wantD {
				t.Fatalf("got -n %d -d %s, want %d %s", *n, *d, tc.wantN, tc.wantD)
			}
		})
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("n", 1, "")
	if err := QuickDefaults(fs, map[string]string{"n": "many"}); err == nil {
		t.Fatal("a default that does not parse was accepted")
	}
	if err := QuickDefaults(fs, map[string]string{"missing": "1"}); err == nil {
		t.Fatal("a default for a flag that does not exist was accepted")
	}
}

func TestWriteFigures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "figures.json")
	if err := WriteFigures(p, map[string]int{"accepted": 3}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "{\n  \"accepted\": 3\n}\n" {
		t.Fatalf("wrote %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("figures file has mode %v, want 0600", fi.Mode().Perm())
	}
}
