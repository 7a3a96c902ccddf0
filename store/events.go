package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// bEventRoutes indexes the events by the routes still waiting for them:
// key routeKey(route, event key), no value. An entry is written for each
// route not acknowledged when the event is stored, and removed when that
// route acks or the event is deleted, so that a route's listing seeks its
// own entries instead of reading every event.
var bEventRoutes = []byte("eventroutes")

// routeKey is a route's index entry for the event key: the route's length
// in one byte, the route, then the key; routePrefix is its start.
func routeKey(route string, key []byte) []byte { return append(routePrefix(route), key...) }

func routePrefix(route string) []byte {
	return append([]byte{byte(len(route))}, route...)
}

// maxRouteLen bounds a route of an event, so that its index key has one
// spelling: a key ID is 43 bytes.
const maxRouteLen = 255

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
	for _, r := range spec.Routes {
		if r == "" || len(r) > maxRouteLen {
			return fmt.Errorf("%w: a route of %d bytes", errEventSpec, len(r))
		}
	}
	for _, a := range spec.Acked {
		if !slices.Contains(spec.Routes, a) {
			return fmt.Errorf("%w: an acknowledged route is not a route", errEventSpec)
		}
	}
	return nil
}

// PutEvent stores an event given whole, in one durable commit shared with
// other concurrent calls (bbolt's Batch), and returns it. It counts against
// the spool's quota and its desk's event quota (Options.EventQuota), never
// against the desk's quota for submissions. When every route is already
// in spec.Acked there is no one to deliver it to, and nothing is stored:
// the returned event has an ID and no record.
func (s *Spool) PutEvent(spec EventSpec, data []byte) (*Event, error) {
	if err := checkEventSpec(&spec, len(data)); err != nil {
		return nil, err
	}
	ev, key := s.newEvent(spec, data)
	if len(ev.Acks) == len(ev.Routes) {
		return ev, nil
	}
	err := s.db.Batch(func(tx *bolt.Tx) error { return s.putEvent(tx, ev, key, data) })
	if err != nil {
		return nil, wrapStorage(err)
	}
	return ev, nil
}

// newEvent makes the record of a new event and its key.
func (s *Spool) newEvent(spec EventSpec, data []byte) (*Event, []byte) {
	key := make([]byte, 16)
	rand.Read(key)
	sum := sha256.Sum256(data)
	now := s.opts.Now()
	ev := &Event{
		ID:             hex.EncodeToString(key),
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
	return ev, key
}

// putEvent writes a new event in tx: its quota, chunks, record and the
// index entries of the routes waiting for it.
func (s *Spool) putEvent(tx *bolt.Tx, ev *Event, key, data []byte) error {
	if err := s.reserveEvents(tx, ev.Desk, eventCharge(ev)); err != nil {
		return err
	}
	var chunks [][]byte
	for off := 0; off < len(data); off += ChunkSize {
		chunks = append(chunks, data[off:min(off+ChunkSize, len(data))])
	}
	if err := putChunks(tx, key, 0, chunks); err != nil {
		return err
	}
	idx := tx.Bucket(bEventRoutes)
	for _, r := range ev.Routes {
		if !slices.Contains(ev.Acks, r) {
			if err := idx.Put(routeKey(r, key), []byte{}); err != nil {
				return err
			}
		}
	}
	return putJSON(tx.Bucket(bEvents), key, ev)
}

// eventCharge is what an event counts against the quotas, the same from
// its storing to its deletion: its ciphertext, its record as large as it
// can grow (every route acknowledged) and its index entries.
func eventCharge(ev *Event) int64 {
	full := *ev
	full.Acks = full.Routes
	full.FirstAck = full.Received
	raw, _ := json.Marshal(&full)
	n := ev.Size + int64(len(raw))
	for _, r := range ev.Routes {
		n += int64(1 + len(r) + 16)
	}
	return n
}

// eventsKey is the meta key counting one desk's event bytes.
func eventsKey(desk string) []byte { return []byte("events/" + desk) }

// reserveEvents adds delta to the count of stored bytes, overall and of
// desk's events, failing with ErrQuota if that would pass the quota or the
// desk's event quota.
func (s *Spool) reserveEvents(tx *bolt.Tx, desk string, delta int64) error {
	m := tx.Bucket(bMeta)
	c := getUint(m, kCommitted) + delta
	d := getUint(m, eventsKey(desk)) + delta
	if delta > 0 && (c > s.opts.Quota || d > s.opts.EventQuota) {
		return ErrQuota
	}
	if err := s.roomFor(tx, delta); err != nil {
		return err
	}
	if err := putUint(m, eventsKey(desk), max(d, 0)); err != nil {
		return err
	}
	return putUint(m, kCommitted, max(c, 0))
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

// CountEvents returns how many stored events keep returns true for,
// decoding each record into the same Event in turn and keeping none: keep
// must not retain its argument.
func (s *Spool) CountEvents(keep func(*Event) bool) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		var ev Event
		return tx.Bucket(bEvents).ForEach(func(k, v []byte) error {
			ev = Event{}
			if err := decodeRecord(v, "event", &ev); err != nil {
				return err
			}
			if keep(&ev) {
				n++
			}
			return nil
		})
	})
	return n, err
}

