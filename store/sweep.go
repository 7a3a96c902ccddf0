package store

import (
	"slices"

	bolt "go.etcd.io/bbolt"
)

// SweepResult counts what Sweep deleted.
type SweepResult struct {
	Submissions int // past their retention
	Uploads     int // abandoned
	Mailboxes   int // expired
	Events      int // case journal events past their retention
}

// Sweep deletes submissions past their retention, uploads past their
// expiry and expired mailboxes in one transaction, then events past their
// retention in small ones (sweepEventsBatch each).
func (s *Spool) Sweep() (SweepResult, error) {
	var res SweepResult
	now := s.opts.Now()
	err := s.update(func(tx *bolt.Tx) error {
		res = SweepResult{}
		type victim struct {
			key  []byte
			desk string
			size int64
		}
		var subs, ups []victim
		err := tx.Bucket(bSubs).ForEach(func(k, v []byte) error {
			var sub Submission
			if err := decodeRecord(v, "submission", &sub); err != nil {
				return err
			}
			// FirstAck is rounded down; one granule more never deletes early.
			// A DeleteAfterAck of zero waits for every route instead.
			ackDue := sub.DeleteAfterAck > 0 && !sub.FirstAck.IsZero() && !now.Before(sub.FirstAck.Add(sub.DeleteAfterAck+s.opts.Coarse))
			if ackDue || !now.Before(sub.KeepUntil) {
				subs = append(subs, victim{slices.Clone(k), sub.Desk, sub.Size})
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bUploads).ForEach(func(k, v []byte) error {
			var u Upload
			if err := decodeRecord(v, "upload", &u); err != nil {
				return err
			}
			if !now.Before(u.Expires) {
				ups = append(ups, victim{slices.Clone(k), u.Desk, u.Offset})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, v := range subs {
			if err := s.deleteSub(tx, v.key, v.desk, v.size); err != nil {
				return err
			}
		}
		for _, v := range ups {
			if err := deleteChunks(tx, v.key); err != nil {
				return err
			}
			if err := tx.Bucket(bUploads).Delete(v.key); err != nil {
				return err
			}
			if err := s.reserve(tx, v.desk, -v.size); err != nil {
				return err
			}
		}
		res.Submissions, res.Uploads = len(subs), len(ups)
		res.Mailboxes, err = s.sweepMailboxes(tx, now)
		return err
	})
	if err != nil {
		return res, err
	}
	res.Events, err = s.sweepEvents(now)
	return res, err
}
