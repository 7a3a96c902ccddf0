package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bookwormPackages is what the Debian tree the unit boots in holds beyond
// debootstrap's minbase: systemd as PID 1, D-Bus for systemctl, and tor,
// which the relay starts as its child.
var bookwormPackages = []string{"systemd", "systemd-sysv", "dbus", "tor"}

// bookwormTree returns a fresh Debian bookworm tree in a temporary
// directory, unpacked from a cached tar that debootstrap builds when it is
// missing (AMANA_CI_CACHE, default /var/cache/amana-ci, outside the clone so
// CI keeps it between runs). The cache's name carries a hash of the package
// list, so changing the list builds a new one.
func bookwormTree(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("AMANA_CI_CACHE")
	if cache == "" {
		cache = "/var/cache/amana-ci"
	}
	sum := sha256.Sum256([]byte("bookworm minbase " + strings.Join(bookwormPackages, ",")))
	tarball := filepath.Join(cache, "bookworm-"+hex.EncodeToString(sum[:6])+".tar")
	if _, err := os.Stat(tarball); err != nil {
		start := time.Now()
		if err := os.MkdirAll(cache, 0o755); err != nil {
			t.Fatal(err)
		}
		build, err := os.MkdirTemp(cache, "build-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(build)
		target := filepath.Join(build, "tree")
		// debootstrap ends with a bare sync(1), which waits for every
		// filesystem on the machine, a wedged FUSE mount of another test
		// included (seen here: 15 minutes in D state). Sync only the tree's.
		shim := filepath.Join(build, "bin")
		os.Mkdir(shim, 0o755)
		os.WriteFile(filepath.Join(shim, "sync"), []byte("#!/bin/sh\nexec /bin/sync -f "+target+"\n"), 0o755)
		cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(bookwormPackages, ","),
			"bookworm", target, "http://deb.debian.org/debian")
		cmd.Env = append(os.Environ(), "PATH="+shim+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("debootstrap: %v\n%s", err, tail(out, 4000))
		}
		tmp := tarball + ".part"
		if out, err := exec.Command("tar", "-C", target, "--one-file-system", "-cf", tmp, ".").CombinedOutput(); err != nil {
			os.Remove(tmp)
			t.Fatalf("tar: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, tarball); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "systemd: built the bookworm tree %s in %v\n", tarball, time.Since(start).Round(time.Second))
	}
	start := time.Now()
	tree := filepath.Join(t.TempDir(), "tree")
	os.Mkdir(tree, 0o755)
	if out, err := exec.Command("tar", "-C", tree, "-xf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", tarball, err, out)
	}
	fmt.Fprintf(os.Stderr, "systemd: unpacked the cached bookworm tree in %v\n", time.Since(start).Round(time.Millisecond))
	return tree
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// container is a Debian tree booted by systemd-nspawn, with systemd as its
// PID 1, sharing the host's network namespace (so the private Tor network's
// 127.0.0.1 is its own) in cgroups of its own.
type container struct {
	tree    string
	cmd     *exec.Cmd
	log     *syncBuffer
	leader  int // the container's PID 1, as the host sees it
	cgroups []string
	done    chan error
}

// bootContainer boots the tree. nspawn keeps the unit it is started in
// (--keep-unit, --register=no: there is no systemd on the host to register
// with), so it is first moved into cgroups of its own: in the host's root
// cgroup, the container's systemd would see, and at shutdown try to kill,
// every process of the machine.
func bootContainer(t *testing.T, tree string) *container {
	t.Helper()
	c := &container{tree: tree, log: &syncBuffer{}, done: make(chan error, 1)}
	name := fmt.Sprintf("amana-nspawn-%d", os.Getpid())
	var enter strings.Builder
	for _, h := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(h, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			t.Fatalf("making a cgroup for the container: %v", err)
		}
		c.cgroups = append(c.cgroups, dir)
		fmt.Fprintf(&enter, "echo $$ > %s/cgroup.procs && ", dir)
	}
	c.cmd = exec.Command("sh", "-c", enter.String()+"exec systemd-nspawn --quiet -D "+tree+" --boot --register=no --keep-unit --console=passive")
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.stop(t) })
	// The container's PID 1 is the descendant of nspawn named systemd.
	for deadline := time.Now().Add(30 * time.Second); c.leader == 0; time.Sleep(200 * time.Millisecond) {
		c.leader = findDescendant(c.cmd.Process.Pid, "systemd")
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("systemd-nspawn exited: %v\n%s", err, c.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no systemd started in the container:\n%s", c.log.String())
		}
	}
	// Wait for the boot to finish: "running", or "degraded" with the
	// failed units listed.
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out, _ := c.exec("systemctl", "is-system-running")
		state := strings.TrimSpace(out)
		if state == "running" {
			break
		}
		if state == "degraded" {
			failed, _ := c.exec("systemctl", "--failed", "--no-pager")
			t.Fatalf("the container booted degraded:\n%s", failed)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not finish booting (state %q):\n%s", state, c.log.String())
		}
	}
	return c
}

