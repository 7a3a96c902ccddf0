package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bEvents holds the case journal's events (schema 2): opaque ciphertexts
// that handlers post to each other, apart from the submissions a desk
// receives.
var bEvents = []byte("events")

// Kinds of event (Event.Kind), as records keep them. The relay maps them to
// the wire's (relay/api).
const (
	// KindEvent is a case event, for the handlers of its category.
	KindEvent = "event"
	// KindFacts is the text-free twin of a case event, for the desk's
	// coordinators.
	KindFacts = "facts"
	// KindShare is a case's history, for one handler of its category.
	KindShare = "share"
)

// EventKinds lists every kind an event record may have.
var EventKinds = []string{KindEvent, KindFacts, KindShare}

// EventSpec is what the relay decides about a new event: where it goes and
// how long it is kept. The spool interprets only the durations and Acked.
type EventSpec struct {
	Desk     string
	Category string // a route label, as for submissions
	Kind     string // one of EventKinds
	Routes   []string
	// Acked are the routes that already hold the event (its author): they
	// are recorded as acknowledged from the start, and start no
	// DeleteAfterAck clock, which only a receiver's ack starts. Each must
	// be in Routes.
	Acked []string
	// DeleteAfterAck and KeepUnacked are the desk's retention, as for a
	// submission (UploadSpec).
	DeleteAfterAck time.Duration
	KeepUnacked    time.Duration
}

// Event is a stored event. Like a submission it holds no member that a
// handler typed: the ciphertext's size and hash, its desk, the category
// that routed it, and which routes have acknowledged it.
type Event struct {
	ID             string        `json:"id"`
	Desk           string        `json:"desk"`
	Category       string        `json:"category,omitempty"`
	Kind           string        `json:"kind"`
	Size           int64         `json:"size"`
	SHA256         string        `json:"sha256"`
	Received       time.Time     `json:"received"` // coarsened
	Routes         []string      `json:"routes"`
	Acks           []string      `json:"acks"`
	FirstAck       time.Time     `json:"first_ack,omitzero"` // coarsened
	DeleteAfterAck time.Duration `json:"delete_after_ack"`
	KeepUntil      time.Time     `json:"keep_until"`
}

// errEventSpec: an event spec the relay should never make.
var errEventSpec = errors.New("invalid event spec")

func checkEventSpec(spec *EventSpec, n int) error {
	switch {
	case n <= 0:
		return fmt.Errorf("%w: empty event", errEventSpec)
	case len(spec.Routes) == 0:
		return fmt.Errorf("%w: no routes", errEventSpec)
	case !slices.Contains(EventKinds, spec.Kind):
		return fmt.Errorf("%w: kind %q", errEventSpec, spec.Kind)
	}
	for _, a := range spec.Acked {
		if !slices.Contains(spec.Routes, a) {
			return fmt.Errorf("%w: an acknowledged route is not a route", errEventSpec)
		}
	}
	return nil
}

// PutEvent stores an event given whole, in one durable commit shared with
// other concurrent calls (bbolt's Batch), counting it against the desk's
// quota as a submission is, and returns it. When every route is already
// in spec.Acked there is no one to deliver it to, and nothing is stored:
// the returned event has an ID and no record.
func (s *Spool) PutEvent(spec EventSpec, data []byte) (*Event, error) {
	if err := checkEventSpec(&spec, len(data)); err != nil {
		return nil, err
	}
	var key [16]byte
	rand.Read(key[:])
	sum := sha256.Sum256(data)
	now := s.opts.Now()
	ev := &Event{
		ID:             hex.EncodeToString(key[:]),
		Desk:           spec.Desk,
		Category:       spec.Category,
		Kind:           spec.Kind,
		Size:           int64(len(data)),
		SHA256:         hex.EncodeToString(sum[:]),
		Received:       s.coarse(now),
		Routes:         spec.Routes,
		Acks:           []string{},
		DeleteAfterAck: spec.DeleteAfterAck,
		KeepUntil:      s.coarse(now.Add(spec.KeepUnacked + s.opts.Coarse)),
	}
	for _, r := range spec.Routes {
		if slices.Contains(spec.Acked, r) && !slices.Contains(ev.Acks, r) {
			ev.Acks = append(ev.Acks, r)
		}
	}
	if len(ev.Acks) == len(ev.Routes) {
		return ev, nil
	}
	var chunks [][]byte
	for off := 0; off < len(data); off += ChunkSize {
		chunks = append(chunks, data[off:min(off+ChunkSize, len(data))])
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		if err := s.reserve(tx, spec.Desk, ev.Size); err != nil {
			return err
		}
		if err := putChunks(tx, key[:], 0, chunks); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bEvents), key[:], ev)
	})
	if err != nil {
		return nil, wrapStorage(err)
	}
	return ev, nil
}

// Event returns one stored event.
func (s *Spool) Event(id string) (*Event, error) {
	key, err := subKey(id)
	if err != nil {
		return nil, err
	}
	var ev Event
	err = s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bEvents), key, &ev) })
	if err != nil {
		return nil, err
	}
	return &ev, nil
}

