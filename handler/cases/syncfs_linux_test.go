//go:build linux

package cases

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSyncfsReportsErrors(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{
		{"6.18.44-fc-v1252", true},
		{"5.8.0", true},
		{"5.8", true},
		{"5.10.0-28-amd64", true},
		{"5.15.0-91-generic", true},
		{"10.0.1", true},
		{"5.7.19", false},
		{"5.4.0-150-generic", false},
		{"4.19.0-26-amd64", false},
		{"3.10.0-1160.el7.x86_64", false},
		{"5", false},
		{"", false},
		{"x.y", false},
		{"5.x", false},
	} {
		if got := syncfsReportsErrors(c.release); got != c.want {
			t.Errorf("syncfsReportsErrors(%q) = %v, want %v", c.release, got, c.want)
		}
	}
}

// TestSyncOldKernel: on a kernel older than 5.8, Sync does not trust
// syncfs and fsyncs each pending case's files, so a file it cannot sync
// fails the Sync (syncfs would not notice) and the case stays pending,
// not marked synced.
func TestSyncOldKernel(t *testing.T) {
	defer func(f func() string) { kernelRelease = f }(kernelRelease)
	kernelRelease = func() string { return "5.4.0-150-generic" }
	s, err := Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Index(); err != nil { // an index to append to
		t.Fatal(err)
	}
	receive(t, s, id1, []byte("first case"))
	receive(t, s, id2, []byte("second case"))
	if err := os.Remove(filepath.Join(s.caseDir(id2), metaFile)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err == nil {
		t.Fatal("Sync passed over a case file it could not fsync")
	}
	if idx, _ := s.Index(); idx[id1].Synced || idx[id2].Synced {
		t.Fatalf("marked synced after a failed Sync: %+v", idx)
	}
	if err := os.RemoveAll(s.caseDir(id2)); err != nil {
		t.Fatal(err)
	}
	s.pending = s.pending[:1]
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if idx, _ := s.Index(); !idx[id1].Synced {
		t.Fatalf("not marked synced: %+v", idx)
	}
}
