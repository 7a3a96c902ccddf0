package store

import (
	"errors"
	"fmt"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// DefaultDiskReserve is the free space ingest leaves on the spool's disk
// for acknowledgements, deletions and sweeps unless Options.DiskReserve
// says otherwise.
const DefaultDiskReserve = 64 << 20

// errDiskReserve refuses ingest that would eat into the disk reserve. It
// is an ErrStorage, so the relay answers 507 storage_full.
var errDiskReserve = fmt.Errorf("%w: the disk keeps its reserve for acknowledgements", ErrStorage)

// diskReserve is the reserve Options asks for: DiskReserve, its default
// when zero, none when negative.
func (o *Options) diskReserve() int64 {
	switch {
	case o.DiskReserve < 0:
		return 0
	case o.DiskReserve == 0:
		return DefaultDiskReserve
	}
	return o.DiskReserve
}

// roomFor checks, in the write transaction tx, that n more bytes of
// ingest leave the disk reserve free: the filesystem's free space plus the
// spool's own free pages (which bbolt reuses before growing its file),
// less n, must stay at or above the reserve. With Options.MaxFileSize the
// cap (less bbolt's growth step) plays the disk. Acknowledgements, deletions and sweeps never call
// it: they write a few pages each, which the reserve always has, so they
// succeed on a disk that ingest has filled.
func (s *Spool) roomFor(tx *bolt.Tx, n int64) error {
	reserve := s.opts.diskReserve()
	if reserve == 0 || n <= 0 {
		return nil
	}
	free := int64(s.db.Stats().FreeAlloc)
	room := int64(-1)
	if avail := freeSpace(filepath.Dir(s.db.Path())); avail >= 0 {
		room = avail + free
	}
	if s.opts.MaxFileSize > 0 {
		// bbolt refuses a page past the high-water mark once that mark
		// plus one AllocSize step would pass the cap.
		capRoom := int64(s.opts.MaxFileSize) - int64(s.db.AllocSize) - tx.Size() + free
		if room < 0 || capRoom < room {
			room = capRoom
		}
	}
	if room >= 0 && room-n < reserve {
		return errDiskReserve
	}
	return nil
}

// dropUpload deletes an unfinished upload at once, giving back what it
// wrote: the spool does so when the disk refuses one of its pieces, since
// the uploader starts over and a kept upload would cost the space twice.
// It runs as a deletion, so it may use the reserve.
func (s *Spool) dropUpload(key []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bUploads).Get(key)
		if v == nil {
			return nil
		}
		var u Upload
		if err := decodeRecord(v, "upload", &u); err != nil {
			return err
		}
		if err := deleteChunks(tx, key); err != nil {
			return err
		}
		if err := tx.Bucket(bUploads).Delete(key); err != nil {
			return err
		}
		return s.reserve(tx, u.Desk, -u.Offset)
	})
}

// isDiskFull reports whether err is the disk (or the reserve) refusing a
// write, as opposed to a quota or a bad request.
func isDiskFull(err error) bool {
	return errors.Is(err, ErrStorage)
}
