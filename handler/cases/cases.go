// Package cases is a handler's local case store: one directory per case,
// holding the submission exactly as the relay stored it (an age file that age
// and tar alone can open) and a small metadata file. Partial downloads are
// kept beside it and resumed. It knows nothing of keys or HTTP; it never
// holds plaintext, and a case's file key only as the opaque sealed text the
// handler gives it (Meta.FileKey), never in the clear.
package cases

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// File names inside a case directory.
const (
	BundleFile  = "submission.age"
	partialFile = "submission.age.part"
	metaFile    = "case.json"
)

// ErrShared: the case store's directory can be reached by other users.
var ErrShared = errors.New("case store is accessible to other users")

// ErrNotFound: no case matches.
var ErrNotFound = errors.New("no such case")

// ErrNoSpace: a case would not fit on the disk (keeping the reserve free).
var ErrNoSpace = errors.New("not enough disk space")

// DefaultReserve is left free on the disk when receiving a case, unless
// SetReserve says otherwise, so that the journal, the index and the rest
// of the machine still have room.
const DefaultReserve = 64 << 20

// ErrBadMeta: a case's metadata (case.json) is empty, torn, or names
// another case than its folder.
var ErrBadMeta = errors.New("case metadata is damaged")

// ErrAmbiguous: an ID prefix matches more than one case.
var ErrAmbiguous = errors.New("case ID prefix matches more than one case")

var idRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Meta is what the case store knows about a case, without decrypting it.
type Meta struct {
	ID       string `json:"id"`
	Relay    string `json:"relay"`
	Desk     string `json:"desk"`
	Category string `json:"category,omitempty"` // the relay's word
	// ReportCategory is the category the report's own encrypted
	// report.json names, learnt when it was received; nil when unknown
	// (a case stored before it existed, or one that did not open).
	ReportCategory *string `json:"report_category,omitempty"`
	Kind           string  `json:"kind,omitempty"` // "self", "reply", "followup"; empty for a report
	Mailbox        string  `json:"mailbox,omitempty"`
	Size           int64   `json:"size"`
	SHA256         string  `json:"sha256"`
	Received       string  `json:"received"`
	Opened         bool    `json:"opened"`
	// FileKey is the case's age file key sealed under a key derived from
	// the handler's identity (crypto.FileKeyCache), set by the pull that
	// decrypted it; empty for a case that was not (or an older version's).
	// It is kept in case.json only: other JSON made of a Meta leaves it out.
	FileKey string `json:"-"`
	// Damaged is set by List, never stored, for a case whose bundle is
	// there but whose case.json does not read (ErrBadMeta, or missing);
	// only ID is then known.
	Damaged bool `json:"damaged,omitempty"`
}

// diskMeta is a Meta as case.json holds it, with its sealed file key.
type diskMeta struct {
	*Meta
	FileKey string `json:"file_key,omitempty"`
}

func marshalMeta(m *Meta) ([]byte, error) {
	return json.MarshalIndent(diskMeta{m, m.FileKey}, "", "  ")
}

// Store is a case store rooted at a directory.
type Store struct {
	dir     string
	reserve int64 // 0: DefaultReserve; negative: none

	mu      sync.Mutex
	pending []Meta // cases received since the last Sync, not yet durable
}

// Open opens (creating with mode 0700) the case store at dir. It refuses a
// directory others can access.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating case store: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("checking case store: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o", ErrShared, dir, fi.Mode().Perm())
	}
	return &Store{dir: dir}, nil
}

// SetReserve sets the free space receiving a case leaves on the disk:
// zero means DefaultReserve, 64 MiB; negative means none.
func (s *Store) SetReserve(n int64) { s.reserve = n }

func (s *Store) reserveBytes() int64 {
	switch {
	case s.reserve < 0:
		return 0
	case s.reserve == 0:
		return DefaultReserve
	}
	return s.reserve
}

// megabytes shows n bytes in MB (10^6), rounded up, as disk tools do.
func megabytes(n int64) string { return fmt.Sprintf("%d MB", (max(n, 0)+999_999)/1_000_000) }

