//go:build race

package relay

// raceEnabled is true when the tests run under the race detector, which
// makes TestPull150k far too slow; the Makefile runs it without.
const raceEnabled = true
