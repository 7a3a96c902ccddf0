package store

import (
	"bytes"
	"path/filepath"
	"testing"
)

// BenchmarkWriteUpload measures writing one large upload in 8 MiB pieces,
// durably, as the relay does.
func BenchmarkWriteUpload(b *testing.B) {
	const size = 256 << 20
	piece := bytes.Repeat([]byte{0xa5}, 8<<20)
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		s, err := Open(filepath.Join(b.TempDir(), "d"), &Options{Quota: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		tok, err := s.CreateUpload(UploadSpec{Desk: "d", Routes: []string{"h"}, Length: size})
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += int64(len(piece)) {
			if _, err := s.WriteUpload(tok, off, bytes.NewReader(piece)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.CompleteUpload(tok); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