// Dir is the store's root.
func (s *Store) Dir() string { return s.dir }

func (s *Store) caseDir(id string) string { return filepath.Join(s.dir, id) }

// BundlePath is the path of a complete case's age file.
func (s *Store) BundlePath(id string) string { return filepath.Join(s.caseDir(id), BundleFile) }

// Has reports whether a complete copy of case id is stored.
func (s *Store) Has(id string) bool {
	_, err := os.Stat(s.BundlePath(id))
	return err == nil
}

// Partial returns how many bytes of case id a previous download left.
func (s *Store) Partial(id string) int64 {
	fi, err := os.Stat(filepath.Join(s.caseDir(id), partialFile))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Receive stores a case being downloaded. fetch is called with the offset to
// resume from and a writer to append to; afterwards the whole file must have
// m.Size bytes and SHA-256 m.SHA256. Only then is its metadata written and
// the file moved into place: a case is complete exactly when its BundleFile
// exists. Nothing is synced yet: Sync makes every case received since the
// last Sync durable at once, and must return before anyone is told a case
// is safe (a pull acknowledges only after it). A case found complete
// after a power cut between the two may hold less than it should: Verify
// checks it against the relay's size and SHA-256 before it is
// acknowledged. A failed download leaves the partial file for the next
// attempt; a corrupt one is removed.
//
// learn, if not nil, is given the verified ciphertext before the metadata is
// written, to fill in what only the case itself tells (the handler's side
// learns a report's mailbox there), so that the metadata is written once.
func (s *Store) Receive(m Meta, fetch func(offset int64, w io.Writer) error, learn func(ciphertext io.Reader, m *Meta)) error {
	if !ValidID(m.ID) {
		return fmt.Errorf("invalid case ID %q", m.ID)
	}
	dir := s.caseDir(m.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating case directory: %w", err)
	}
	part := filepath.Join(dir, partialFile)
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("opening partial download: %w", err)
	}
	defer f.Close()
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("opening partial download: %w", err)
	}
	if off > m.Size {
		f.Truncate(0)
		off, _ = f.Seek(0, io.SeekStart)
	}
	if free, reserve := freeSpace(dir), s.reserveBytes(); free >= 0 && m.Size-off > free-reserve {
		return fmt.Errorf("%w: case %s needs %s plus a %s reserve; the disk has %s free", ErrNoSpace, m.ID, megabytes(m.Size-off), megabytes(reserve), megabytes(free))
	}
	if off < m.Size {
		if err := fetch(off, &limitWriter{w: f, left: m.Size - off}); err != nil {
			return err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("checking download: %w", err)
	}
	if n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
		f.Close()
		os.Remove(part)
		return fmt.Errorf("case %s: download does not match the relay's size and SHA-256; it was discarded and will be fetched again", m.ID)
	}
	if learn != nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		learn(io.LimitReader(f, m.Size), &m)
	}
	return s.complete(m)
}

// complete writes a checked case's metadata, then moves its partial file
// into place, and notes it for the next Sync: the case is complete from the
// rename on.
func (s *Store) complete(m Meta) error {
	b, err := marshalMeta(&m)
	if err != nil {
		return err
	}
	dir := s.caseDir(m.ID)
	if err := writeFile(filepath.Join(dir, metaFile), b, false); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, partialFile), s.BundlePath(m.ID)); err != nil {
		return fmt.Errorf("storing case: %w", err)
	}
	s.mu.Lock()
	s.pending = append(s.pending, m)
	s.mu.Unlock()
	return nil
}