func findDescendant(pid int, comm string) int {
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(kids)) {
		k, _ := strconv.Atoi(f)
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k)); strings.TrimSpace(string(b)) == comm {
			return k
		}
		if d := findDescendant(k, comm); d != 0 {
			return d
		}
	}
	return 0
}

// exec runs a command inside the container (all its namespaces), as root.
func (c *container) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(c.leader), "--all", "--"}, args...)...)
	// What the container's programs expect, not the test's environment.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (c *container) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.exec(args...)
	if err != nil {
		t.Fatalf("in the container, %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// stop powers the container off, and kills nspawn if that takes too long.
func (c *container) stop(t *testing.T) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	if c.leader != 0 {
		c.exec("systemctl", "poweroff", "--no-block")
	}
	select {
	case <-c.done:
	case <-time.After(40 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		t.Errorf("the container did not power off within 40s")
	}
	c.cmd = nil
	for _, dir := range c.cgroups {
		removeCgroup(t, dir)
	}
}

// removeCgroup removes a cgroup and those the container's systemd made
// under it, deepest first (a cgroup directory goes with rmdir only once it
// has no children and no processes).
func removeCgroup(t *testing.T, dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil {
			t.Errorf("removing the container's cgroup %s: %v", dirs[i], err)
		}
	}
}

// relayStatus polls amana-relay status in the container until it shows
// both onions, and returns them.
func relayStatus(t *testing.T, c *container, timeout time.Duration) (intake, handler, out string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^intake:\s+(http://[a-z2-7]{56}\.onion) \(public`)
	rh := regexp.MustCompile(`(?m)^handler:\s+(http://[a-z2-7]{56}\.onion) \(`)
	for deadline := time.Now().Add(timeout); ; time.Sleep(time.Second) {
		out, _ = c.exec("runuser", "-u", "amana-relay", "--", "amana-relay", "status", "--data", "/var/lib/amana-relay")
		if strings.Contains(out, "running on Tor") {
			if a, b := re.FindStringSubmatch(out), rh.FindStringSubmatch(out); a != nil && b != nil {
				return a[1], b[1], out
			}
		}
		if time.Now().After(deadline) {
			j, _ := c.exec("journalctl", "-u", "amana-relay", "--no-pager", "-n", "60")
			t.Fatalf("the relay did not publish its onions within %v:\n%s\njournal:\n%s", timeout, out, j)
		}
	}
}

// TestUnitBootsUnderSystemd boots a Debian bookworm with systemd as PID 1
// (systemd-nspawn), installs the release there with its install.sh, inits
// the relay and starts the shipped unit, unchanged but for a drop-in naming
// the private Tor network's torrc. The relay's tor runs inside the unit's
// sandbox: under its system-call filter and MemoryDenyWriteExecute. The
// onions publish on the private network, a submission over Tor arrives,
// systemctl show reports the sandbox, the filter is on the relay and its tor
// (Seccomp: 2 in /proc), and a restart keeps the addresses.
func TestUnitBootsUnderSystemd(t *testing.T) {
	for _, tool := range [][2]string{{"systemd-nspawn", "systemd-container"}, {"debootstrap", "debootstrap"}, {"nsenter", "util-linux"}} {
		needTool(t, tool[0], tool[1])
	}
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-nspawn needs root, and CI is set")
		}
		fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: systemd-nspawn needs root ***\n", t.Name())
		t.Skip("not root")
	}
	begin := time.Now()
	n := torNetwork(t)
	w := keysAndRelay(t)
	tree := bookwormTree(t)

	// What the test puts in the tree: the release, the admin's card, the
	// private network's torrc, and a drop-in that passes it to serve, as
	// an operator with bridges would (operator.md). tor's own service is
	// masked: it would try to reach the real Tor network.
	rel := releaseLayout(t)
	if out, err := exec.Command("cp", "-a", rel, filepath.Join(tree, "root/release")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	os.MkdirAll(filepath.Join(tree, "etc/amana-relay"), 0o755)
	copyFile(t, w.path("admin.card"), filepath.Join(tree, "etc/amana-relay/admin.card"), 0o644)
	lines := regexp.MustCompile(`(?m)^(GeoIPv?6?File) .*$`).ReplaceAllString(n.TorrcLines(), "$1 /etc/amana-relay/geoip-empty")
	os.WriteFile(filepath.Join(tree, "etc/amana-relay/geoip-empty"), nil, 0o644)
	os.WriteFile(filepath.Join(tree, "etc/amana-relay/torrc"), []byte(lines), 0o644)
	dropin := filepath.Join(tree, "etc/systemd/system/amana-relay.service.d")
	os.MkdirAll(dropin, 0o755)
	os.WriteFile(filepath.Join(dropin, "test-network.conf"), []byte("[Service]\nExecStart=\nExecStart=/usr/local/bin/amana-relay serve --data /var/lib/amana-relay --torrc /etc/amana-relay/torrc\n"), 0o644)
	for _, u := range []string{"tor.service", "tor@default.service"} {
		os.Symlink("/dev/null", filepath.Join(tree, "etc/systemd/system", u))
	}

	bootStart := time.Now()
	c := bootContainer(t, tree)
	fmt.Fprintf(os.Stderr, "systemd: the container booted in %v\n", time.Since(bootStart).Round(time.Millisecond))
	if pid1, _ := c.exec("cat", "/proc/1/comm"); strings.TrimSpace(pid1) != "systemd" {
		t.Fatalf("PID 1 in the container is %q, not systemd", pid1)
	}

	out := c.must(t, "sh", "/root/release/deploy/install.sh")
	if !strings.Contains(out, "installed amana-relay version") {
		t.Fatalf("install.sh said:\n%s", out)
	}
	c.must(t, "runuser", "-u", "amana-relay", "--", "amana-relay", "init", "--data", "/var/lib/amana-relay", "--admin", "/etc/amana-relay/admin.card")
	c.must(t, "systemctl", "enable", "--now", "amana-relay")
	intake, handler, _ := relayStatus(t, c, 2*time.Minute)
	fmt.Fprintf(os.Stderr, "systemd: the unit published both onions %v after boot\n", time.Since(bootStart).Round(time.Millisecond))

	// The sandbox, as systemd applied it.
	show := c.must(t, "systemctl", "show", "amana-relay", "-p", "ActiveState,User,MemoryDenyWriteExecute,NoNewPrivileges,ProtectSystem,ProtectHome,PrivateTmp,PrivateDevices,RestrictAddressFamilies,SystemCallFilter,SystemCallErrorNumber,CapabilityBoundingSet,LimitCORE,MainPID,ControlGroup")
	props := map[string]string{}
	for _, l := range strings.Split(show, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			props[k] = v
		}
	}
	for k, want := range map[string]string{
		"ActiveState": "active", "User": "amana-relay", "MemoryDenyWriteExecute": "yes", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallErrorNumber": "1", "CapabilityBoundingSet": "", "LimitCORE": "0",
	} {
		if props[k] != want {
			t.Errorf("systemctl show: %s=%q, want %q", k, props[k], want)
		}
	}
	// An allow-list (no leading ~) that has the ordinary calls and lacks
	// the privileged ones.
	filter := " " + props["SystemCallFilter"] + " "
	if strings.HasPrefix(props["SystemCallFilter"], "~") || !strings.Contains(filter, " read ") || !strings.Contains(filter, " epoll_wait ") {
		t.Errorf("SystemCallFilter is not the @system-service allow-list: %.200s", props["SystemCallFilter"])
	}
	for _, banned := range []string{"mount", "ptrace", "reboot", "init_module", "settimeofday", "swapon", "kexec_load"} {
		if strings.Contains(filter, " "+banned+" ") {
			t.Errorf("SystemCallFilter allows %s", banned)
		}
	}
	// Both the relay and its tor run in the unit's cgroup under the filter
	// (Seccomp: 2) with no new privileges. (systemctl show prints the
	// address families sorted and the errno as a number: 1 is EPERM.)
	// (The processes whose /proc/PID/cgroup names the unit's cgroup.)
	procs := strings.Fields(c.must(t, "sh", "-c", "for f in /proc/[0-9]*/cgroup; do grep -q '^0::"+props["ControlGroup"]+"$' $f && basename ${f%/cgroup}; done; true"))
	seen := map[string]bool{}
	for _, p := range procs {
		comm, _ := c.exec("cat", "/proc/"+p+"/comm")
		status, _ := c.exec("cat", "/proc/"+p+"/status")
		comm = strings.TrimSpace(comm)
		seen[comm] = true
		if !regexp.MustCompile(`(?m)^Seccomp:\s+2$`).MatchString(status) || !regexp.MustCompile(`(?m)^NoNewPrivs:\s+1$`).MatchString(status) {
			t.Errorf("%s (pid %s) in the unit runs without its seccomp filter or with new privileges:\n%s", comm, p, status)
		}
	}
	if !seen["amana-relay"] || !seen["tor"] {
		t.Errorf("the unit's cgroup holds %v, want amana-relay and tor", seen)
	}

	// The filter and MDWE bite: a copy of the installed unit, only its
	// ExecStart= changed (and Type=oneshot), runs three calls that an
	// unprivileged process may make outside it: ptrace(PTRACE_TRACEME)
	// (@debug), a writable and executable mmap (MemoryDenyWriteExecute),
	// personality(READ_IMPLIES_EXEC) (LockPersonality). Outside the unit
	// the same program is allowed all three, so the check can fail.
	probe := `sub t { my ($n,$r)=@_; print "$n ", ($r==-1 ? "refused: $!" : "allowed"), "\n" } ` +
		`t("ptrace", syscall(101,0,0,0,0)); t("mmap-wx", syscall(9,0,4096,7,0x22,-1,0)); t("personality", syscall(135,0x0400000));`
	os.WriteFile(filepath.Join(tree, "usr/local/bin/amana-probe"), []byte(probe), 0o644)
	unit, err := os.ReadFile(filepath.Join(tree, "etc/systemd/system/amana-relay.service"))
	if err != nil {
		t.Fatal(err)
	}
	probeUnit := regexp.MustCompile(`(?m)^ExecStart=.*$`).ReplaceAllString(string(unit), "ExecStart=/usr/bin/perl /usr/local/bin/amana-probe")
	probeUnit = strings.Replace(probeUnit, "Type=simple", "Type=oneshot", 1)
	if probeUnit == string(unit) || !strings.Contains(probeUnit, "Type=oneshot") {
		t.Fatal("could not make the probe unit from the installed one")
	}
	os.WriteFile(filepath.Join(tree, "etc/systemd/system/amana-probe.service"), []byte(probeUnit), 0o644)
	c.must(t, "systemctl", "daemon-reload")
	c.must(t, "systemctl", "start", "amana-probe")
	inUnit := c.must(t, "journalctl", "-u", "amana-probe", "--no-pager", "-o", "cat")
	outside := c.must(t, "runuser", "-u", "amana-relay", "--", "perl", "/usr/local/bin/amana-probe")
	t.Logf("probe in the unit:\n%soutside it:\n%s", inUnit, outside)
	for _, call := range []string{"ptrace", "mmap-wx", "personality"} {
		if !strings.Contains(outside, call+" allowed") {
			t.Errorf("outside the unit, %s is not allowed, so the probe proves nothing:\n%s", call, outside)
		}
		if !strings.Contains(inUnit, call+" refused: Operation not permitted") {
			t.Errorf("under the unit's sandbox, %s is not refused with EPERM:\n%s", call, inUnit)
		}
	}

	// A submission over Tor, from the host, to the relay in the container.
	viaTor := []string{"--tor-launch", "--torrc", mustTorrc(t, n, w)}
	retry(t, w.home("admin"), "amana", append([]string{"desk", "publish", w.path("pq.json"), "--relay", handler, "-i", w.path("admin.key")}, viaTor...)...)
	os.WriteFile(w.path("msg.txt"), []byte("report sent to the unit over Tor\n"), 0o600)
	sub := retry(t, w.home("submitter"), "amana", append([]string{"submit", "--relay", intake, "--desk", "pq", "--category", "incident",
		"--message-file", w.path("msg.txt")}, viaTor...)...)
	if receiptID.FindStringSubmatch(sub.stdout) == nil {
		t.Fatalf("submit printed no receipt:\n%s", sub.stdout)
	}
	waiting := regexp.MustCompile(`(?m)^submissions: 1 waiting`)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(time.Second) {
		_, _, st := relayStatus(t, c, time.Minute)
		if waiting.MatchString(st) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the submission did not arrive in the container's spool:\n%s", st)
		}
	}

	// A restart keeps the addresses.
	c.must(t, "systemctl", "restart", "amana-relay")
	intake2, handler2, _ := relayStatus(t, c, 2*time.Minute)
	if intake2 != intake || handler2 != handler {
		t.Errorf("the addresses changed across a restart: %s %s -> %s %s", intake, handler, intake2, handler2)
	}
	// Nothing of the report in the journal.
	if j, _ := c.exec("journalctl", "-u", "amana-relay", "--no-pager"); strings.Contains(j, "report sent to the unit") {
		t.Error("the journal holds the report's text")
	}
	fmt.Fprintf(os.Stderr, "systemd: TestUnitBootsUnderSystemd took %v\n", time.Since(begin).Round(time.Second))
}

func mustTorrc(t *testing.T, n interface{ WriteTorrc(string) (string, error) }, w *world) string {
	t.Helper()
	p, err := n.WriteTorrc(w.path("network.torrc"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
