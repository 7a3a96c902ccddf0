package relay

import (
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/store"
)

// TestSealHeldCoversSealing: what a page post or a check reserves for
// sealing is at least what crypto says one seal holds.
func TestSealHeldCoversSealing(t *testing.T) {
	if sealHeld < crypto.SealMemory {
		t.Fatalf("sealHeld %d < crypto.SealMemory %d", sealHeld, crypto.SealMemory)
	}
	if got := heldForm(nil, 1); got < 1+crypto.SealMemory {
		t.Fatalf("a 1-byte form post reserves %d, less than a seal holds (%d)", got, crypto.SealMemory)
	}
}

// TestStreamHeldCoversSpool: a streamed body reserves what the spool's
// writer holds: at most store.MaxWriteHeld, and for a small body its chunks
// twice over (chunks and bbolt's pages).
func TestStreamHeldCoversSpool(t *testing.T) {
	if got := streamHeld(1 << 30); got < store.MaxWriteHeld {
		t.Fatalf("a 1 GiB piece reserves %d, less than the spool's writer holds (%d)", got, store.MaxWriteHeld)
	}
	if got := streamHeld(100); got < 2*store.ChunkSize {
		t.Fatalf("a 100-byte piece reserves %d, less than a chunk and its page (%d)", got, 2*store.ChunkSize)
	}
}
