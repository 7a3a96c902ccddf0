// Package handler is the handler's side of Amana, on the handler's own
// machine: pulling cases from relays into the local case store (verified,
// synced, then acknowledged) and reading what a case says about itself.
// The case store, handler/cases, holds ciphertext only.
//
// It must never write plaintext to disk, never send a key or plaintext to
// a relay, and never acknowledge a case before its local copy is durable.
package handler
