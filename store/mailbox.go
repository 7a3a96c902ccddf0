package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bMailboxes = []byte("mailboxes")

// Mailbox is where a desk's replies to one submitter wait. It is found by
// its ID, which only the submitter's receipt and the encrypted report name.
type Mailbox struct {
	ID       string    `json:"id"`
	Desk     string    `json:"desk"`
	Category string    `json:"category,omitempty"`
	Routes   []string  `json:"routes"`  // handler key IDs of the thread
	Stanzas  []string  `json:"stanzas"` // their age stanza types
	Replies  []Reply   `json:"replies"`
	Last     time.Time `json:"last"`    // last activity, coarsened
	Expires  time.Time `json:"expires"` // coarsened
}

// Reply is one desk reply in a mailbox, or the submitter's own copy of a
// follow-up (Own).
type Reply struct {
	ID       string    `json:"id"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Received time.Time `json:"received"` // coarsened
	// Own marks a copy of the submitter's follow-up, sealed to their
	// reply key alone, so that the thread shows what they wrote.
	Own bool `json:"own,omitempty"`
}

func mailboxKey(id string) ([]byte, error) {
	k, err := hex.DecodeString(id)
	if err != nil || len(k) != 16 {
		return nil, ErrNotFound
	}
	return k, nil
}

func (s *Spool) mailboxExpiry() time.Time {
	return s.coarse(s.opts.Now().Add(s.opts.MailboxTTL + s.opts.Coarse))
}

// Mailbox returns a mailbox. An unknown and an expired mailbox are the
// same ErrNotFound.
func (s *Spool) Mailbox(id string) (*Mailbox, error) {
	key, err := mailboxKey(id)
	if err != nil {
		return nil, err
	}
	var m Mailbox
	err = s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bMailboxes), key, &m) })
	if err != nil {
		return nil, err
	}
	if !s.opts.Now().Before(m.Expires) {
		return nil, ErrNotFound
	}
	return &m, nil
}

// EnsureMailbox returns the mailbox id, creating it with the given desk,
// category and routes if there is none; an existing mailbox keeps its own.
// Either way its expiry starts again.
func (s *Spool) EnsureMailbox(id, desk, category string, routes, stanzas []string) (*Mailbox, error) {
	key, err := mailboxKey(id)
	if err != nil {
		return nil, err
	}
	var m Mailbox
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMailboxes)
		err := getJSON(b, key, &m)
		if errors.Is(err, ErrNotFound) || err == nil && !s.opts.Now().Before(m.Expires) {
			if err == nil {
				if err := s.deleteMailbox(tx, key, &m); err != nil {
					return err
				}
			}
			m = Mailbox{ID: id, Desk: desk, Category: category, Routes: routes, Stanzas: stanzas, Replies: []Reply{}}
		} else if err != nil {
			return err
		}
		m.Last, m.Expires = s.coarse(s.opts.Now()), s.mailboxExpiry()
		return putJSON(b, key, &m)
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// PutReply files a reply in a mailbox that exists, and, if copyRoutes is
// not empty, delivers a copy to those handlers' inboxes as a submission of
// kind "reply" under spec. spec's Routes and Stanzas are the thread's
// handlers as of this reply: they become the mailbox's, so that a reply
// can move a thread to handlers other than those it had; the copy goes to
// copyRoutes only. It returns the reply's ID.
func (s *Spool) PutReply(mailboxID string, data []byte, spec UploadSpec, copyRoutes []string) (string, error) {
	return s.putReply(mailboxID, data, spec, copyRoutes, false)
}

// PutOwnCopy files in a mailbox that exists the submitter's own copy of a
// follow-up they sent, after the replies so far. It changes nothing of the
// thread's routing and delivers nothing to an inbox.
func (s *Spool) PutOwnCopy(mailboxID string, data []byte) (string, error) {
	return s.putReply(mailboxID, data, UploadSpec{}, nil, true)
}

func (s *Spool) putReply(mailboxID string, data []byte, spec UploadSpec, copyRoutes []string, own bool) (string, error) {
	key, err := mailboxKey(mailboxID)
	if err != nil {
		return "", err
	}
	var rid [16]byte
	rand.Read(rid[:])
	sum := sha256.Sum256(data)
	var chunks [][]byte
	for off := 0; off < len(data); off += ChunkSize {
		chunks = append(chunks, data[off:min(off+ChunkSize, len(data))])
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMailboxes)
		var m Mailbox
		if err := getJSON(b, key, &m); err != nil {
			return err
		}
		size := int64(len(data))
		if len(copyRoutes) > 0 {
			size *= 2
		}
		if err := s.reserve(tx, m.Desk, size); err != nil {
			return err
		}
		if err := putChunks(tx, rid[:], 0, chunks); err != nil {
			return err
		}
		now := s.coarse(s.opts.Now())
		if len(spec.Routes) > 0 {
			m.Routes, m.Stanzas = spec.Routes, spec.Stanzas
		}
		m.Replies = append(m.Replies, Reply{ID: hex.EncodeToString(rid[:]), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Received: now, Own: own})
		m.Last, m.Expires = now, s.mailboxExpiry()
		if err := putJSON(b, key, &m); err != nil {
			return err
		}
		if len(copyRoutes) == 0 {
			return nil
		}
		var ck [16]byte
		rand.Read(ck[:])
		if err := putChunks(tx, ck[:], 0, chunks); err != nil {
			return err
		}
		spec.Routes, spec.Kind, spec.Mailbox, spec.Length = copyRoutes, KindReply, mailboxID, int64(len(data))
		h := sha256.New()
		h.Write(data)
		_, err := s.newSubmission(tx, ck[:], &spec, h)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(rid[:]), nil
}

// OpenReply reads a reply of a mailbox.
func (s *Spool) OpenReply(mailboxID, replyID string) (io.Reader, error) {
	m, err := s.Mailbox(mailboxID)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(m.Replies, func(r Reply) bool { return r.ID == replyID })
	if i < 0 {
		return nil, ErrNotFound
	}
	key, _ := hex.DecodeString(replyID)
	return &chunkReader{s: s, key: key, size: m.Replies[i].Size, mailbox: mailboxID}, nil
}

func (s *Spool) deleteMailbox(tx *bolt.Tx, key []byte, m *Mailbox) error {
	var size int64
	for _, r := range m.Replies {
		k, err := hex.DecodeString(r.ID)
		if err != nil {
			return fmt.Errorf("mailbox reply ID: %w", err)
		}
		if err := deleteChunks(tx, k); err != nil {
			return err
		}
		size += r.Size
	}
	if err := tx.Bucket(bMailboxes).Delete(key); err != nil {
		return err
	}
	return s.reserve(tx, m.Desk, -size)
}

// sweepMailboxes deletes expired mailboxes and their replies.
func (s *Spool) sweepMailboxes(tx *bolt.Tx, now time.Time) (int, error) {
	type victim struct {
		key []byte
		m   Mailbox
	}
	var vs []victim
	err := tx.Bucket(bMailboxes).ForEach(func(k, v []byte) error {
		var m Mailbox
		if err := decodeRecord(v, "mailbox", &m); err != nil {
			return err
		}
		if !now.Before(m.Expires) {
			vs = append(vs, victim{slices.Clone(k), m})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, v := range vs {
		if err := s.deleteMailbox(tx, v.key, &v.m); err != nil {
			return 0, err
		}
	}
	return len(vs), nil
}

// Mailboxes returns every mailbox that has not expired for which keep
// returns true (all of them when keep is nil).
func (s *Spool) Mailboxes(keep func(*Mailbox) bool) ([]*Mailbox, error) {
	now := s.opts.Now()
	var out []*Mailbox
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bMailboxes).ForEach(func(k, v []byte) error {
			var m Mailbox
			if err := decodeRecord(v, "mailbox", &m); err != nil {
				return err
			}
			if now.Before(m.Expires) && (keep == nil || keep(&m)) {
				out = append(out, &m)
			}
			return nil
		})
	})
	return out, err
}
