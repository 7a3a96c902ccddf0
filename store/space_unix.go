//go:build unix

package store

import "syscall"

// freeSpace returns the bytes available to this user on the filesystem of
// dir, or -1 if it cannot tell.
func freeSpace(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
