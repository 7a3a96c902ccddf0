package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
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
		if err := s.Check(); err != nil {
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
	if _, err := Open(dir, nil); !errors.Is(err, ErrInsecureDir) || !strings.Contains(err.Error(), "mode 0755") {
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
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "upgrade amana-relay") {
		t.Fatalf("open: %v, want ErrNewerSchema with a hint", err)
	}
}

func mustOpen(t *testing.T, dir string) *Spool {
	s, err := Open(dir, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUploadLifecycle(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	body := data(3*ChunkSize + 12345)
	tok, err := s.CreateUpload(spec(int64(len(body)), "h1"))
	if err != nil {
		t.Fatal(err)
	}
	// A piece at the wrong offset is refused and says where to continue.
	_, err = s.WriteUpload(tok, 10, bytes.NewReader(body[10:20]))
	var oe *OffsetError
	if !errors.As(err, &oe) || oe.Current != 0 {
		t.Fatalf("wrong offset: %v", err)
	}
	// A connection that breaks mid-piece keeps what arrived.
	off, err := s.WriteUpload(tok, 0, io.MultiReader(bytes.NewReader(body[:ChunkSize+100]), iotest.ErrReader(errors.New("connection reset"))))
	if err == nil || off != ChunkSize+100 {
		t.Fatalf("broken piece: offset %d, %v", off, err)
	}
	if u, _ := s.Upload(tok); u.Offset != off {
		t.Fatalf("stored offset %d, want %d", u.Offset, off)
	}
	if _, err := s.CompleteUpload(tok); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("early complete: %v", err)
	}
	if subs, _ := s.Submissions(nil); len(subs) != 0 {
		t.Fatal("an unfinished upload is visible")
	}
	// Too many bytes are refused and nothing is written.
	if _, err := s.WriteUpload(tok, off, bytes.NewReader(append(body[off:], 'x'))); !errors.Is(err, ErrTooLong) {
		t.Fatalf("overlong piece: %v", err)
	}
	if off, err = s.WriteUpload(tok, off, bytes.NewReader(body[off:])); err != nil || off != int64(len(body)) {
		t.Fatalf("last piece: %d, %v", off, err)
	}
	sub, err := s.CompleteUpload(tok)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if sub.SHA256 != hex.EncodeToString(sum[:]) || sub.Size != int64(len(body)) || sub.ID != SubmissionID(tok) {
		t.Fatalf("submission %+v", sub)
	}
	if !sub.Received.Equal(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("received %v, want the hour", sub.Received)
	}
	if _, err := s.Upload(tok); !errors.Is(err, ErrNotFound) {
		t.Fatal("upload still there after completion")
	}
	for _, start := range []int64{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 100, int64(len(body)) - 1, int64(len(body))} {
		r, err := s.OpenSubmission(sub.ID, start)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, body[start:]) {
			t.Fatalf("read from %d: %v", start, err)
		}
	}
}

func TestQuota(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 10 << 10})
	a, err := s.PutSubmission(spec(0, "h"), data(6<<10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSubmission(spec(0, "h"), data(5<<10)); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if _, err := s.CreateUpload(spec(5<<10, "h")); !errors.Is(err, ErrQuota) {
		t.Fatalf("upload over quota: %v", err)
	}
	r, _ := s.OpenSubmission(a.ID, 0)
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data(6<<10)) {
		t.Fatal("stored submission changed")
	}
	if deleted, err := s.Ack(a.ID, "h"); err != nil || !deleted {
		t.Fatalf("ack: %v %v", deleted, err)
	}
	if _, err := s.PutSubmission(spec(0, "h"), data(5<<10)); err != nil {
		t.Fatalf("space did not come back: %v", err)
	}
}

