// Package relay serves Amana's HTTP API (/api/v1): the public intake side
// (desk manifests, single-request and resumable submissions, health) and the
// handler side (inbox, download, ack, replies, the case journal's events,
// manifest publication), the latter only to requests signed by a handler or
// the desk admin.
//
// It takes a net.Listener, so tests run it on loopback and production on a
// Tor onion service, and the spool it stores into (a *store.Spool). It
// never holds a key that opens a submission, never writes a request body
// anywhere but the spool, and never shows an internal error to a client:
// every error answer is a stable code, a message and a hint.
package relay
