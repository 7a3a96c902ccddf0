package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ChunkSize is the largest value the spool writes: a submission is stored as
// consecutive chunks of at most this many bytes.
const ChunkSize = 1 << 20

// batchBytes is how much of an upload one transaction commits at most.
const batchBytes = 4 * ChunkSize

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

// Options configure a Spool. Every zero value means the documented default.
type Options struct {
	// Quota is the most bytes the spool holds: stored submissions plus the
	// bytes unfinished uploads have written so far. Zero means 10 GiB.
	Quota int64
	// DeskQuota is the most bytes one desk may hold, so that a flood aimed
	// at one desk leaves room for the others. Zero means 80% of Quota.
	DeskQuota int64
	// UploadTTL is how long an unfinished upload lives after its last piece.
	// Zero means 24 hours.
	UploadTTL time.Duration
	// Coarse is the granularity of every time the spool stores. Zero means
	// one hour.
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
}

func (o *Options) fill() {
	if o.Quota == 0 {
		o.Quota = 10 << 30
	}
	if o.DeskQuota == 0 {
		o.DeskQuota = o.Quota / 5 * 4
	}
	if o.UploadTTL == 0 {
		o.UploadTTL = 24 * time.Hour
	}
	if o.Coarse == 0 {
		o.Coarse = time.Hour
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
		o.MailboxTTL = 180 * 24 * time.Hour
	}
}

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
}

// UploadSpec is what the relay decides when an upload starts. The spool
// stores it and hands it back; it interprets only Length and the durations.
type UploadSpec struct {
	Desk     string   `json:"desk"`
	Category string   `json:"category,omitempty"`
	Routes   []string `json:"routes"`  // handler key IDs the submission goes to
	Stanzas  []string `json:"stanzas"` // expected age stanza types
	Length   int64    `json:"length"`
	// DeleteAfterAck is how long after the first ack the submission is kept.
	DeleteAfterAck time.Duration `json:"delete_after_ack"`
	// KeepUnacked is how long a submission nobody acked is kept.
	KeepUnacked time.Duration `json:"keep_unacked"`
	// Kind says what the ciphertext holds; empty means an Amana bundle.
	Kind string `json:"kind,omitempty"`
	// Mailbox is the mailbox a reply copy or a follow-up belongs to.
	Mailbox string `json:"mailbox,omitempty"`
	// Idempotency, when set on a PutSubmission, names the submission so a
	// client that lost the answer can send the same bytes again and get
	// the same submission back. It is not stored.
	Idempotency string `json:"-"`
}

// Kinds of submission.
const (
	// KindSelf is a file the submitter encrypted with age themselves, not
	// an Amana bundle.
	KindSelf = "self"
)

// Upload is an unfinished upload.
type Upload struct {
	UploadSpec
	Offset  int64     `json:"offset"`
	Expires time.Time `json:"expires"`
	Hash    []byte    `json:"hash"` // marshalled SHA-256 state of bytes so far
}

// Submission is a complete, stored submission.
type Submission struct {
	ID             string        `json:"id"`
	Desk           string        `json:"desk"`
	Category       string        `json:"category,omitempty"`
	Kind           string        `json:"kind,omitempty"`
	Mailbox        string        `json:"mailbox,omitempty"`
	Size           int64         `json:"size"`
	SHA256         string        `json:"sha256"`
	Received       time.Time     `json:"received"` // coarsened
	Routes         []string      `json:"routes"`
	Acks           []string      `json:"acks"`
	FirstAck       time.Time     `json:"first_ack,omitzero"` // coarsened
	DeleteAfterAck time.Duration `json:"delete_after_ack"`
	KeepUntil      time.Time     `json:"keep_until"`
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
		return nil, fmt.Errorf("%w: %s has mode %04o", ErrInsecureDir, path, fi.Mode().Perm())
	}
	db, err := bolt.Open(path, 0o600, BoltOptions(&o))
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening spool %s: %w", path, err)
	}
	db.MaxBatchDelay = o.BatchDelay
	s := &Spool{db: db, opts: o}
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
		return fmt.Errorf("%w: %s has mode %04o", ErrInsecureDir, dir, fi.Mode().Perm())
	}
	return nil
}

// Close closes the spool.
func (s *Spool) Close() error { return s.db.Close() }

func (s *Spool) coarse(t time.Time) time.Time { return t.UTC().Truncate(s.opts.Coarse) }

func (s *Spool) update(fn func(*bolt.Tx) error) error { return wrapStorage(s.db.Update(fn)) }

