package relay

import (
	"testing"

	"github.com/amana-relay/amana/crypto"
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
