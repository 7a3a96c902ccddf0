package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHarnessRuns runs every measurement at a tiny size, so the harness
// behind 'make bench' keeps working. It checks that the figures are printed,
// never what they are.
func TestHarnessRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a relay process")
	}
	saved := scaleQuickSizes
	scaleQuickSizes = []int{300}
	defer func() { scaleQuickSizes = saved }()
	cfg, err := parseFlags([]string{"-quick", "-submissions", "40", "-upload-mib", "4", "-submit-mib", "4", "-cases", "10", "-events", "200", "-journal-cases", "20", "-classic", "-no-tor", "-json", "", "-dir", t.TempDir()}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"small submissions", "large upload", "relay process RSS", "amana submit", "vs OnionShare receive mode", "client sealing", "sync cadence", "pull and open", "case journal replay", "case list from the index", "report and aggregate", "scale: 300 stored"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q line in:\n%s", want, out.String())
		}
	}
}