// wrapStorage marks errors from the disk (not from our own checks) as
// ErrStorage, so the relay can answer "storage full" without detail.
func wrapStorage(err error) error {
	if err == nil || isOurs(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrStorage, err)
}

func isOurs(err error) bool {
	for _, e := range []error{ErrQuota, ErrNotFound, ErrTooLong, ErrIncomplete, ErrStaleSerial, ErrOffset, ErrNewerSchema, ErrIdempotency} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// token makes a new upload token and its key. The token is the capability
// the uploader holds; the spool stores only the key, SHA-256(token)[:16], so a
// lookup's timing says nothing useful about valid tokens.
func token() (string, []byte) {
	var t [16]byte
	rand.Read(t[:])
	tok := base64.RawURLEncoding.EncodeToString(t[:])
	return tok, tokenKey(tok)
}

func tokenKey(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:16]
}

// idempotencyKey is the key of the submission a client names with an
// idempotency key. The desk is part of it, so one key cannot reach another
// desk's submission, and the domain string keeps it apart from upload
// token keys.
func idempotencyKey(desk, idem string) []byte {
	h := sha256.Sum256([]byte("amana idempotency v1\x00" + desk + "\x00" + idem))
	return h[:16]
}

// SubmissionID is the public ID of the submission an upload token becomes.
func SubmissionID(tok string) string { return hex.EncodeToString(tokenKey(tok)) }

func be64(n int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(n))
	return k[:]
}

// putChunks stores one commit's chunks, starting at off, in a bucket of
// their own: chunks/<key>/<off>/<chunk offset>. A B+tree appends into its
// last leaf, and bbolt rewrites a whole leaf, values included, when it
// changes; a fresh bucket per commit means no earlier chunk is ever read
// back or written again.
func putChunks(tx *bolt.Tx, key []byte, off int64, chunks [][]byte) error {
	sb, err := tx.Bucket(bChunks).CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	bb, err := sb.CreateBucket(be64(off))
	if err != nil {
		return err
	}
	bb.FillPercent = 1
	for _, ch := range chunks {
		if err := bb.Put(be64(off), ch); err != nil {
			return err
		}
		off += int64(len(ch))
	}
	return nil
}

// floor positions c at the greatest key not above k.
func floor(c *bolt.Cursor, k []byte) ([]byte, []byte) {
	fk, fv := c.Seek(k)
	if fk == nil || !bytes.Equal(fk, k) {
		fk, fv = c.Prev()
	}
	return fk, fv
}

