package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// fillSpool stores 1 MiB submissions for routes a and b until the spool
// refuses one with ErrStorage, and returns their IDs.
func fillSpool(t *testing.T, s *Spool) []string {
	t.Helper()
	var ids []string
	for i := 0; i < 200; i++ {
		sub, err := s.PutSubmission(spec(0, "a", "b"), data(ChunkSize))
		if errors.Is(err, ErrStorage) {
			if len(ids) == 0 {
				t.Fatal("the first submission was refused")
			}
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.ID)
	}
	t.Fatal("the spool never filled")
	return nil
}

// TestReserveFullDisk: on a spool that ingest has filled (MaxFileSize
// plays the disk), every acknowledgement succeeds, single and batched,
// and so do a sweep and the deletions they make; then ingest resumes.
// (A capped file without a reserve does not show the failure the reserve
// prevents, since a refused transaction gives its pages back; the real
// full disk of test/e2e's TestDiskFull does.)
func TestReserveFullDisk(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{MaxFileSize: 40 << 20, DiskReserve: 4 << 20, Now: c.now})
	ids := fillSpool(t, s)
	failed := 0
	// A third: acked by a alone, left for the sweep.
	third := len(ids) / 3
	for _, id := range ids[:third] {
		if _, _, err := s.Ack(id, "a", nil); err != nil {
			failed++
		}
	}
	// A third: acked by both, singly; the second ack deletes.
	for _, id := range ids[third : 2*third] {
		for _, r := range []string{"a", "b"} {
			if _, _, err := s.Ack(id, r, nil); err != nil {
				failed++
			}
		}
	}
	// The rest in batches.
	for _, r := range []string{"a", "b"} {
		if _, err := s.AckMany(ids[2*third:], r, nil, nil); err != nil {
			failed++
		}
	}
	c.add(80 * time.Hour)
	res, err := s.Sweep()
	if err != nil {
		failed++
	}
	if failed != 0 {
		t.Fatalf("%d of %d acknowledgements, batches and sweeps failed on a full spool", failed, third+2*third+3)
	}
	if res.Submissions != third {
		t.Fatalf("the sweep deleted %d submissions, want %d", res.Submissions, third)
	}
	st, _ := s.Stats()
	if st.Submissions != 0 || st.Committed != 0 {
		t.Fatalf("after acking everything: %+v", st)
	}
	t.Logf("%d submissions filled the spool; all %d acknowledgements, 2 batches and the sweep succeeded", len(ids), third+2*third)
	// Space came back: as many again fit.
	again := fillSpool(t, s)
	if len(again) < len(ids)-1 {
		t.Fatalf("after the acks only %d submissions fit, before %d", len(again), len(ids))
	}
}

// TestReserveRefusedUploadGivesBack: an upload whose piece the full disk
// refuses is deleted at once, giving its bytes back, so that the retry
// when space exists costs the space once.
func TestReserveRefusedUploadGivesBack(t *testing.T) {
	s, _ := openTest(t, &Options{MaxFileSize: 40 << 20, DiskReserve: 4 << 20})
	const n = 6 << 20
	tok, err := s.CreateUpload(spec(n, "a"))
	if err != nil {
		t.Fatal(err)
	}
	// Half the upload, then the disk fills.
	if _, err := s.WriteUpload(tok, 0, bytes.NewReader(data(n/2))); err != nil {
		t.Fatal(err)
	}
	ids := fillSpool(t, s)
	before, _ := s.Stats()
	if _, err := s.WriteUpload(tok, n/2, bytes.NewReader(data(n)[n/2:])); !errors.Is(err, ErrStorage) {
		t.Fatalf("writing on a full disk: %v, want ErrStorage", err)
	}
	after, _ := s.Stats()
	if after.Uploads != 0 || after.Committed != before.Committed-n/2 {
		t.Fatalf("after the refusal: %d uploads, %d bytes committed (before %d): the refused upload kept its bytes", after.Uploads, after.Committed, before.Committed)
	}
	if _, err := s.Upload(tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused upload is still there: %v", err)
	}
	// A new upload on a full disk is refused before it writes anything.
	if _, err := s.CreateUpload(spec(n, "a")); !errors.Is(err, ErrStorage) {
		t.Fatalf("creating an upload on a full disk: %v, want ErrStorage", err)
	}
	for _, id := range ids {
		if _, _, err := s.Ack(id, "a", nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Ack(id, "b", nil); err != nil {
			t.Fatal(err)
		}
	}
	tok, err = s.CreateUpload(spec(n, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteUpload(tok, 0, bytes.NewReader(data(n))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteUpload(tok); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Committed != n {
		t.Fatalf("after the retry %d bytes committed, want %d (once)", st.Committed, n)
	}
}
