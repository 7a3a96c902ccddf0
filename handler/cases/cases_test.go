package cases

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func meta(id string, body []byte) Meta {
	sum := sha256.Sum256(body)
	return Meta{ID: id, Desk: "d", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Received: "2026-11-25T11:00:00Z"}
}

const id1 = "0123456789abcdef0123456789abcdef"
const id2 = "0123456789abcdef0123456789abcdee"

func TestReceiveResumes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("ciphertext"), 1000)
	m := meta(id1, body)
	broken := errors.New("connection reset")
	err = s.Receive(m, func(off int64, w io.Writer) error {
		w.Write(body[off : off+300])
		return broken
	}, nil)
	if !errors.Is(err, broken) || s.Has(id1) || s.Partial(id1) != 300 {
		t.Fatalf("broken download: %v, has %v, partial %d", err, s.Has(id1), s.Partial(id1))
	}
	if all, _ := s.List(); len(all) != 0 {
		t.Fatal("an incomplete case is listed")
	}
	var resumedAt int64 = -1
	err = s.Receive(m, func(off int64, w io.Writer) error {
		resumedAt = off
		_, err := w.Write(body[off:])
		return err
	}, nil)
	if err != nil || resumedAt != 300 || !s.Has(id1) {
		t.Fatalf("resume: %v at %d", err, resumedAt)
	}
	got, _ := os.ReadFile(s.BundlePath(id1))
	if !bytes.Equal(got, body) {
		t.Fatal("stored bytes differ")
	}
	if fi, _ := os.Stat(s.BundlePath(id1)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("case file mode %o", fi.Mode().Perm())
	}
}

