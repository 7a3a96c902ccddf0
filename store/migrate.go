package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// migrations[i] upgrades a spool from schema i+1 to i+2, inside the
// transaction that records the new version. A spool created today starts at
// SchemaVersion; add a function here, never edit one, when the layout changes.
var migrations = []func(*bolt.Tx) error{
	migrateEvents,
	migrateSubRoutes,
}

// migrateEvents (schema 1 to 2) adds the buckets of the case journal's
// events and of their index by route. A schema 1 spool holds no event, so
// the index starts empty. Nothing stored before changes.
func migrateEvents(tx *bolt.Tx) error {
	for _, b := range [][]byte{bEvents, bEventRoutes, bSubRoutes} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// migrateSubRoutes (schema 2 to 3) adds the index of the submissions by
// the routes still waiting for them (bSubRoutes), with an entry for each
// stored submission's route that has not acknowledged it. Nothing stored
// before changes.
func migrateSubRoutes(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bSubRoutes)
	if err != nil {
		return err
	}
	return tx.Bucket(bSubs).ForEach(func(k, v []byte) error {
		var sub Submission
		if err := decodeRecord(v, "submission", &sub); err != nil {
			return err
		}
		for _, r := range sub.Routes {
			if r == "" || len(r) > maxRouteLen || slices.Contains(sub.Acks, r) {
				continue
			}
			if err := idx.Put(routeKey(r, k), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// SchemaVersion is the layout version this code writes.
var SchemaVersion = int64(1 + len(migrations))

var allBuckets = [][]byte{bMeta, bUploads, bSubs, bChunks, bDesks, bMailboxes, bEvents, bEventRoutes, bSubRoutes}

func (s *Spool) migrate() error {
	return s.update(func(tx *bolt.Tx) error {
		fresh := tx.Bucket(bMeta) == nil
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("creating bucket %s: %w", b, err)
			}
		}
		m := tx.Bucket(bMeta)
		if fresh {
			return putUint(m, kSchema, SchemaVersion)
		}
		v := getUint(m, kSchema)
		if v > SchemaVersion {
			return &SchemaError{Found: v, Known: SchemaVersion}
		}
		if v < 1 {
			return fmt.Errorf("spool has no valid schema version (%d)", v)
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations[v-1](tx); err != nil {
				return fmt.Errorf("migrating spool from schema %d: %w", v, err)
			}
		}
		return putUint(m, kSchema, SchemaVersion)
	})
}

// Schema returns the spool's schema version.
func (s *Spool) Schema() (int64, error) {
	var v int64
	err := s.db.View(func(tx *bolt.Tx) error { v = getUint(tx.Bucket(bMeta), kSchema); return nil })
	return v, err
}

// Compact rewrites the spool in dir into a fresh file and replaces the old
// one, returning the sizes before and after. Pages freed by deletions are
// dropped from the new file; the old file's blocks are released to the
// filesystem, which may keep them on the medium (see docs/threat-model.md).
// The spool must not be open elsewhere.
func Compact(dir string) (before, after int64, err error) {
	s, err := Open(dir, nil)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	src := filepath.Join(dir, FileName)
	tmp := filepath.Join(dir, FileName+".compact")
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return 0, 0, fmt.Errorf("creating compacted spool: %w", err)
	}
	if err := bolt.Compact(dst, s.db, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compacting spool: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("closing compacted spool: %w", err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return 0, 0, err
	}
	before = fi.Size()
	// Rename while the lock on the old file is still held, so no relay can
	// open the old file between the copy and the swap.
	if err := os.Rename(tmp, src); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("replacing spool: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	s.Close()
	s = nil
	fi, err = os.Stat(src)
	if err != nil {
		return before, 0, err
	}
	return before, fi.Size(), nil
}
