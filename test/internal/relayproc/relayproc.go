// Package relayproc builds, starts, stops and watches the amana and
// amana-relay programs for the harnesses that drive them as separate
// processes: the bench, the crash test and the soak run.
package relayproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// ListeningPrefix starts the line 'amana-relay serve' prints on stdout once
// it accepts connections; the relay's URL follows it.
const ListeningPrefix = "amana-relay: listening on "

// Build builds the given packages of the module the calling program runs
// in (like "./cmd/amana-relay") into dir.
func Build(ctx context.Context, dir string, pkgs ...string) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("finding the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("run this from inside the amana module")
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// WatchSources looks at every Go file of the module that the calling test
// runs in. A test that builds the programs with Build runs them as other
// processes, so go test cannot see what they are made of; it records the
// files a test looks at, and so, after this, runs the test again instead of
// reusing a cached result when any of them changes.
func WatchSources() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("finding the module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && p != root) {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") || strings.HasPrefix(p, filepath.Join(root, "relay", "web"))) {
			_, err := os.Stat(p)
			return err
		}
		return nil
	})
}

// Init creates the data directory data (mode 0700) and runs 'amana-relay
// init' on it, pinning admin's key.
func Init(ctx context.Context, bin, data string, admin *crypto.Card) error {
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	card := filepath.Join(filepath.Dir(data), "admin.card")
	if err := os.WriteFile(card, []byte(admin.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing admin card: %w", err)
	}
	out, err := exec.CommandContext(ctx, bin, "init", "--data", data, "--admin", card).CombinedOutput()
	if err != nil {
		return fmt.Errorf("amana-relay init: %w\n%s", err, out)
	}
	return nil
}

// Process is a program this package started. The kernel kills it if the
// program that started it dies (on Linux).
type Process struct {
	name   string
	cmd    *exec.Cmd
	stderr *TailBuffer
	exited chan struct{} // closed once the process has exited
	err    error         // what Wait returned, once exited is closed
}

// Start runs path with args. env is added to this program's environment;
// stdout receives the process's standard output (nil discards it); its
// standard error goes to stderr, if not nil, and its last 16 KiB are kept
// for Tail.
func Start(path string, env []string, stdout, stderr io.Writer, args ...string) (*Process, error) {
	p := &Process{name: filepath.Base(path), cmd: exec.Command(path, args...), stderr: &TailBuffer{Max: 16 << 10}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = stdout
	p.cmd.Stderr = p.stderr
	if stderr != nil {
		p.cmd.Stderr = io.MultiWriter(p.stderr, stderr)
	}
	setParentDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID is the process's ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is what waiting for the process returned; call it after Exited.
func (p *Process) Err() error { return p.err }

// Alive reports whether the process has not exited.
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL, unless the process has exited, and waits for it.
func (p *Process) Kill() {
	if p.Alive() {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// Stop sends sig and waits up to grace for the process to exit, then kills
// it. It reports whether the process exited by itself with status 0, and
// how it ended. It is safe to call more than once.
func (p *Process) Stop(sig os.Signal, grace time.Duration) (clean bool, how string) {
	if !p.Alive() {
		return p.err == nil, exitText(p.err)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.cmd.Process.Kill()
	}
	select {
	case <-p.exited:
		return p.err == nil, exitText(p.err)
	case <-time.After(grace):
		p.Kill()
		return false, fmt.Sprintf("did not stop within %v of %v; killed", grace, sig)
	}
}

// Stderr is the last 16 KiB the process wrote on standard error.
func (p *Process) Stderr() string { return p.stderr.String() }

// Tail is the end of what the process wrote on standard error, named.
func (p *Process) Tail() string {
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return "(" + p.name + " wrote nothing on stderr)"
	}
	return p.name + " stderr:\n" + s
}

func exitText(err error) string {
	if err == nil {
		return "exited 0"
	}
	return err.Error()
}

// Relay is an 'amana-relay serve --no-tor' process and its URL.
type Relay struct {
	*Process
	URL string
}

// StartRelay runs bin ('amana-relay') serve on data, listening on a free
// loopback port, with the extra flags given, and waits until it prints its
// address. stderr is as for Start.
func StartRelay(ctx context.Context, bin, data string, stderr io.Writer, flags ...string) (*Relay, error) {
	found := make(chan string, 1)
	args := append([]string{"serve", "--data", data, "--no-tor", "--listen", "127.0.0.1:0"}, flags...)
	p, err := Start(bin, nil, &LineWatcher{Prefix: ListeningPrefix, Found: found}, stderr, args...)
	if err != nil {
		return nil, err
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case url := <-found:
		return &Relay{p, url}, nil
	case <-p.exited:
		return nil, fmt.Errorf("amana-relay serve exited before listening: %v\n%s", p.err, p.Tail())
	case <-timeout.C:
		p.Kill()
		return nil, fmt.Errorf("amana-relay serve printed no address within 30 s\n%s", p.Tail())
	case <-ctx.Done():
		p.Kill()
		return nil, ctx.Err()
	}
}

// StopRelay asks the relay to shut down with SIGTERM and kills it if it has
// not within 20 seconds (serve waits up to 10 s for requests to finish).
func (r *Relay) StopRelay() (clean bool, how string) {
	return r.Stop(syscall.SIGTERM, 20*time.Second)
}

// LineWatcher is a process's stdout: it sends what follows Prefix on the
// first line that starts with it to Found, which must have room for it, and
// discards everything else.
type LineWatcher struct {
	Prefix string
	Found  chan<- string
	buf    []byte
	sent   bool
}

func (w *LineWatcher) Write(p []byte) (int, error) {
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		line, rest, ok := bytes.Cut(w.buf, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		w.buf = rest
		if s, ok := strings.CutPrefix(string(line), w.Prefix); ok {
			w.Found <- strings.TrimSpace(s)
			w.sent, w.buf = true, nil
			return len(p), nil
		}
	}
}

// TailBuffer keeps the last Max bytes written to it.
type TailBuffer struct {
	Max int
	mu  sync.Mutex
	b   []byte
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.Max {
		t.b = t.b[len(t.b)-t.Max:]
	}
	return len(p), nil
}

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
