// Package powercut holds the power-cut tests: a disk with a volatile write
// cache, served through FUSE as the backing file of a loop-mounted ext4, on
// which the relay's spool and the handler's case store run while the disk
// is cut, at chosen instants, to what a real disk could hold after losing
// power. Each cut is checked with e2fsck, a mount, bbolt's check, a relay
// started on it, and the acknowledgements given before it.
//
// It must never touch a real disk or filesystem other than the images it
// makes in the test's temporary directory, never leave a FUSE mount, an
// ext4 mount or a loop device behind (every one is undone when the test
// ends, failed or not, and on SIGINT or SIGTERM; only a SIGKILL of the test
// binary can leave them), and never count a cut as passed that it could not
// check. See powercut_test.go for how to run and replay it.
package powercut
