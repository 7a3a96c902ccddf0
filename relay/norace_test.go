//go:build !race

package relay

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false
