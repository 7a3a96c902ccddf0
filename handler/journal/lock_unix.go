//go:build unix

package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile holds the journal for one process at a time: two amana
// commands at once (a sync from a timer and a case set) would otherwise
// give two changes the same seq. The lock goes with the process, also when
// it is killed.
func (j *Journal) lockFile() (func(), error) {
	f, err := os.OpenFile(filepath.Join(j.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the case journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the case journal: %w", err)
	}
	return func() { f.Close() }, nil
}
