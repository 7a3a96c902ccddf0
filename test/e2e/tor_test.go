package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amana-relay/amana/test/internal/relayproc"
	"github.com/amana-relay/amana/test/internal/tornet"
)

// The tests in this file run the relay on real onion services in a private
// Tor network on 127.0.0.1, started once for the package.

var (
	netOnce sync.Once
	network *tornet.Network
	netErr  error
	netDir  string
)

// torNetwork returns the package's private Tor network, starting it on
// first use. Without tor it fails where CI is set, and skips loudly
// elsewhere.
func torNetwork(t *testing.T) *tornet.Network {
	t.Helper()
	if _, err := exec.LookPath("tor"); err != nil {
		if _, err := os.Stat("/usr/sbin/tor"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("tor is not installed and CI is set: .ci/run must apt-get install tor")
			}
			fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: tor is not installed (apt install tor) ***\n", t.Name())
			t.Skip("tor is not installed")
		}
	}
	netOnce.Do(func() {
		netDir, netErr = os.MkdirTemp("", "amana-tornet")
		if netErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		network, netErr = tornet.Start(ctx, tornet.Options{Dir: netDir, Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
		if netErr == nil {
			fmt.Fprintf(os.Stderr, "tornet: private Tor network ready after %v\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if netErr != nil {
		t.Fatalf("starting the private Tor network: %v", netErr)
	}
	return network
}

func stopTorNetwork() {
	if network != nil {
		network.Close()
	}
	if netDir != "" {
		os.RemoveAll(netDir)
	}
}

// onionRelay is amana-relay serving on the private network.
type onionRelay struct {
	w       *world
	torrc   string
	data    string   // the data directory; w's "data" when empty
	extra   []string // more flags for serve
	proc    *exec.Cmd
	out     *syncBuffer
	log     *syncBuffer
	intake  string
	handler string
	pow     string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var (
	intakeRE  = regexp.MustCompile(`intake onion (http://[a-z2-7]{56}\.onion)`)
	handlerRE = regexp.MustCompile(`handler onion (http://[a-z2-7]{56}\.onion)`)
	powRE     = regexp.MustCompile(`proof-of-work defence on the intake onion: (\w+)`)
)

// start runs amana-relay serve on Tor and waits for both onions.
func (r *onionRelay) start(t *testing.T) {
	t.Helper()
	r.out, r.log = &syncBuffer{}, &syncBuffer{}
	if r.data == "" {
		r.data = r.w.path("data")
	}
	r.proc = exec.Command(filepath.Join(bin, "amana-relay"), append([]string{"serve", "--data", r.data, "--torrc", r.torrc}, r.extra...)...)
	r.proc.Stderr = r.log
	pipe, _ := r.proc.StdoutPipe()
	start := time.Now()
	if err := r.proc.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		r.out.Write([]byte(line + "\n"))
		if m := intakeRE.FindStringSubmatch(line); m != nil {
			r.intake = m[1]
		}
		if m := handlerRE.FindStringSubmatch(line); m != nil {
			r.handler = m[1]
		}
		if m := powRE.FindStringSubmatch(line); m != nil {
			r.pow = m[1]
			break
		}
	}
	if r.intake == "" || r.handler == "" {
		r.proc.Wait()
		t.Fatalf("relay did not publish its onions:\nstdout:\n%s\nstderr:\n%s", r.out.String(), r.log.String())
	}
	go io.Copy(r.out, pipe)
	fmt.Fprintf(os.Stderr, "tornet: relay published both onions %v after it started\n", time.Since(start).Round(time.Millisecond))
}

func (r *onionRelay) stop() {
	if r.proc != nil && r.proc.Process != nil {
		r.proc.Process.Signal(os.Interrupt)
		r.proc.Wait()
	}
}

// waitLog waits for the relay's log to contain s.
func (r *onionRelay) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(r.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("relay log never said %q:\n%s", s, r.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// retry runs an amana command through Tor until it succeeds: a test
// network rotates onion descriptors every few minutes, and a first fetch
// can miss.
func retry(t *testing.T, env []string, prog string, args ...string) result {
	t.Helper()
	var r result
	for i := 0; i < 4; i++ {
		r = run(t, env, nil, prog, args...)
		if r.code == 0 {
			return r
		}
		time.Sleep(3 * time.Second)
	}
	t.Fatalf("%s %v: exit %d\nstdout: %s\nstderr: %s", prog, args, r.code, r.stdout, r.stderr)
	return r
}

func TestOnionRelay(t *testing.T) {
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	n := torNetwork(t)
	w := keysAndRelay(t)
	torrc, err := n.WriteTorrc(w.path("network.torrc"))
	if err != nil {
		t.Fatal(err)
	}
	r := &onionRelay{w: w, torrc: torrc}
	r.start(t)
	defer func() { r.stop() }()
	if r.pow != "on" {
		t.Errorf("proof of work on the intake onion: %s, want on (tor 0.4.9 has the pow module)", r.pow)
	}
	viaTor := []string{"--tor-launch", "--torrc", torrc}
	admin := w.home("admin")

	// The admin publishes the desk over the handler onion; the relay then
	// republishes that onion with the desk's handlers' keys.
	retry(t, admin, "amana", append([]string{"desk", "publish", w.path("pq.json"), "--relay", r.handler, "-i", w.path("admin.key")}, viaTor...)...)
	r.waitLog(t, "the handler onion is published again", 2*time.Minute)

	// A submission through the intake onion.
	os.WriteFile(w.path("msg.txt"), []byte("report sent over Tor\n"), 0o600)
	file := writeRandom(t, w.path("evidence.bin"), 3<<20)
	sub := retry(t, w.home("submitter"), "amana", append([]string{"submit", "--relay", r.intake, "--desk", "pq", "--category", "incident",
		"--message-file", w.path("msg.txt"), "--file", w.path("evidence.bin")}, viaTor...)...)
	id := receiptID.FindStringSubmatch(sub.stdout)[1]

	// alice pulls it over the handler onion with her client-authorization
	// key, and it opens byte-identical.
	retry(t, w.home("alice"), "amana", append([]string{"pull", "--relay", r.handler, "-i", w.path("alice.key")}, viaTor...)...)
	out := w.path("export-alice")
	must(t, run(t, w.home("alice"), nil, "amana", "export", id, "--out", out, "-i", w.path("alice.key")))
	if got, _ := os.ReadFile(filepath.Join(out, "evidence.bin")); !bytes.Equal(got, file) {
		t.Fatal("the case pulled over Tor differs from what was sent")
	}

	// A tor without a client-authorization key cannot reach the handler
	// onion at all.
	client, err := n.StartClient(context.Background(), "noauth")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nr := run(t, w.home("alice"), nil, "amana", "pull", "--relay", r.handler, "-i", w.path("alice.key"), "--tor-socks", client.SocksAddr)
	if nr.code != 4 || !strings.Contains(nr.stderr, "needs client authorization") || !strings.Contains(nr.stderr, "hint: ") {
		t.Errorf("pull without a client-authorization key: exit %d\n%s", nr.code, nr.stderr)
	}
	// The intake onion stays public to that tor.
	retry(t, w.home("submitter2"), "amana", "submit", "--relay", r.intake, "--desk", "pq", "--message-file", w.path("msg.txt"), "--tor-socks", client.SocksAddr)

	// The admin holds a valid client-authorization key but is not a handler:
	// the relay refuses the inbox.
	ar := run(t, admin, nil, "amana", append([]string{"pull", "--relay", r.handler, "-i", w.path("admin.key")}, viaTor...)...)
	if ar.code != 5 || !strings.Contains(ar.stderr, "unauthorized") {
		t.Errorf("pull by the admin: exit %d\n%s", ar.code, ar.stderr)
	}

	// A submission waits while the relay restarts; the addresses stay.
	pending := retry(t, w.home("submitter"), "amana", append([]string{"submit", "--relay", r.intake, "--desk", "pq", "--category", "sea",
		"--message-file", w.path("msg.txt")}, viaTor...)...)
	pendingID := receiptID.FindStringSubmatch(pending.stdout)[1]
	// tor told the relay which circuit each intake connection came on, and
	// the per-circuit limits counted them (status.json is rewritten every 5
	// seconds).
	circuits := regexp.MustCompile(`per-circuit limits on \(([1-9][0-9]*) circuit`)
	for wait := time.Now().Add(15 * time.Second); ; time.Sleep(time.Second) {
		st := must(t, run(t, nil, nil, "amana-relay", "status", "--data", w.path("data")))
		if circuits.MatchString(st.stdout) {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("status shows no circuits seen:\n%s", st.stdout)
		}
	}
	intake, handler := r.intake, r.handler
	r.stop()
	r2 := &onionRelay{w: w, torrc: torrc}
	r2.start(t)
	r = r2
	if r2.intake != intake || r2.handler != handler {
		t.Fatalf("addresses changed across a restart: %s %s -> %s %s", intake, handler, r2.intake, r2.handler)
	}
	st := must(t, run(t, nil, nil, "amana-relay", "status", "--data", w.path("data")))
	if !strings.Contains(st.stdout, intake) || !strings.Contains(st.stdout, handler) {
		t.Errorf("status does not show both onions:\n%s", st.stdout)
	}
	pr := retry(t, w.home("carol"), "amana", append([]string{"pull", "--relay", r2.handler, "-i", w.path("carol.key")}, viaTor...)...)
	// The incident report, the uncategorised one (every handler gets it)
	// and the pending one.
	if !strings.Contains(pr.stderr, "pulled 3 new case") {
		t.Errorf("carol's pull after the restart: %s", pr.stderr)
	}
	must(t, run(t, w.home("carol"), nil, "amana", "show", pendingID, "-i", w.path("carol.key")))

	for _, leak := range []string{"report sent over Tor", id, pendingID} {
		if strings.Contains(r.log.String(), leak) {
			t.Errorf("relay log mentions %q", leak)
		}
	}
	for _, f := range []string{"intake.key", "handler.key"} {
		fi, err := os.Stat(filepath.Join(w.path("data"), "onion", f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("onion key %s: %v", f, err)
		}
	}
}

// keysAndRelay makes the keys, the relay's data directory and the signed
// desk manifests of setup, without starting the relay.
func keysAndRelay(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), relayErr: &relayproc.TailBuffer{Max: 1 << 20}}
	os.WriteFile(w.path("pass"), []byte("a passphrase for the tests\n"), 0o600)
	for _, n := range []string{"admin", "alice", "bob"} {
		must(t, run(t, nil, nil, "amana", "keygen", "-o", w.path(n+".key"), "--name", n, "--no-passphrase"))
	}
	must(t, run(t, w.home("carol"), nil, "amana", "keygen", "-o", w.path("carol.key"), "--name", "carol"))
	for _, n := range []string{"admin", "alice", "bob", "carol"} {
		r := must(t, run(t, w.home(n), nil, "amana", "card", "-i", w.path(n+".key")))
		os.WriteFile(w.path(n+".card"), []byte(r.stdout), 0o644)
	}
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", w.path("data"), "--admin", w.path("admin.card")))
	must(t, run(t, nil, nil, "amana", "desk", "create", "--id", "pq", "--title", "Helpdesk",
		"--handler", w.path("alice.card"), "--handler", w.path("carol.card"),
		"--category", "incident=alice,carol", "--category", "sea=carol", "--serial", "10",
		"-i", w.path("admin.key"), "-o", w.path("pq.json")))
	return w
}
