package onion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cretz/bine/control"
	"github.com/cretz/bine/process"
	"github.com/cretz/bine/tor"
)

// Options configure Start. Every zero value means the documented default.
type Options struct {
	// TorPath is the tor binary to launch. Empty means "tor" on PATH, then
	// /usr/sbin/tor and /usr/bin/tor.
	TorPath string
	// DataDir is the launched tor's data directory, created with mode 0700.
	// Required unless Control is set.
	DataDir string
	// Control attaches to a tor the operator runs, at this control address
	// (host:port), with cookie authentication, instead of launching one.
	Control string
	// Torrc is a file of extra torrc lines for a launched tor: bridges,
	// or the settings of a private test network.
	Torrc string
	// Socks gives a launched tor a SOCKS port on 127.0.0.1 (clients need
	// one; a relay does not). Its address is SocksAddr.
	Socks bool
	// BootstrapTimeout bounds waiting for tor to reach the network. Zero
	// means 3 minutes.
	BootstrapTimeout time.Duration
	// Logf receives progress lines. Nil discards them.
	Logf func(format string, args ...any)
}

// Tor is a tor this process controls: launched, or attached to.
type Tor struct {
	ctl     *control.Conn
	bt      *tor.Tor // nil when attached
	cmd     *exec.Cmd
	log     *os.File
	ctlAddr string
	opts    Options
	mu      sync.Mutex
	closed  bool
}

// FindTor returns the tor binary to use: path if given, else "tor" on PATH,
// /usr/sbin/tor or /usr/bin/tor. It fails with a KindNotInstalled error.
func FindTor(path string) (string, error) {
	if path != "" {
		if _, err := exec.LookPath(path); err != nil {
			return "", fail(KindNotInstalled, "check the path, or install tor: apt install tor (Debian, Ubuntu), dnf install tor (Fedora), brew install tor (macOS)",
				err, "tor not found at %s", path).about(SettingTorPath)
		}
		return path, nil
	}
	if p, err := exec.LookPath("tor"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/tor", "/usr/bin/tor", "/usr/local/bin/tor"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fail(KindNotInstalled, "install tor: apt install tor (Debian, Ubuntu), dnf install tor (Fedora), brew install tor (macOS); or give the path of a tor binary",
		nil, "tor is not installed").about(SettingTorPath)
}

// Start launches tor, or attaches to the one at o.Control, and waits until
// it has bootstrapped.
func Start(ctx context.Context, o Options) (*Tor, error) {
	if o.BootstrapTimeout == 0 {
		o.BootstrapTimeout = 3 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	t := &Tor{opts: o}
	var err error
	if o.Control != "" {
		err = t.attach()
	} else {
		err = t.launch(ctx)
	}
	if err == nil {
		err = t.waitBootstrap(ctx)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Tor) attach() error {
	conn, err := textproto.Dial("tcp", t.opts.Control)
	if err != nil {
		return fail(KindControl, "check the address, and that tor has ControlPort and CookieAuthentication 1", err,
			"cannot reach tor's control port at %s", t.opts.Control).about(SettingControl)
	}
	t.ctl = control.NewConn(conn)
	if err := t.ctl.Authenticate(""); err != nil {
		return fail(KindControl, "run as a user that can read tor's control cookie (on Debian: add it to the debian-tor group)", err,
			"cannot authenticate to tor's control port at %s", t.opts.Control)
	}
	t.ctlAddr = t.opts.Control
	return nil
}

func (t *Tor) launch(ctx context.Context) error {
	path, err := FindTor(t.opts.TorPath)
	if err != nil {
		return err
	}
	if t.opts.DataDir == "" {
		return errors.New("onion: a data directory is needed to launch tor")
	}
	if err := os.MkdirAll(t.opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating tor's data directory: %w", err)
	}
	if err := os.Chmod(t.opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("securing tor's data directory: %w", err)
	}
	logPath := filepath.Join(t.opts.DataDir, "tor.log")
	t.log, err = os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("opening tor's log: %w", err)
	}
	creator := process.CmdCreatorFunc(func(ctx context.Context, args ...string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Stdin = nil
		cmd.Stdout, cmd.Stderr = t.log, t.log
		setDeathSignal(cmd)
		t.cmd = cmd
		return cmd, nil
	})
	socks := []string{"--SocksPort", "0"}
	if t.opts.Socks {
		socks = []string{"--SocksPort", "127.0.0.1:auto ExtendedErrors"}
	}
	args := append(socks,
		"--Log", "notice file "+logPath,
		"--ClientOnionAuthDir", filepath.Join(t.opts.DataDir, "onion-auth"),
		"--AvoidDiskWrites", "1",
	)
	conf := &tor.StartConf{
		ProcessCreator:  creator,
		DataDir:         t.opts.DataDir,
		TorrcFile:       t.opts.Torrc,
		EnableNetwork:   true,
		NoAutoSocksPort: true,
		ExtraArgs:       args,
	}
	if t.opts.Torrc == "" {
		empty := filepath.Join(t.opts.DataDir, "torrc")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			return fmt.Errorf("writing tor's torrc: %w", err)
		}
		conf.TorrcFile = empty
	}
	// bine leaves a control-port-* file behind at each start.
	if old, _ := filepath.Glob(filepath.Join(t.opts.DataDir, "control-port-*")); len(old) > 0 {
		for _, f := range old {
			os.Remove(f)
		}
	}
	if err := os.MkdirAll(filepath.Join(t.opts.DataDir, "onion-auth"), 0o700); err != nil {
		return fmt.Errorf("creating tor's client-auth directory: %w", err)
	}
	t.opts.Logf("starting tor (%s)", path)
	t.bt, err = tor.Start(ctx, conf)
	if err != nil {
		return fail(KindBootstrap, "see "+logPath+" for tor's own messages", err, "tor did not start")
	}
	t.ctl = t.bt.Control
	t.ctlAddr = "127.0.0.1:" + strconv.Itoa(t.bt.ControlPort)
	return nil
}

