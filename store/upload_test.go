package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

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
