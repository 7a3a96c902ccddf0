//go:build !unix

package store

// freeSpace cannot tell here: the disk reserve then holds only against
// Options.MaxFileSize.
func freeSpace(dir string) int64 { return -1 }
