package crypto

import (
	"errors"
	"testing"
)

// TestSealedReadAfterClose: a Read after Close fails and starts no
// encryption.
func TestSealedReadAfterClose(t *testing.T) {
	id, _ := NewIdentity("a", testClassicSecret)
	r := &Report{Desk: "d", Submitted: "2026-01-01T00:00:00Z", SealedBy: SealedByServer, Answers: []Answer{{Field: "message", Value: "x"}}}
	sealed, _, err := SealReport([]string{id.Recipient()}, NewReceipt(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed.Close()
	if _, err := sealed.Read(make([]byte, 10)); !errors.Is(err, errSealClosed) {
		t.Fatalf("Read after Close: %v, want errSealClosed", err)
	}
	if sealed.started {
		t.Fatal("Read after Close started the encryption")
	}
}