func TestAckAndSweep(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	a, _ := s.PutSubmission(spec(0, "h1", "h2"), data(100))
	b, _ := s.PutSubmission(spec(0, "h1", "h2"), data(100))
	old, _ := s.PutSubmission(spec(0, "h1"), data(100))
	if _, err := s.Ack(a.ID, "stranger"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack by a route not sent to: %v", err)
	}
	if d, _ := s.Ack(a.ID, "h1"); d {
		t.Fatal("deleted after one of two acks")
	}
	if d, _ := s.Ack(a.ID, "h1"); d {
		t.Fatal("a repeated ack counted twice")
	}
	if d, _ := s.Ack(a.ID, "h2"); !d {
		t.Fatal("not deleted after every ack")
	}
	if _, err := s.Submission(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("still there")
	}
	s.Ack(b.ID, "h1")
	c.add(71 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 0 {
		t.Fatal("swept before DeleteAfterAck")
	}
	c.add(2 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 1 {
		t.Fatalf("after DeleteAfterAck: %+v", res)
	}
	tok, _ := s.CreateUpload(spec(1000, "h1"))
	c.add(26 * time.Hour)
	if res, _ := s.Sweep(); res.Uploads != 1 {
		t.Fatalf("abandoned upload not swept: %+v", res)
	}
	if _, err := s.Upload(tok); !errors.Is(err, ErrNotFound) {
		t.Fatal("upload still there")
	}
	c.add(90 * 24 * time.Hour)
	if res, _ := s.Sweep(); res.Submissions != 1 {
		t.Fatalf("unacked submission past retention: %+v", res)
	}
	if _, err := s.Submission(old.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("still there")
	}
	st, _ := s.Stats()
	if st.Committed != 0 || st.Submissions != 0 || st.Uploads != 0 {
		t.Fatalf("stats after everything was deleted: %+v", st)
	}
}

func TestDeskSerial(t *testing.T) {
	s, _ := openTest(t, nil)
	if err := s.PutDesk("d", 5, []byte("five")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDesk("d", 5, []byte("five")); err != nil {
		t.Fatalf("identical republication: %v", err)
	}
	for _, serial := range []uint64{4, 5} {
		if err := s.PutDesk("d", serial, []byte("other")); !errors.Is(err, ErrStaleSerial) {
			t.Fatalf("serial %d: %v", serial, err)
		}
	}
	if err := s.PutDesk("d", 6, []byte("six")); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Desks(); string(d["d"]) != "six" {
		t.Fatalf("desks %q", d)
	}
}

func TestCompact(t *testing.T) {
	s, dir := openTest(t, nil)
	var ids []string
	for i := 0; i < 20; i++ {
		sub, err := s.PutSubmission(spec(0, "h"), data(ChunkSize))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.ID)
	}
	for _, id := range ids[1:] {
		s.Ack(id, "h")
	}
	s.Close()
	before, after, err := Compact(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before {
		t.Fatalf("compaction did not shrink: %d -> %d", before, after)
	}
	*s = *mustOpen(t, dir)
	r, err := s.OpenSubmission(ids[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data(ChunkSize)) {
		t.Fatal("surviving submission changed")
	}
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

func TestMailboxExpiry(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now, MailboxTTL: 48 * time.Hour})
	id := "00112233445566778899aabbccddeeff"
	if _, err := s.Mailbox(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown mailbox: %v", err)
	}
	if _, err := s.EnsureMailbox(id, "d", "", []string{"h1", "h2"}, []string{"X25519", "X25519"}); err != nil {
		t.Fatal(err)
	}
	// A second EnsureMailbox keeps the first routes.
	m, _ := s.EnsureMailbox(id, "other", "", []string{"h9"}, []string{"X25519"})
	if m.Desk != "d" || len(m.Routes) != 2 {
		t.Fatalf("mailbox changed: %+v", m)
	}
	rid, err := s.PutReply(id, data(5000), spec(0, "x"), []string{"h2"})
	if err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Submissions(nil); len(subs) != 1 || subs[0].Kind != KindReply || subs[0].Mailbox != id || subs[0].Routes[0] != "h2" {
		t.Fatalf("reply copy %+v", subs)
	}
	r, err := s.OpenReply(id, rid)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data(5000)) {
		t.Fatal("reply differs")
	}
	c.add(24 * time.Hour)
	s.EnsureMailbox(id, "d", "", nil, nil) // activity: the clock starts again
	c.add(40 * time.Hour)
	if _, err := s.Mailbox(id); err != nil {
		t.Fatalf("mailbox expired despite activity: %v", err)
	}
	c.add(12 * time.Hour)
	if _, err := s.Mailbox(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired mailbox: %v", err)
	}
	res, err := s.Sweep()
	if err != nil || res.Mailboxes != 1 {
		t.Fatalf("sweep %+v %v", res, err)
	}
	if _, err := s.OpenReply(id, rid); !errors.Is(err, ErrNotFound) {
		t.Fatal("a reply outlived its mailbox")
	}
}

func TestDeskQuota(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 100 << 10, DeskQuota: 40 << 10})
	flood := spec(0, "h")
	flood.Desk = "flooded"
	for i := 0; i < 4; i++ {
		if _, err := s.PutSubmission(flood, data(10<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutSubmission(flood, data(10<<10)); !errors.Is(err, ErrQuota) {
		t.Fatalf("past the desk quota: %v", err)
	}
	if _, err := s.CreateUpload(UploadSpec{Desk: "flooded", Routes: []string{"h"}, Length: 1}); !errors.Is(err, ErrQuota) {
		t.Fatalf("upload past the desk quota: %v", err)
	}
	other := spec(0, "h")
	other.Desk = "other"
	if _, err := s.PutSubmission(other, data(30<<10)); err != nil {
		t.Fatalf("another desk is blocked by the flood: %v", err)
	}
}

func TestIdempotentPut(t *testing.T) {
	s, _ := openTest(t, &Options{Quota: 100 << 10})
	sp := spec(0, "h")
	sp.Idempotency = "k2x4RBgPz0Ks8l3fKqQp7A"
	a, err := s.PutSubmission(sp, data(30<<10))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.Stats()
	// The same bytes under the same key: the same submission, no new quota.
	for i := 0; i < 3; i++ {
		b, err := s.PutSubmission(sp, data(30<<10))
		if err != nil {
			t.Fatal(err)
		}
		if b.ID != a.ID || b.SHA256 != a.SHA256 || !b.Received.Equal(a.Received) {
			t.Fatalf("resend gave %+v, want %+v", b, a)
		}
	}
	after, _ := s.Stats()
	if after != before {
		t.Fatalf("resend changed the spool: %+v then %+v", before, after)
	}
	subs, _ := s.Submissions(nil)
	if len(subs) != 1 {
		t.Fatalf("%d submissions stored, want 1", len(subs))
	}

	for _, tc := range []struct {
		name string
		spec func(UploadSpec) UploadSpec
		data []byte
		err  error
	}{
		{"other bytes", func(u UploadSpec) UploadSpec { return u }, data(30<<10 - 1), ErrIdempotency},
		{"other desk", func(u UploadSpec) UploadSpec { u.Desk = "e"; return u }, data(30 << 10), nil},
		{"other key", func(u UploadSpec) UploadSpec { u.Idempotency += "x"; return u }, data(30 << 10), nil},
		{"no key", func(u UploadSpec) UploadSpec { u.Idempotency = ""; return u }, data(30 << 10), ErrQuota},
	} {
		b, err := s.PutSubmission(tc.spec(sp), tc.data)
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.err)
		}
		if err == nil && b.ID == a.ID {
			t.Fatalf("%s: same ID as the first submission", tc.name)
		}
	}

	// Concurrent resends in one batch store one submission.
	sp.Idempotency = "concurrent-key-0123456789"
	sp.Desk = "f"
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.PutSubmission(sp, data(1000))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = b.ID
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent resends got IDs %v", ids)
		}
	}
}

