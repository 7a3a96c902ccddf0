package daemon

import (
	"crypto/ed25519"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
)

// TestServeLimitsMemory: serve gives the Go runtime the relay's memory
// bound (protocol.md §10.9) as its limit, unless GOMEMLIMIT is set.
func TestServeLimitsMemory(t *testing.T) {
	sp, err := store.Open(filepath.Join(t.TempDir(), "data"), &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	pub, _, _ := ed25519.GenerateKey(nil)
	srv, err := relay.New(sp, relay.Config{Admin: pub})
	if err != nil {
		t.Fatal(err)
	}
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)

	t.Setenv("GOMEMLIMIT", "")
	limitMemory(srv, 2*512)
	want := srv.MemoryBound(2 * 512)
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Fatalf("memory limit %d, want the bound %d", got, want)
	}
	if want > 256<<20 {
		t.Fatalf("the default bound is %d MiB, over the 256 MiB protocol.md promises", want>>20)
	}

	debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "1GiB")
	limitMemory(srv, 2*512)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("GOMEMLIMIT set, yet the limit became %d", got)
	}
}
