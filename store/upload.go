package store

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// UploadSpec is what the relay decides when an upload starts. The spool
// stores it and hands it back; it interprets only Length and the durations.
type UploadSpec struct {
	Desk     string   `json:"desk"`
	Category string   `json:"category,omitempty"`
	Routes   []string `json:"routes"`  // handler key IDs the submission goes to
	Stanzas  []string `json:"stanzas"` // expected age stanza types
	Length   int64    `json:"length"`
	// DeleteAfterAck is how long after the first ack the submission is
	// kept; zero keeps it until every route has acked, or KeepUnacked.
	DeleteAfterAck time.Duration `json:"delete_after_ack"`
	// KeepUnacked is how long a submission nobody acked is kept.
	KeepUnacked time.Duration `json:"keep_unacked"`
	// Kind says what the ciphertext holds; empty means an Amana bundle.
	Kind string `json:"kind,omitempty"`
	// Mailbox is the mailbox a reply copy or a follow-up belongs to.
	Mailbox string `json:"mailbox,omitempty"`
	// Idempotency, when set on a PutSubmission, names the submission so a
	// client that lost the answer can send the same bytes again and get
	// the same submission back. It is not stored.
	Idempotency string `json:"-"`
}

// Upload is an unfinished upload.
type Upload struct {
	UploadSpec
	Offset  int64     `json:"offset"`
	Expires time.Time `json:"expires"`
	Hash    []byte    `json:"hash"` // marshalled SHA-256 state of bytes so far
}

func (s *Spool) checkSpec(spec *UploadSpec) error {
	if spec.Length <= 0 {
		return errors.New("upload length must be positive")
	}
	if len(spec.Routes) == 0 {
		return errors.New("upload has no routes")
	}
	return nil
}

// CreateUpload starts a resumable upload and returns its token, which the
// uploader presents for every later call. It fails with ErrQuota if the
// declared length does not fit in the quota now; bytes count against the
// quota as they are written, so an upload that is never sent costs nothing.
func (s *Spool) CreateUpload(spec UploadSpec) (string, error) {
	if err := s.checkSpec(&spec); err != nil {
		return "", err
	}
	tok, key := token()
	h, _ := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	u := Upload{UploadSpec: spec, Expires: s.coarse(s.opts.Now().Add(s.opts.UploadTTL + s.opts.Coarse)), Hash: h}
	err := s.update(func(tx *bolt.Tx) error {
		if !s.fits(tx, spec.Desk, spec.Length) {
			return ErrQuota
		}
		if err := s.roomFor(tx, spec.Length); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bUploads), key, &u)
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// Upload returns the state of an unfinished upload.
func (s *Spool) Upload(tok string) (*Upload, error) {
	var u Upload
	err := s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bUploads), tokenKey(tok), &u) })
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// WriteUpload appends the bytes of r to an upload at offset, which must be
// the upload's current offset. It commits durably every few MiB and returns
// the offset reached. If r fails, what was read before the failure is
// committed, the new offset is returned with the error, and the uploader
// resumes from there.
//
// Reading and hashing the next batch runs while the previous one commits,
// so the network, SHA-256 and the disk work at the same time.
func (s *Spool) WriteUpload(tok string, offset int64, r io.Reader) (int64, error) {
	return s.WritePiece(context.Background(), tok, offset, -1, r)
}

