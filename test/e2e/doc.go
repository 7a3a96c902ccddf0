// Package e2e holds the end-to-end tests that drive the built amana and
// amana-relay programs on loopback. It has no code of its own.
//
// The longest tests, those that drive a browser through large files or
// wait on the private Tor network, call t.Parallel: they run after the
// others, go test's -parallel (GOMAXPROCS) at a time, so that a browser
// busy on one core overlaps a test waiting on tor. Such a test never uses
// t.Setenv or os.Chdir, and keeps its files in its own t.TempDir; a test's
// own TMPDIR goes to the relay and the handlers' commands through
// setupEnv. Tests that measure the relay under load
// (TestMemoryBoundUnderFlood) or boot a systemd (TestUnitBootsUnderSystemd)
// stay sequential.
package e2e
