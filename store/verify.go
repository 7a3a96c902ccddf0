package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Facts are what Verify counted.
type Facts struct {
	Submissions int
	Uploads     int
	UploadBytes int64 // what unfinished uploads have received
	Mailboxes   int
	Replies     int
	Events      int
}

// Verify checks, in one read transaction, bbolt's consistency and the
// spool's own invariants:
//
//   - the quota counter equals the bytes the spool holds: stored
//     submissions, what unfinished uploads received, mailbox replies and
//     events (with their records and index entries, eventCharge); each
//     desk's counter equals that desk's share but its events, and each
//     desk's event counter its events';
//   - the event index has exactly one entry for each route waiting for
//     each event;
//   - every submission, upload, reply and event has exactly its chunks: commit
//     buckets that start where the previous ended, chunks that follow each
//     other, covering its whole size; and no chunks belong to nobody;
//   - no key is both a submission and an upload, and no upload's offset
//     lies outside its length.
//
// It returns what it counted, and an error listing at most ten problems.
// It changes nothing, and names no key beyond its hex form.
func (s *Spool) Verify() (Facts, error) {
	var f Facts
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt consistency check: %w", errors.Join(errs...))
		}
		perDesk := map[string]int64{}
		perDeskEvents := map[string]int64{} // what the desks' events count
		want := map[string]bool{}           // the entries the event index must have
		wantSubs := map[string]bool{}       // the entries the submission index must have
		extent := map[string]int64{}        // bytes of chunks each key must have
		var total int64
		err := tx.Bucket(bSubs).ForEach(func(k, v []byte) error {
			var sub Submission
			if err := decodeRecord(v, "submission", &sub); err != nil {
				return err
			}
			f.Submissions++
			perDesk[sub.Desk] += sub.Size
			total += sub.Size
			extent[string(k)] = sub.Size
			for _, r := range sub.Routes {
				if !slices.Contains(sub.Acks, r) {
					wantSubs[string(routeKey(r, k))] = true
				}
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
			if u.Offset < 0 || u.Offset > u.Length {
				problem("upload %x at offset %d of %d", k, u.Offset, u.Length)
			}
			f.Uploads++
			f.UploadBytes += u.Offset
			perDesk[u.Desk] += u.Offset
			total += u.Offset
			if _, dup := extent[string(k)]; dup {
				problem("%x is both a submission and an upload", k)
			}
			extent[string(k)] = u.Offset
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bMailboxes).ForEach(func(k, v []byte) error {
			var m Mailbox
			if err := decodeRecord(v, "mailbox", &m); err != nil {
				return err
			}
			f.Mailboxes++
			for _, r := range m.Replies {
				key, err := hex.DecodeString(r.ID)
				if err != nil || len(key) != 16 {
					problem("mailbox %x: reply ID %q", k, r.ID)
					continue
				}
				f.Replies++
				perDesk[m.Desk] += r.Size
				total += r.Size
				extent[string(key)] = r.Size
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bEvents).ForEach(func(k, v []byte) error {
			var ev Event
			if err := decodeRecord(v, "event", &ev); err != nil {
				return err
			}
			f.Events++
			charge := eventCharge(&ev)
			perDeskEvents[ev.Desk] += charge
			total += charge
			if _, dup := extent[string(k)]; dup {
				problem("%x is both an event and another record", k)
			}
			extent[string(k)] = ev.Size
			for _, r := range ev.Routes {
				if !slices.Contains(ev.Acks, r) {
					want[string(routeKey(r, k))] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bEventRoutes).ForEach(func(k, v []byte) error {
			if !want[string(k)] {
				problem("the event index has an entry %x for no event waiting for its route", k)
			}
			delete(want, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		if len(want) > 0 {
			problem("%d routes waiting for events have no entry in the event index", len(want))
		}
		err = tx.Bucket(bSubRoutes).ForEach(func(k, v []byte) error {
			if !wantSubs[string(k)] {
				problem("the submission index has an entry %x for no submission waiting for its route", k)
			}
			delete(wantSubs, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		if len(wantSubs) > 0 {
			problem("%d routes waiting for submissions have no entry in the submission index", len(wantSubs))
		}
		meta := tx.Bucket(bMeta)
		if c := getUint(meta, kCommitted); c != total {
			problem("the quota counter says %d bytes; the spool holds %d", c, total)
		}
		c := meta.Cursor()
		prefix := deskKey("")
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			desk := string(k[len(prefix):])
			if n := getUint(meta, k); n != perDesk[desk] {
				problem("desk %q's quota counter says %d bytes; it holds %d", desk, n, perDesk[desk])
			}
			delete(perDesk, desk)
		}
		for desk, n := range perDesk {
			if n != 0 {
				problem("desk %q holds %d bytes and has no quota counter", desk, n)
			}
		}
		prefix = eventsKey("")
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			desk := string(k[len(prefix):])
			if n := getUint(meta, k); n != perDeskEvents[desk] {
				problem("desk %q's event quota counter says %d bytes; its events hold %d", desk, n, perDeskEvents[desk])
			}
			delete(perDeskEvents, desk)
		}
		for desk, n := range perDeskEvents {
			if n != 0 {
				problem("desk %q's events hold %d bytes and have no quota counter", desk, n)
			}
		}
		chunks := tx.Bucket(bChunks)
		seen := map[string]bool{}
		err = chunks.ForEach(func(k, v []byte) error {
			if v != nil {
				problem("chunks holds a value at %x", k)
				return nil
			}
			want, ok := extent[string(k)]
			if !ok {
				problem("orphan chunks %x: no submission, upload, reply or event owns them", k)
				return nil
			}
			seen[string(k)] = true
			sb := chunks.Bucket(k)
			var next int64
			err := sb.ForEachBucket(func(bk []byte) error {
				if start := unbe64(bk); start != next {
					problem("chunks of %x: a commit starts at %d, expected %d", k, start, next)
				}
				return sb.Bucket(bk).ForEach(func(ck, cv []byte) error {
					if off := unbe64(ck); off != next {
						problem("chunks of %x: chunk at %d, expected %d", k, off, next)
					}
					next = unbe64(ck) + int64(len(cv))
					return nil
				})
			})
			if err != nil {
				return err
			}
			if next != want {
				problem("chunks of %x cover %d bytes; it has %d", k, next, want)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, n := range extent {
			if n > 0 && !seen[k] {
				problem("%x has %d bytes and no chunks", k, n)
			}
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return f, fmt.Errorf("spool invariants: %s", strings.Join(problems, "; "))
	}
	return f, nil
}