// WritePiece is WriteUpload for a piece of n bytes (n < 0: not known). A
// piece whose length is known can be followed: while it is being written,
// a WritePiece at the offset it will reach (offset+n) does not fail with
// an OffsetError but waits for it. The follower reads and hashes its first
// batch while the piece's last batch commits, and commits only once the
// piece has committed whole; if the piece ends short or fails, the
// follower fails with an OffsetError giving the offset reached, having
// stored nothing. A piece has at most one follower, and only a piece that
// is not itself waiting can be followed: a follower of a follower fails at
// once with an OffsetError, so one upload holds at most two pieces. The
// wait ends with ctx too (the relay gives it the request's context and a
// deadline), in an OffsetError with nothing stored; ctx bounds only the
// wait, not the write.
func (s *Spool) WritePiece(ctx context.Context, tok string, offset, n int64, r io.Reader) (int64, error) {
	key := tokenKey(tok)
	u, err := s.Upload(tok)
	if err != nil {
		return 0, err
	}
	var prev *tail
	if offset != u.Offset {
		if prev = s.follow(tok, offset); prev == nil {
			// The piece this would follow may have finished meanwhile.
			if u, err = s.Upload(tok); err != nil {
				return 0, err
			}
			if offset != u.Offset {
				return u.Offset, &OffsetError{Current: u.Offset}
			}
		}
	}
	me := s.startTail(tok, offset, n, prev != nil)
	reached := offset
	defer func() { me.finish(s, tok, reached) }()
	state := u.Hash
	if prev != nil {
		select {
		case <-prev.last:
		case <-ctx.Done():
			return s.offsetNow(tok)
		}
		if state = prev.hash; state == nil {
			<-prev.done
			return s.offsetNow(tok)
		}
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return offset, fmt.Errorf("restoring upload hash: %w", err)
	}
	batches := make(chan *batch)
	stop := make(chan struct{})
	go func() {
		defer close(batches)
		for {
			b := readBatch(r, h)
			select {
			case batches <- b:
			case <-stop:
				b.release()
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for b := range batches {
			b.release()
		}
	}()
	if prev != nil {
		// The first batch is read meanwhile; taking it only now keeps
		// one batch in memory beside the one the piece commits.
		select {
		case <-prev.done:
		case <-ctx.Done():
			return s.offsetNow(tok)
		}
		if !prev.ok {
			return s.offsetNow(tok)
		}
		if me != nil {
			s.tails.Lock()
			me.waiting = false
			s.tails.Unlock()
		}
	}
	for b := range batches {
		if b.err != nil || me != nil && offset+b.n >= me.end {
			// The piece's last bytes (a body ends where its length says):
			// a follower may start reading.
			me.lastBatch(offset+b.n, b.hash)
		}
		err := s.commitPiece(key, offset, u.Length, b)
		b.release()
		if isDiskFull(err) {
			// The uploader starts over: give the bytes back now.
			if derr := s.dropUpload(key); derr != nil {
				return offset, errors.Join(err, derr)
			}
			return 0, err
		}
		if err != nil {
			return offset, err
		}
		offset += b.n
		reached = offset
		if b.err == io.EOF {
			return offset, nil
		}
		if b.err != nil {
			return offset, b.err
		}
	}
	return offset, nil
}

// offsetNow is the OffsetError a follower ends with: the upload's offset.
func (s *Spool) offsetNow(tok string) (int64, error) {
	u, err := s.Upload(tok)
	if err != nil {
		return 0, err
	}
	return u.Offset, &OffsetError{Current: u.Offset}
}

// A tail is a piece being written by WritePiece that a piece at its end may
// follow. It lives in memory only: nothing of a follower is stored before
// the piece it follows is durable.
type tail struct {
	end      int64
	last     chan struct{} // closed when the last batch goes to commit, or the write ends
	hash     []byte        // set before last closes: the hash state at end; nil if the piece fell short
	done     chan struct{} // closed when the write has ended
	ok       bool          // set before done closes: the upload reached end
	followed bool          // guarded by tails' lock
	waiting  bool          // guarded by tails' lock: it waits for the piece it follows
}

// tailSet holds the pieces being written, by upload token; each is
// replaced by its follower and removed when its write ends. The zero value
// is ready to use.
type tailSet struct {
	sync.Mutex
	m map[string]*tail
}

// follow returns the piece being written that ends at offset, that no
// other piece follows yet and that does not itself wait for the piece
// before it, marked as followed, or nil.
func (s *Spool) follow(tok string, offset int64) *tail {
	s.tails.Lock()
	defer s.tails.Unlock()
	t := s.tails.m[tok]
	if t == nil || t.end != offset || t.followed || t.waiting {
		return nil
	}
	t.followed = true
	return t
}

// startTail records a piece of n bytes from offset as the upload's tail,
// waiting if it follows another; nil when n is not known.
func (s *Spool) startTail(tok string, offset, n int64, waiting bool) *tail {
	if n <= 0 {
		return nil
	}
	t := &tail{end: offset + n, last: make(chan struct{}), done: make(chan struct{}), waiting: waiting}
	s.tails.Lock()
	if s.tails.m == nil {
		s.tails.m = map[string]*tail{}
	}
	s.tails.m[tok] = t
	s.tails.Unlock()
	return t
}

// lastBatch says the batch ending at end, after which the hash state is
// hash, is the piece's last.
func (t *tail) lastBatch(end int64, hash []byte) {
	if t == nil || t.closedLast() {
		return
	}
	if end == t.end {
		t.hash = hash
	}
	close(t.last)
}

func (t *tail) closedLast() bool {
	select {
	case <-t.last:
		return true
	default:
		return false
	}
}

// finish ends the tail's write, which reached offset reached.
func (t *tail) finish(s *Spool, tok string, reached int64) {
	if t == nil {
		return
	}
	if !t.closedLast() {
		close(t.last)
	}
	t.ok = reached == t.end
	s.tails.Lock()
	if s.tails.m[tok] == t {
		delete(s.tails.m, tok)
	}
	s.tails.Unlock()
	close(t.done)
}

// batch is up to batchBytes of an upload, read and hashed, ready to commit.
type batch struct {
	chunks [][]byte
	bufs   []*[]byte
	n      int64
	hash   []byte // SHA-256 state after these bytes
	err    error  // io.EOF at the end of the input, or the read error
}

func readBatch(r io.Reader, h hash.Hash) *batch {
	b := &batch{}
	for b.n < batchBytes {
		buf := chunkPool.Get().(*[]byte)
		b.bufs = append(b.bufs, buf)
		k, err := io.ReadFull(r, *buf)
		if k > 0 {
			b.chunks = append(b.chunks, (*buf)[:k])
			b.n += int64(k)
			h.Write((*buf)[:k])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			b.err = io.EOF
			break
		}
		if err != nil {
			b.err = err
			break
		}
	}
	b.hash, _ = h.(encoding.BinaryMarshaler).MarshalBinary()
	return b
}

func (b *batch) release() {
	for _, buf := range b.bufs {
		chunkPool.Put(buf)
	}
	b.bufs, b.chunks = nil, nil
}

// commitPiece durably appends a batch to an upload at offset.
func (s *Spool) commitPiece(key []byte, offset, length int64, b *batch) error {
	if offset+b.n > length {
		return ErrTooLong
	}
	if b.n == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		bu := tx.Bucket(bUploads)
		var cur Upload
		if err := getJSON(bu, key, &cur); err != nil {
			return err
		}
		if cur.Offset != offset {
			return &OffsetError{Current: cur.Offset}
		}
		if err := s.reserve(tx, cur.Desk, b.n); err != nil {
			return err
		}
		if err := putChunks(tx, key, offset, b.chunks); err != nil {
			return err
		}
		cur.Offset = offset + b.n
		cur.Hash = b.hash
		cur.Expires = s.coarse(s.opts.Now().Add(s.opts.UploadTTL + s.opts.Coarse))
		return putJSON(bu, key, &cur)
	})
}

// CompleteUpload turns a fully written upload into a submission, atomically:
// handlers see it only once this returns, and then it is durable.
func (s *Spool) CompleteUpload(tok string) (*Submission, error) {
	key := tokenKey(tok)
	var sub *Submission
	err := s.update(func(tx *bolt.Tx) error {
		var u Upload
		if err := getJSON(tx.Bucket(bUploads), key, &u); errors.Is(err, ErrNotFound) {
			// Completing twice (the answer to the first was lost) returns
			// the submission it made.
			sub = &Submission{}
			return getJSON(tx.Bucket(bSubs), key, sub)
		} else if err != nil {
			return err
		}
		if u.Offset != u.Length {
			return fmt.Errorf("%w: %d of %d bytes", ErrIncomplete, u.Offset, u.Length)
		}
		h := sha256.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.Hash); err != nil {
			return fmt.Errorf("restoring upload hash: %w", err)
		}
		var err error
		sub, err = s.newSubmission(tx, key, &u.UploadSpec, h)
		if err != nil {
			return err
		}
		return tx.Bucket(bUploads).Delete(key)
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}
