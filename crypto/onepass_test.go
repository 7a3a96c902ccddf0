package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOpenFileOnePass seals a file as amana submit does (OpenFile, one
// read, no hash; the ciphertext's SHA-256 taken beside the encryption) and
// checks that the bundle has no sha256 for it, that the handler's reader
// computes the right one, that the ciphertext's SHA-256 is the stream's,
// and that a file changed while it is sealed makes sealing fail.
func TestOpenFileOnePass(t *testing.T) {
	id, _ := NewIdentity("a", testClassicSecret)
	body := bytes.Repeat([]byte("one pass "), 300000) // 2.7 MB: several pipeline buffers
	sum := sha256.Sum256(body)
	for _, tc := range fileChanges(body) {
		t.Run(tc.name, func(t *testing.T) {
			path, f := writeOpen(t, body)
			file, err := OpenFile(f, "f.bin", "application/octet-stream")
			if err != nil {
				t.Fatal(err)
			}
			if file.Size != int64(len(body)) || file.SHA256 != "" {
				t.Fatalf("OpenFile = %d %q", file.Size, file.SHA256)
			}
			if tc.change != nil {
				tc.change(t, path)
			}
			r := &Report{Desk: "d", Submitted: "2026-01-01T00:00:00Z", SealedBy: SealedByClient, Client: ClientCLI, Answers: []Answer{{Field: "message", Value: "x"}}}
			sealed, total, err := SealReport([]string{id.Recipient()}, NewReceipt(), r, []File{file})
			if err != nil {
				t.Fatal(err)
			}
			defer sealed.Close()
			sealed.HashCiphertext()
			ct, err := io.ReadAll(sealed)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("sealing: %v, want %q", err, tc.wantErr)
				}
				if _, err := sealed.SHA256(); err == nil {
					t.Fatal("SHA256 of a failed seal")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(ct)) != total {
				t.Fatalf("sealed %d bytes, announced %d", len(ct), total)
			}
			ctSum := sha256.Sum256(ct)
			if got, err := sealed.SHA256(); err != nil || got != hex.EncodeToString(ctSum[:]) {
				t.Fatalf("SHA256() = %s, %v; the stream's is %x", got, err, ctSum)
			}
			br, err := OpenBundle(bytes.NewReader(ct), id.Age())
			if err != nil {
				t.Fatal(err)
			}
			a, rd, err := br.Next()
			if err != nil {
				t.Fatal(err)
			}
			if a.SHA256 != "" || a.Computed {
				t.Fatalf("before reading: sha256 %q computed %v; report.json gave none", a.SHA256, a.Computed)
			}
			got, err := io.ReadAll(rd)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("attachment differs (%v)", err)
			}
			if a.SHA256 != hex.EncodeToString(sum[:]) || !a.Computed {
				t.Fatalf("after reading: sha256 %q computed %v, want %x", a.SHA256, a.Computed, sum)
			}
			if br.Report().Attachments[0] != *a {
				t.Fatal("Report's attachment is not the one Next returned")
			}
			if _, _, err := br.Next(); err != io.EOF {
				t.Fatal(err)
			}
		})
	}
}

// rawBundle is a bundle plaintext of report.json js and one entry x.txt.
func rawBundle(js string, content []byte) []byte {
	b := entryBytes(reportName, []byte(js))
	b = append(b, entryBytes(EntryName(1, "x.txt"), content)...)
	b = append(b, make([]byte, 1024)...)
	return append(b, make([]byte, PaddedSize(int64(len(b)))-int64(len(b)))...)
}

