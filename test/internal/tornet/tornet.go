package tornet

import (
	"bufio"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// makeKeys creates a's data directory, its v3 authority keys with
// tor-gencert, and its relay keys, and records both fingerprints.
func (n *Network) makeKeys(ctx context.Context, gencert string, a *authority) error {
	keys := filepath.Join(a.dataDir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return fmt.Errorf("tornet: %w", err)
	}
	cert := filepath.Join(keys, "authority_certificate")
	gen := exec.CommandContext(ctx, gencert, "--create-identity-key", "--passphrase-fd", "0", "-m", "12",
		"-a", fmt.Sprintf("127.0.0.1:%d", a.dirPort),
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", cert)
	gen.Stdin = strings.NewReader("\n") // an empty passphrase
	gen.SysProcAttr = sysProcAttr()
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("tornet: tor-gencert for %s: %w\n%s", a.name, err, out)
	}
	v3, err := certFingerprint(cert)
	if err != nil {
		return fmt.Errorf("tornet: %s: %w", a.name, err)
	}
	a.v3ident = v3

	list := exec.CommandContext(ctx, n.torPath, "--ignore-missing-torrc", "-f", filepath.Join(a.dataDir, "none"),
		"--defaults-torrc", n.empty, "--DataDirectory", a.dataDir, "--GeoIPFile", n.empty, "--GeoIPv6File", n.empty,
		"--Nickname", a.name, "--ORPort", "1", "--list-fingerprint", "--quiet")
	list.SysProcAttr = sysProcAttr()
	var stderr strings.Builder
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		return fmt.Errorf("tornet: tor --list-fingerprint for %s: %w\n%s%s", a.name, err, out, stderr.String())
	}
	fp, err := listedFingerprint(string(out))
	if err != nil {
		return fmt.Errorf("tornet: tor --list-fingerprint for %s: %w", a.name, err)
	}
	a.fingerprint = fp
	return nil
}

var hexFingerprint = regexp.MustCompile(`^[0-9A-F]{40}$`)

// certFingerprint returns the fingerprint line of the authority certificate
// at path: the authority's v3ident.
func certFingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fp, ok := strings.CutPrefix(sc.Text(), "fingerprint "); ok {
			fp = strings.TrimSpace(fp)
			if !hexFingerprint.MatchString(fp) {
				return "", fmt.Errorf("authority certificate has a malformed fingerprint %q", fp)
			}
			return fp, nil
		}
	}
	return "", errors.New("authority certificate has no fingerprint line")
}

// listedFingerprint parses the output of tor --list-fingerprint: its last
// line is the nickname followed by the fingerprint in groups of four.
func listedFingerprint(out string) (string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) < 2 {
		return "", fmt.Errorf("unexpected output %q", out)
	}
	fp := strings.Join(fields[1:], "")
	if !hexFingerprint.MatchString(fp) {
		return "", fmt.Errorf("unexpected output %q", out)
	}
	return fp, nil
}

// nodeLines returns the torrc lines every tor started by the network has.
func (n *Network) nodeLines(dataDir string, ctlPort int) string {
	return fmt.Sprintf(`# Written by tornet: a private Tor test network on 127.0.0.1.
TestingTorNetwork 1
UseDefaultFallbackDirs 0
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
DataDirectory %s
ControlPort 127.0.0.1:%d
CookieAuthentication 1
ShutdownWaitLength 0
Log notice file %s
GeoIPFile %s
GeoIPv6File %s
%s`, dataDir, ctlPort, filepath.Join(dataDir, logName), n.empty, n.empty, n.dirLines)
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

// readyFlags are the flags every relay must carry before the network is
// ready: HSDir to store onion descriptors, Stable to serve as a
// vanguards-lite layer-2 node.
var readyFlags = []string{"HSDir", "Stable"}

// waitReady polls the authorities until their consensus lists every one of
// them with readyFlags and each has logged "Bootstrapped 100%".
func (n *Network) waitReady(ctx context.Context) error {
	began := time.Now()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	status := "no consensus yet"
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		for _, a := range n.auths {
			if a.d.exited() {
				return a.d.exitError()
			}
		}
		a := n.auths[i%len(n.auths)]
		relays, flagged, err := fetchConsensus(ctx, hc, a.dirPort)
		switch {
		case err != nil:
			status = fmt.Sprintf("no consensus yet (%s: %v)", a.name, err)
		case flagged < len(n.auths):
			status = fmt.Sprintf("consensus lists %d relays, %d with %s, of %d",
				relays, flagged, strings.Join(readyFlags, " and "), len(n.auths))
		default:
			var waiting []string
			for _, a := range n.auths {
				if !a.bootstrapped {
					a.bootstrapped = logContains(a.d.logPath, "Bootstrapped 100%")
				}
				if !a.bootstrapped {
					waiting = append(waiting, a.name)
				}
			}
			if len(waiting) == 0 {
				return nil
			}
			status = "consensus complete; not yet bootstrapped: " + strings.Join(waiting, ", ")
		}
		select {
		case <-ctx.Done():
			return n.notReady(ctx, time.Since(began), status)
		case <-tick.C:
		}
	}
}

