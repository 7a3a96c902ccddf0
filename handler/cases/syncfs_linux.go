//go:build linux

package cases

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS makes every write to the filesystem holding dir durable, file
// data and directory entries alike, in one call (syncfs(2)); ok is false
// when it cannot, and the caller syncs file by file.
func syncFS(dir string) (ok bool, err error) {
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return false, err
	}
	return true, nil
}
