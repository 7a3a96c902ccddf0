package relaycli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

func newDoctor(e *env) *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "doctor --data DIR",
		Short: "check the relay's data, its tor and the host, and explain how to fix what is wrong",
		Long: `Check what a relay depends on and say how to fix each problem:

  the data directory   modes 0700/0600, owned by the user running the relay
  the spool            bbolt's consistency check (when the relay is stopped), quota use,
                       pending uploads, and whether 'amana-relay compact' would pay (free
                       pages at least 64 MiB and half the file; exact when the relay is
                       stopped, estimated from the file's size while it runs)
  tor                  installed, a version with the proof-of-work defence (0.4.8 or newer),
                       the onion keys, and on a running relay the onions' state
  the clock            against tor's consensus, and whether NTP has synchronised it
  the disk             free space against the quota
  swap                 none, or encrypted
  core dumps           off for the running relay
  the host             no web server on the open internet, SSH without passwords,
                       unattended security upgrades

A relay running with --no-tor, which no onion serves, is a warning, as is an
installed amana-relay.service (or a drop-in of it) that starts it so. A check that
cannot be made is listed as "skip", with why: the clock against tor's consensus
needs the consensus the relay's own tor caches in DIR/tor (none before its first
start, nor with --tor-control), and the NTP check needs timedatectl.

Run it as the relay's user (sudo -u amana-relay amana-relay doctor --data DIR). It
changes nothing. It exits 1 when a check fails, 0 when there are only warnings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needExisting(data); err != nil {
				return err
			}
			fs := doctor(systemHost(), data)
			if printFindings(e.stdout, fs) {
				return ui.Fail(ui.ExitError, "fix the failures above, then run 'amana-relay doctor' again", nil, "doctor found problems")
			}
			return nil
		},
	}
	dataFlag(cmd, &data)
	return cmd
}

// finding is one line of the doctor's report.
type finding struct {
	Level string // "ok", "warn", "FAIL", or "skip" for a check it could not make
	What  string
	Fix   string // for warn and FAIL
}

// host is where the doctor looks: the real system, or a directory tree in
// tests.
type host struct {
	root     string // prefix for /proc, /sys, /etc, /run
	now      func() time.Time
	uid      int
	run      func(name string, args ...string) ([]byte, error) // a program's output
	freeDisk func(dir string) (int64, error)
}

func systemHost() *host {
	return &host{
		now: time.Now,
		uid: os.Getuid(),
		run: func(name string, args ...string) ([]byte, error) {
			return exec.Command(name, args...).Output()
		},
		freeDisk: daemon.DiskFree,
	}
}

func (h *host) read(path string) ([]byte, error) { return os.ReadFile(filepath.Join(h.root, path)) }

// minTorPoW is the first tor with the onion proof-of-work defence.
var minTorPoW = []int{0, 4, 8}

func doctor(h *host, data string) []finding {
	var out []finding
	add := func(level, fix, format string, args ...any) {
		out = append(out, finding{Level: level, What: fmt.Sprintf(format, args...), Fix: fix})
	}

	// The data directory and its files.
	checkModes(data, h.uid, add)

	// The spool: stopped, it is checked; running, its status file speaks.
	var st *daemon.Status
	quota := int64(store.DefaultQuota)
	committed := int64(0)
	sp, err := store.Open(data, nil)
	switch {
	case errors.Is(err, store.ErrLocked):
		s, rerr := daemon.ReadStatus(data)
		if rerr != nil {
			add("warn", "wait a few seconds after start-up, or look at the relay's log", "relay running, but it wrote no status yet")
			break
		}
		st = s
		quota, committed = s.Quota, s.Committed
		add("ok", "", "relay running (pid %d); spool in use, so its consistency check waits for a stop", s.PID)
		add("ok", "", "spool: %d submission(s) waiting, %d unfinished upload(s)", s.Submissions, s.Uploads)
	case err != nil:
		add("FAIL", "restore the spool from a backup ('amana-relay restore'), or move it aside and run 'amana-relay init'", "spool does not open: %v", err)
	default:
		stats, serr := sp.Stats()
		cerr := sp.Check()
		v, _ := sp.Schema()
		free, ferr := sp.FreeBytes()
		sp.Close()
		switch {
		case cerr != nil:
			add("FAIL", "restore the spool from a backup ('amana-relay restore'); keep the damaged file for inspection", "spool fails bbolt's consistency check: %v", cerr)
		case serr != nil:
			add("FAIL", "restore the spool from a backup", "spool statistics: %v", serr)
		default:
			committed = stats.Committed
			add("ok", "", "spool: consistent, schema %d, %d submission(s) waiting, %d unfinished upload(s), %s used (relay stopped)",
				v, stats.Submissions, stats.Uploads, ui.Size(stats.Committed))
			if ferr == nil {
				checkCompaction(stats.FileSize, free, false, add)
			}
		}
	}
	if st != nil {
		// Running: bbolt's freelist is the relay's; the file's size against
		// the data the quota counts is an estimate of it.
		if fi, err := os.Stat(filepath.Join(data, store.FileName)); err == nil {
			checkCompaction(fi.Size(), max(0, fi.Size()-committed), true, add)
		}
	}
	if st != nil && quota > 0 {
		pct := 100 * float64(committed) / float64(quota)
		level, fix := "ok", ""
		if pct >= 80 {
			level, fix = "warn", "ask handlers to pull (acknowledged submissions are deleted), or raise --quota if the disk allows"
		}
		add(level, fix, "quota: %s of %s used (%.0f%%)", ui.Size(committed), ui.Size(quota), pct)
		if st.Uploads > 1000 {
			add("warn", "many abandoned uploads can mean a flood; they expire after --upload-ttl, and count against the quota until then",
				"%d unfinished uploads", st.Uploads)
		}
	}

	// Free disk against what the quota still allows.
	if free, err := h.freeDisk(data); err != nil {
		add("warn", "check the filesystem of the data directory", "cannot read free space: %v", err)
	} else {
		switch room := quota - committed; {
		case free < 256<<20:
			add("FAIL", "free space on the data directory's filesystem, or move the spool to a larger one", "only %s free on the disk", ui.Size(free))
		case free < room:
			add("warn", "lower --quota below the free space, or free space: a full disk refuses submissions like a full quota, and 'amana-relay compact' needs room too",
				"%s free on the disk, less than the %s the quota still allows", ui.Size(free), ui.Size(room))
		default:
			add("ok", "", "disk: %s free, more than the %s the quota still allows", ui.Size(free), ui.Size(room))
		}
	}

	// tor.
	checkTor(h, data, st, add)

	// The clock.
	checkClock(h, data, add)

	// Swap, core dumps, the host.
	checkSwap(h, add)
	checkCore(h, st, add)
	checkListeners(h, add)
	checkSSH(h, add)
	checkUpgrades(h, add)
	return out
}

type addFunc func(level, fix, format string, args ...any)

// Compaction pays when the free pages are at least compactMin and at least
// half the file: below that, bbolt reuses them for new submissions anyway,
// and the stop is not worth it.
const compactMin = 64 << 20

func compactionPays(file, free int64) bool { return free >= compactMin && 2*free >= file }

// checkCompaction says whether 'amana-relay compact' would give space back.
// estimate: free is the file's size less the data counted against the
// quota (the relay is running, so bbolt's own count cannot be read).
func checkCompaction(file, free int64, estimate bool, add addFunc) {
	about, how := "", "bbolt's free pages"
	if estimate {
		about, how = "about ", "file size less the data the quota counts"
	}
	if compactionPays(file, free) {
		add("warn", "compaction is offline: the relay is down while the live data is copied (2.4 s for 240 MiB measured) and tor publishes again (docs/operator.md, \"Compacting the spool\"): sudo systemctl stop amana-relay; sudo -u amana-relay amana-relay compact --data DIR; sudo systemctl start amana-relay",
			"spool file %s, %s%s of it free (%s): compaction would give that back, and wipe deleted submissions' pages from the file", ui.Size(file), about, ui.Size(free), how)
		return
	}
	add("ok", "", "spool file %s, %s%s of it free (%s): compaction would not pay (bbolt reuses free pages)", ui.Size(file), about, ui.Size(free), how)
}

func checkModes(data string, uid int, add addFunc) {
	bad := 0
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if rel, _ := filepath.Rel(data, p); rel == daemon.TorDir {
			return fs.SkipDir // tor's own files, under tor's rules
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm()&^want != 0 {
			bad++
			add("FAIL", fmt.Sprintf("chmod %o %s", want, p), "%s has mode %o: others can read it", p, fi.Mode().Perm())
		}
		if s, ok := fi.Sys().(*syscall.Stat_t); ok && int(s.Uid) != uid {
			bad++
			add("FAIL", fmt.Sprintf("run doctor as the relay's user, or chown -R that user %s", data), "%s belongs to user %d, not to %d who runs this", p, s.Uid, uid)
		}
		return nil
	})
	if bad == 0 {
		add("ok", "", "data directory %s: modes 0700/0600, owned by user %d", data, uid)
	}
	for _, name := range []string{daemon.IntakeOnion, daemon.HandlerOnion} {
		if _, err := os.Stat(filepath.Join(data, daemon.KeyFile(name))); err != nil {
			add("warn", "start 'amana-relay serve' once: it makes the onion keys, then back them up ('amana-relay backup')",
				"no %s onion key yet in %s", name, filepath.Join(data, daemon.OnionDir))
		}
	}
}

func checkTor(h *host, data string, st *daemon.Status, add addFunc) {
	out, err := h.run("tor", "--version")
	if err != nil {
		add("FAIL", "apt install tor (the relay starts tor from the system's package)", "tor is not installed or does not run: %v", err)
	} else if v, ok := parseTorVersion(out); !ok {
		add("warn", "check 'tor --version'", "cannot read tor's version")
	} else if !versionAtLeast(v, minTorPoW) {
		add("warn", "install tor 0.4.8 or newer (Debian bookworm has 0.4.9; or the Tor Project's repository)",
			"tor %s has no proof-of-work defence: the intake onion is open to introduction floods", joinVersion(v))
	} else {
		add("ok", "", "tor %s, with the proof-of-work defence", joinVersion(v))
	}
	if st != nil && st.Mode == "loopback" {
		add("warn", "for a real desk, start serve without --no-tor, as the shipped unit does (systemctl start amana-relay): --no-tor is for trying Amana (make run) and for tests",
			"the relay runs without Tor (serve --no-tor) on http://%s: no onion serves it, so no submitter or handler can reach it through Tor, and the intake and handler routes share one address", st.Listen)
	}
	if line, file := unitExecStart(h); strings.Contains(line, "--no-tor") {
		add("warn", fmt.Sprintf("remove --no-tor from ExecStart= in %s (sudo systemctl edit amana-relay), then sudo systemctl restart amana-relay", file),
			"the systemd unit starts the relay with --no-tor: no onion will serve it")
	}
	if st == nil || st.Mode != "tor" {
		return
	}
	if !st.PoW {
		add("warn", "run serve with --pow (the default) on a tor with the pow module", "proof of work is off on the intake onion")
	}
	if st.HandlerDown {
		add("warn", "look at the relay's log; it publishes the handler onion again by itself", "the handler onion is down, being published again")
	}
	add("ok", "", "tor: %s; intake onion %s", st.TorState, st.Intake)
}

// unitExecStart returns the command the installed amana-relay.service runs,
// its drop-ins applied (a later ExecStart= replaces an earlier one after an
// empty ExecStart= resets it), and the file it comes from; "" if no unit is
// installed.
func unitExecStart(h *host) (line, file string) {
	files := []string{"/etc/systemd/system/amana-relay.service"}
	if ents, err := os.ReadDir(filepath.Join(h.root, "/etc/systemd/system/amana-relay.service.d")); err == nil {
		for _, e := range ents { // in order, as systemd reads them
			if strings.HasSuffix(e.Name(), ".conf") {
				files = append(files, "/etc/systemd/system/amana-relay.service.d/"+e.Name())
			}
		}
	}
	for _, f := range files {
		b, err := h.read(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "ExecStart="); ok {
				line, file = v, f
			}
		}
	}
	return line, file
}

func joinVersion(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ".")
}

func checkClock(h *host, data string, add addFunc) {
	now := h.now().UTC()
	consensus := filepath.Join(data, daemon.TorDir, "cached-microdesc-consensus")
	b, err := os.ReadFile(consensus)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add("skip", "start the relay once (its tor fetches a consensus within minutes), then run doctor again; with --tor-control, look for clock warnings in that tor's log",
			"clock not checked against tor's consensus: there is no %s, as before the relay's own tor first connects, or with --tor-control", consensus)
	case err != nil:
		add("skip", "run doctor as the relay's user (sudo -u amana-relay)", "clock not checked against tor's consensus: cannot read %s: %v", consensus, err)
	}
	if err == nil {
		after, until, ok := parseConsensusTimes(b)
		switch {
		case !ok:
			add("skip", "let the relay's tor fetch a new consensus (restart the relay), then run doctor again",
				"clock not checked against tor's consensus: %s has no valid-after and valid-until lines", consensus)
		case now.Before(after.Add(-time.Hour)):
			add("FAIL", "set the clock (systemd-timesyncd, chrony): tor refuses a consensus from the future, and signed handler requests are refused outside ±5 minutes",
				"the clock is behind: tor's consensus is valid from %s, and it is %s", after.Format(time.DateTime), now.Format(time.DateTime))
		case now.After(until.Add(24 * time.Hour)):
			add("warn", "check the clock, and whether tor reaches the network (amana-relay status)",
				"tor's cached consensus ended %s, more than a day ago; the clock is ahead, or tor has been offline", until.Format(time.DateTime))
		default:
			add("ok", "", "clock agrees with tor's consensus (valid %s to %s)", after.Format(time.DateTime), until.Format(time.DateTime))
		}
	}
	if out, err := h.run("timedatectl", "show", "-p", "NTPSynchronized", "--value"); err == nil {
		if strings.TrimSpace(string(out)) == "yes" {
			add("ok", "", "clock synchronised by NTP")
		} else {
			add("warn", "apt install systemd-timesyncd (or chrony)", "the clock is not synchronised by NTP")
		}
	} else {
		add("skip", "check your time daemon yourself (chronyc tracking, ntpq -p), or apt install systemd-timesyncd",
			"NTP synchronisation not checked: timedatectl did not answer (%v)", err)
	}
}

func checkSwap(h *host, add addFunc) {
	b, err := h.read("/proc/swaps")
	if err != nil {
		return
	}
	areas := parseSwaps(b)
	if len(areas) == 0 {
		add("ok", "", "no swap: memory, such as a no-JavaScript report being encrypted, is never written to disk")
		return
	}
	for _, a := range areas {
		if h.encryptedSwap(a) {
			add("ok", "", "swap %s is encrypted", a.Name)
			continue
		}
		add("warn", "turn swap off (swapoff -a, and remove it from /etc/fstab), or encrypt it with a random key in /etc/crypttab",
			"swap %s may be unencrypted: memory of the relay, such as a no-JavaScript report being encrypted, can be written to disk", a.Name)
	}
}

// encryptedSwap reports whether a swap area is zram (memory) or a dm-crypt
// device.
func (h *host) encryptedSwap(a swapArea) bool {
	if a.Type != "partition" {
		return false // a swap file: its filesystem may be encrypted, but we cannot tell
	}
	name := filepath.Base(a.Name)
	if strings.HasPrefix(name, "zram") {
		return true
	}
	if strings.HasPrefix(a.Name, "/dev/mapper/") {
		target, err := os.Readlink(filepath.Join(h.root, a.Name))
		if err != nil {
			return false
		}
		name = filepath.Base(target)
	}
	if !strings.HasPrefix(name, "dm-") {
		return false
	}
	uuid, err := h.read(filepath.Join("/sys/block", name, "dm/uuid"))
	return err == nil && strings.HasPrefix(string(uuid), "CRYPT-")
}

func checkCore(h *host, st *daemon.Status, add addFunc) {
	if st == nil || st.PID <= 0 {
		return
	}
	b, err := h.read(fmt.Sprintf("/proc/%d/limits", st.PID))
	if err != nil {
		return
	}
	if n, ok := parseCoreLimit(b); ok && n == 0 {
		add("ok", "", "core dumps are off for the running relay")
	} else if ok {
		add("warn", "run the relay under the shipped systemd unit (LimitCORE=0), or 'ulimit -c 0' before serve",
			"the running relay may dump core: a crash could write a no-JavaScript report being encrypted to disk")
	}
}

func checkListeners(h *host, add addFunc) {
	var ports []int
	seen := map[int]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := h.read(f)
		if err != nil {
			continue
		}
		for _, a := range parseListeners(b) {
			if a.IP.IsLoopback() || seen[a.Port] {
				continue
			}
			seen[a.Port] = true
			ports = append(ports, a.Port)
		}
	}
	sort.Ints(ports)
	for _, p := range ports {
		switch p {
		case 80, 443, 8080, 8443:
			add("warn", "stop the web server, or bind it to 127.0.0.1: the relay needs no open port, and a site on the same host can reveal where the onion runs",
				"something listens on port %d on the open internet", p)
		case 22:
			add("ok", "", "port 22 (SSH) is open to the internet; see the SSH check")
		default:
			add("warn", "close the port unless you need it: the relay itself listens only on 127.0.0.1", "port %d is open on a public address", p)
		}
	}
	if len(ports) == 0 {
		add("ok", "", "no TCP port open on a public address")
	}
}

func checkSSH(h *host, add addFunc) {
	files := []string{"/etc/ssh/sshd_config"}
	if ents, err := os.ReadDir(filepath.Join(h.root, "/etc/ssh/sshd_config.d")); err == nil {
		var extra []string
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".conf") {
				extra = append(extra, "/etc/ssh/sshd_config.d/"+e.Name())
			}
		}
		// sshd_config includes these first, and the first value wins.
		files = append(extra, files...)
	}
	found := false
	for _, f := range files {
		b, err := h.read(f)
		if err != nil {
			continue
		}
		found = true
		if v, ok := sshdSetting(b, "PasswordAuthentication"); ok {
			if v == "no" {
				add("ok", "", "SSH refuses passwords (%s)", f)
			} else {
				add("warn", "set 'PasswordAuthentication no' and log in with keys (or reach SSH only through an onion of its own)",
					"SSH accepts passwords (%s)", f)
			}
			return
		}
	}
	if found {
		add("warn", "set 'PasswordAuthentication no' in /etc/ssh/sshd_config and log in with keys", "SSH accepts passwords (the default)")
	}
}

func checkUpgrades(h *host, add addFunc) {
	ents, err := os.ReadDir(filepath.Join(h.root, "/etc/apt/apt.conf.d"))
	if err != nil {
		return // not Debian
	}
	on := false
	for _, e := range ents { // in order: a later file overrides
		b, err := h.read("/etc/apt/apt.conf.d/" + e.Name())
		if err != nil {
			continue
		}
		if v, ok := aptSetting(b, "APT::Periodic::Unattended-Upgrade"); ok {
			on = v
		}
	}
	if on {
		add("ok", "", "unattended security upgrades are on")
	} else {
		add("warn", "apt install unattended-upgrades && dpkg-reconfigure -plow unattended-upgrades: tor and the kernel need security fixes as soon as they ship",
			"unattended security upgrades are off")
	}
}

// printFindings writes the report and says whether anything failed.
func printFindings(w io.Writer, fs []finding) (failed bool) {
	var n = map[string]int{}
	for _, f := range fs {
		n[f.Level]++
		fmt.Fprintf(w, "%-5s %s\n", f.Level, ui.Clean(f.What, false))
		if f.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", ui.Clean(f.Fix, false))
		}
	}
	fmt.Fprintf(w, "doctor: %d ok, %d warning(s), %d failure(s), %d check(s) skipped\n", n["ok"], n["warn"], n["FAIL"], n["skip"])
	return n["FAIL"] > 0
}
