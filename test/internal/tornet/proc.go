package tornet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a tor gets between SIGTERM and SIGKILL. One tor was
// seen to hang after TERM while holding its ports.
const stopGrace = 5 * time.Second

// logName is the file, in each data directory, that receives a tor's stdout,
// stderr and notice log.
const logName = "tor.log"

// daemon is one long-running tor process.
type daemon struct {
	name    string
	dataDir string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd.Wait has returned
	waitErr error         // valid once done is closed

	mu      sync.Mutex
	stopped bool // stop was called; an exit after that is expected
}

// startDaemon starts tor at torPath with args, stdin from /dev/null and
// stdout and stderr appended to dataDir/tor.log. Tor's own "Log notice file"
// line should name the same file: both append.
func startDaemon(torPath, name, dataDir string, args []string) (*daemon, error) {
	logPath := filepath.Join(dataDir, logName)
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tornet: opening the log of %s: %w", name, err)
	}
	defer f.Close() // the child holds its own copy
	cmd := exec.Command(torPath, args...)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Dir = dataDir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tornet: starting tor %s: %w", name, err)
	}
	d := &daemon{name: name, dataDir: dataDir, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// exited reports whether the process has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// exitError describes a tor that ended on its own, with the end of its log,
// and says so plainly when the cause was a port taken by another process.
func (d *daemon) exitError() error {
	tail := tailFile(d.logPath, 15)
	if strings.Contains(tail, "Could not bind") || strings.Contains(tail, "Address already in use") {
		return fmt.Errorf("tornet: tor %s could not bind one of its loopback ports (another process took it after tornet picked it; run again): %v\n%s", d.name, d.waitErr, tail)
	}
	return fmt.Errorf("tornet: tor %s exited on its own (%v); end of %s:\n%s", d.name, d.waitErr, d.logPath, tail)
}

// stop ends the process: SIGTERM, then SIGKILL after stopGrace, and waits
// for it. It returns an error only if the process had already ended on its
// own before the first stop. It is safe to call more than once.
func (d *daemon) stop(logf func(string, ...any)) error {
	d.mu.Lock()
	first := !d.stopped
	d.stopped = true
	d.mu.Unlock()
	if !first {
		<-d.done
		return nil
	}
	if d.exited() {
		return d.exitError()
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.cmd.Process.Kill() // no SIGTERM on this system
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-d.done:
	case <-t.C:
		logf("tornet: tor %s (pid %d) ignored SIGTERM for %v; killing it", d.name, d.pid(), stopGrace)
		d.cmd.Process.Kill()
		<-d.done
	}
	return nil
}

// stopAll stops every daemon in parallel and joins their errors.
func stopAll(ds []*daemon, logf func(string, ...any)) error {
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { errs[i] = d.stop(logf) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. It holds every
// listener open until all are picked, so the n ports differ, then closes
// them; another process may still take one before tor binds it, which the
// caller reports through exitError.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("tornet: finding a free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tailFile returns the last n lines of the file at path, read from at most
// its last 64 KiB, or a note saying why it could not.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// logContains reports whether the file at path contains s.
func logContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(s))
}
