// Package tornet is a test harness: it starts a complete private Tor network
// on 127.0.0.1 (directory authorities that are also the only relays) so that
// tests can start clients and onion services that never touch the real Tor
// network. It must never be used for anything else: its nodes run with
// TestingTorNetwork, publish no exits and trust only authorities whose keys
// it generated a moment before.
//
// It runs the tor and tor-gencert binaries and imports only the standard
// library. Every tor it starts reads stdin from /dev/null, writes stdout,
// stderr and its notice log to tor.log in its own data directory, listens
// only on free loopback ports picked at start, and is stopped by Close (and,
// on Linux, killed if the test process dies). Nothing is global, so several
// test packages may each run their own network at the same time.
//
// A typical test:
//
//	n, err := tornet.Start(ctx, tornet.Options{Dir: t.TempDir(), Logf: t.Logf})
//	if errors.Is(err, tornet.ErrTorNotInstalled) { ... gate: fail in CI, skip elsewhere ... }
//	defer n.Close()
//	c, err := n.StartClient(ctx, "client")
//	// dial onions through c.SocksAddr; give any other tor n.TorrcLines().
package tornet
