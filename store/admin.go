package store

import (
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Stats is a summary of the spool, with no detail about any submission.
type Stats struct {
	Submissions int
	Uploads     int
	Events      int   // case journal events waiting
	Committed   int64 // bytes counted against the quota
	Quota       int64
	FileSize    int64 // size of the spool file
}

// Stats returns a summary of the spool.
func (s *Spool) Stats() (Stats, error) {
	st := Stats{Quota: s.opts.Quota}
	err := s.db.View(func(tx *bolt.Tx) error {
		st.Submissions = tx.Bucket(bSubs).Stats().KeyN
		st.Uploads = tx.Bucket(bUploads).Stats().KeyN
		st.Events = tx.Bucket(bEvents).Stats().KeyN
		st.Committed = getUint(tx.Bucket(bMeta), kCommitted)
		st.FileSize = tx.Size()
		return nil
	})
	return st, err
}

// Check runs bbolt's consistency check over the whole file.
func (s *Spool) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// Snapshot calls fn, inside one read transaction, with the size of a
// consistent copy of the spool and a function that writes that copy: a
// bbolt file that Open reads. Writers carry on meanwhile, except that the
// file cannot grow until fn returns.
func (s *Spool) Snapshot(fn func(size int64, writeTo func(io.Writer) error) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return fn(tx.Size(), func(w io.Writer) error {
			_, err := tx.WriteTo(w)
			return err
		})
	})
}

// FreeBytes returns how much of the file lies in bbolt's free and pending
// pages (those of deleted submissions, waiting for reuse): about what
// Compact gives back. It takes the write lock for a moment (bbolt counts
// its freelist when a write transaction ends; this one is rolled back and
// writes nothing).
func (s *Spool) FreeBytes() (int64, error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("reading the spool's free pages: %w", err)
	}
	if err := tx.Rollback(); err != nil {
		return 0, fmt.Errorf("reading the spool's free pages: %w", err)
	}
	return int64(s.db.Stats().FreeAlloc), nil
}
