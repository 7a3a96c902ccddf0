package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// PutDesk stores a desk's signed manifest with its serial. A serial not
// greater than the stored one fails with ErrStaleSerial, except that storing
// the identical manifest again is a no-op.
func (s *Spool) PutDesk(id string, serial uint64, manifest []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDesks)
		var cur deskRecord
		if err := getJSON(b, []byte(id), &cur); err == nil {
			if cur.Serial == serial && bytes.Equal(cur.Manifest, manifest) {
				return nil
			}
			if serial <= cur.Serial {
				return fmt.Errorf("%w (stored %d, offered %d)", ErrStaleSerial, cur.Serial, serial)
			}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return putJSON(b, []byte(id), &deskRecord{Serial: serial, Manifest: manifest})
	})
}

type deskRecord struct {
	Serial   uint64 `json:"serial"`
	Manifest []byte `json:"manifest"`
}

// Desks returns every stored manifest by desk ID.
func (s *Spool) Desks() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bDesks).ForEach(func(k, v []byte) error {
			var d deskRecord
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decoding desk %q: %w", k, err)
			}
			out[string(k)] = d.Manifest
			return nil
		})
	})
	return out, err
}

// Setting returns a stored setting, or nil.
func (s *Spool) Setting(name string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v = slices.Clone(tx.Bucket(bMeta).Get([]byte("setting/" + name)))
		return nil
	})
	return v, err
}

// SetSetting stores a setting.
func (s *Spool) SetSetting(name string, value []byte) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte("setting/"+name), value) })
}