func TestSnapshot(t *testing.T) {
	s, _ := openTest(t, nil)
	sub, err := s.PutSubmission(spec(0, "h"), data(3*ChunkSize/2))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	wrote := make(chan error, 1)
	err = s.Snapshot(func(n int64, writeTo func(io.Writer) error) error {
		size = n
		// Writers go on during a snapshot; what they commit is not in it.
		go func() {
			_, err := s.PutSubmission(spec(0, "h"), data(10))
			wrote <- err
		}()
		return writeTo(f)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := os.Stat(filepath.Join(dir, FileName)); fi.Size() != size {
		t.Fatalf("snapshot wrote %d bytes, announced %d", fi.Size(), size)
	}
	c := mustOpen(t, dir)
	defer c.Close()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	subs, _ := c.Submissions(nil)
	if len(subs) != 1 || subs[0].ID != sub.ID {
		t.Fatalf("the copy holds %d submissions", len(subs))
	}
	r, _ := c.OpenSubmission(sub.ID, 0)
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data(3*ChunkSize/2)) {
		t.Fatal("the copy's submission differs")
	}
}

// A record that does not decode fails the operation, and the error, which
// reaches the relay's log, names the kind of record and never its key.
func TestUndecodableRecordKeepsKeyOut(t *testing.T) {
	for _, bucket := range [][]byte{bSubs, bUploads, bMailboxes} {
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

// TestSubmissionsPage walks the paged listing: every kept submission once,
// in ID order, each record read once over the whole walk.
func TestSubmissionsPage(t *testing.T) {
	onlyH1 := func(sub *Submission) bool { return slices.Contains(sub.Routes, "h1") }
	for _, tc := range []struct {
		name   string
		routes []string // one submission per entry, routed there
		limit  int
		keep   func(*Submission) bool
		pages  int // pages the walk takes, the last one with next ""
	}{
		{"empty", nil, 3, nil, 1},
		{"one short page", []string{"h1", "h1"}, 3, nil, 1},
		{"exact page multiple", []string{"h1", "h1", "h1", "h1", "h1", "h1"}, 3, nil, 2},
		{"limit one", []string{"h1", "h1", "h1"}, 1, nil, 3},
		{"keep filtering", []string{"h1", "h2", "h1", "h2", "h2", "h1", "h2", "h1", "h1", "h2"}, 2, onlyH1, 0},
		{"keep refuses all", []string{"h2", "h2", "h2"}, 2, onlyH1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, nil)
			var want []string
			for _, r := range tc.routes {
				sub, err := s.PutSubmission(spec(0, r), data(10))
				if err != nil {
					t.Fatal(err)
				}
				if r == "h1" || tc.keep == nil {
					want = append(want, sub.ID)
				}
			}
			slices.Sort(want)
			calls := 0
			keep := func(sub *Submission) bool {
				calls++
				return tc.keep == nil || tc.keep(sub)
			}
			var got []string
			after, pages := "", 0
			for {
				pages++
				if pages > len(tc.routes)+2 {
					t.Fatalf("walk did not end after %d pages", pages)
				}
				subs, next, err := s.SubmissionsPage(after, tc.limit, keep)
				if err != nil {
					t.Fatal(err)
				}
				if len(subs) > tc.limit {
					t.Fatalf("page %d holds %d, limit %d", pages, len(subs), tc.limit)
				}
				for _, sub := range subs {
					got = append(got, sub.ID)
				}
				if next == "" {
					break
				}
				if next <= after || len(subs) == 0 || next != subs[len(subs)-1].ID {
					t.Fatalf("page %d after %q: next %q, last of %d", pages, after, next, len(subs))
				}
				after = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("walk listed %v, want %v", got, want)
			}
			if calls != len(tc.routes) {
				t.Fatalf("keep was called %d times over the walk of %d records", calls, len(tc.routes))
			}
			if tc.pages != 0 && pages != tc.pages {
				t.Fatalf("walk took %d pages, want %d", pages, tc.pages)
			}
		})
	}
}

// TestSubmissionsPageCursor starts pages at IDs that name no submission and
// refuses cursors that are not IDs.
func TestSubmissionsPageCursor(t *testing.T) {
	s, _ := openTest(t, nil)
	var ids []string
	for range 5 {
		sub, err := s.PutSubmission(spec(0, "h1"), data(10))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.ID)
	}
	slices.Sort(ids)
	// One below ids[2], and not stored: the page starts at ids[2].
	n, _ := new(big.Int).SetString(ids[2], 16)
	between := fmt.Sprintf("%032x", n.Sub(n, big.NewInt(1)))
	if between == ids[1] {
		t.Fatal("two random IDs are adjacent")
	}
	for _, tc := range []struct {
		name, after string
		want        []string
		err         error
	}{
		{"start", "", ids, nil},
		{"stored id", ids[2], ids[3:], nil},
		{"unknown id between", between, ids[2:], nil},
		{"unknown id before all", strings.Repeat("0", 32), ids, nil},
		{"unknown id after all", strings.Repeat("f", 32), nil, nil},
		{"last id", ids[4], nil, nil},
		{"too short", ids[0][:30], nil, ErrCursor},
		{"not hex", strings.Repeat("g", 32), nil, ErrCursor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subs, next, err := s.SubmissionsPage(tc.after, 10, nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			var got []string
			for _, sub := range subs {
				got = append(got, sub.ID)
			}
			if !slices.Equal(got, tc.want) || next != "" {
				t.Fatalf("after %q: %v next %q, want %v", tc.after, got, next, tc.want)
			}
		})
	}
	if _, _, err := s.SubmissionsPage("", 0, nil); err == nil {
		t.Fatal("a page of limit 0 was listed")
	}
}