// ReceiveBody stores a case that arrived whole in memory (a bulk answer
// brings small cases so), as Receive does but without reading it back:
// body is checked against m.Size and m.SHA256 before anything is written
// (a mismatch writes nothing and removes any partial download), learn
// reads it from memory, and then the metadata and the file are written
// and the file moved into place, so that a case is complete exactly when
// its BundleFile exists. Nothing is synced: as for Receive, Sync must
// return before anyone is told the case is safe.
func (s *Store) ReceiveBody(m Meta, body []byte, learn func(ciphertext io.Reader, m *Meta)) error {
	if !ValidID(m.ID) {
		return fmt.Errorf("invalid case ID %q", m.ID)
	}
	dir := s.caseDir(m.ID)
	part := filepath.Join(dir, partialFile)
	sum := sha256.Sum256(body)
	if int64(len(body)) != m.Size || hex.EncodeToString(sum[:]) != m.SHA256 {
		os.Remove(part)
		return fmt.Errorf("case %s: download does not match the relay's size and SHA-256; it was discarded and will be fetched again", m.ID)
	}
	if free, reserve := freeSpace(s.dir), s.reserveBytes(); free >= 0 && m.Size > free-reserve {
		return fmt.Errorf("%w: case %s needs %s plus a %s reserve; the disk has %s free", ErrNoSpace, m.ID, megabytes(m.Size), megabytes(reserve), megabytes(free))
	}
	if learn != nil {
		learn(bytes.NewReader(body), &m)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating case directory: %w", err)
	}
	if err := writePlain(part, body); err != nil {
		return fmt.Errorf("storing case: %w", err)
	}
	return s.complete(m)
}

// Sync makes every case received since the last Sync durable, with the
// store's list of case directories: on Linux 5.8 or later in one
// syncfs(2) of the store's filesystem; on an older kernel, whose syncfs
// does not report writeback errors, and elsewhere, file by file (each
// case's file and metadata, its directory, syncWorkers cases at once,
// then the store's directory).
func (s *Store) Sync() error {
	s.mu.Lock()
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	if err := s.syncCases(pending); err != nil {
		// Not durable: the next Sync tries them again.
		s.mu.Lock()
		s.pending = append(pending, s.pending...)
		s.mu.Unlock()
		return err
	}
	// Only now, and only for these: a case marked synced is durable. An
	// index not updated costs a later verification, never a wrong
	// acknowledgement, so it does not fail the sync.
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendIndex(pending)
	return nil
}

