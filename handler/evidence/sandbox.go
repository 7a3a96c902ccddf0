package evidence

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Sentinel errors of the sandbox and the tools.
var (
	// ErrNoSandbox: bubblewrap (bwrap) or prlimit is not installed, or
	// bwrap cannot make its namespaces here.
	ErrNoSandbox = errors.New("the sandbox (bubblewrap) is not available")
	// ErrNoTool: the tool itself (exiftool, mat2) is not installed.
	ErrNoTool = errors.New("tool not installed")
	// ErrToolOutput: the tool wrote more than it may, or ran out of time.
	ErrToolOutput = errors.New("tool output too large or too slow")
)

// Debian packages of the tools, for hints.
const (
	PackageExiftool = "libimage-exiftool-perl"
	PackageMat2     = "mat2"
	PackageBwrap    = "bubblewrap"
)

// Sandbox runs a tool under bubblewrap: every namespace unshared (no
// network, its own PIDs, IPC and host name), no further user namespaces
// (bwrap's --disable-userns), all capabilities dropped, a
// new session (no terminal to inject into), a read-only /usr, /bin, /sbin,
// /lib*, the dynamic linker's cache, /etc/alternatives, /etc/fonts and
// /etc/mime.types and nothing else of /etc, a private /dev and /proc, an
// empty /tmp, an empty environment but PATH, HOME=/tmp, TMPDIR and LANG,
// killed with its parent, and under prlimit: CPU seconds, file size, no
// core files, 256 open files.
type Sandbox struct {
	// Bwrap and Prlimit are the programs; "" looks them up in PATH.
	Bwrap, Prlimit string
	// CPU bounds the tool's CPU time; zero means 10 minutes.
	CPU time.Duration
	// Timeout bounds the tool's wall time; zero means 15 minutes.
	Timeout time.Duration
	// MaxOutput bounds what the tool may write to stdout; zero means 8 MiB.
	MaxOutput int64
}

// bind is one path the tool sees: Host at Dir inside, read-only unless RW.
type bind struct {
	Host, Dir string
	RW        bool
}

// run is one sandboxed run of argv.
type run struct {
	binds []bind
	chdir string
	stdin io.Reader
	fsize int64 // the largest file it may write; 0: 1 GiB
}

func (s *Sandbox) lookup() (bwrap, prlimit string, err error) {
	bwrap, prlimit = cmp.Or(s.Bwrap, "bwrap"), cmp.Or(s.Prlimit, "prlimit")
	if bwrap, err = exec.LookPath(bwrap); err != nil {
		return "", "", fmt.Errorf("%w: bwrap not found (Debian package %s)", ErrNoSandbox, PackageBwrap)
	}
	if prlimit, err = exec.LookPath(prlimit); err != nil {
		return "", "", fmt.Errorf("%w: prlimit not found (Debian package util-linux)", ErrNoSandbox)
	}
	return bwrap, prlimit, nil
}

// Available reports whether the sandbox can run here: bwrap and prlimit
// are installed and bwrap can make its namespaces.
func (s *Sandbox) Available(ctx context.Context) error {
	_, _, err := s.exec(ctx, &run{}, "true")
	return err
}

// exec runs argv in the sandbox and returns its stdout (at most MaxOutput
// bytes) and the tail of its stderr. A run that exits non-zero returns
// its output and an *exec.ExitError.
func (s *Sandbox) exec(ctx context.Context, r *run, argv ...string) (stdout, stderr []byte, err error) {
	bwrap, prlimit, err := s.lookup()
	if err != nil {
		return nil, nil, err
	}
	cpu, timeout, maxOut := s.CPU, s.Timeout, s.MaxOutput
	if cpu == 0 {
		cpu = 10 * time.Minute
	}
	if timeout == 0 {
		timeout = 15 * time.Minute
	}
	if maxOut == 0 {
		maxOut = 8 << 20
	}
	fsize := r.fsize
	if fsize == 0 {
		fsize = 1 << 30
	}
	args := []string{
		"--cpu=" + strconv.Itoa(int(cpu/time.Second)), "--fsize=" + strconv.FormatInt(fsize, 10),
		"--core=0", "--nofile=256", "--", bwrap,
		// No further user namespaces: a crafted file's exploit gets none
		// of the kernel surface they open (bwrap >= 0.8).
		"--unshare-all", "--unshare-user", "--disable-userns", "--assert-userns-disabled",
		"--die-with-parent", "--new-session", "--cap-drop", "ALL",
		// bwrap reports the tool's exit here (fd 3, which the tool does not
		// get): without it, bwrap itself failed.
		"--json-status-fd", "3",
		"--ro-bind", "/usr", "/usr",
	}
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/alternatives", "/etc/fonts", "/etc/mime.types"} {
		args = append(args, "--ro-bind-try", d, d)
	}
	args = append(args, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
		"--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
		"--setenv", "TMPDIR", "/tmp", "--setenv", "LANG", "C.UTF-8")
	for _, b := range r.binds {
		flag := "--ro-bind"
		if b.RW {
			flag = "--bind"
		}
		args = append(args, flag, b.Host, b.Dir)
	}
	if r.chdir != "" {
		args = append(args, "--chdir", r.chdir)
	}
	args = append(args, argv...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prlimit, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.Stdin = r.stdin
	out := &capped{max: maxOut, over: cancel}
	tail := &capped{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, tail
	cmd.WaitDelay = 5 * time.Second
	sr, sw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer sr.Close()
	cmd.ExtraFiles = []*os.File{sw}
	err = cmd.Start()
	sw.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNoSandbox, err)
	}
	status := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(sr, 64<<10))
		status <- b
	}()
	err = cmd.Wait()
	sr.SetReadDeadline(time.Now().Add(time.Second))
	ran := bytes.Contains(<-status, []byte(`"exit-code"`))
	switch {
	case out.full:
		return nil, tail.b.Bytes(), fmt.Errorf("%w: more than %d bytes", ErrToolOutput, maxOut)
	case ctx.Err() != nil:
		// ctx is the caller's, bounded by timeout.
		return nil, tail.b.Bytes(), fmt.Errorf("%w: no answer within %v", ErrToolOutput, timeout)
	}
	var ee *exec.ExitError
	// Only bwrap's own failure is "no sandbox": a tool's words, whatever
	// they say, never are.
	if errors.As(err, &ee) && (argv[0] == "true" || !ran) {
		return nil, tail.b.Bytes(), fmt.Errorf("%w: %s", ErrNoSandbox, firstLine(tail.b.Bytes()))
	}
	return out.b.Bytes(), tail.b.Bytes(), err
}

// capped keeps the first max bytes written; beyond them it notes full
// and calls over (which stops the tool), if set.
type capped struct {
	b    bytes.Buffer
	max  int64
	full bool
	over func()
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - int64(c.b.Len()); int64(len(p)) > room {
		c.b.Write(p[:max(room, 0)])
		if !c.full && c.over != nil {
			c.over()
		}
		c.full = true
		return len(p), nil
	}
	return c.b.Write(p)
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// toolPath finds a tool on the host, where the sandbox sees the same /usr.
func toolPath(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w (Debian package %s)", name, ErrNoTool, pkg)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrNoTool)
	}
	return p, nil
}