func TestReceiveRejectsBadBytes(t *testing.T) {
	s, _ := Open(filepath.Join(t.TempDir(), "cases"))
	body := []byte("the real ciphertext")
	err := s.Receive(meta(id1, body), func(off int64, w io.Writer) error {
		_, err := w.Write([]byte("the fake ciphertext"))
		return err
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not match") || s.Has(id1) || s.Partial(id1) != 0 {
		t.Fatalf("corrupt download: %v", err)
	}
	err = s.Receive(meta(id1, body), func(off int64, w io.Writer) error {
		_, err := w.Write(append(bytes.Clone(body), "and more"...))
		return err
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "more bytes than it announced") {
		t.Fatalf("oversized download: %v", err)
	}
	if err := s.Receive(Meta{ID: "../../etc"}, nil, nil); err == nil {
		t.Fatal("a path-like case ID was accepted")
	}
}

func TestResolve(t *testing.T) {
	s, _ := Open(filepath.Join(t.TempDir(), "cases"))
	for _, id := range []string{id1, id2} {
		b := []byte(id)
		if err := s.Receive(meta(id, b), func(off int64, w io.Writer) error { _, err := w.Write(b); return err }, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Resolve("0123"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if got, err := s.Resolve(id2); err != nil || got != id2 {
		t.Fatalf("unique prefix: %q %v", got, err)
	}
	if _, err := s.Resolve("ffff"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown prefix: %v", err)
	}
	if got, err := s.Resolve(strings.ToUpper(id1[:31] + "f")); err != nil || got != id1 {
		t.Fatalf("a whole ID in capitals: %q %v", got, err)
	}
	// Only complete cases are found, by their whole ID or a prefix.
	const partial = "abcdef0123456789abcdef0123456789"
	if err := s.Receive(meta(partial, []byte("whole")), func(off int64, w io.Writer) error {
		w.Write([]byte("wh"))
		return errors.New("cut")
	}, nil); err == nil || s.Partial(partial) == 0 {
		t.Fatalf("partial download: %v", err)
	}
	for _, p := range []string{partial, "abcd", strings.Repeat("0", 32)} {
		if _, err := s.Resolve(p); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

func TestOpenRefusesSharedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cases")
	os.Mkdir(dir, 0o755)
	if _, err := Open(dir); !errors.Is(err, ErrShared) || !strings.Contains(err.Error(), "0755") {
		t.Fatalf("open of a 0755 directory: %v", err)
	}
}

// TestReceiveReserve: a case that would eat into the reserve is refused
// with a message naming the reserve; a smaller reserve lets it in.
func TestReceiveReserve(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cases")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	free := freeSpace(dir)
	if free < 0 {
		t.Skip("SKIPPED: cannot read the free space here")
	}
	body := bytes.Repeat([]byte("x"), 5_000_000)
	fetch := func(off int64, w io.Writer) error { _, err := w.Write(body[off:]); return err }
	// A reserve of all the free space but 1 MB: the 5 MB case does not fit.
	s.SetReserve(free - 1_000_000)
	err = s.Receive(meta(id1, body), fetch, nil)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "needs 5 MB plus a ") || !strings.Contains(err.Error(), " reserve; the disk has ") {
		t.Fatalf("receiving into the reserve: %v", err)
	}
	s.SetReserve(-1)
	if err := s.Receive(meta(id1, body), fetch, nil); err != nil {
		t.Fatalf("without a reserve: %v", err)
	}
}

// TestReceiveBody: a case that arrived whole in memory is stored as
// Receive stores it (the same bytes, 0600 in a 0700 directory, its
// metadata with what learn filled in, no partial file left), only after it
// matches the relay's size and SHA-256; it is pending until Sync marks it
// synced in the index. A mismatch writes nothing and removes a partial
// download, and learn never sees it.
func TestReceiveBody(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Index(); err != nil { // an index for Sync to append to
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("ciphertext"), 300)
	learnt := 0
	learn := func(ct io.Reader, m *Meta) {
		learnt++
		if b, _ := io.ReadAll(ct); !bytes.Equal(b, body) {
			t.Error("learn did not get the case's bytes")
		}
		m.Mailbox = "mailbox-from-the-report"
	}
	short, long := meta(id1, body), meta(id1, body)
	short.Size--
	long.Size++
	for _, c := range []struct {
		name string
		m    Meta
	}{
		{"other bytes", meta(id1, bytes.Repeat([]byte("CIPHERTEXT"), 300))},
		{"short", short},
		{"long", long},
	} {
		m := c.m
		os.MkdirAll(s.caseDir(id1), 0o700)
		os.WriteFile(filepath.Join(s.caseDir(id1), partialFile), body[:10], 0o600)
		err := s.ReceiveBody(m, body, learn)
		if err == nil || !strings.Contains(err.Error(), "does not match") || s.Has(id1) || s.Partial(id1) != 0 || learnt != 0 {
			t.Fatalf("%s: %v, has %v, partial %d, learnt %d", c.name, err, s.Has(id1), s.Partial(id1), learnt)
		}
		if _, err := os.Stat(filepath.Join(s.caseDir(id1), metaFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: metadata written for a case that did not match", c.name)
		}
	}
	if err := s.ReceiveBody(Meta{ID: "../../etc"}, nil, nil); err == nil {
		t.Fatal("a path-like case ID was accepted")
	}

	if err := s.ReceiveBody(meta(id2, body), body, learn); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(s.BundlePath(id2)); !bytes.Equal(got, body) || learnt != 1 {
		t.Fatalf("stored bytes differ (learnt %d)", learnt)
	}
	for path, want := range map[string]os.FileMode{s.BundlePath(id2): 0o600, filepath.Join(s.caseDir(id2), metaFile): 0o600, s.caseDir(id2): 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v, mode %o", filepath.Base(path), err, fi.Mode().Perm())
		}
	}
	if ents, _ := os.ReadDir(s.caseDir(id2)); len(ents) != 2 {
		t.Fatalf("the case directory holds %d files, want the bundle and its metadata", len(ents))
	}
	if m, err := s.Meta(id2); err != nil || m.Mailbox != "mailbox-from-the-report" || m.SHA256 != meta(id2, body).SHA256 {
		t.Fatalf("metadata %+v, %v", m, err)
	}
	if idx, _ := s.Index(); idx[id2].Synced {
		t.Fatal("marked synced before Sync")
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if idx, _ := s.Index(); !idx[id2].Synced {
		t.Fatalf("not marked synced after Sync: %+v", idx)
	}
}

// TestReceiveBodyReserve: a case that arrived whole is refused, like one
// downloaded, when it would eat into the reserve.
func TestReceiveBodyReserve(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cases")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	free := freeSpace(dir)
	if free < 0 {
		t.Skip("SKIPPED: cannot read the free space here")
	}
	body := bytes.Repeat([]byte("x"), 3_000_000)
	s.SetReserve(free - 1_000_000)
	if err := s.ReceiveBody(meta(id1, body), body, nil); !errors.Is(err, ErrNoSpace) || s.Has(id1) {
		t.Fatalf("receiving into the reserve: %v", err)
	}
	s.SetReserve(-1)
	if err := s.ReceiveBody(meta(id1, body), body, nil); err != nil || !s.Has(id1) {
		t.Fatalf("without a reserve: %v", err)
	}
}

// TestSealedFileKeyStaysInCaseJSON: a case's sealed file key is kept in
// case.json and read back, survives SaveMeta, and other JSON made of a Meta
// (what `amana show --json` prints) leaves it out.
func TestSealedFileKeyStaysInCaseJSON(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("ciphertext")
	sum := sha256.Sum256(body)
	m := Meta{ID: strings.Repeat("ab", 16), Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
	if err := s.ReceiveBody(m, body, func(_ io.Reader, m *Meta) { m.FileKey = "fk2:sealed" }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Meta(m.ID)
	if err != nil || got.FileKey != "fk2:sealed" {
		t.Fatalf("read back %q, %v", got.FileKey, err)
	}
	got.Opened = true
	if err := s.SaveMeta(got); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Meta(m.ID); err != nil || got.FileKey != "fk2:sealed" || !got.Opened {
		t.Fatalf("after SaveMeta: %+v %v", got, err)
	}
	if b, err := json.Marshal(got); err != nil || bytes.Contains(b, []byte("file_key")) || bytes.Contains(b, []byte("sealed")) {
		t.Fatalf("a Meta's JSON: %s %v", b, err)
	}
}

// TestMetaRefusesAnotherCasesMetadata: a case.json whose own ID is not its
// folder's (copied from another case, or the folder renamed) is refused,
// with an error naming the case, so that nothing it says (its sealed file
// key, its mailbox) is taken for this case.
func TestMetaRefusesAnotherCasesMetadata(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{id1, id2} {
		body := []byte("ciphertext of " + id)
		if err := s.ReceiveBody(meta(id, body), body, nil); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := s.Meta(id1); err != nil || m.ID != id1 {
		t.Fatalf("meta: %+v %v", m, err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(), id2, metaFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), id1, metaFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := s.Meta(id1)
	if !errors.Is(err, ErrBadMeta) || m != nil || !strings.Contains(err.Error(), id1) || !strings.Contains(err.Error(), id2) {
		t.Fatalf("another case's case.json: %+v %v", m, err)
	}
}

// TestListReportsADamagedCase: one case whose case.json is torn does not
// make List fail: it is listed by its folder's ID, marked damaged, beside
// the others.
func TestListReportsADamagedCase(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{id1, id2} {
		body := []byte("ciphertext of " + id)
		if err := s.ReceiveBody(meta(id, body), body, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), id2, metaFile), []byte(`{"id": "01`), 0o600); err != nil {
		t.Fatal(err)
	}
	all, err := s.List()
	if err != nil || len(all) != 2 {
		t.Fatalf("list: %d cases, %v", len(all), err)
	}
	byID := map[string]*Meta{all[0].ID: all[0], all[1].ID: all[1]}
	if m := byID[id1]; m == nil || m.Damaged || m.Desk != "d" {
		t.Fatalf("the good case: %+v", m)
	}
	if m := byID[id2]; m == nil || !m.Damaged || m.SHA256 != "" {
		t.Fatalf("the torn case: %+v", m)
	}
	if _, err := s.Meta(id2); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("meta of the torn case: %v", err)
	}
}
