// Package store is Amana's spool: a bbolt database holding ciphertext
// submissions, unfinished resumable uploads, mailboxes, the case journal's
// events (ciphertext too), signed desk manifests and a few settings.
//
// It treats every submission and event as opaque bytes, stored in chunks of at most
// 1 MiB so that no value and no read needs more memory than that. It keeps
// times only coarsened (to the hour by default) and nothing about clients. It
// must never import package crypto, HTTP or Tor code: the relay gives it
// bytes and names, and it gives them back.
package store