// TestDigestRules: the reader accepts an attachment without a sha256 only
// in a client-sealed item, computes it there, never accepts a listed one
// that does not match, and the writers refuse to write what it refuses.
func TestDigestRules(t *testing.T) {
	content := []byte("hello")
	good := sha256.Sum256(content)
	wrong := sha256.Sum256([]byte("hellO"))
	for _, tc := range []struct {
		sealedBy, sum string
		want          error // nil: opens, with Computed == (sum == "")
	}{
		{SealedByClient, "", nil},
		{SealedByClient, hex.EncodeToString(good[:]), nil},
		{SealedByClient, hex.EncodeToString(wrong[:]), ErrDigest},
		{SealedByServer, "", ErrNoDigest},
		{SealedByServer, hex.EncodeToString(good[:]), nil},
		{SealedByServer, hex.EncodeToString(wrong[:]), ErrDigest},
		{SealedByHandler, "", ErrNoDigest},
		{SealedByHandler, hex.EncodeToString(wrong[:]), ErrDigest},
		{"", "", ErrNoDigest},
	} {
		t.Run(tc.sealedBy+"/"+tc.sum, func(t *testing.T) {
			r := &Report{Schema: BundleSchema, Desk: "d", SealedBy: tc.sealedBy, Attachments: []Attachment{{Name: "x.txt", Size: 5, SHA256: tc.sum, Type: "text/plain"}}}
			js, err := MarshalReport(r)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(js), `"sha256"`) != (tc.sum != "") {
				t.Fatalf("report.json %s", js)
			}
			_, files, err := readAll(bytes.NewReader(rawBundle(string(js), content)))
			if !errors.Is(err, tc.want) || tc.want != nil && err == nil {
				t.Fatalf("reading: %v, want %v", err, tc.want)
			}
			if tc.want == nil && (len(files) != 1 || !bytes.Equal(files[0], content)) {
				t.Fatalf("read %q", files)
			}
			// The writers refuse an absent hash outside client-sealed items.
			w := &Report{Desk: "d", SealedBy: tc.sealedBy}
			f := File{Attachment: Attachment{Name: "x.txt", Size: 5, SHA256: tc.sum, Type: "text/plain"}, Body: bytes.NewReader(content)}
			_, werr := WriteBundle(io.Discard, w, []File{f})
			id, _ := NewIdentity("a", testClassicSecret)
			_, _, serr := SealBundle([]*Card{id.Card()}, &Report{Desk: "d", SealedBy: tc.sealedBy}, []File{f})
			if refuse := tc.want == ErrNoDigest; refuse != errors.Is(werr, ErrNoDigest) || refuse != errors.Is(serr, ErrNoDigest) {
				t.Fatalf("WriteBundle: %v, SealBundle: %v", werr, serr)
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestSealedBounded: however large the file, the encryption runs at most a
// few buffers ahead of a reader that stops, and Close ends it.
func TestSealedBounded(t *testing.T) {
	id, _ := NewIdentity("a", testClassicSecret)
	const size = 64 << 20
	body := &countingReader{r: io.LimitReader(zeroReader{}, size)}
	r := &Report{Desk: "d", SealedBy: SealedByClient}
	sealed, _, err := SealBundle([]*Card{id.Card()}, r, []File{{Attachment: Attachment{Name: "z", Size: size}, Body: body}})
	if err != nil {
		t.Fatal(err)
	}
	sealed.HashCiphertext()
	if _, err := sealed.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// Wait until the encryption stalls: the count stops moving.
	last := int64(-1)
	for i := 0; i < 200 && body.n.Load() != last; i++ {
		last = body.n.Load()
		time.Sleep(20 * time.Millisecond)
	}
	// The pipeline's buffers, the buffer writeEntry reads into, and age's
	// 64 KiB chunk.
	if limit := int64((sealBufs+1)*sealBuf + 64<<10); last > limit {
		t.Fatalf("read %d bytes of the file ahead of a stopped reader; at most %d", last, limit)
	}
	sealed.Close()
	if _, err := sealed.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after Close")
	}
	if _, err := sealed.SHA256(); err == nil {
		t.Fatal("SHA256 before the end")
	}
	defer func() {
		if recover() == nil {
			t.Error("HashCiphertext after Read did not panic")
		}
	}()
	sealed.HashCiphertext()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkSealOnePass seals a 64 MiB file as amana submit does (OpenFile,
// HashCiphertext, read in 16 MiB pieces), for profiles of what sealing
// costs: go test ./crypto -run X -bench SealOnePass -cpuprofile cpu.out.
func BenchmarkSealOnePass(b *testing.B) {
	id, _ := NewIdentity("a", testClassicSecret)
	path := filepath.Join(b.TempDir(), "f.bin")
	body := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		b.Fatal(err)
	}
	piece := make([]byte, 16<<20)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		file, err := OpenFile(f, "f.bin", "application/octet-stream")
		if err != nil {
			b.Fatal(err)
		}
		r := &Report{Desk: "d", SealedBy: SealedByClient, Client: ClientCLI}
		sealed, total, err := SealReport([]string{id.Recipient()}, NewReceipt(), r, []File{file})
		if err != nil {
			b.Fatal(err)
		}
		sealed.HashCiphertext()
		for off := int64(0); off < total; {
			n, err := io.ReadFull(sealed, piece[:min(int64(len(piece)), total-off)])
			if err != nil {
				b.Fatal(err)
			}
			off += int64(n)
		}
		if _, err := sealed.SHA256(); err != nil {
			b.Fatal(err)
		}
		sealed.Close()
		f.Close()
	}
}
