package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// listeningPrefix starts the line 'amana-relay serve' prints on stdout once
// it accepts connections; the relay's URL follows it.
const listeningPrefix = "amana-relay: listening on "

// relayProcess is an 'amana-relay serve' process this program started.
type relayProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr *tailBuffer
	exited chan struct{} // closed once the process has exited
	err    error         // what Wait returned, once exited is closed
}

// buildRelay builds ./cmd/amana-relay of the module the bench runs in into
// dir and returns the binary's path.
func buildRelay(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the bench from inside the amana module")
	}
	bin := filepath.Join(dir, "amana-relay")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/amana-relay")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building amana-relay: %w\n%s", err, out)
	}
	return bin, nil
}

// initRelay creates the data directory data (mode 0700) and runs
// 'amana-relay init' on it, pinning admin's key.
func initRelay(ctx context.Context, bin, data string, admin *crypto.Card) error {
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

// startRelay runs 'amana-relay serve' on data, listening on a free loopback
// port, with the extra flags given, and waits until it prints its address.
func startRelay(ctx context.Context, bin, data string, flags ...string) (*relayProcess, error) {
	args := append([]string{"serve", "--data", data, "--no-tor", "--listen", "127.0.0.1:0"}, flags...)
	addr := make(chan string, 1)
	p := &relayProcess{
		cmd:    exec.Command(bin, args...),
		stderr: &tailBuffer{max: 16 << 10},
		exited: make(chan struct{}),
	}
	p.cmd.Stdout = &lineWatcher{prefix: listeningPrefix, found: addr}
	p.cmd.Stderr = p.stderr
	setParentDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting amana-relay serve: %w", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case p.url = <-addr:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("amana-relay serve exited: %v\n%s", p.err, p.stderr)
	case <-timeout.C:
		p.stop()
		return nil, fmt.Errorf("amana-relay serve printed no address within 30 seconds\n%s", p.stderr)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

func (p *relayProcess) pid() int { return p.cmd.Process.Pid }

// stop asks the relay to shut down, and kills it if it has not within ten
// seconds. It is safe to call more than once.
func (p *relayProcess) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.cmd.Process.Kill()
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// lineWatcher is a process's stdout: it sends what follows prefix on the
// first line that starts with it, and discards everything else.
type lineWatcher struct {
	prefix string
	found  chan<- string
	buf    []byte
	sent   bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
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
		if s, ok := strings.CutPrefix(string(line), w.prefix); ok {
			w.found <- strings.TrimSpace(s)
			w.sent, w.buf = true, nil
			return len(p), nil
		}
	}
}

// tailBuffer keeps the last max bytes written to it, to show when a process
// fails.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// procMemory is a process's memory as /proc/PID/status reports it, in
// bytes.
type procMemory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the highest VmRSS so far
	Anon int64 // RssAnon: the resident heap and stacks
	File int64 // RssFile: resident file-backed pages, such as mapped files
}

// memory reads a process's memory from /proc. It fails where there is no
// /proc.
func memory(pid int) (procMemory, error) {
	var m procMemory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("reading process memory: %w", err)
	}
	fields := map[string]*int64{"VmRSS": &m.RSS, "VmHWM": &m.Peak, "RssAnon": &m.Anon, "RssFile": &m.File}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		p := fields[name]
		if p == nil {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("reading process memory: %s: %w", name, err)
		}
		*p = kb << 10
	}
	if m.Peak == 0 {
		return m, errors.New("reading process memory: no VmHWM in /proc status")
	}
	return m, nil
}

// rssSampler samples a process's memory periodically and keeps the sample
// with the highest VmRSS.
type rssSampler struct {
	stopc chan struct{}
	done  chan struct{}
	max   procMemory
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := memory(pid); err == nil && m.RSS > s.max.RSS {
				s.max = m
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the sample with the highest VmRSS.
func (s *rssSampler) stop() procMemory {
	close(s.stopc)
	<-s.done
	return s.max
}
