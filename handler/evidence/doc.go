// Package evidence is the handler's evidence work on a case's files: what
// their metadata reveals (exiftool), cleaned working copies apart from the
// untouched originals (mat2), and evidence bundles anyone can verify
// (SHA256SUMS and a detached Ed25519 signature).
//
// The outside tools run in a sandbox (Sandbox): bubblewrap with no
// network, a read-only system, an empty /tmp and nothing of the handler's
// home, under resource limits. Case text reaches them on stdin or as one
// read-only file in a directory the caller chose to write to.
//
// It must never write a case's plaintext anywhere but the directory the
// caller names, never change or remove an original, never call a file
// clean that the cleaner did not clean, and never talk to the network.
package evidence
