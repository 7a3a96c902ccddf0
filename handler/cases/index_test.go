package cases

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func receive(t *testing.T, s *Store, id string, body []byte) {
	t.Helper()
	if err := s.Receive(meta(id, body), func(off int64, w io.Writer) error { _, err := w.Write(body[off:]); return err }, nil); err != nil {
		t.Fatal(err)
	}
}

// TestIndex: a store without an index rebuilds it from its cases with no
// entry marked synced; Sync marks what it made durable; a torn line is
// skipped; the file is 0600.
func TestIndex(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := []byte("first case"), []byte("second case")
	receive(t, s, id1, a)
	if err := s.Sync(); err != nil { // no index yet: nothing to append to
		t.Fatal(err)
	}
	idx, err := s.Index()
	if err != nil || len(idx) != 1 || idx[id1].Synced || idx[id1].SHA256 != meta(id1, a).SHA256 {
		t.Fatalf("rebuilt index %+v, %v", idx, err)
	}
	path := filepath.Join(s.Dir(), IndexFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("index file: %v %v", fi, err)
	}
	receive(t, s, id2, b)
	if idx, _ := s.Index(); len(idx) != 1 {
		t.Fatalf("a case not yet synced is indexed: %+v", idx)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// A torn append after it.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(id1 + " 00")
	f.Close()
	idx, err = s.Index()
	if err != nil || len(idx) != 2 || !idx[id2].Synced || idx[id1].Synced {
		t.Fatalf("index after sync %+v, %v", idx, err)
	}
	// Removed, it is rebuilt.
	os.Remove(path)
	if idx, _ := s.Index(); len(idx) != 2 || idx[id2].Synced {
		t.Fatalf("rebuilt again: %+v", idx)
	}
}

// TestVerify: a held case that does not match is removed.
func TestVerify(t *testing.T) {
	s, _ := Open(filepath.Join(t.TempDir(), "cases"))
	body := []byte("a case")
	receive(t, s, id1, body)
	m := meta(id1, body)
	if ok, err := s.Verify(id1, m.Size, m.SHA256); !ok || err != nil {
		t.Fatalf("a good case: %v %v", ok, err)
	}
	os.Truncate(s.BundlePath(id1), 2)
	if ok, err := s.Verify(id1, m.Size, m.SHA256); ok || err != nil || s.Has(id1) {
		t.Fatalf("a short case: %v %v, still held %v", ok, err, s.Has(id1))
	}
}

func FuzzParseIndex(f *testing.F) {
	good := id1 + " " + strings.Repeat("ab", 32) + " s\n"
	for _, s := range []string{"", good, good + good, id1 + " x s\n", good + id1 + " " + strings.Repeat("cd", 32) + " -", strings.Repeat("x", 5000) + "\n" + good} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := parseIndex(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var again bytes.Buffer
		for id, e := range idx {
			if !ValidID(id) || !shaRE.MatchString(e.SHA256) {
				t.Fatalf("parsed %q %+v", id, e)
			}
			again.Write(indexLine(id, e.SHA256, e.Synced))
		}
		back, err := parseIndex(&again)
		if err != nil || len(back) != len(idx) {
			t.Fatalf("re-read %d of %d", len(back), len(idx))
		}
		for id, e := range idx {
			if back[id] != e {
				t.Fatalf("%s: %+v then %+v", id, e, back[id])
			}
		}
	})
}

// TestVerifyNeedsMetadata: a case whose bytes check out but whose
// case.json is missing, empty, torn or another case's is not verified: it
// is removed, to be fetched again, and the next Sync does not mark it
// synced in the index.
func TestVerifyNeedsMetadata(t *testing.T) {
	body := []byte("a case")
	m := meta(id1, body)
	other, _ := json.Marshal(meta(id2, body))
	good, _ := json.Marshal(m)
	for name, cj := range map[string][]byte{"missing": nil, "empty": {}, "torn": good[:len(good)/2], "another case's": other} {
		t.Run(name, func(t *testing.T) {
			s, _ := Open(filepath.Join(t.TempDir(), "cases"))
			if _, err := s.Index(); err != nil {
				t.Fatal(err)
			}
			receive(t, s, id1, body)
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(s.Dir(), id1, metaFile)
			if cj == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, cj, 0o600); err != nil {
				t.Fatal(err)
			}
			// The index's line for it gone, as if rebuilt after the cut.
			os.Remove(filepath.Join(s.Dir(), IndexFile))
			if ok, err := s.Verify(id1, m.Size, m.SHA256); ok || err != nil || s.Has(id1) {
				t.Fatalf("verified: %v %v, still held %v", ok, err, s.Has(id1))
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			if idx, err := s.Index(); err != nil || idx[id1].Synced {
				t.Fatalf("index: %+v %v", idx, err)
			}
		})
	}
}