// waitBootstrap polls tor's bootstrap status until it reaches 100%.
func (t *Tor) waitBootstrap(ctx context.Context) error {
	deadline := time.Now().Add(t.opts.BootstrapTimeout)
	last := ""
	for {
		progress, summary, err := t.Bootstrap()
		if err != nil {
			return err
		}
		if progress >= 100 {
			t.opts.Logf("tor is connected to the Tor network")
			return nil
		}
		if summary != last {
			t.opts.Logf("tor: %d%% %s", progress, summary)
			last = summary
		}
		if time.Now().After(deadline) {
			return fail(KindBootstrap, "check this machine's network and clock; where Tor is blocked, add bridges to tor's configuration"+t.logHint(),
				nil, "tor did not connect to the Tor network within %v (stuck at %d%%: %s)", t.opts.BootstrapTimeout, progress, summary).about(SettingTorrc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (t *Tor) logHint() string {
	if t.bt == nil {
		return ""
	}
	return "; tor's log is " + filepath.Join(t.opts.DataDir, "tor.log")
}

// Bootstrap returns tor's bootstrap progress and its summary.
func (t *Tor) Bootstrap() (int, string, error) {
	v, err := t.getInfo("status/bootstrap-phase")
	if err != nil {
		return 0, "", err
	}
	progress, summary := parseBootstrap(v)
	return progress, summary, nil
}

// parseBootstrap reads "NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"".
func parseBootstrap(v string) (int, string) {
	progress := 0
	summary := ""
	for _, f := range splitQuoted(v) {
		k, val, _ := strings.Cut(f, "=")
		switch k {
		case "PROGRESS":
			progress, _ = strconv.Atoi(val)
		case "SUMMARY":
			summary = strings.Trim(val, `"`)
		}
	}
	return progress, summary
}

// splitQuoted splits on spaces outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			b.WriteRune(r)
		case r == ' ' && !quoted:
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

func (t *Tor) getInfo(key string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kv, err := t.ctl.GetInfo(key)
	if err != nil {
		return "", fail(KindControl, "", err, "asking tor for %s", key)
	}
	for _, e := range kv {
		if e.Key == key {
			return e.Val, nil
		}
	}
	return "", fail(KindControl, "", nil, "tor did not answer %s", key)
}

// Version is the version of the tor in use.
func (t *Tor) Version() string {
	v, err := t.getInfo("version")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(v + " ")[0]
}

// SocksAddr is the launched tor's SOCKS address.
func (t *Tor) SocksAddr() (string, error) {
	v, err := t.getInfo("net/listeners/socks")
	if err != nil {
		return "", err
	}
	v = strings.Trim(strings.Fields(v + " ")[0], `"`)
	if v == "" {
		return "", fail(KindControl, "", nil, "tor has no SOCKS port")
	}
	return v, nil
}

// ControlAddr is the control address of the tor in use.
func (t *Tor) ControlAddr() string { return t.ctlAddr }

// request sends a raw control command, accepting the 25x answers.
func (t *Tor) request(format string, args ...any) (*control.Response, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	resp, err := t.ctl.SendRequest(format, args...)
	var perr *textproto.Error
	if errors.As(err, &perr) && perr.Code >= 250 && perr.Code < 260 {
		return resp, nil
	}
	return resp, err
}

// Close stops a launched tor (HALT, then kill) and closes the control
// connection. Onion services this process added go away with it.
func (t *Tor) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	var err error
	if t.bt != nil {
		err = t.bt.Close()
		if t.bt.ProcessCancelFunc != nil {
			t.bt.ProcessCancelFunc()
		}
		if t.cmd != nil && t.cmd.Process != nil {
			done := make(chan struct{})
			go func() { t.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.cmd.Process.Kill()
			}
		}
	} else if t.ctl != nil {
		err = t.ctl.Close()
	}
	if t.log != nil {
		t.log.Close()
	}
	if err != nil && strings.Contains(err.Error(), "did not exit") {
		err = nil // killed above
	}
	return err
}

var _ io.Closer = (*Tor)(nil)

func dialControl(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, 10*time.Second)
}
