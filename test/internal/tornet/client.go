package tornet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Client is a tor started by StartClient: a SOCKS proxy and a control port
// on the network.
type Client struct {
	// SocksAddr is the SOCKS5 proxy, "127.0.0.1:port". It has
	// ExtendedErrors, so a failed onion connection says why (for example
	// 244: client authorization is missing).
	SocksAddr string

	// ControlAddr is the control port, "127.0.0.1:port", with cookie
	// authentication; the cookie is DataDir/control_auth_cookie.
	ControlAddr string

	// DataDir is the client's data directory. Its log is DataDir/tor.log.
	DataDir string

	d *daemon
	n *Network
}

var clientName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// StartClient starts another tor on the network with a SOCKS port and a
// control port on 127.0.0.1, waits until it has bootstrapped to 100% (2 to
// 3 seconds on a ready network), and returns it. name names its data
// directory: letters, digits, '-' and '_', unique within the network.
// Network.Close stops it too.
func (n *Network) StartClient(ctx context.Context, name string) (*Client, error) {
	if !clientName.MatchString(name) {
		return nil, fmt.Errorf("tornet: client name %q: want 1 to 32 letters, digits, '-' or '_'", name)
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil, errors.New("tornet: StartClient on a closed network")
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	began := time.Now()

	dataDir := filepath.Join(n.dir, "client-"+name)
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("tornet: client %s: %w", name, err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	c := &Client{
		SocksAddr:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		ControlAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		DataDir:     dataDir,
		n:           n,
	}
	torrc := n.nodeLines(dataDir, ports[1]) + fmt.Sprintf("SocksPort %s ExtendedErrors\n", c.SocksAddr)
	c.d, err = n.launch("client-"+name, dataDir, torrc)
	if err != nil {
		return nil, err
	}

	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		c.d.stop(n.logf)
		return nil, errors.New("tornet: StartClient on a closed network")
	}
	n.clients = append(n.clients, c)
	n.mu.Unlock()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !logContains(c.d.logPath, "Bootstrapped 100%") {
		if c.d.exited() {
			return nil, c.d.stop(n.logf) // the exit error, reported once
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("tornet: client %s did not bootstrap (%v); end of %s:\n%s",
				name, context.Cause(ctx), c.d.logPath, tailFile(c.d.logPath, 15))
			c.Close()
			return nil, err
		case <-tick.C:
		}
	}
	n.logf("tornet: client %s bootstrapped in %v", name, time.Since(began).Round(time.Millisecond))
	return c, nil
}

// Close stops the client's tor (SIGTERM, then SIGKILL after 5 s) and waits
// for it. It reports a tor that had died on its own. Its data directory
// stays until Network.Close. Calling it again does nothing.
func (c *Client) Close() error {
	return c.d.stop(c.n.logf)
}
