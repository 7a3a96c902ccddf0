// Package e2e holds the end-to-end tests that drive the built amana and
// amana-relay programs on loopback. It has no code of its own.
package e2e
