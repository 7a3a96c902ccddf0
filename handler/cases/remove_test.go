package cases

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestOverwriteZeroesInPlace: overwrite leaves a file of the same length,
// every byte zero, written to the same inode (a second name for the file
// sees the zeros), before Remove unlinks it.
func TestOverwriteZeroesInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	body := bytes.Repeat([]byte("ciphertext!"), 20000) // past one copy buffer
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "link")
	if err := os.Link(path, other); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	if err := overwrite(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(body) || !bytes.Equal(got, make([]byte, len(body))) {
		t.Fatalf("after overwrite the file has %d bytes, not %d zeros", len(got), len(body))
	}
}

// TestRemove: a removed case leaves nothing in the store (its ciphertext,
// a partial download, case.json, its directory), its inode is emptied, not
// only unlinked, the other cases stay, and a second removal or a bad ID is
// refused.
func TestRemove(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{id1, id2} {
		b := bytes.Repeat([]byte(id), 100)
		if err := s.Receive(meta(id, b), func(off int64, w io.Writer) error { _, err := w.Write(b[off:]); return err }, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.caseDir(id1), partialFile), []byte("part"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	linked := os.Link(s.BundlePath(id1), link) == nil
	open, err := os.Open(s.BundlePath(id1))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := s.Remove(id1); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(open); err != nil || len(b) != 0 {
		t.Fatalf("a file descriptor opened before the removal still reads %d bytes (%v)", len(b), err)
	}
	if _, err := os.Stat(s.caseDir(id1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the case directory is still there: %v", err)
	}
	if linked {
		if fi, err := os.Stat(link); err != nil || fi.Size() != 0 {
			t.Fatalf("another name for the removed ciphertext still has its bytes: %v %v", fi, err)
		}
	}
	if all, _ := s.List(); len(all) != 1 || all[0].ID != id2 || !s.Has(id2) {
		t.Fatalf("after removing one case the store lists %v", all)
	}
	if err := s.Remove(id1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
	if err := s.Remove("../cases"); err == nil {
		t.Fatal("a path-like ID was removed")
	}
}
