package cases

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Remove deletes case id from the store: every file in its directory
// (the ciphertext, a partial download, case.json) is first overwritten in
// place with zeros and synced, then truncated and unlinked, and the empty
// directory is removed and the store's directory synced.
//
// Overwriting reaches the blocks the file occupies now only on a
// filesystem that writes in place (ext4 with its default data=ordered
// journal, for example). On SSDs (wear levelling), copy-on-write
// filesystems (btrfs, ZFS, APFS), with data journalling, snapshots or
// backups, earlier copies of the blocks may survive; see the threat model.
// What it removes is ciphertext and metadata: the store never holds
// plaintext.
func (s *Store) Remove(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("invalid case ID %q", id)
	}
	dir := s.caseDir(id)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("reading case %s: %w", id, err)
	}
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		if e.Type().IsRegular() {
			if err := overwrite(path); err != nil {
				return fmt.Errorf("overwriting %s: %w", path, err)
			}
			if err := os.Truncate(path, 0); err != nil {
				return fmt.Errorf("truncating %s: %w", path, err)
			}
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("removing %s: %w", path, err)
		}
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return SyncDir(s.dir)
}

// overwrite writes zeros over a file's whole length, in place, and syncs
// it.
func overwrite(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, zeros{}, fi.Size()); err != nil {
		return err
	}
	return f.Sync()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
