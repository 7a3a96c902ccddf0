// Package crypto owns Amana's keys and formats: handler identities and their
// public cards, signed desk manifests, signed handler requests, the padded tar
// submission bundle, the case journal's signed and padded events, facts and
// history blobs, and the check that a stored body is an age file with the
// expected recipient stanzas.
//
// It works on bytes and streams only. It must never import network code or the
// spool (package store), and it must never write a secret or a plaintext to
// disk: callers decide where bytes go.
package crypto
