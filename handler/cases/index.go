package cases

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// IndexFile is the case store's local index, in the store's root: one
// line per case, "ID SHA256 S", where S is "s" when the case was made
// durable by Sync and "-" when the entry was rebuilt from the cases'
// metadata (durable under an older release, or not: unknown). It is
// appended to by Sync, after the sync, so an entry marked "s" is never
// durable before its case; it holds no more than each case's metadata
// does (no plaintext), and is 0600.
//
// The index is a cache. A missing one is rebuilt from every case's
// metadata; a line that does not parse (a torn append) is skipped, and a
// later line for an ID overrides an earlier. What it says is checked
// where it matters: a pull trusts an "s" entry to skip verifying a held
// case before acknowledging it again, and checks that a case it names
// still exists.
const IndexFile = "index"

// IndexEntry is what the index knows of one case.
type IndexEntry struct {
	SHA256 string
	Synced bool // made durable by Sync (else: rebuilt, not known durable)
}

var indexLineRE = regexp.MustCompile(`^([0-9a-f]{32}) ([0-9a-f]{64}) ([s-])$`)

// parseIndex reads an index, skipping lines that do not parse and keeping
// the last entry of each ID. At most maxIndexLine bytes per line count.
func parseIndex(r io.Reader) (map[string]IndexEntry, error) {
	out := map[string]IndexEntry{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxIndexLine)
	for sc.Scan() {
		m := indexLineRE.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		out[string(m[1])] = IndexEntry{SHA256: string(m[2]), Synced: m[3][0] == 's'}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return nil, err
	}
	return out, nil
}

// maxIndexLine bounds a line of the index: a valid one has 99 bytes.
const maxIndexLine = 4096

func indexLine(id, sum string, synced bool) []byte {
	flag := "-"
	if synced {
		flag = "s"
	}
	return fmt.Appendf(nil, "%s %s %s\n", id, sum, flag)
}

// Index returns the local index, by case ID. When the store has none, it
// is rebuilt from every complete case's metadata, with no entry marked
// synced, and written.
func (s *Store) Index() (map[string]IndexEntry, error) {
	path := filepath.Join(s.dir, IndexFile)
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		idx, err := parseIndex(f)
		if err != nil {
			return nil, fmt.Errorf("reading the case index: %w", err)
		}
		return idx, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading the case index: %w", err)
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	idx := make(map[string]IndexEntry, len(all))
	var b bytes.Buffer
	for _, m := range all {
		if !ValidID(m.ID) || !shaRE.MatchString(m.SHA256) {
			continue
		}
		idx[m.ID] = IndexEntry{SHA256: m.SHA256}
		b.Write(indexLine(m.ID, m.SHA256, false))
	}
	if err := WriteFileSync(path, b.Bytes()); err != nil {
		return nil, fmt.Errorf("writing the case index: %w", err)
	}
	return idx, nil
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// appendIndex records cases made durable by Sync. A failure leaves them
// unmarked, which costs a verification, never a wrong acknowledgement.
func (s *Store) appendIndex(ms []Meta) error {
	if len(ms) == 0 {
		return nil
	}
	path := filepath.Join(s.dir, IndexFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		// Rebuilt on the next Index, from the cases themselves.
		return nil
	}
	var b bytes.Buffer
	for _, m := range ms {
		if shaRE.MatchString(m.SHA256) {
			b.Write(indexLine(m.ID, m.SHA256, true))
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("updating the case index: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("updating the case index: %w", err)
	}
	return nil
}