// ReadEvent returns the whole ciphertext of an event, read in one
// transaction (an event is small: at most a few chunks).
func (s *Spool) ReadEvent(id string) ([]byte, error) {
	key, err := subKey(id)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = s.db.View(func(tx *bolt.Tx) error {
		var ev Event
		if err := getJSON(tx.Bucket(bEvents), key, &ev); err != nil {
			return err
		}
		out = make([]byte, 0, ev.Size)
		for off := int64(0); off < ev.Size; {
			v, start, err := chunkAt(tx, key, off)
			if err != nil {
				return err
			}
			out = append(out, v[off-start:]...)
			off = start + int64(len(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Events returns every stored event for which keep returns true (all of
// them when keep is nil).
func (s *Spool) Events(keep func(*Event) bool) ([]*Event, error) {
	var out []*Event
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bEvents).ForEach(func(k, v []byte) error {
			var ev Event
			if err := decodeRecord(v, "event", &ev); err != nil {
				return err
			}
			if keep == nil || keep(&ev) {
				out = append(out, &ev)
			}
			return nil
		})
	})
	return out, err
}

// EventsPage is SubmissionsPage over the events: up to limit events for
// which keep returns true, in ID order, starting just past after; next is
// where the following page starts, "" at the end.
func (s *Spool) EventsPage(after string, limit int, keep func(*Event) bool) (evs []*Event, next string, err error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("listing events: page limit %d is not positive", limit)
	}
	var start []byte
	if after != "" {
		if start, err = subKey(after); err != nil {
			return nil, "", ErrCursor
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
			if k != nil && bytes.Equal(k, start) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(evs) == limit {
				next = evs[len(evs)-1].ID
				return nil
			}
			var ev Event
			if err := decodeRecord(v, "event", &ev); err != nil {
				return err
			}
			if keep == nil || keep(&ev) {
				evs = append(evs, &ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return evs, next, nil
}

// AckEvent is Ack for an event: it records that route holds the event and
// returns the live routes still waiting; when none is left, the event is
// deleted in the same transaction.
func (s *Spool) AckEvent(id, route string, live func(route string) bool) (deleted bool, waiting []string, err error) {
	key, err := subKey(id)
	if err != nil {
		return false, nil, err
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		deleted, waiting = false, nil
		var ev Event
		if err := getJSON(tx.Bucket(bEvents), key, &ev); err != nil {
			return err
		}
		if !slices.Contains(ev.Routes, route) {
			return ErrNotFound
		}
		if !slices.Contains(ev.Acks, route) {
			ev.Acks = append(ev.Acks, route)
		}
		if ev.FirstAck.IsZero() {
			ev.FirstAck = s.coarse(s.opts.Now())
		}
		for _, r := range ev.Routes {
			if !slices.Contains(ev.Acks, r) && (live == nil || live(r)) {
				waiting = append(waiting, r)
			}
		}
		if len(waiting) == 0 {
			deleted = true
			return s.deleteEvent(tx, key, ev.Desk, ev.Size)
		}
		return putJSON(tx.Bucket(bEvents), key, &ev)
	})
	if err != nil {
		return false, nil, wrapStorage(err)
	}
	return deleted, waiting, nil
}

func (s *Spool) deleteEvent(tx *bolt.Tx, key []byte, desk string, size int64) error {
	if err := deleteChunks(tx, key); err != nil {
		return err
	}
	if err := tx.Bucket(bEvents).Delete(key); err != nil {
		return err
	}
	return s.reserve(tx, desk, -size)
}

// eventDue reports whether an event is past its retention at now, by the
// rules of a submission's (Sweep).
func (s *Spool) eventDue(ev *Event, now time.Time) bool {
	ackDue := ev.DeleteAfterAck > 0 && !ev.FirstAck.IsZero() && !now.Before(ev.FirstAck.Add(ev.DeleteAfterAck+s.opts.Coarse))
	return ackDue || !now.Before(ev.KeepUntil)
}

// sweepEventsBatch is how many events one of Sweep's transactions deletes
// at most, so that a sweep over many small events never holds the writer
// for long.
const sweepEventsBatch = 256

// sweepEvents deletes the events past their retention, at most
// sweepEventsBatch in each transaction.
func (s *Spool) sweepEvents(now time.Time) (int, error) {
	total := 0
	var after []byte
	for {
		n, last, err := s.sweepEventsFrom(after, now)
		total += n
		if err != nil || last == nil {
			return total, err
		}
		after = last
	}
}

// sweepEventsFrom deletes, in one transaction, up to sweepEventsBatch
// events due at now with keys after after (nil: from the first). It
// returns how many it deleted and the last key it looked at when it
// stopped before the end, nil at the end.
func (s *Spool) sweepEventsFrom(after []byte, now time.Time) (n int, last []byte, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		n, last = 0, nil
		type victim struct {
			key  []byte
			desk string
			size int64
		}
		var vs []victim
		c := tx.Bucket(bEvents).Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(vs) == sweepEventsBatch {
				last = vs[len(vs)-1].key
				break
			}
			var ev Event
			if err := decodeRecord(v, "event", &ev); err != nil {
				return err
			}
			if s.eventDue(&ev, now) {
				vs = append(vs, victim{slices.Clone(k), ev.Desk, ev.Size})
			}
		}
		for _, v := range vs {
			if err := s.deleteEvent(tx, v.key, v.desk, v.size); err != nil {
				return err
			}
		}
		n = len(vs)
		return nil
	})
	return n, last, err
}
