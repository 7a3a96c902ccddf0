// Package onion is the only part of Amana that talks to tor. It starts a
// tor (through bine) or attaches to one an operator runs, publishes onion
// services with persistent keys, v3 client authorization and proof-of-work
// defences (sending the control-port commands bine lacks itself), and gives
// clients an HTTP transport that reaches .onion addresses through a SOCKS
// port, with every tor failure turned into an error that says what to do.
//
// It must never hold a key that opens a submission, and never log an
// address other than the relay's own onions.
package onion
