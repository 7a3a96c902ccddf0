package tornet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrTorNotInstalled is returned (wrapped) by Start when the tor or the
// tor-gencert binary cannot be found. Tests gate on it: fail when CI is set,
// skip loudly otherwise.
var ErrTorNotInstalled = errors.New("tor is not installed (Debian: apt-get install tor)")

// Options configures Start. Every zero value means the documented default.
type Options struct {
	// Dir is where Start creates a fresh directory (mode 0700) holding every
	// data directory of the network, so several networks may share one Dir.
	// Dir itself is created 0700 if missing. Required.
	Dir string

	// TorPath is the tor binary. "" looks up "tor" on PATH, then
	// /usr/sbin/tor. tor-gencert is looked for next to it, then on PATH.
	TorPath string

	// Authorities is the number of directory authorities, which are also the
	// network's only relays. 0 means 5. Four is the fewest that worked: with
	// three, circuits fail for want of a third hop.
	Authorities int

	// Logf receives progress lines and timings. nil discards them.
	Logf func(format string, args ...any)

	// Timeout bounds all of Start, and each StartClient. 0 means 90s.
	Timeout time.Duration
}

const (
	defaultAuthorities = 5
	minAuthorities     = 4
	defaultTimeout     = 90 * time.Second

	// votingInterval is V3AuthVotingInterval and its testing twins, in
	// seconds; firstVoteAfter is how long after launch the first consensus
	// is scheduled.
	votingInterval = 20
	firstVoteAfter = 8
)

// Network is a running private Tor network. Its methods are safe for
// concurrent use.
type Network struct {
	dir      string // the directory Start created under Options.Dir
	torPath  string
	empty    string // an empty file: GeoIP databases and defaults torrc
	logf     func(string, ...any)
	timeout  time.Duration
	auths    []*authority
	dirLines string // the DirAuthority lines

	mu      sync.Mutex
	clients []*Client
	closed  bool
}

type authority struct {
	name                     string
	dataDir                  string
	orPort, dirPort, ctlPort int
	v3ident, fingerprint     string
	d                        *daemon
	bootstrapped             bool
}

