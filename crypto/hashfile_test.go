package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHashFile checks that a file HashFile hashed goes into a bundle that
// opens with the right SHA-256, and that one changed between the hash and
// the seal makes writing the bundle fail instead of carrying a wrong hash.
func TestHashFile(t *testing.T) {
	body := bytes.Repeat([]byte("amana "), 100000)
	sum := sha256.Sum256(body)
	for _, tc := range fileChanges(body) {
		t.Run(tc.name, func(t *testing.T) {
			path, f := writeOpen(t, body)
			file, err := HashFile(f, "f.bin", "application/octet-stream")
			if err != nil {
				t.Fatal(err)
			}
			if file.Size != int64(len(body)) || file.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("HashFile = %d %s", file.Size, file.SHA256)
			}
			if tc.change != nil {
				tc.change(t, path)
			}
			var buf bytes.Buffer
			r := &Report{Desk: "d", Submitted: "2026-01-01T00:00:00Z", SealedBy: SealedByClient, Answers: []Answer{{Field: "message", Value: "x"}}}
			_, err = WriteBundle(&buf, r, []File{file})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("WriteBundle: %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			br, err := NewBundleReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			_, fr, err := br.Next()
			if err != nil {
				t.Fatal(err)
			}
			got := new(bytes.Buffer)
			if _, err := got.ReadFrom(fr); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), body) {
				t.Fatal("attachment differs")
			}
		})
	}
}

// fileChange changes a file after it was opened for sealing; wantErr is
// what sealing it must then fail with ("" for no change).
type fileChange struct {
	name    string
	change  func(t *testing.T, path string)
	wantErr string
}

// fileChanges are the ways a file of body may change between being opened
// and being sealed: none, rewritten at the same size, grown and shrunk.
func fileChanges(body []byte) []fileChange {
	return []fileChange{
		{"unchanged", nil, ""},
		{"rewritten same size", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.ToUpper(body), 0o600); err != nil {
				t.Fatal(err)
			}
			later := time.Now().Add(time.Minute)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
		}, "file changed while reading"},
		{"grown", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("more"))
			f.Close()
		}, "file changed while reading"},
		{"shrunk", func(t *testing.T, path string) {
			if err := os.Truncate(path, 10); err != nil {
				t.Fatal(err)
			}
		}, "file changed while reading"},
	}
}

// writeOpen writes body to a file of its own and opens it, closed when the
// test ends.
func writeOpen(t *testing.T, body []byte) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f
}
