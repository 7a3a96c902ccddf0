//go:build !unix

package cases

func freeSpace(dir string) int64 { return -1 }
