package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ChunkSize is the largest value the spool writes: a submission is stored as
// consecutive chunks of at most this many bytes.
const ChunkSize = 1 << 20

// batchBytes is how much of an upload one transaction commits at most:
// every commit costs two syncs (bbolt's pages, then its meta page), so the
// size sets the upload's sync cadence. Memory follows it too: one batch
// being read while one commits, each batchBytes of pooled chunks, plus
// bbolt's dirty pages of the commit.
const batchBytes = 8 * ChunkSize

// MaxWriteHeld is the most memory WriteUpload or WritePiece holds of a
// body, whatever its length: one batch being read and hashed, one
// committing, and bbolt's dirty pages of that commit, as large again.
const MaxWriteHeld = 3 * batchBytes

// DefaultAllocSize is how much bbolt grows the spool file by once it is
// larger than that: each growth is an ftruncate and an fsync, so a small
// step costs a large upload one extra sync every few commits. A spool
// smaller than this grows only as far as bbolt's mapping needs (doubling),
// so a small spool does not pay for the large step; a larger one is at
// most this much bigger than its data, as a sparse tail.
const DefaultAllocSize = 256 << 20

// UploadSyncCadence says how often an upload's bytes are synced, for the
// benchmark's output.
var UploadSyncCadence = fmt.Sprintf("one commit per %d MiB (fdatasync of the pages, then of the meta page), file grown in %d MiB steps past %d MiB (ftruncate+fsync)",
	batchBytes>>20, DefaultAllocSize>>20, DefaultAllocSize>>20)

// FileName is the spool's file inside the data directory.
const FileName = "spool.db"

var (
	bMeta    = []byte("meta")
	bUploads = []byte("uploads")
	bSubs    = []byte("submissions")
	bChunks  = []byte("chunks")
	bDesks   = []byte("desks")

	kSchema    = []byte("schema")
	kCommitted = []byte("committed")
)

// The defaults of Options' zero values that a program may want to show,
// as amana-relay serve's flags do.
const (
	DefaultQuota     = 10 << 30
	DefaultUploadTTL = 24 * time.Hour
	DefaultCoarse    = time.Hour
)

// DefaultMailboxTTL is how long a mailbox lives after its last activity
// unless Options.MailboxTTL says otherwise.
const DefaultMailboxTTL = 180 * 24 * time.Hour

// Options configure a Spool. Every zero value means the documented default.
type Options struct {
	// Quota is the most bytes the spool holds: stored submissions plus the
	// bytes unfinished uploads have written so far. Zero means
	// DefaultQuota, 10 GiB.
	Quota int64
	// DeskQuota is the most bytes one desk may hold, so that a flood aimed
	// at one desk leaves room for the others. Zero means 80% of Quota.
	DeskQuota int64
	// EventQuota is the most bytes one desk's case-journal events may
	// hold: their ciphertexts, records and index entries. Events count
	// against Quota and EventQuota, never against DeskQuota, so that a
	// flood of events can never make a desk refuse submissions (keep
	// DeskQuota + EventQuota within Quota, as the defaults do). Zero means
	// DeskQuota/8.
	EventQuota int64
	// UploadTTL is how long an unfinished upload lives after its last piece.
	// Zero means DefaultUploadTTL, 24 hours.
	UploadTTL time.Duration
	// Coarse is the granularity of every time the spool stores. Zero means
	// DefaultCoarse, one hour.
	Coarse time.Duration
	// LockTimeout is how long Open waits for another process to release the
	// spool. Zero means one second.
	LockTimeout time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// NoSync skips fsync. Only for tests of logic that does not depend on
	// durability. Zero (false) means every commit is durable.
	NoSync bool
	// MaxFileSize caps the spool file; writes past it fail with ErrStorage as
	// a full disk would. Zero means no cap.
	MaxFileSize int
	// BatchDelay is how long a small submission or an ack waits for others
	// to share its durable commit. Zero means 2 ms.
	BatchDelay time.Duration
	// MailboxTTL is how long a mailbox lives after its last activity (a
	// reply, a follow-up, a check). Zero means 180 days.
	MailboxTTL time.Duration
	// DiskReserve is the free space ingest (submissions, uploads, events,
	// replies) leaves on the spool's disk, refusing with ErrStorage once
	// the disk's free space plus the spool's free pages would fall below
	// it, so that acknowledgements, deletions and sweeps always find room
	// (with MaxFileSize the cap plays the disk). Zero means
	// DefaultDiskReserve, 64 MiB; negative means no reserve.
	DiskReserve int64
	// AllocSize is the step bbolt grows the spool file by once the file is
	// larger than it. Zero means DefaultAllocSize, or 16 MiB when
	// MaxFileSize is set below four DefaultAllocSize steps.
	AllocSize int
}

