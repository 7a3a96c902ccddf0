package tornet

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTor fails the test when tor is missing and CI is set, and skips it
// loudly otherwise.
func requireTor(t *testing.T) {
	t.Helper()
	if _, _, err := findTor(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v, and CI is set: .ci/run must apt-get install tor", err)
		}
		fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: tor is not installed ***\n", t.Name())
		t.Skip("tor is not installed")
	}
}

// TestNetwork starts a network and a client, publishes an onion service from
// a plain tor given only TorrcLines, fetches a page from it through the
// client's SOCKS port, and checks that Close leaves no tor running.
func TestNetwork(t *testing.T) {
	requireTor(t)
	ctx := t.Context()
	n, err := Start(ctx, Options{Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	if got := strings.Count(n.TorrcLines(), "\nDirAuthority "); got != defaultAuthorities {
		t.Errorf("TorrcLines has %d DirAuthority lines, want %d:\n%s", got, defaultAuthorities, n.TorrcLines())
	}

	c, err := n.StartClient(ctx, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.StartClient(ctx, "client"); err == nil {
		t.Error("a second client with the same name started")
	}
	checkControl(t, c)

	// The onion service: an HTTP server on loopback, published by a tor
	// that knows the network only through WriteTorrc.
	token := rand.Text()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, token)
	}))
	defer srv.Close()
	torrc, err := n.WriteTorrc(filepath.Join(t.TempDir(), "torrc"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(torrc); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("WriteTorrc: %v, %v", fi.Mode(), err)
	}
	hsData := filepath.Join(t.TempDir(), "hs")
	if err := os.Mkdir(hsData, 0o700); err != nil {
		t.Fatal(err)
	}
	hsDir := filepath.Join(hsData, "service")
	began := time.Now()
	hs, err := startDaemon(n.torPath, "hs", hsData, []string{
		"--defaults-torrc", n.empty, "-f", torrc,
		"--DataDirectory", hsData, "--SocksPort", "0",
		"--HiddenServiceDir", hsDir,
		"--HiddenServicePort", "80 " + srv.Listener.Addr().String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.stop(t.Logf)
	host := waitHostname(t, hs, filepath.Join(hsDir, "hostname"))

	body, err := fetchOnion(ctx, c.SocksAddr, "http://"+host+"/", 60*time.Second)
	if err != nil {
		t.Fatalf("fetching the onion: %v\nend of the service's log:\n%s", err, tailFile(hs.logPath, 15))
	}
	if body != token {
		t.Fatalf("the onion answered %q, want %q", body, token)
	}
	t.Logf("onion answered %v after its tor started", time.Since(began).Round(time.Millisecond))

	if err := hs.stop(t.Logf); err != nil {
		t.Error(err)
	}
	pids := n.pids()
	if len(pids) != defaultAuthorities+1 {
		t.Errorf("network started %d tors, want %d", len(pids), defaultAuthorities+1)
	}
	closed = true
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
			t.Errorf("tor pid %d still runs after Close", pid)
		}
	}
	if _, err := os.Stat(n.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s: %v", n.dir, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Client.Close after Network.Close: %v", err)
	}
}