// chunkAt returns the stored chunk holding byte off and that chunk's start.
func chunkAt(tx *bolt.Tx, key []byte, off int64) ([]byte, int64, error) {
	sb := tx.Bucket(bChunks).Bucket(key)
	if sb == nil {
		return nil, 0, ErrNotFound
	}
	bk, _ := floor(sb.Cursor(), be64(off))
	if bk == nil {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	bb := sb.Bucket(bk)
	if bb == nil {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	k, v := floor(bb.Cursor(), be64(off))
	if k == nil {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	start := int64(binary.BigEndian.Uint64(k))
	if off < start || off >= start+int64(len(v)) {
		return nil, 0, fmt.Errorf("submission chunk at %d missing", off)
	}
	return v, start, nil
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

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

func (s *Spool) checkSpec(spec *UploadSpec) error {
	if spec.Length <= 0 {
		return errors.New("upload length must be positive")
	}
	if len(spec.Routes) == 0 {
		return errors.New("upload has no routes")
	}
	return nil
}

// CreateUpload starts a resumable upload and returns its token, which the
// uploader presents for every later call. It fails with ErrQuota if the
// declared length does not fit in the quota now; bytes count against the
// quota as they are written, so an upload that is never sent costs nothing.
func (s *Spool) CreateUpload(spec UploadSpec) (string, error) {
	if err := s.checkSpec(&spec); err != nil {
		return "", err
	}
	tok, key := token()
	h, _ := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	u := Upload{UploadSpec: spec, Expires: s.coarse(s.opts.Now().Add(s.opts.UploadTTL + s.opts.Coarse)), Hash: h}
	err := s.update(func(tx *bolt.Tx) error {
		if !s.fits(tx, spec.Desk, spec.Length) {
			return ErrQuota
		}
		return putJSON(tx.Bucket(bUploads), key, &u)
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// Upload returns the state of an unfinished upload.
func (s *Spool) Upload(tok string) (*Upload, error) {
	var u Upload
	err := s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bUploads), tokenKey(tok), &u) })
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// WriteUpload appends the bytes of r to an upload at offset, which must be
// the upload's current offset. It commits durably every few MiB and returns
// the offset reached. If r fails, what was read before the failure is
// committed, the new offset is returned with the error, and the uploader
// resumes from there.
//
// Reading and hashing the next batch runs while the previous one commits,
// so the network, SHA-256 and the disk work at the same time.
func (s *Spool) WriteUpload(tok string, offset int64, r io.Reader) (int64, error) {
	key := tokenKey(tok)
	u, err := s.Upload(tok)
	if err != nil {
		return 0, err
	}
	if offset != u.Offset {
		return u.Offset, &OffsetError{Current: u.Offset}
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.Hash); err != nil {
		return offset, fmt.Errorf("restoring upload hash: %w", err)
	}
	batches := make(chan *batch, 1)
	stop := make(chan struct{})
	go func() {
		defer close(batches)
		for {
			b := readBatch(r, h)
			select {
			case batches <- b:
			case <-stop:
				b.release()
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for b := range batches {
			b.release()
		}
	}()
	for b := range batches {
		err := s.commitPiece(key, offset, u.Length, b)
		b.release()
		if err != nil {
			return offset, err
		}
		offset += b.n
		if b.err == io.EOF {
			return offset, nil
		}
		if b.err != nil {
			return offset, b.err
		}
	}
	return offset, nil
}

// batch is up to batchBytes of an upload, read and hashed, ready to commit.
type batch struct {
	chunks [][]byte
	bufs   []*[]byte
	n      int64
	hash   []byte // SHA-256 state after these bytes
	err    error  // io.EOF at the end of the input, or the read error
}

func readBatch(r io.Reader, h hash.Hash) *batch {
	b := &batch{}
	for b.n < batchBytes {
		buf := chunkPool.Get().(*[]byte)
		b.bufs = append(b.bufs, buf)
		k, err := io.ReadFull(r, *buf)
		if k > 0 {
			b.chunks = append(b.chunks, (*buf)[:k])
			b.n += int64(k)
			h.Write((*buf)[:k])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			b.err = io.EOF
			break
		}
		if err != nil {
			b.err = err
			break
		}
	}
	b.hash, _ = h.(encoding.BinaryMarshaler).MarshalBinary()
	return b
}

func (b *batch) release() {
	for _, buf := range b.bufs {
		chunkPool.Put(buf)
	}
	b.bufs, b.chunks = nil, nil
}

// commitPiece durably appends a batch to an upload at offset.
func (s *Spool) commitPiece(key []byte, offset, length int64, b *batch) error {
	if offset+b.n > length {
		return ErrTooLong
	}
	if b.n == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		bu := tx.Bucket(bUploads)
		var cur Upload
		if err := getJSON(bu, key, &cur); err != nil {
			return err
		}
		if cur.Offset != offset {
			return &OffsetError{Current: cur.Offset}
		}
		if err := s.reserve(tx, cur.Desk, b.n); err != nil {
			return err
		}
		if err := putChunks(tx, key, offset, b.chunks); err != nil {
			return err
		}
		cur.Offset = offset + b.n
		cur.Hash = b.hash
		cur.Expires = s.coarse(s.opts.Now().Add(s.opts.UploadTTL + s.opts.Coarse))
		return putJSON(bu, key, &cur)
	})
}

// CompleteUpload turns a fully written upload into a submission, atomically:
// handlers see it only once this returns, and then it is durable.
func (s *Spool) CompleteUpload(tok string) (*Submission, error) {
	key := tokenKey(tok)
	var sub *Submission
	err := s.update(func(tx *bolt.Tx) error {
		var u Upload
		if err := getJSON(tx.Bucket(bUploads), key, &u); errors.Is(err, ErrNotFound) {
			// Completing twice (the answer to the first was lost) returns
			// the submission it made.
			sub = &Submission{}
			return getJSON(tx.Bucket(bSubs), key, sub)
		} else if err != nil {
			return err
		}
		if u.Offset != u.Length {
			return fmt.Errorf("%w: %d of %d bytes", ErrIncomplete, u.Offset, u.Length)
		}
		h := sha256.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.Hash); err != nil {
			return fmt.Errorf("restoring upload hash: %w", err)
		}
		var err error
		sub, err = s.newSubmission(tx, key, &u.UploadSpec, h)
		if err != nil {
			return err
		}
		return tx.Bucket(bUploads).Delete(key)
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

func (s *Spool) newSubmission(tx *bolt.Tx, key []byte, spec *UploadSpec, h hash.Hash) (*Submission, error) {
	now := s.opts.Now()
	sub := &Submission{
		ID:             hex.EncodeToString(key),
		Desk:           spec.Desk,
		Category:       spec.Category,
		Kind:           spec.Kind,
		Mailbox:        spec.Mailbox,
		Size:           spec.Length,
		SHA256:         hex.EncodeToString(h.Sum(nil)),
		Received:       s.coarse(now),
		Routes:         spec.Routes,
		Acks:           []string{},
		DeleteAfterAck: spec.DeleteAfterAck,
		KeepUntil:      s.coarse(now.Add(spec.KeepUnacked + s.opts.Coarse)),
	}
	return sub, putJSON(tx.Bucket(bSubs), key, sub)
}

// PutSubmission stores a small submission given whole, in one durable
// commit shared with other concurrent calls (bbolt's Batch), and returns it.
//
// With spec.Idempotency set, the submission's ID comes from the desk and
// that key: sending the same bytes again returns the stored submission
// (reserving no quota twice), and sending other bytes under the same key
// fails with ErrIdempotency. Once the submission is deleted the key is
// free again.
func (s *Spool) PutSubmission(spec UploadSpec, data []byte) (*Submission, error) {
	spec.Length = int64(len(data))
	if err := s.checkSpec(&spec); err != nil {
		return nil, err
	}
	_, key := token()
	if spec.Idempotency != "" {
		key = idempotencyKey(spec.Desk, spec.Idempotency)
	}
	h := sha256.New()
	h.Write(data)
	sum := hex.EncodeToString(h.Sum(nil))
	var sub *Submission
	err := s.db.Batch(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bSubs).Get(key); v != nil {
			var old Submission
			if err := decodeRecord(v, "submission", &old); err != nil {
				return err
			}
			if old.Desk != spec.Desk || old.SHA256 != sum || old.Size != spec.Length {
				return ErrIdempotency
			}
			sub = &old
			return nil
		}
		if err := s.reserve(tx, spec.Desk, spec.Length); err != nil {
			return err
		}
		var chunks [][]byte
		for off := int64(0); off < spec.Length; off += ChunkSize {
			chunks = append(chunks, data[off:min(off+ChunkSize, spec.Length)])
		}
		if err := putChunks(tx, key, 0, chunks); err != nil {
			return err
		}
		var err error
		sub, err = s.newSubmission(tx, key, &spec, h)
		return err
	})
	if err != nil {
		return nil, wrapStorage(err)
	}
	return sub, nil
}

// Submissions returns every stored submission for which keep returns true
// (all of them when keep is nil).
func (s *Spool) Submissions(keep func(*Submission) bool) ([]*Submission, error) {
	var out []*Submission
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bSubs).ForEach(func(k, v []byte) error {
			var sub Submission
			if err := decodeRecord(v, "submission", &sub); err != nil {
				return err
			}
			if keep == nil || keep(&sub) {
				out = append(out, &sub)
			}
			return nil
		})
	})
	return out, err
}

// SubmissionsPage returns, in ID order, up to limit stored submissions for
// which keep returns true (every one when keep is nil), starting just past
// the ID after: "" starts at the first, and after need not name a stored
// submission. next is the ID of the last submission returned when more may
// follow, to be passed as after for the next page; it is "" once the listing
// reached the end of the spool. A page holds fewer than limit submissions
// only at the end, where next is "".
//
// The scan skips the submissions keep refuses and goes on from where the
// previous page stopped, so a walk over every page reads each record once.
// An after that is not 32 hex characters fails with ErrCursor, and a limit
// below 1 with an error.
func (s *Spool) SubmissionsPage(after string, limit int, keep func(*Submission) bool) (subs []*Submission, next string, err error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("listing submissions: page limit %d is not positive", limit)
	}
	var start []byte
	if after != "" {
		if start, err = subKey(after); err != nil {
			return nil, "", ErrCursor
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSubs).Cursor()
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
			if k != nil && bytes.Equal(k, start) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(subs) == limit {
				// Another record follows the full page.
				next = subs[len(subs)-1].ID
				return nil
			}
			var sub Submission
			if err := decodeRecord(v, "submission", &sub); err != nil {
				return err
			}
			if keep == nil || keep(&sub) {
				subs = append(subs, &sub)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return subs, next, nil
}

func subKey(id string) ([]byte, error) {
	k, err := hex.DecodeString(id)
	if err != nil || len(k) != 16 {
		return nil, ErrNotFound
	}
	return k, nil
}

// Submission returns one submission.
func (s *Spool) Submission(id string) (*Submission, error) {
	key, err := subKey(id)
	if err != nil {
		return nil, err
	}
	var sub Submission
	err = s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bSubs), key, &sub) })
	if err != nil {
		return nil, err
	}
	return &sub, nil
}