func (o *Options) fill() {
	if o.Quota == 0 {
		o.Quota = DefaultQuota
	}
	if o.DeskQuota == 0 {
		o.DeskQuota = o.Quota / 5 * 4
	}
	if o.EventQuota == 0 {
		o.EventQuota = o.DeskQuota / 8
	}
	if o.UploadTTL == 0 {
		o.UploadTTL = DefaultUploadTTL
	}
	if o.Coarse == 0 {
		o.Coarse = DefaultCoarse
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchDelay == 0 {
		o.BatchDelay = 2 * time.Millisecond
	}
	if o.MailboxTTL == 0 {
		o.MailboxTTL = DefaultMailboxTTL
	}
	if o.AllocSize == 0 {
		o.AllocSize = DefaultAllocSize
		if o.MaxFileSize > 0 && o.MaxFileSize < 4*DefaultAllocSize {
			// Under a small cap bbolt's mapping doubles past it long
			// before a 256 MiB step would, and the disk reserve
			// (reserve.go) counts the cap less one step: keep bbolt's
			// own 16 MiB step there.
			o.AllocSize = smallCapAllocSize
		}
	}
}

// smallCapAllocSize is the growth step of a spool capped below four
// DefaultAllocSize steps: bbolt's default.
const smallCapAllocSize = 16 << 20

// BatchDelayOrDefault returns BatchDelay, or its default when zero.
func (o Options) BatchDelayOrDefault() time.Duration {
	o.fill()
	return o.BatchDelay
}

// BoltOptions returns the bbolt options Open uses for o (nil means the
// defaults), so that a benchmark's baseline can use exactly the same.
func BoltOptions(o *Options) *bolt.Options {
	c := Options{}
	if o != nil {
		c = *o
	}
	c.fill()
	return &bolt.Options{
		Timeout:        c.LockTimeout,
		NoSync:         c.NoSync,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
		MaxSize:        c.MaxFileSize,
	}
}

// Spool is an open spool. Its methods are safe for concurrent use.
type Spool struct {
	db   *bolt.DB
	opts Options

	// sweepScan is how many event records one of the sweep's read
	// transactions looks at (sweepEventsScan; tests make it small), and
	// sweepHook, when set, is told of each of its transactions.
	sweepScan int
	sweepHook sweepTx

	// tails are the upload pieces being written that a next piece may
	// follow (WritePiece); memory only.
	tails tailSet
}

// Open opens or creates the spool in dir, creating dir with mode 0700 if
// needed. It refuses a directory or file that other users can access, and
// fails with ErrLocked if another process has the spool open.
func Open(dir string, opts *Options) (*Spool, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.fill()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	if err := checkPrivate(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, &ModeError{Path: path, Mode: fi.Mode().Perm(), Want: 0o600}
	}
	db, err := bolt.Open(path, 0o600, BoltOptions(&o))
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening spool %s: %w", path, err)
	}
	db.MaxBatchDelay = o.BatchDelay
	db.AllocSize = o.AllocSize
	s := &Spool{db: db, opts: o, sweepScan: sweepEventsScan}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func checkPrivate(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("checking data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return &ModeError{Path: dir, Mode: fi.Mode().Perm(), Want: 0o700}
	}
	return nil
}

// Close closes the spool.
func (s *Spool) Close() error { return s.db.Close() }

func (s *Spool) coarse(t time.Time) time.Time { return t.UTC().Truncate(s.opts.Coarse) }

func (s *Spool) update(fn func(*bolt.Tx) error) error { return wrapStorage(s.db.Update(fn)) }

// batch runs fn in a write transaction shared with concurrent batch calls
// (bbolt's Batch, waiting up to BatchDelay for them); fn may run twice, so
// it must not count or change anything outside tx until batch returns.
func (s *Spool) batch(fn func(*bolt.Tx) error) error { return wrapStorage(s.db.Batch(fn)) }

// wrapStorage marks errors from the disk (not from our own checks) as
// ErrStorage, so the relay can answer "storage full" without detail.
func wrapStorage(err error) error {
	if err == nil || isOurs(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrStorage, err)
}

func isOurs(err error) bool {
	for _, e := range []error{ErrQuota, ErrNotFound, ErrTooLong, ErrIncomplete, ErrStaleSerial, ErrOffset, ErrNewerSchema, ErrIdempotency, errEventSpec} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