// checkControl authenticates to the client's control port with its cookie
// and asks for the bootstrap phase.
func checkControl(t *testing.T, c *Client) {
	t.Helper()
	cookie, err := os.ReadFile(filepath.Join(c.DataDir, "control_auth_cookie"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", c.ControlAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "AUTHENTICATE %x\r\n", cookie)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "250 OK") {
		t.Fatalf("control AUTHENTICATE: %q %v", line, err)
	}
	fmt.Fprintf(conn, "GETINFO status/bootstrap-phase\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "PROGRESS=100") {
		t.Fatalf("control GETINFO status/bootstrap-phase: %q %v", line, err)
	}
}

// waitHostname waits up to 60 s for tor to write an onion service's
// hostname file and returns the onion address.
func waitHostname(t *testing.T, d *daemon, path string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if host := strings.TrimSpace(string(b)); err == nil && strings.HasSuffix(host, ".onion") {
			return host
		}
		if d.exited() || time.Now().After(deadline) {
			t.Fatalf("no onion hostname in %s: %v\n%s", path, err, tailFile(d.logPath, 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetchOnion GETs url through the SOCKS5 proxy, retrying until it answers
// 200 or patience runs out: the descriptor may not be published yet.
func fetchOnion(ctx context.Context, socks, url string, patience time.Duration) (string, error) {
	hc := &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return socks5Dial(ctx, socks, addr)
		},
	}}
	deadline := time.Now().Add(patience)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		body, err := get(actx, hc, url)
		cancel()
		if err == nil {
			return body, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		time.Sleep(time.Second)
	}
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	return string(b), nil
}

// socks5Dial connects to addr ("host:port", host a domain name) through the
// SOCKS5 proxy at proxy, with no authentication (RFC 1928).
func socks5Dial(ctx context.Context, proxy, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || len(host) > 255 {
		return nil, fmt.Errorf("socks5: bad address %q", addr)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	fail := func(err error) (net.Conn, error) {
		conn.Close()
		return nil, fmt.Errorf("socks5 %s: %w", addr, err)
	}
	// Greeting: version 5, one method, "no authentication".
	if _, err := conn.Write([]byte{5, 1, 0}); err != nil {
		return fail(err)
	}
	var b [4]byte
	if _, err := io.ReadFull(conn, b[:2]); err != nil {
		return fail(err)
	}
	if b[0] != 5 || b[1] != 0 {
		return fail(fmt.Errorf("proxy refused the no-authentication method: % x", b[:2]))
	}
	// CONNECT with a domain name.
	req := append([]byte{5, 1, 0, 3, byte(len(host))}, host...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := conn.Write(req); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(conn, b[:4]); err != nil {
		return fail(err)
	}
	if b[1] != 0 {
		return fail(fmt.Errorf("SOCKS error 0x%02x", b[1]))
	}
	var skip int
	switch b[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		if _, err := io.ReadFull(conn, b[:1]); err != nil {
			return fail(err)
		}
		skip = int(b[0])
	default:
		return fail(fmt.Errorf("unknown address type %d in reply", b[3]))
	}
	if _, err := io.CopyN(io.Discard, conn, int64(skip+2)); err != nil {
		return fail(err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// TestStartFailsCleanly gives Start too little time: it must fail with the
// end of the authorities' logs and leave no tor running.
func TestStartFailsCleanly(t *testing.T) {
	requireTor(t)
	dir := t.TempDir()
	n, err := Start(t.Context(), Options{Dir: dir, Timeout: 6 * time.Second, Logf: t.Logf})
	if err == nil {
		n.Close()
		t.Fatal("a network was ready within 6 s; the test expects Start to time out")
	}
	t.Logf("Start failed as expected: %.300s", err)
	if !strings.Contains(err.Error(), "kept in "+dir) {
		t.Errorf("the error does not say where the files are: %v", err)
	}
	if strings.Contains(err.Error(), "not ready") && !strings.Contains(err.Error(), "--- end of ") {
		t.Errorf("the error lacks the authorities' logs: %v", err)
	}
	if runtime.GOOS != "linux" {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), dir) {
			t.Errorf("%s still runs after Start failed: %q", filepath.Dir(p), b)
		}
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no dir", Options{}, "Dir is required"},
		{"three authorities", Options{Dir: t.TempDir(), Authorities: 3}, "too few"},
		{"missing tor", Options{Dir: t.TempDir(), TorPath: filepath.Join(t.TempDir(), "tor")}, "not installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(t.Context(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCountFlagged(t *testing.T) {
	for _, tc := range []struct {
		name            string
		consensus       string
		relays, flagged int
	}{
		{"empty", "", 0, 0},
		{"two of four", "network-status-version 3 microdesc\n" +
			"r auth1 AAAA 2026-11-25 12:00:00 127.0.0.1 5000 0\nm x\ns Authority Fast HSDir Running Stable V2Dir Valid\n" +
			"r auth2 BBBB 2026-11-25 12:00:00 127.0.0.1 5001 0\ns Authority Fast Running Stable\n" +
			"r auth3 CCCC 2026-11-25 12:00:00 127.0.0.1 5002 0\ns HSDir Running\n" +
			"r auth4 DDDD 2026-11-25 12:00:00 127.0.0.1 5003 0\ns Stable HSDir\n", 4, 2},
		{"flags elsewhere", "r a B\ns Fast\nknown-flags HSDir Stable\n", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, f := countFlagged(tc.consensus, readyFlags)
			if r != tc.relays || f != tc.flagged {
				t.Errorf("countFlagged = %d, %d; want %d, %d", r, f, tc.relays, tc.flagged)
			}
		})
	}
}

func TestListedFingerprint(t *testing.T) {
	fp, err := listedFingerprint("Unnamed 5AD1 0A51 3F51 ED1B 8257 493C DB98 BF2F C1D6 4AAB\n")
	if err != nil || fp != "5AD10A513F51ED1B8257493CDB98BF2FC1D64AAB" {
		t.Errorf("listedFingerprint = %q, %v", fp, err)
	}
	if _, err := listedFingerprint("warning\n"); err == nil {
		t.Error("listedFingerprint accepted garbage")
	}
	if _, err := listedFingerprint("auth1 5AD1 0A51\n"); err == nil {
		t.Error("listedFingerprint accepted a short fingerprint")
	}
}
