package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

type pieceResult struct {
	off int64
	err error
}

// TestWritePieceFollows: a piece sent while the one before it is being
// written waits for it and continues its hash; it stores nothing unless
// the piece before committed whole, and then fails with the offset
// reached. A piece at an offset no piece in flight ends at, or a second
// follower of one piece, is refused at once.
func TestWritePieceFollows(t *testing.T) {
	// The first piece in three commits, the last short, or in two whole
	// ones, which its body's end follows.
	for _, first := range []int{2*batchBytes + 5000, 2 * batchBytes} {
		t.Run(fmt.Sprint(first), func(t *testing.T) { testWritePieceFollows(t, first) })
	}
}

func testWritePieceFollows(t *testing.T, first int) {
	body := data(first + batchBytes + 777)
	for _, tc := range []struct {
		name string
		// end writes the first piece's bytes from 1 on and ends its body.
		end     func(w *io.PipeWriter)
		wantOff int // the upload's offset after both; 0: the whole body
	}{
		{"the first piece committed whole", func(w *io.PipeWriter) {
			w.Write(body[1:first])
			w.Close()
		}, 0},
		{"the first piece ends short", func(w *io.PipeWriter) {
			w.Write(body[1 : first-10])
			w.Close()
		}, first - 10},
		{"the first piece's connection breaks", func(w *io.PipeWriter) {
			w.Write(body[1 : batchBytes+10])
			w.CloseWithError(errors.New("connection reset"))
		}, batchBytes + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, nil)
			tok, err := s.CreateUpload(spec(int64(len(body)), "h"))
			if err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			firstDone := make(chan pieceResult, 1)
			go func() {
				off, err := s.WritePiece(context.Background(), tok, 0, int64(first), pr)
				firstDone <- pieceResult{off, err}
			}()
			// Once this byte is taken the first piece is being written.
			pw.Write(body[:1])
			if _, err := s.WritePiece(context.Background(), tok, 12345, 10, bytes.NewReader(body[12345:12355])); !isOffset(err, 0) {
				t.Fatalf("a piece that follows nothing: %v", err)
			}
			secondDone := make(chan pieceResult, 1)
			go func() {
				off, err := s.WritePiece(context.Background(), tok, int64(first), int64(len(body)-first), bytes.NewReader(body[first:]))
				secondDone <- pieceResult{off, err}
			}()
			third := make(chan pieceResult, 1)
			go func() {
				// A second follower of the same piece: refused, unless the
				// first follower has not registered yet, in which case this
				// one follows and the first is refused; either way one of
				// the two stores and the other gets an offset error.
				off, err := s.WritePiece(context.Background(), tok, int64(first), int64(len(body)-first), bytes.NewReader(body[first:]))
				third <- pieceResult{off, err}
			}()
			tc.end(pw)
			a := <-firstDone
			b, c := <-secondDone, <-third
			u, err := s.Upload(tok)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantOff != 0 {
				want := int64(tc.wantOff)
				if u.Offset != want || a.off != want {
					t.Fatalf("offset %d (first piece answered %d, %v), want %d", u.Offset, a.off, a.err, tc.wantOff)
				}
				// The follower answers the offset reached; the other was
				// refused at whatever offset there was when it came.
				var ob, oc *OffsetError
				if !errors.As(b.err, &ob) || !errors.As(c.err, &oc) || !isOffset(b.err, want) && !isOffset(c.err, want) {
					t.Fatalf("followers answered %v and %v; want offset errors, one at %d", b.err, c.err, tc.wantOff)
				}
				return
			}
			if a.err != nil || a.off != int64(first) {
				t.Fatalf("first piece: %d, %v", a.off, a.err)
			}
			ok, refused := b, c
			if b.err != nil {
				ok, refused = c, b
			}
			if ok.err != nil || ok.off != int64(len(body)) || refused.err == nil {
				t.Fatalf("followers answered %d, %v and %d, %v; want one whole and one refused", b.off, b.err, c.off, c.err)
			}
			var oe *OffsetError
			if !errors.As(refused.err, &oe) {
				t.Fatalf("the second follower: %v, want an offset error", refused.err)
			}
			sub, err := s.CompleteUpload(tok)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			if sub.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatal("the stored hash is not the body's: the follower did not continue the first piece's hash")
			}
			got := readSub(t, s, sub.ID)
			if !bytes.Equal(got, body) {
				t.Fatal("stored bytes differ")
			}
		})
	}
}

func isOffset(err error, at int64) bool {
	var oe *OffsetError
	return errors.As(err, &oe) && oe.Current == at
}

func readSub(t *testing.T, s *Spool, id string) []byte {
	t.Helper()
	r, err := s.OpenSubmission(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWritePieceFollowDepth: a piece may follow only a piece that is not
// itself waiting, so a chain of followers is refused at once; and a
// follower's wait ends with its context, storing nothing.
func TestWritePieceFollowDepth(t *testing.T) {
	s, _ := openTest(t, nil)
	const first, second = 100, 10
	body := data(first + second + 10)
	tok, err := s.CreateUpload(spec(int64(len(body)), "h"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	firstDone := make(chan pieceResult, 1)
	go func() {
		off, err := s.WritePiece(context.Background(), tok, 0, first, pr)
		firstDone <- pieceResult{off, err}
	}()
	pw.Write(body[:1])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secondDone := make(chan pieceResult, 1)
	go func() {
		off, err := s.WritePiece(ctx, tok, first, second, bytes.NewReader(body[first:first+second]))
		secondDone <- pieceResult{off, err}
	}()
	// Wait for the follower to be the upload's tail.
	for {
		s.tails.Lock()
		tl := s.tails.m[tok]
		s.tails.Unlock()
		if tl != nil && tl.end == first+second {
			break
		}
		time.Sleep(time.Millisecond)
	}
	third := make(chan pieceResult, 1)
	go func() {
		off, err := s.WritePiece(context.Background(), tok, first+second, 10, bytes.NewReader(body[first+second:]))
		third <- pieceResult{off, err}
	}()
	select {
	case c := <-third:
		if !isOffset(c.err, 0) {
			t.Fatalf("a follower of a follower: %d, %v; want an offset error at 0", c.off, c.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a follower of a waiting follower was not refused at once")
	}
	cancel()
	select {
	case b := <-secondDone:
		if !isOffset(b.err, 0) {
			t.Fatalf("a follower whose context ended: %d, %v; want an offset error at 0", b.off, b.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a follower's wait did not end with its context")
	}
	pw.Write(body[1:first])
	pw.Close()
	if a := <-firstDone; a.err != nil || a.off != first {
		t.Fatalf("first piece: %d, %v", a.off, a.err)
	}
	if u, err := s.Upload(tok); err != nil || u.Offset != first {
		t.Fatalf("upload after the follower gave up: %+v, %v; want offset %d", u, err, first)
	}
}
