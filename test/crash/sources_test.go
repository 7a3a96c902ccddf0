package crash

import (
	"testing"

	"github.com/amana-relay/amana/test/internal/relayproc"
)

// TestSources makes go test's cache notice a change to the programs this
// package builds and runs as processes (see relayproc.WatchSources).
func TestSources(t *testing.T) {
	if err := relayproc.WatchSources(); err != nil {
		t.Fatal(err)
	}
}
