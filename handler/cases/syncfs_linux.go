//go:build linux

package cases

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// syncFS makes every write to the filesystem holding dir durable, file
// data and directory entries alike, in one call (syncfs(2)); ok is false
// when it cannot be trusted to, and the caller syncs file by file:
// syncfs reports writeback errors only since Linux 5.8, so on an older
// kernel (or one whose release does not parse) an I/O error would pass
// silently.
func syncFS(dir string) (ok bool, err error) {
	if !syncfsReportsErrors(kernelRelease()) {
		return false, nil
	}
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

// kernelRelease is the running kernel's release (uname -r), "" when
// unknown; a test replaces it.
var kernelRelease = func() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// syncfsReportsErrors reports whether a kernel of this release (uname -r,
// such as "5.10.0-28-amd64") is Linux 5.8 or later, whose syncfs(2)
// returns writeback errors.
func syncfsReportsErrors(release string) bool {
	major, rest, _ := strings.Cut(release, ".")
	minor := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = rest[:i]
	}
	maj, err1 := strconv.Atoi(major)
	mnr, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > 5 || maj == 5 && mnr >= 8
}