// OpenSubmission returns a reader of a submission's bytes from offset. It
// reads one chunk per short read transaction, so a slow reader never holds
// the database. Reading a submission deleted meanwhile fails with
// ErrNotFound.
func (s *Spool) OpenSubmission(id string, offset int64) (io.Reader, error) {
	sub, err := s.Submission(id)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > sub.Size {
		return nil, fmt.Errorf("offset %d outside submission of %d bytes", offset, sub.Size)
	}
	key, _ := subKey(id)
	return &chunkReader{s: s, key: key, off: offset, size: sub.Size}, nil
}

type chunkReader struct {
	s       *Spool
	key     []byte
	off     int64
	size    int64
	buf     []byte
	mailbox string // for a reply: the mailbox that must still exist
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		if c.off >= c.size {
			return 0, io.EOF
		}
		err := c.s.db.View(func(tx *bolt.Tx) error {
			if c.mailbox == "" && tx.Bucket(bSubs).Get(c.key) == nil {
				return ErrNotFound
			}
			v, start, err := chunkAt(tx, c.key, c.off)
			if err != nil {
				return err
			}
			c.buf = append(c.buf[:0], v[c.off-start:]...)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	c.off += int64(n)
	return n, nil
}

// Ack records that the handler with route has stored the submission. When
// every route has acked, the submission is deleted at once and deleted is
// true; otherwise the first ack starts the DeleteAfterAck clock. A route the
// submission was not sent to gets ErrNotFound.
func (s *Spool) Ack(id, route string) (deleted bool, err error) {
	key, err := subKey(id)
	if err != nil {
		return false, err
	}
	// Handlers ack many submissions at once after a pull: Batch shares one
	// durable commit among concurrent acks.
	err = s.db.Batch(func(tx *bolt.Tx) error {
		deleted = false
		var sub Submission
		if err := getJSON(tx.Bucket(bSubs), key, &sub); err != nil {
			return err
		}
		if !slices.Contains(sub.Routes, route) {
			return ErrNotFound
		}
		if !slices.Contains(sub.Acks, route) {
			sub.Acks = append(sub.Acks, route)
		}
		if sub.FirstAck.IsZero() {
			sub.FirstAck = s.coarse(s.opts.Now())
		}
		if len(sub.Acks) == len(sub.Routes) {
			deleted = true
			return s.deleteSub(tx, key, sub.Desk, sub.Size)
		}
		return putJSON(tx.Bucket(bSubs), key, &sub)
	})
	return deleted, wrapStorage(err)
}

func (s *Spool) deleteSub(tx *bolt.Tx, key []byte, desk string, size int64) error {
	if err := deleteChunks(tx, key); err != nil {
		return err
	}
	if err := tx.Bucket(bSubs).Delete(key); err != nil {
		return err
	}
	return s.reserve(tx, desk, -size)
}

func deleteChunks(tx *bolt.Tx, key []byte) error {
	err := tx.Bucket(bChunks).DeleteBucket(key)
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return nil
	}
	return err
}

// SweepResult counts what Sweep deleted.
type SweepResult struct {
	Submissions int // past their retention
	Uploads     int // abandoned
	Mailboxes   int // expired
}

// Sweep deletes submissions past their retention and uploads past their
// expiry.
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
			ackDue := !sub.FirstAck.IsZero() && !now.Before(sub.FirstAck.Add(sub.DeleteAfterAck+s.opts.Coarse))
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
	return res, err
}

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

// Stats is a summary of the spool, with no detail about any submission.
type Stats struct {
	Submissions int
	Uploads     int
	Committed   int64 // bytes counted against the quota
	Quota       int64
	FileSize    int64 // size of the spool file
}

// Stats returns a summary of the spool.
func (s *Spool) Stats() (Stats, error) {
	st := Stats{Quota: s.opts.Quota}
	err := s.db.View(func(tx *bolt.Tx) error {
		st.Submissions = tx.Bucket(bSubs).Stats().KeyN
		st.Uploads = tx.Bucket(bUploads).Stats().KeyN
		st.Committed = getUint(tx.Bucket(bMeta), kCommitted)
		st.FileSize = tx.Size()
		return nil
	})
	return st, err
}

// Check runs bbolt's consistency check over the whole file.
func (s *Spool) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// Snapshot calls fn, inside one read transaction, with the size of a
// consistent copy of the spool and a function that writes that copy: a
// bbolt file that Open reads. Writers carry on meanwhile, except that the
// file cannot grow until fn returns.
func (s *Spool) Snapshot(fn func(size int64, writeTo func(io.Writer) error) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return fn(tx.Size(), func(w io.Writer) error {
			_, err := tx.WriteTo(w)
			return err
		})
	})
}
