package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Kinds of submission (Submission.Kind), as records keep them. An empty
// kind is an Amana bundle. The wire's kinds (relay/api) are the relay's to
// map these to.
const (
	// KindSelf is a file the submitter encrypted with age themselves, not
	// an Amana bundle.
	KindSelf = "self"
	// KindReply is a copy of a desk reply for the thread's other handlers.
	KindReply = "reply"
	// KindFollowup is a follow-up a submitter sent to their mailbox.
	KindFollowup = "followup"
)

// Kinds lists every kind a record may have, the bundle's empty one first.
var Kinds = []string{"", KindSelf, KindReply, KindFollowup}

func getJSON(b *bolt.Bucket, k []byte, v any) error {
	raw := b.Get(k)
	if raw == nil {
		return ErrNotFound
	}
	return decodeRecord(raw, "spool", v)
}

// decodeRecord decodes a stored record. Its error names the kind of record,
// never the record's key: keys are submission IDs, upload tokens and mailbox
// IDs, and errors reach the relay's log.
func decodeRecord(raw []byte, kind string, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding %s record: %w", kind, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding spool record: %w", err)
	}
	return b.Put(k, raw)
}

func getUint(b *bolt.Bucket, k []byte) int64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putUint(b *bolt.Bucket, k []byte, n int64) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(n))
	return b.Put(k, v[:])
}

// deskKey is the meta key counting one desk's stored bytes.
func deskKey(desk string) []byte { return []byte("committed/" + desk) }

// reserve adds delta to the count of stored bytes, overall and of desk,
// failing with ErrQuota if that would pass the quota or the desk's quota.
func (s *Spool) reserve(tx *bolt.Tx, desk string, delta int64) error {
	m := tx.Bucket(bMeta)
	c := getUint(m, kCommitted) + delta
	d := getUint(m, deskKey(desk)) + delta
	if delta > 0 && (c > s.opts.Quota || d > s.opts.DeskQuota) {
		return ErrQuota
	}
	if err := s.roomFor(tx, delta); err != nil {
		return err
	}
	if err := putUint(m, deskKey(desk), max(d, 0)); err != nil {
		return err
	}
	return putUint(m, kCommitted, max(c, 0))
}

// fits reports whether n more bytes for desk would stay within the quotas.
func (s *Spool) fits(tx *bolt.Tx, desk string, n int64) bool {
	m := tx.Bucket(bMeta)
	return getUint(m, kCommitted)+n <= s.opts.Quota && getUint(m, deskKey(desk))+n <= s.opts.DeskQuota
}
