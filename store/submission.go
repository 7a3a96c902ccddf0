package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Submission is a complete, stored submission.
type Submission struct {
	ID       string    `json:"id"`
	Desk     string    `json:"desk"`
	Category string    `json:"category,omitempty"`
	Kind     string    `json:"kind,omitempty"`
	Mailbox  string    `json:"mailbox,omitempty"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Received time.Time `json:"received"` // coarsened
	Routes   []string  `json:"routes"`
	Acks     []string  `json:"acks"`
	FirstAck time.Time `json:"first_ack,omitzero"` // coarsened
	// DeleteAfterAck, when not zero, deletes the submission that long after
	// its first ack even if other routes have not acked; zero waits for
	// every route, or for KeepUntil.
	DeleteAfterAck time.Duration `json:"delete_after_ack"`
	KeepUntil      time.Time     `json:"keep_until"`
}

func (s *Spool) newSubmission(tx *bolt.Tx, key []byte, spec *UploadSpec, h hash.Hash) (*Submission, error) {
	now := s.opts.Now()
	sub := &Submission{
		ID:             hex.EncodeToString(key),
		Desk:           spec.Desk,
		Category:       spec.Category,
		Kind:           spec.Kind,
		Mailbox:        spec.Mailbox,
		Size:           spec.Length,
		SHA256:         hex.EncodeToString(h.Sum(nil)),
		Received:       s.coarse(now),
		Routes:         spec.Routes,
		Acks:           []string{},
		DeleteAfterAck: spec.DeleteAfterAck,
		KeepUntil:      s.coarse(now.Add(spec.KeepUnacked + s.opts.Coarse)),
	}
	return sub, putJSON(tx.Bucket(bSubs), key, sub)
}

// PutSubmission stores a small submission given whole, in one durable
// commit shared with other concurrent calls (bbolt's Batch), and returns it.
//
// With spec.Idempotency set, the submission's ID comes from the desk and
// that key: sending the same bytes again returns the stored submission
// (reserving no quota twice), and sending other bytes under the same key
// fails with ErrIdempotency. Once the submission is deleted the key is
// free again.
func (s *Spool) PutSubmission(spec UploadSpec, data []byte) (*Submission, error) {
	spec.Length = int64(len(data))
	if err := s.checkSpec(&spec); err != nil {
		return nil, err
	}
	_, key := token()
	if spec.Idempotency != "" {
		key = idempotencyKey(spec.Desk, spec.Idempotency)
	}
	h := sha256.New()
	h.Write(data)
	sum := hex.EncodeToString(h.Sum(nil))
	var sub *Submission
	err := s.db.Batch(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bSubs).Get(key); v != nil {
			var old Submission
			if err := decodeRecord(v, "submission", &old); err != nil {
				return err
			}
			if old.Desk != spec.Desk || old.SHA256 != sum || old.Size != spec.Length {
				return ErrIdempotency
			}
			sub = &old
			return nil
		}
		if err := s.reserve(tx, spec.Desk, spec.Length); err != nil {
			return err
		}
		var chunks [][]byte
		for off := int64(0); off < spec.Length; off += ChunkSize {
			chunks = append(chunks, data[off:min(off+ChunkSize, spec.Length)])
		}
		if err := putChunks(tx, key, 0, chunks); err != nil {
			return err
		}
		var err error
		sub, err = s.newSubmission(tx, key, &spec, h)
		return err
	})
	if err != nil {
		return nil, wrapStorage(err)
	}
	return sub, nil
}

// Submissions returns every stored submission for which keep returns true
// (all of them when keep is nil).
func (s *Spool) Submissions(keep func(*Submission) bool) ([]*Submission, error) {
	var out []*Submission
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bSubs).ForEach(func(k, v []byte) error {
			var sub Submission
			if err := decodeRecord(v, "submission", &sub); err != nil {
				return err
			}
			if keep == nil || keep(&sub) {
				out = append(out, &sub)
			}
			return nil
		})
	})
	return out, err
}

// SubmissionsPage returns, in ID order, up to limit stored submissions for
// which keep returns true (every one when keep is nil), starting just past
// the ID after: "" starts at the first, and after need not name a stored
// submission. next is the ID of the last submission returned when more may
// follow, to be passed as after for the next page; it is "" once the listing
// reached the end of the spool. A page holds fewer than limit submissions
// only at the end, where next is "".
//
// The scan skips the submissions keep refuses and goes on from where the
// previous page stopped, so a walk over every page reads each record once.
// An after that is not 32 hex characters fails with ErrCursor, and a limit
// below 1 with an error.
func (s *Spool) SubmissionsPage(after string, limit int, keep func(*Submission) bool) (subs []*Submission, next string, err error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("listing submissions: page limit %d is not positive", limit)
	}
	var start []byte
	if after != "" {
		if start, err = subKey(after); err != nil {
			return nil, "", ErrCursor
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSubs).Cursor()
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
			if k != nil && bytes.Equal(k, start) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(subs) == limit {
				// Another record follows the full page.
				next = subs[len(subs)-1].ID
				return nil
			}
			var sub Submission
			if err := decodeRecord(v, "submission", &sub); err != nil {
				return err
			}
			if keep == nil || keep(&sub) {
				subs = append(subs, &sub)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return subs, next, nil
}

func subKey(id string) ([]byte, error) {
	k, err := hex.DecodeString(id)
	if err != nil || len(k) != 16 {
		return nil, ErrNotFound
	}
	return k, nil
}

// Submission returns one submission.
func (s *Spool) Submission(id string) (*Submission, error) {
	key, err := subKey(id)
	if err != nil {
		return nil, err
	}
	var sub Submission
	err = s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bSubs), key, &sub) })
	if err != nil {
		return nil, err
	}
	return &sub, nil
}

// OpenSubmission returns a reader of a submission's bytes from offset. It
// reads one chunk per short read transaction, so a slow reader never holds
// the database. Reading a submission deleted meanwhile fails with
// ErrNotFound.
func (s *Spool) OpenSubmission(id string, offset int64) (io.Reader, error) {
	sub, err := s.Submission(id)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > sub.Size {
		return nil, fmt.Errorf("offset %d outside submission of %d bytes", offset, sub.Size)
	}
	key, _ := subKey(id)
	return &chunkReader{s: s, key: key, off: offset, size: sub.Size}, nil
}

type chunkReader struct {
	s       *Spool
	key     []byte
	off     int64
	size    int64
	buf     []byte
	mailbox string // for a reply: the mailbox that must still exist
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		if c.off >= c.size {
			return 0, io.EOF
		}
		err := c.s.db.View(func(tx *bolt.Tx) error {
			if c.mailbox == "" && tx.Bucket(bSubs).Get(c.key) == nil {
				return ErrNotFound
			}
			v, start, err := chunkAt(tx, c.key, c.off)
			if err != nil {
				return err
			}
			c.buf = append(c.buf[:0], v[c.off-start:]...)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	c.off += int64(n)
	return n, nil
}

// Ack records that the handler with route has stored the submission, and
// returns the routes that have still to: those live reports true for (every
// route when live is nil) that have not acked, in route order. The relay
// passes the routes that may still pull the submission, so a key removed
// from the desk is not waited for. When no live route is left waiting, the
// submission is deleted at once and deleted is true. Otherwise a submission
// with a DeleteAfterAck starts that clock at its first ack; one without it
// waits for the others, or for KeepUntil. A route the submission was not
// sent to gets ErrNotFound.
func (s *Spool) Ack(id, route string, live func(route string) bool) (deleted bool, waiting []string, err error) {
	key, err := subKey(id)
	if err != nil {
		return false, nil, err
	}
	// Handlers ack many submissions at once after a pull: Batch shares one
	// durable commit among concurrent acks.
	err = s.db.Batch(func(tx *bolt.Tx) error {
		deleted, waiting = false, nil
		var sub Submission
		if err := getJSON(tx.Bucket(bSubs), key, &sub); err != nil {
			return err
		}
		if !slices.Contains(sub.Routes, route) {
			return ErrNotFound
		}
		if !slices.Contains(sub.Acks, route) {
			sub.Acks = append(sub.Acks, route)
		}
		if sub.FirstAck.IsZero() {
			sub.FirstAck = s.coarse(s.opts.Now())
		}
		for _, r := range sub.Routes {
			if !slices.Contains(sub.Acks, r) && (live == nil || live(r)) {
				waiting = append(waiting, r)
			}
		}
		if len(waiting) == 0 {
			deleted = true
			return s.deleteSub(tx, key, sub.Desk, sub.Size)
		}
		return putJSON(tx.Bucket(bSubs), key, &sub)
	})
	if err != nil {
		return false, nil, wrapStorage(err)
	}
	return deleted, waiting, nil
}

func (s *Spool) deleteSub(tx *bolt.Tx, key []byte, desk string, size int64) error {
	if err := deleteChunks(tx, key); err != nil {
		return err
	}
	if err := tx.Bucket(bSubs).Delete(key); err != nil {
		return err
	}
	return s.reserve(tx, desk, -size)
}
