package store

import (
	"bytes"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SweepResult counts what Sweep deleted.
type SweepResult struct {
	Submissions int // past their retention
	Uploads     int // abandoned
	Mailboxes   int // expired
	Events      int // case journal events past their retention
	// LongestWrite is how long the longest of the sweep's deletions of a
	// batch took, from the call to its durable commit. The submissions'
	// and events' batches join the commits of concurrent submissions and
	// acks (bbolt's Batch), so it includes the wait of up to BatchDelay
	// for them; with no other writer the commit is the sweep's own, and a
	// writer arriving meanwhile waits for it.
	LongestWrite time.Duration
}

const (
	// sweepBatch is how many due submissions or uploads one of Sweep's
	// write transactions deletes at most. A write transaction looks at
	// nothing else, so that a sweep of a large spool never holds the
	// writer for long, whatever the number of records not due.
	sweepBatch = 32
)

// Sweep deletes submissions past their retention, uploads past their
// expiry, expired mailboxes and events past their retention. It finds each
// kind in read transactions of at most a few thousand records and deletes
// them in small batches, each checking again that what it deletes is due
// (an ack or a piece may have come meanwhile). A batch of submissions,
// uploads or events runs through bbolt's Batch, like a small submission or
// an ack: it shares the durable commit of the writers waiting at that
// moment instead of making them wait for a commit of its own, so that to
// ingest and acks a sweep costs what one more submitter does.
func (s *Spool) Sweep() (SweepResult, error) {
	var res SweepResult
	now := s.opts.Now()
	longest := &res.LongestWrite
	var err error
	res.Submissions, err = s.sweepBucket(bSubs, now, sweepBatch, s.subDue, s.deleteDueSub, longest)
	if err != nil {
		return res, err
	}
	res.Uploads, err = s.sweepBucket(bUploads, now, sweepBatch, uploadDue, s.deleteDueUpload, longest)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	err = s.update(func(tx *bolt.Tx) error {
		var err error
		res.Mailboxes, err = s.sweepMailboxes(tx, now)
		return err
	})
	*longest = max(*longest, time.Since(t0))
	if err != nil {
		return res, err
	}
	res.Events, err = s.sweepBucket(bEvents, now, sweepEventsBatch, s.eventRecordDue, s.deleteDueEvent, longest)
	return res, err
}

// subDue reports whether a submission's record is past its retention at
// now. FirstAck is rounded down; one granule more never deletes early. A
// DeleteAfterAck of zero waits for every route instead.
func (s *Spool) subDue(v []byte, now time.Time) (bool, error) {
	var sub Submission
	if err := decodeRecord(v, "submission", &sub); err != nil {
		return false, err
	}
	ackDue := sub.DeleteAfterAck > 0 && !sub.FirstAck.IsZero() && !now.Before(sub.FirstAck.Add(sub.DeleteAfterAck+s.opts.Coarse))
	return ackDue || !now.Before(sub.KeepUntil), nil
}

func uploadDue(v []byte, now time.Time) (bool, error) {
	var u Upload
	if err := decodeRecord(v, "upload", &u); err != nil {
		return false, err
	}
	return !now.Before(u.Expires), nil
}

// deleteDueSub deletes the submission at key in tx if it is still due.
func (s *Spool) deleteDueSub(tx *bolt.Tx, key []byte, now time.Time) (bool, error) {
	v := tx.Bucket(bSubs).Get(key)
	if v == nil {
		return false, nil
	}
	if due, err := s.subDue(v, now); err != nil || !due {
		return false, err
	}
	var sub Submission
	if err := decodeRecord(v, "submission", &sub); err != nil {
		return false, err
	}
	return true, s.deleteSub(tx, key, &sub)
}

// deleteDueUpload deletes the upload at key in tx if it is still expired.
func (s *Spool) deleteDueUpload(tx *bolt.Tx, key []byte, now time.Time) (bool, error) {
	v := tx.Bucket(bUploads).Get(key)
	if v == nil {
		return false, nil
	}
	var u Upload
	if err := decodeRecord(v, "upload", &u); err != nil {
		return false, err
	}
	if now.Before(u.Expires) {
		return false, nil
	}
	if err := deleteChunks(tx, key); err != nil {
		return false, err
	}
	if err := tx.Bucket(bUploads).Delete(key); err != nil {
		return false, err
	}
	return true, s.reserve(tx, u.Desk, -u.Offset)
}

// sweepBucket deletes the records of bucket that due says are due: it
// looks for them in read transactions of at most sweepScan records each,
// resuming after the last key looked at, and deletes those it found in
// batches of at most batchSize, with del, which checks again; each batch
// is a function given to bbolt's Batch (which may run it twice, in a
// transaction of its own after a failure of another function in the
// batch: del is idempotent, and n is counted afresh). Each transaction is
// told to sweepHook, when set.
func (s *Spool) sweepBucket(bucket []byte, now time.Time, batchSize int, due func(v []byte, now time.Time) (bool, error),
	del func(tx *bolt.Tx, key []byte, now time.Time) (bool, error), longest *time.Duration) (int, error) {
	total := 0
	var after []byte
	for {
		var found [][]byte
		var last []byte
		visited := 0
		t0 := time.Now()
		err := s.db.View(func(tx *bolt.Tx) error {
			found, last, visited = nil, nil, 0
			var prev []byte
			c := tx.Bucket(bucket).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil; k, v = c.Next() {
				if visited == s.sweepScan {
					last = slices.Clone(prev)
					return nil
				}
				visited++
				prev = k
				d, err := due(v, now)
				if err != nil {
					return err
				}
				if d {
					found = append(found, slices.Clone(k))
				}
			}
			return nil
		})
		if s.sweepHook != nil {
			s.sweepHook(false, visited, time.Since(t0))
		}
		if err != nil {
			return total, err
		}
		for len(found) > 0 {
			batch := found[:min(len(found), batchSize)]
			found = found[len(batch):]
			t0 := time.Now()
			n := 0
			err := s.batch(func(tx *bolt.Tx) error {
				n = 0
				for _, k := range batch {
					ok, err := del(tx, k, now)
					if err != nil {
						return err
					}
					if ok {
						n++
					}
				}
				return nil
			})
			took := time.Since(t0)
			*longest = max(*longest, took)
			if s.sweepHook != nil {
				s.sweepHook(true, len(batch), took)
			}
			if err != nil {
				return total, err
			}
			total += n
		}
		if last == nil {
			return total, nil
		}
		after = last
	}
}
