package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 11, 25, 11, 37, 12, 0, time.UTC)} }
func spec(n int64, routes ...string) UploadSpec {
	return UploadSpec{Desk: "d", Routes: routes, Stanzas: []string{"X25519"}, Length: n,
		DeleteAfterAck: 72 * time.Hour, KeepUnacked: 90 * 24 * time.Hour}
}

// openTest opens a spool in a fresh directory and checks its consistency
// when the test ends.
func openTest(t *testing.T, o *Options) (*Spool, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if o == nil {
		o = &Options{}
	}
	o.NoSync = true
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := s.Verify(); err != nil {
			t.Errorf("spool inconsistent: %v", err)
		}
		s.Close()
	})
	return s, dir
}

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	os.Mkdir(dir, 0o755)
	var me *ModeError
	if _, err := Open(dir, nil); !errors.Is(err, ErrInsecureDir) || !errors.As(err, &me) || me.Want != 0o700 || strings.Contains(err.Error(), "hint") {
		t.Fatalf("open of a 0755 directory: %v", err)
	}
	os.Chmod(dir, 0o700)
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, _ := os.Stat(filepath.Join(dir, FileName))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file mode %o", fi.Mode().Perm())
	}
	os.Chmod(filepath.Join(dir, FileName), 0o644)
	if _, err := Open(dir, nil); !errors.Is(err, ErrInsecureDir) {
		t.Fatalf("open of a 0644 spool: %v", err)
	}
	fresh := filepath.Join(t.TempDir(), "new", "data")
	s, err = Open(fresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Fatalf("created directory mode %o", fi.Mode().Perm())
	}
}

func TestLocked(t *testing.T) {
	_, dir := openTest(t, nil)
	start := time.Now()
	_, err := Open(dir, &Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("second open hung")
	}
}

func TestNewerSchema(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := mustOpen(t, dir)
	s.db.Update(func(tx *bolt.Tx) error { return putUint(tx.Bucket(bMeta), kSchema, SchemaVersion+1) })
	s.Close()
	_, err := Open(dir, nil)
	var se *SchemaError
	if !errors.Is(err, ErrNewerSchema) || !errors.As(err, &se) || se.Found != SchemaVersion+1 || strings.Contains(err.Error(), "hint") {
		t.Fatalf("open: %v, want a SchemaError, in the library's own words", err)
	}
}

func mustOpen(t *testing.T, dir string) *Spool {
	s, err := Open(dir, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMaxFileSize(t *testing.T) {
	s, _ := openTest(t, &Options{MaxFileSize: 4 << 20})
	keep, err := s.PutSubmission(spec(0, "h"), data(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var full error
	for i := 0; i < 10 && full == nil; i++ {
		_, full = s.PutSubmission(spec(0, "h"), data(1<<20))
	}
	if !errors.Is(full, ErrStorage) {
		t.Fatalf("filling the disk: %v, want ErrStorage", full)
	}
	r, _ := s.OpenSubmission(keep.ID, 0)
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data(1<<20)) {
		t.Fatal("stored submission damaged by a full disk")
	}
}

// A record that does not decode fails the operation, and the error, which
// reaches the relay's log, names the kind of record and never its key.
func TestUndecodableRecordKeepsKeyOut(t *testing.T) {
	for _, bucket := range [][]byte{bSubs, bUploads, bMailboxes, bEvents} {
		t.Run(string(bucket), func(t *testing.T) {
			s, _ := openTest(t, nil)
			key := []byte("k3y-that-must-stay-out-of-logs")
			err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, []byte("{not json")) })
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Sweep()
			if err == nil {
				t.Fatal("sweep over an undecodable record succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, "record") || strings.Contains(msg, string(key)) || strings.Contains(msg, fmt.Sprintf("%x", key)) {
				t.Fatalf("error %q", msg)
			}
			if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete(key) }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// eventSpec is an event of kind to routes, the first of them its author,
// who holds it already.
func eventSpec(kind string, routes ...string) EventSpec {
	return EventSpec{Desk: "d", Kind: kind, Routes: routes, Acked: routes[:1], KeepUnacked: 90 * 24 * time.Hour}
}
