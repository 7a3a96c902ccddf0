package crypto

import (
	"errors"
	"io"
	"runtime"
	"testing"
)

// TestSmallSealAllocatesLittle: sealing a small report takes buffers of
// its size, not the pipeline's four 1 MiB ones and a 1 MiB copy buffer.
func TestSmallSealAllocatesLittle(t *testing.T) {
	id, _ := NewIdentity("a", testClassicSecret)
	seal := func() {
		r := &Report{Desk: "d", Submitted: "2026-01-01T00:00:00Z", SealedBy: SealedByServer, Answers: []Answer{{Field: "message", Value: "a short report"}}}
		sealed, total, err := SealReport([]string{id.Recipient()}, NewReceipt(), r, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, sealed)
		if err != nil || n != total {
			t.Fatalf("read %d of %d: %v", n, total, err)
		}
		sealed.Close()
	}
	seal()
	const runs = 5
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		seal()
	}
	runtime.ReadMemStats(&after)
	// A small bundle's ciphertext is a few KiB; age, the receipt's key
	// derivation and JSON take some more. Generous: a quarter of one
	// pipeline buffer.
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > sealBuf/4 {
		t.Fatalf("a small seal allocated %d bytes, want at most %d", per, sealBuf/4)
	}
}

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
