package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bSubRoutes indexes the submissions by the routes still waiting for them
// (schema 3), as bEventRoutes indexes events: key routeKey(route,
// submission key), no value. An entry is written for each route when the
// submission is stored, and removed when that route acks or the
// submission is deleted, so that one handler's inbox seeks its own entries
// and costs what that handler has pending, not what the spool holds.
var bSubRoutes = []byte("subroutes")

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
	idx := tx.Bucket(bSubRoutes)
	for _, r := range sub.Routes {
		if r == "" || len(r) > maxRouteLen {
			return nil, fmt.Errorf("storing submission: a route of %d bytes", len(r))
		}
		if err := idx.Put(routeKey(r, key), []byte{}); err != nil {
			return nil, err
		}
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

// RoutePage lists the submissions waiting for route, as SubmissionsPage
// lists them all: up to limit of those for which keep returns true, in ID
// order, starting just past after; next is where the following page
// starts, "" at the end. It reads only route's entries of the index, never
// the submissions of other routes, nor those route has acknowledged. An
// entry whose submission is gone is skipped, not an error, so one stale
// entry never makes the whole inbox unreadable; Verify reports it.
func (s *Spool) RoutePage(route, after string, limit int, keep func(*Submission) bool) (subs []*Submission, next string, err error) {
	start, ok, err := routePageStart("submissions", route, after, limit)
	if !ok || err != nil {
		return nil, "", err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bSubs)
		return walkRoute(tx, bSubRoutes, route, start, func(key []byte) (bool, error) {
			if len(subs) == limit {
				next = subs[len(subs)-1].ID
				return true, nil
			}
			var sub Submission
			if err := getJSON(b, key, &sub); errors.Is(err, ErrNotFound) {
				// A stale entry, for a submission gone: skipped, so that
				// the rest of the inbox stays readable; Verify reports it.
				return false, nil
			} else if err != nil {
				return false, fmt.Errorf("listing submissions: an index entry: %w", err)
			}
			if keep == nil || keep(&sub) {
				subs = append(subs, &sub)
			}
			return false, nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	return subs, next, nil
}

// routePageStart checks a route page's arguments (what names the records,
// for the error) and returns the index key to start after (nil: from the
// first); ok is false, with no error, for a route that can have no entries.
func routePageStart(what, route, after string, limit int) (start []byte, ok bool, err error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("listing %s: page limit %d is not positive", what, limit)
	}
	if after != "" {
		if start, err = subKey(after); err != nil {
			return nil, false, ErrCursor
		}
	}
	if route == "" || len(route) > maxRouteLen {
		return nil, false, nil
	}
	return start, true, nil
}

// walkRoute calls fn with the record key of each of route's entries in the
// route index bucket index, in key order, from just past start (nil: from
// the first), until fn says to stop or returns an error.
func walkRoute(tx *bolt.Tx, index []byte, route string, start []byte, fn func(key []byte) (stop bool, err error)) error {
	prefix := routePrefix(route)
	c := tx.Bucket(index).Cursor()
	k, _ := c.Seek(prefix)
	if start != nil {
		from := routeKey(route, start)
		k, _ = c.Seek(from)
		if k != nil && bytes.Equal(k, from) {
			k, _ = c.Next()
		}
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		stop, err := fn(k[len(prefix):])
		if stop || err != nil {
			return err
		}
	}
	return nil
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
		var err error
		_, deleted, waiting, err = s.ackTx(tx, key, route, live)
		return err
	})
	if err != nil {
		return false, nil, wrapStorage(err)
	}
	return deleted, waiting, nil
}

// MaxAckMany is the most submissions one AckMany call acknowledges.
const MaxAckMany = 1000

// AckResult is what AckMany did with one submission: Err is ErrNotFound
// for one that does not exist or was not sent to the route (nothing was
// recorded for it), else nil, and Deleted and Waiting are as Ack returns.
type AckResult struct {
	Sub     *Submission // the record before the ack; nil with Err
	Deleted bool
	Waiting []string
	Err     error
}

// AckMany acknowledges, for route, every submission ids names, in one
// durable transaction: either every acknowledgement it reports is
// committed or none is. may, when not nil, is asked about each submission
// before it is acknowledged (the relay checks the caller may still read
// it); a submission it refuses is reported ErrNotFound and left as it
// was. live is as for Ack, given each submission. At most MaxAckMany IDs;
// a malformed one is reported ErrNotFound.
func (s *Spool) AckMany(ids []string, route string, may func(*Submission) bool, live func(sub *Submission, route string) bool) ([]AckResult, error) {
	if len(ids) > MaxAckMany {
		return nil, fmt.Errorf("acknowledging %d submissions at once: at most %d", len(ids), MaxAckMany)
	}
	out := make([]AckResult, len(ids))
	err := s.update(func(tx *bolt.Tx) error {
		for i, id := range ids {
			out[i] = AckResult{}
			key, err := subKey(id)
			if err != nil {
				out[i].Err = ErrNotFound
				continue
			}
			var sub Submission
			if err := getJSON(tx.Bucket(bSubs), key, &sub); err != nil {
				if errors.Is(err, ErrNotFound) {
					out[i].Err = ErrNotFound
					continue
				}
				return err
			}
			if may != nil && !may(&sub) {
				out[i].Err = ErrNotFound
				continue
			}
			var l func(string) bool
			if live != nil {
				l = func(r string) bool { return live(&sub, r) }
			}
			before := sub
			_, d, w, err := s.ackTx(tx, key, route, l)
			if errors.Is(err, ErrNotFound) {
				out[i].Err = ErrNotFound
				continue
			}
			if err != nil {
				return err
			}
			out[i] = AckResult{Sub: &before, Deleted: d, Waiting: w}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ackTx is Ack inside tx.
func (s *Spool) ackTx(tx *bolt.Tx, key []byte, route string, live func(route string) bool) (sub *Submission, deleted bool, waiting []string, err error) {
	sub = &Submission{}
	if err := getJSON(tx.Bucket(bSubs), key, sub); err != nil {
		return nil, false, nil, err
	}
	if !slices.Contains(sub.Routes, route) {
		return nil, false, nil, ErrNotFound
	}
	if !slices.Contains(sub.Acks, route) {
		sub.Acks = append(sub.Acks, route)
	}
	if err := tx.Bucket(bSubRoutes).Delete(routeKey(route, key)); err != nil {
		return nil, false, nil, err
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
		return sub, true, nil, s.deleteSub(tx, key, sub)
	}
	return sub, false, waiting, putJSON(tx.Bucket(bSubs), key, sub)
}

// deleteSub deletes a submission in tx: its chunks, record, index entries
// and what it counted against the quotas.
func (s *Spool) deleteSub(tx *bolt.Tx, key []byte, sub *Submission) error {
	if err := deleteChunks(tx, key); err != nil {
		return err
	}
	if err := tx.Bucket(bSubs).Delete(key); err != nil {
		return err
	}
	idx := tx.Bucket(bSubRoutes)
	for _, r := range sub.Routes {
		if err := idx.Delete(routeKey(r, key)); err != nil {
			return err
		}
	}
	return s.reserve(tx, sub.Desk, -sub.Size)
}
