// Package crash holds the crash-safety tests: they build amana and
// amana-relay from the tree, kill them with SIGKILL at random moments (the
// relay while submissions and acks arrive, amana while it pulls) and check
// that nothing acknowledged is lost, nothing half-written becomes visible and
// the bbolt spool stays consistent. It has no code of its own; see
// crash_test.go for how to run the long version.
package crash