// EventsPage lists the events waiting for route, as SubmissionsPage lists
// submissions: up to limit of those for which keep returns true, in ID
// order, starting just past after; next is where the following page
// starts, "" at the end. It reads only route's entries of the index, never
// the events of other routes, nor those route has acknowledged.
func (s *Spool) EventsPage(route, after string, limit int, keep func(*Event) bool) (evs []*Event, next string, err error) {
	start, ok, err := routePageStart("events", route, after, limit)
	if !ok || err != nil {
		return nil, "", err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bEvents)
		return walkRoute(tx, bEventRoutes, route, start, func(key []byte) (bool, error) {
			if len(evs) == limit {
				next = evs[len(evs)-1].ID
				return true, nil
			}
			var ev Event
			if err := getJSON(events, key, &ev); err != nil {
				return false, fmt.Errorf("listing events: an index entry: %w", err)
			}
			if keep == nil || keep(&ev) {
				evs = append(evs, &ev)
			}
			return false, nil
		})
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
		if err := tx.Bucket(bEventRoutes).Delete(routeKey(route, key)); err != nil {
			return err
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
			return s.deleteEvent(tx, key, &ev)
		}
		return putJSON(tx.Bucket(bEvents), key, &ev)
	})
	if err != nil {
		return false, nil, wrapStorage(err)
	}
	return deleted, waiting, nil
}

// deleteEvent deletes an event in tx: its chunks, record, index entries
// and what it counted against the quotas.
func (s *Spool) deleteEvent(tx *bolt.Tx, key []byte, ev *Event) error {
	if err := deleteChunks(tx, key); err != nil {
		return err
	}
	if err := tx.Bucket(bEvents).Delete(key); err != nil {
		return err
	}
	idx := tx.Bucket(bEventRoutes)
	for _, r := range ev.Routes {
		if err := idx.Delete(routeKey(r, key)); err != nil {
			return err
		}
	}
	return s.reserveEvents(tx, ev.Desk, -eventCharge(ev))
}

// eventDue reports whether an event is past its retention at now, by the
// rules of a submission's (Sweep).
func (s *Spool) eventDue(ev *Event, now time.Time) bool {
	ackDue := ev.DeleteAfterAck > 0 && !ev.FirstAck.IsZero() && !now.Before(ev.FirstAck.Add(ev.DeleteAfterAck+s.opts.Coarse))
	return ackDue || !now.Before(ev.KeepUntil)
}

const (
	// sweepEventsScan is how many event records one of Sweep's read
	// transactions looks at, to find those due.
	sweepEventsScan = 4096
	// sweepEventsBatch is how many due events one of Sweep's write
	// transactions deletes at most. A write transaction looks at nothing
	// else, so that a sweep over many events never holds the writer for
	// long, whatever the number of events not due.
	sweepEventsBatch = 256
)

// sweepTx, when set (by tests and benchmarks), is told of each of
// the sweep's transactions (sweepBucket): whether it wrote, how many records it
// looked at, and how long it took.
type sweepTx func(write bool, visited int, took time.Duration)

// eventRecordDue reports whether the event record v is past its
// retention at now (sweepBucket's due).
func (s *Spool) eventRecordDue(v []byte, now time.Time) (bool, error) {
	var ev Event
	if err := decodeRecord(v, "event", &ev); err != nil {
		return false, err
	}
	return s.eventDue(&ev, now), nil
}

// deleteDueEvent deletes, in tx, the event key names if it is still due at
// now (it may have been acked or deleted since it was found), and reports
// whether it did (sweepBucket's del).
func (s *Spool) deleteDueEvent(tx *bolt.Tx, key []byte, now time.Time) (bool, error) {
	var ev Event
	err := getJSON(tx.Bucket(bEvents), key, &ev)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || !s.eventDue(&ev, now) {
		return false, err
	}
	return true, s.deleteEvent(tx, key, &ev)
}