// Start generates keys for the directory authorities, starts them, and
// returns once their consensus lists every one of them with the HSDir and
// Stable flags and each has bootstrapped: from then on clients and onion
// services can join. This takes about 10 seconds. If Start fails, it stops
// whatever it started, leaves its directory under Options.Dir for
// inspection, and the error carries the end of the authorities' logs.
func Start(ctx context.Context, o Options) (*Network, error) {
	if o.Dir == "" {
		return nil, errors.New("tornet: Options.Dir is required")
	}
	if o.Authorities == 0 {
		o.Authorities = defaultAuthorities
	}
	if o.Authorities < minAuthorities {
		return nil, fmt.Errorf("tornet: %d authorities is too few: circuits need at least %d relays", o.Authorities, minAuthorities)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	torPath, gencert, err := findTor(o.TorPath)
	if err != nil {
		return nil, err
	}
	base, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("tornet: %w", err)
	}
	if strings.ContainsAny(base, "\n\r") {
		return nil, fmt.Errorf("tornet: Options.Dir %q cannot appear in a torrc", base)
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("tornet: creating Options.Dir: %w", err)
	}
	dir, err := os.MkdirTemp(base, "tornet-")
	if err != nil {
		return nil, fmt.Errorf("tornet: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	n := &Network{dir: dir, torPath: torPath, logf: o.Logf, timeout: o.Timeout, empty: filepath.Join(dir, "empty")}
	if err := n.start(ctx, gencert, o.Authorities); err != nil {
		n.stop()
		return nil, fmt.Errorf("%w\n(tornet: the network's files are kept in %s)", err, dir)
	}
	return n, nil
}

func (n *Network) start(ctx context.Context, gencert string, count int) error {
	began := time.Now()
	resolv := filepath.Join(n.dir, "resolv.conf")
	if err := os.WriteFile(n.empty, nil, 0o600); err != nil {
		return fmt.Errorf("tornet: %w", err)
	}
	// Relays resolve nothing: no exits. Pointing them at 127.0.0.1 keeps them
	// from asking the machine's real resolvers anything.
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o600); err != nil {
		return fmt.Errorf("tornet: %w", err)
	}
	ports, err := freePorts(3 * count)
	if err != nil {
		return err
	}
	for i := range count {
		n.auths = append(n.auths, &authority{
			name:    fmt.Sprintf("auth%d", i+1),
			dataDir: filepath.Join(n.dir, fmt.Sprintf("auth%d", i+1)),
			orPort:  ports[3*i],
			dirPort: ports[3*i+1],
			ctlPort: ports[3*i+2],
		})
	}

	// Keys, every authority in parallel.
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i, a := range n.auths {
		wg.Go(func() { errs[i] = n.makeKeys(ctx, gencert, a) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	keysTook := time.Since(began)
	n.logf("tornet: keys for %d authorities generated in %v", count, keysTook.Round(time.Millisecond))

	var dl strings.Builder
	for _, a := range n.auths {
		fmt.Fprintf(&dl, "DirAuthority %s orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s\n",
			a.name, a.orPort, a.v3ident, a.dirPort, a.fingerprint)
	}
	n.dirLines = dl.String()

	// Staged start: schedule the first vote about firstVoteAfter seconds
	// from now instead of waiting for the next whole interval.
	launched := time.Now()
	offset := (launched.Unix() + firstVoteAfter) % votingInterval
	for _, a := range n.auths {
		// The two AuthDirVoteStableGuarantee lines make every relay Stable
		// from the first vote. Left to uptime, Stable comes and goes
		// between consensuses in a network seconds old, and vanguards-lite
		// picks its layer-2 nodes, kept for days, only among Stable
		// relays: a tor that picked while few were Stable then failed
		// every onion-service circuit ("Failed to find node for hop #2")
		// and never bootstrapped, in about one start in three here.
		torrc := n.nodeLines(a.dataDir, a.ctlPort) + fmt.Sprintf(`Nickname %s
SocksPort 0
Address 127.0.0.1
ORPort 127.0.0.1:%d
DirPort 127.0.0.1:%d
AssumeReachable 1
ServerDNSResolvConfFile %s
ServerDNSDetectHijacking 0
ExitRelay 0
ExitPolicy reject *:*
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
ContactInfo x@test.invalid
TestingV3AuthInitialVotingInterval %d
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
V3AuthVotingInterval %d
V3AuthVoteDelay 2
V3AuthDistDelay 2
AuthDirVoteStableGuaranteeMinUptime 0
AuthDirVoteStableGuaranteeMTBF 0
`, a.name, a.orPort, a.dirPort, resolv, votingInterval, votingInterval)
		d, err := n.launch(a.name, a.dataDir, torrc, "--TestingV3AuthVotingStartOffset", strconv.FormatInt(offset, 10))
		if err != nil {
			return err
		}
		a.d = d
	}
	if err := n.waitReady(ctx); err != nil {
		return err
	}
	n.logf("tornet: network of %d authorities ready %v after launch (%v including keys)",
		count, time.Since(launched).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	return nil
}

// launch writes torrc into dataDir and starts tor on it.
func (n *Network) launch(name, dataDir, torrc string, extra ...string) (*daemon, error) {
	path := filepath.Join(dataDir, "torrc")
	if err := os.WriteFile(path, []byte(torrc), 0o600); err != nil {
		return nil, fmt.Errorf("tornet: %w", err)
	}
	// --hush keeps all but warnings off stdout, which goes to the same
	// tor.log: tor replays its startup messages into the Log file anyway.
	args := append([]string{"--defaults-torrc", n.empty, "-f", path, "--hush",
		// A second guard besides Pdeathsig, on every system: tor exits
		// by itself once this process is gone.
		"--__OwningControllerProcess", strconv.Itoa(os.Getpid())}, extra...)
	return startDaemon(n.torPath, name, dataDir, args)
}

// Close stops every tor the network started, clients included (SIGTERM,
// then SIGKILL after 5 s), waits for them, and removes the directory Start
// created under Options.Dir, and nothing else. It reports a tor that had
// died on its own. Calling it again does nothing.
func (n *Network) Close() error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil
	}
	err := n.stop()
	if rmErr := os.RemoveAll(n.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("tornet: removing %s: %w", n.dir, rmErr))
	}
	return err
}

// stop marks the network closed and stops every tor it started.
func (n *Network) stop() error {
	n.mu.Lock()
	n.closed = true
	clients := n.clients
	n.mu.Unlock()

	var ds []*daemon
	for _, c := range clients {
		ds = append(ds, c.d)
	}
	for _, a := range n.auths {
		if a.d != nil {
			ds = append(ds, a.d)
		}
	}
	return stopAll(ds, n.logf)
}

// pids lists the process ids of every tor the network started, for tests.
func (n *Network) pids() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ps []int
	for _, a := range n.auths {
		if a.d != nil {
			ps = append(ps, a.d.pid())
		}
	}
	for _, c := range n.clients {
		ps = append(ps, c.d.pid())
	}
	return ps
}

// findTor resolves the tor and tor-gencert binaries.
func findTor(torPath string) (tor, gencert string, err error) {
	want := torPath
	if want == "" {
		want = "tor"
	}
	if torPath, err = exec.LookPath(want); err != nil {
		if want != "tor" {
			return "", "", fmt.Errorf("tornet: %v: %w", err, ErrTorNotInstalled)
		}
		if torPath, err = exec.LookPath("/usr/sbin/tor"); err != nil {
			return "", "", fmt.Errorf("tornet: no tor on PATH or in /usr/sbin: %w", ErrTorNotInstalled)
		}
	}
	gencert = filepath.Join(filepath.Dir(torPath), "tor-gencert")
	if _, err := os.Stat(gencert); err != nil {
		if gencert, err = exec.LookPath("tor-gencert"); err != nil {
			gencert = "/usr/bin/tor-gencert"
			if _, err := os.Stat(gencert); err != nil {
				return "", "", fmt.Errorf("tornet: tor-gencert not found: %w", ErrTorNotInstalled)
			}
		}
	}
	return torPath, gencert, nil
}