func (n *Network) notReady(ctx context.Context, waited time.Duration, status string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tornet: network not ready %v after launch (%v): %s", waited.Round(time.Second), context.Cause(ctx), status)
	for _, a := range n.auths {
		fmt.Fprintf(&b, "\n--- end of %s:\n%s", a.d.logPath, tailFile(a.d.logPath, 10))
	}
	return errors.New(b.String())
}

// fetchConsensus fetches the microdescriptor consensus from the authority
// at dirPort and counts its relays and those with every one of readyFlags.
func fetchConsensus(ctx context.Context, hc *http.Client, dirPort int) (relays, flagged int, err error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/tor/status-vote/current/consensus-microdesc", dirPort)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	// Tor ignores Go's default "Accept-Encoding: gzip" and answers with
	// deflate (zlib), which net/http does not undo. Ask for identity, and
	// undo deflate anyway should a tor still send it.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	var r io.Reader = resp.Body
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "deflate":
		zr, err := zlib.NewReader(resp.Body)
		if err != nil {
			return 0, 0, fmt.Errorf("consensus: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return 0, 0, fmt.Errorf("consensus in unexpected Content-Encoding %q", enc)
	}
	body, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return 0, 0, fmt.Errorf("consensus: %w", err)
	}
	relays, flagged = countFlagged(string(body), readyFlags)
	return relays, flagged, nil
}

// countFlagged counts the router entries ("r" lines) of a consensus and
// those whose flags ("s" line) include every one of flags.
func countFlagged(consensus string, flags []string) (relays, flagged int) {
	for line := range strings.Lines(consensus) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "r":
			relays++
		case "s":
			if !slices.ContainsFunc(flags, func(want string) bool { return !slices.Contains(f[1:], want) }) {
				flagged++
			}
		}
	}
	return relays, flagged
}

// TorrcLines returns the torrc lines any further tor (a relay's, a CLI's, a
// client's) needs to join this network: TestingTorNetwork 1,
// UseDefaultFallbackDirs 0, PathsNeededToBuildCircuits 0.67, empty
// GeoIPFile and GeoIPv6File, and one DirAuthority line per authority. The
// caller adds its own DataDirectory, ports and services.
func (n *Network) TorrcLines() string {
	return fmt.Sprintf(`TestingTorNetwork 1
UseDefaultFallbackDirs 0
PathsNeededToBuildCircuits 0.67
GeoIPFile %s
GeoIPv6File %s
%s`, n.empty, n.empty, n.dirLines)
}

// WriteTorrc writes TorrcLines to a file with mode 0600 and returns its
// path, for a --torrc flag or bine's StartConf.TorrcFile. An empty path
// means a new file in the network's directory.
func (n *Network) WriteTorrc(path string) (string, error) {
	if path == "" {
		f, err := os.CreateTemp(n.dir, "torrc-*")
		if err != nil {
			return "", fmt.Errorf("tornet: %w", err)
		}
		path = f.Name()
		f.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("tornet: writing a torrc: %w", err)
	}
	_, err = f.WriteString(n.TorrcLines())
	if err1 := f.Chmod(0o600); err == nil {
		err = err1
	}
	if err1 := f.Close(); err == nil {
		err = err1
	}
	if err != nil {
		return "", fmt.Errorf("tornet: writing a torrc: %w", err)
	}
	return filepath.Abs(path)
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
