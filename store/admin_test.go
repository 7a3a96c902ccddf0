package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

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
		s.Ack(id, "h", nil)
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

// TestVerifyFindsDamage: Verify notices each kind of damage it promises to.
func TestVerifyFindsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx, sub, reply, event []byte) error
		want   string
	}{
		{"quota counter", func(tx *bolt.Tx, _, _, _ []byte) error { return putUint(tx.Bucket(bMeta), kCommitted, 1) }, "quota counter"},
		{"desk counter", func(tx *bolt.Tx, _, _, _ []byte) error { return putUint(tx.Bucket(bMeta), deskKey("d"), 7) }, `desk "d"`},
		{"lost chunks", func(tx *bolt.Tx, sub, _, _ []byte) error { return tx.Bucket(bChunks).DeleteBucket(sub) }, "no chunks"},
		{"lost reply chunks", func(tx *bolt.Tx, _, reply, _ []byte) error { return tx.Bucket(bChunks).DeleteBucket(reply) }, "no chunks"},
		{"orphan chunks", func(tx *bolt.Tx, sub, _, _ []byte) error { return tx.Bucket(bSubs).Delete(sub) }, "orphan chunks"},
		{"lost event chunks", func(tx *bolt.Tx, _, _, ev []byte) error { return tx.Bucket(bChunks).DeleteBucket(ev) }, "no chunks"},
		{"orphan event chunks", func(tx *bolt.Tx, _, _, ev []byte) error { return tx.Bucket(bEvents).Delete(ev) }, "orphan chunks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "data"), &Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sub, err := s.PutSubmission(spec(0, "h1"), data(3000))
			if err != nil {
				t.Fatal(err)
			}
			mb := strings.Repeat("ab", 16)
			if _, err := s.EnsureMailbox(mb, "d", "", []string{"h1"}, []string{"X25519"}); err != nil {
				t.Fatal(err)
			}
			rid, err := s.PutReply(mb, data(500), spec(0, "h1"), nil)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := s.PutEvent(eventSpec(KindEvent, "h1", "h2"), data(700))
			if err != nil {
				t.Fatal(err)
			}
			if f, err := s.Verify(); err != nil || f.Submissions != 1 || f.Replies != 1 || f.Mailboxes != 1 || f.Events != 1 {
				t.Fatalf("before the damage: %+v %v", f, err)
			}
			sk, _ := hex.DecodeString(sub.ID)
			rk, _ := hex.DecodeString(rid)
			ek, _ := hex.DecodeString(ev.ID)
			if err := s.db.Update(func(tx *bolt.Tx) error { return tc.damage(tx, sk, rk, ek) }); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Verify(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify after %s: %v, want %q", tc.name, err, tc.want)
			}
		})
	}
}