func (s *Store) syncCases(ms []Meta) error {
	if ok, err := syncFS(s.dir); ok || err != nil {
		if err != nil {
			return fmt.Errorf("syncing the case store: %w", err)
		}
		return nil
	}
	// Several at once, so that their journal commits are shared.
	errs := make([]error, len(ms))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(syncWorkers, len(ms)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(ms); i = int(next.Add(1) - 1) {
				errs[i] = s.syncCase(ms[i].ID)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return SyncDir(s.dir)
}

// syncWorkers is how many cases Sync syncs at once.
const syncWorkers = 16

func (s *Store) syncCase(id string) error {
	for _, name := range []string{BundleFile, metaFile} {
		if err := syncFile(filepath.Join(s.caseDir(id), name)); err != nil {
			return err
		}
	}
	return SyncDir(s.caseDir(id))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Verify checks that the complete case id holds size bytes with SHA-256
// sum (the relay's word, as the inbox lists it), reading it whole. A case
// that does not is removed, so that it is downloaded again; Verify then
// reports false. A case that does is made durable by the next Sync, which
// marks it synced in the index. A pull verifies a case it holds (or its
// twin) before acknowledging it again, since a power cut before Sync may
// have left it short. A case whose bytes check out but whose metadata
// does not read (case.json missing, empty, torn, or naming another case)
// is removed as well and reported false: the pull fetches it again and
// writes its metadata afresh; it is never acknowledged, nor made durable,
// on bytes alone. (A twin so removed costs its download under the new ID.)
func (s *Store) Verify(id string, size int64, sum string) (bool, error) {
	if !ValidID(id) {
		return false, fmt.Errorf("invalid case ID %q", id)
	}
	f, err := os.Open(s.BundlePath(id))
	if err != nil {
		return false, fmt.Errorf("checking case %s: %w", id, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return false, fmt.Errorf("checking case %s: %w", id, err)
	}
	if n == size && hex.EncodeToString(h.Sum(nil)) == sum {
		// Whole, but perhaps only in the page cache: the next Sync makes
		// it durable and marks it synced in the index, like a case just
		// received. Without its metadata it is not complete: fetched
		// again, below.
		if m, err := s.Meta(id); err == nil && m.Size == size && m.SHA256 == sum {
			s.mu.Lock()
			s.pending = append(s.pending, *m)
			s.mu.Unlock()
			return true, nil
		}
	}
	if err := os.Remove(s.BundlePath(id)); err != nil {
		return false, fmt.Errorf("removing damaged case %s: %w", id, err)
	}
	os.Remove(filepath.Join(s.caseDir(id), metaFile))
	return false, nil
}

// limitWriter refuses to write more than the case's announced size, so a
// misbehaving relay cannot fill the disk.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, errors.New("the relay sent more bytes than it announced")
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// ValidID reports whether id has the form of a submission ID.
func ValidID(id string) bool { return idRE.MatchString(id) }

// SaveMeta writes a case's metadata durably.
func (s *Store) SaveMeta(m *Meta) error {
	if err := writeSynced(filepath.Join(s.caseDir(m.ID), metaFile), m); err != nil {
		return err
	}
	return SyncDir(s.caseDir(m.ID))
}

func writeSynced(path string, m *Meta) error {
	b, err := marshalMeta(m)
	if err != nil {
		return err
	}
	return WriteTemp(path, b)
}

// WriteTemp writes a file with mode 0600 through a temporary name in the
// same directory, syncs it and renames it into place. The caller syncs the
// directory (SyncDir), once for many files if it likes.
func WriteTemp(path string, data []byte) error { return writeFile(path, data, true) }

// writeFile is WriteTemp, syncing the file only when sync is set.
func writeFile(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("syncing %s: %w", filepath.Base(path), err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writePlain writes a file with mode 0600 in place, unsynced: for a file
// nothing reads until it is renamed (a partial download).
func writePlain(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileSync writes a file with mode 0600 through a temporary name in the
// same directory, syncs it and renames it into place.
func WriteFileSync(path string, data []byte) error {
	if err := WriteTemp(path, data); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes a directory's entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// Meta reads a case's metadata.
func (s *Store) Meta(id string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(s.caseDir(id), metaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading case %s: %w", id, err)
	}
	var m Meta
	d := diskMeta{Meta: &m}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("case %s: %w: %s: %w", id, ErrBadMeta, metaFile, err)
	}
	if m.ID != id {
		// Copied from another case, or the folder renamed: what it says
		// (its file key, its mailbox) is not this case's.
		return nil, fmt.Errorf("case %s: %w: its %s names case %q", id, ErrBadMeta, metaFile, m.ID)
	}
	m.FileKey, m.Damaged = d.FileKey, false
	return &m, nil
}

// List returns every complete case, oldest first. A case whose metadata
// does not read (Meta fails) is listed with its folder's ID and Damaged
// set, and nothing else known; it sorts first.
func (s *Store) List() ([]*Meta, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing cases: %w", err)
	}
	var out []*Meta
	for _, e := range ents {
		if !e.IsDir() || !ValidID(e.Name()) || !s.Has(e.Name()) {
			continue
		}
		m, err := s.Meta(e.Name())
		if err != nil {
			// One torn case.json does not hide the others: the case is
			// listed by its folder's ID, marked damaged.
			m = &Meta{ID: e.Name(), Damaged: true}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Received != out[j].Received {
			return out[i].Received < out[j].Received
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Resolve finds the case whose ID is or starts with prefix.
func (s *Store) Resolve(prefix string) (string, error) {
	prefix = strings.ToLower(prefix)
	if prefix == "" {
		return "", ErrNotFound
	}
	// A whole ID names one case or none; a shorter prefix is matched
	// against the directory's names, without reading any case's metadata.
	if ValidID(prefix) {
		if !s.Has(prefix) {
			return "", ErrNotFound
		}
		return prefix, nil
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return "", fmt.Errorf("listing cases: %w", err)
	}
	var found string
	for _, e := range ents {
		if !e.IsDir() || !ValidID(e.Name()) || !strings.HasPrefix(e.Name(), prefix) || !s.Has(e.Name()) {
			continue
		}
		if found != "" {
			return "", ErrAmbiguous
		}
		found = e.Name()
	}
	if found == "" {
		return "", ErrNotFound
	}
	return found, nil
}
