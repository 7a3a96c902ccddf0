package relaycli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

// fakeHost is a host tree under a temporary directory and canned program
// output.
type fakeHost struct {
	t     *testing.T
	root  string
	data  string
	tor   string // 'tor --version' output; "" for not installed
	ntp   string // 'timedatectl' output; "" for no timedatectl
	free  int64
	clock time.Time
}

func newFakeHost(t *testing.T) *fakeHost {
	f := &fakeHost{t: t, root: t.TempDir(), tor: "Tor version 0.4.9.11.\n", ntp: "yes\n", free: 100 << 30,
		clock: time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)}
	f.data = filepath.Join(t.TempDir(), "data")
	sp, err := store.Open(f.data, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp.Close()
	f.write(filepath.Join(f.data, daemon.OnionDir, "intake.key"), "ED25519-V3:x", 0o600)
	f.write(filepath.Join(f.data, daemon.OnionDir, "handler.key"), "ED25519-V3:y", 0o600)
	os.Chmod(filepath.Join(f.data, daemon.OnionDir), 0o700)
	f.write(filepath.Join(f.data, daemon.TorDir, "cached-microdesc-consensus"), "valid-after 2026-11-25 12:00:00\nvalid-until 2026-11-25 15:00:00\n", 0o600)
	f.file("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
	f.file("/proc/net/tcp", "  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A 0\n")
	f.file("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n")
	f.file("/etc/apt/apt.conf.d/20auto-upgrades", "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n")
	return f
}

func (f *fakeHost) write(p, content string, mode os.FileMode) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) file(p, content string) { f.write(filepath.Join(f.root, p), content, 0o644) }

func (f *fakeHost) host() *host {
	return &host{
		root: f.root, uid: os.Getuid(), now: func() time.Time { return f.clock },
		run: func(name string, args ...string) ([]byte, error) {
			switch {
			case name == "tor" && f.tor != "":
				return []byte(f.tor), nil
			case name == "timedatectl" && f.ntp != "":
				return []byte(f.ntp), nil
			}
			return nil, errors.New("executable file not found in $PATH")
		},
		freeDisk: func(string) (int64, error) { return f.free, nil },
	}
}

func TestDoctor(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeHost)
		want  map[string]string // a substring of a finding, and its level
	}{
		{"a clean host", func(f *fakeHost) {}, map[string]string{
			"modes 0700/0600": "ok", "spool: consistent": "ok", "tor 0.4.9.11": "ok", "no swap": "ok",
			"no TCP port open": "ok", "SSH refuses passwords": "ok", "unattended security upgrades are on": "ok",
			"clock synchronised": "ok", "disk:": "ok", "clock agrees with tor's consensus": "ok",
		}},
		{"loose modes", func(f *fakeHost) {
			os.Chmod(f.data, 0o755)
			os.Chmod(filepath.Join(f.data, store.FileName), 0o644)
		}, map[string]string{"data has mode 755": "FAIL", "spool.db has mode 644": "FAIL"}},
		{"no onion keys yet", func(f *fakeHost) {
			os.RemoveAll(filepath.Join(f.data, daemon.OnionDir))
		}, map[string]string{"no intake onion key": "warn", "no handler onion key": "warn"}},
		{"no tor", func(f *fakeHost) { f.tor = "" }, map[string]string{"tor is not installed": "FAIL"}},
		{"old tor", func(f *fakeHost) { f.tor = "Tor version 0.4.7.16.\n" }, map[string]string{"tor 0.4.7.16 has no proof-of-work": "warn"}},
		{"swap file", func(f *fakeHost) {
			f.file("/proc/swaps", "Filename Type Size Used Priority\n/swapfile file 1048572 0 -2\n")
		}, map[string]string{"swap /swapfile may be unencrypted": "warn"}},
		{"encrypted swap and zram", func(f *fakeHost) {
			f.file("/proc/swaps", "Filename Type Size Used Priority\n/dev/mapper/cryptswap partition 1 0 -2\n/dev/zram0 partition 1 0 100\n/dev/sda3 partition 1 0 -3\n")
			os.MkdirAll(filepath.Join(f.root, "/dev/mapper"), 0o755)
			os.Symlink("../dm-1", filepath.Join(f.root, "/dev/mapper/cryptswap"))
			f.file("/sys/block/dm-1/dm/uuid", "CRYPT-PLAIN-cryptswap\n")
		}, map[string]string{"swap /dev/mapper/cryptswap is encrypted": "ok", "swap /dev/zram0 is encrypted": "ok", "swap /dev/sda3 may be unencrypted": "warn"}},
		{"a web server and another port", func(f *fakeHost) {
			f.file("/proc/net/tcp", "  sl  local_address rem_address   st\n   0: 00000000:0050 00000000:0000 0A 0\n   1: 00000000:0016 00000000:0000 0A 0\n   2: 0100007F:2382 00000000:0000 0A 0\n")
			f.file("/proc/net/tcp6", "  sl  local_address rem_address st\n   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 0\n")
		}, map[string]string{"listens on port 80": "warn", "port 22 (SSH)": "ok", "port 8081 is open": "warn"}},
		{"SSH with passwords", func(f *fakeHost) {
			f.file("/etc/ssh/sshd_config", "#PasswordAuthentication yes\nPermitRootLogin no\n")
		}, map[string]string{"SSH accepts passwords (the default)": "warn"}},
		{"SSH drop-in wins", func(f *fakeHost) {
			f.file("/etc/ssh/sshd_config.d/50-cloud.conf", "PasswordAuthentication yes\n")
		}, map[string]string{"SSH accepts passwords (/etc/ssh/sshd_config.d/50-cloud.conf)": "warn"}},
		{"upgrades turned off later", func(f *fakeHost) {
			f.file("/etc/apt/apt.conf.d/99local", "APT::Periodic::Unattended-Upgrade \"0\";\n")
		}, map[string]string{"unattended security upgrades are off": "warn"}},
		{"a small disk", func(f *fakeHost) { f.free = 100 << 20 }, map[string]string{"only 100.0 MiB free": "FAIL"}},
		{"less disk than quota", func(f *fakeHost) { f.free = 2 << 30 }, map[string]string{"less than the 10.0 GiB the quota still allows": "warn"}},
		{"clock behind tor", func(f *fakeHost) {
			f.write(filepath.Join(f.data, daemon.TorDir, "cached-microdesc-consensus"), "network-status-version 3 microdesc\nvote-status consensus\nvalid-after 2026-11-26 12:00:00\nfresh-until 2026-11-26 13:00:00\nvalid-until 2026-11-26 15:00:00\n", 0o600)
		}, map[string]string{"the clock is behind": "FAIL"}},
		{"clock agrees", func(f *fakeHost) {
			f.write(filepath.Join(f.data, daemon.TorDir, "cached-microdesc-consensus"), "valid-after 2026-11-25 12:00:00\nvalid-until 2026-11-25 15:00:00\n", 0o600)
		}, map[string]string{"clock agrees with tor's consensus": "ok"}},
		{"no NTP", func(f *fakeHost) { f.ntp = "no\n" }, map[string]string{"not synchronised by NTP": "warn"}},
		{"no consensus yet", func(f *fakeHost) {
			os.RemoveAll(filepath.Join(f.data, daemon.TorDir))
		}, map[string]string{"clock not checked against tor's consensus: there is no ": "skip",
			filepath.Join("data", daemon.TorDir, "cached-microdesc-consensus") + ", as before the relay's own tor first connects": "skip"}},
		{"a consensus without times", func(f *fakeHost) {
			f.write(filepath.Join(f.data, daemon.TorDir, "cached-microdesc-consensus"), "network-status-version 3 microdesc\n", 0o600)
		}, map[string]string{"has no valid-after and valid-until lines": "skip"}},
		{"a unit on Tor", func(f *fakeHost) {
			f.file("/etc/systemd/system/amana-relay.service", "[Service]\nExecStart=/usr/local/bin/amana-relay serve --data /var/lib/amana-relay\n")
			f.file("/etc/systemd/system/amana-relay.service.d/override.conf", "[Service]\nExecStart=\nExecStart=/usr/local/bin/amana-relay serve --data /var/lib/amana-relay --metrics 127.0.0.1:9464\n")
		}, map[string]string{"tor 0.4.9.11": "ok"}},
		{"a unit with --no-tor in a drop-in", func(f *fakeHost) {
			f.file("/etc/systemd/system/amana-relay.service", "[Service]\nExecStart=/usr/local/bin/amana-relay serve --data /var/lib/amana-relay\n")
			f.file("/etc/systemd/system/amana-relay.service.d/override.conf", "[Service]\nExecStart=\nExecStart=/usr/local/bin/amana-relay serve --data /var/lib/amana-relay --no-tor\n")
		}, map[string]string{"the systemd unit starts the relay with --no-tor": "warn"}},
		{"no timedatectl", func(f *fakeHost) { f.ntp = "" }, map[string]string{"NTP synchronisation not checked: timedatectl did not answer": "skip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHost(t)
			tt.setup(f)
			got := doctor(f.host(), f.data)
			for sub, level := range tt.want {
				found := false
				for _, g := range got {
					if strings.Contains(g.What, sub) {
						found = true
						if g.Level != level {
							t.Errorf("%q is %s, want %s", g.What, g.Level, level)
						}
						if level != "ok" && g.Fix == "" {
							t.Errorf("%q says no fix", g.What)
						}
					}
				}
				if !found {
					t.Errorf("no finding with %q in:\n%s", sub, findingsText(got))
				}
			}
			if tt.name == "a clean host" || tt.name == "a unit on Tor" {
				for _, g := range got {
					if g.Level != "ok" {
						t.Errorf("a clean host: %s %s", g.Level, g.What)
					}
				}
			}
			// A skipped check is counted as such, not as passed.
			skipped := 0
			for _, g := range got {
				if g.Level == "skip" {
					skipped++
				}
			}
			if want := fmt.Sprintf(", %d check(s) skipped\n", skipped); !strings.HasSuffix(findingsText(got), want) {
				t.Errorf("the summary does not end in %q:\n%s", want, findingsText(got))
			}
		})
	}
}

func TestDoctorRunningRelay(t *testing.T) {
	f := newFakeHost(t)
	sp, err := store.Open(f.data, nil) // holds the lock, as a running relay does
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	st := daemon.Status{PID: 4242, Mode: "tor", Intake: "http://x.onion", PoW: false, HandlerDown: true, TorState: "connected",
		Submissions: 3, Uploads: 2000, Committed: 9 << 30, Quota: 10 << 30}
	b, _ := json.Marshal(st)
	f.write(filepath.Join(f.data, daemon.StatusFile), string(b), 0o600)
	f.file("/proc/4242/limits", "Limit                     Soft Limit           Hard Limit           Units\nMax core file size        unlimited            unlimited            bytes\n")
	got := doctor(f.host(), f.data)
	for sub, level := range map[string]string{
		"relay running (pid 4242)": "ok", "3 submission(s) waiting, 2000 unfinished": "ok", "quota: 9.0 GiB of 10.0 GiB used (90%)": "warn",
		"2000 unfinished uploads": "warn", "proof of work is off": "warn", "handler onion is down": "warn", "may dump core": "warn",
	} {
		found := false
		for _, g := range got {
			if strings.Contains(g.What, sub) {
				found = g.Level == level
			}
		}
		if !found {
			t.Errorf("want %s finding with %q in:\n%s", level, sub, findingsText(got))
		}
	}
}

// TestDoctorNoTor: a relay started with --no-tor is warned about, with the
// address it serves on; one on Tor is not.
func TestDoctorNoTor(t *testing.T) {
	for _, tc := range []struct {
		st   daemon.Status
		warn bool
	}{
		{daemon.Status{PID: 4242, Mode: "loopback", Listen: "127.0.0.1:8080"}, true},
		{daemon.Status{PID: 4242, Mode: "tor", Intake: "http://x.onion", PoW: true, TorState: "connected"}, false},
	} {
		f := newFakeHost(t)
		sp, err := store.Open(f.data, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(tc.st)
		f.write(filepath.Join(f.data, daemon.StatusFile), string(b), 0o600)
		got := doctor(f.host(), f.data)
		sp.Close()
		found := false
		for _, g := range got {
			if strings.Contains(g.What, "runs without Tor") {
				found = true
				if g.Level != "warn" || !strings.Contains(g.What, "http://127.0.0.1:8080") || !strings.Contains(g.Fix, "without --no-tor") {
					t.Errorf("%s %q, fix %q", g.Level, g.What, g.Fix)
				}
			}
		}
		if found != tc.warn {
			t.Errorf("mode %s: warned about no Tor: %v, want %v:\n%s", tc.st.Mode, found, tc.warn, findingsText(got))
		}
	}
}

func findingsText(fs []finding) string {
	var b strings.Builder
	printFindings(&b, fs)
	return b.String()
}

func TestParseListeners(t *testing.T) {
	got := parseListeners([]byte("  sl  local_address rem_address   st\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 0\n" + // 127.0.0.1:8080 listening
		"   1: 0100007F:1F90 0100007F:C000 01 0\n" + // established: skipped
		"   2: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0\n")) // [::1]:22
	want := []net.TCPAddr{{IP: net.IPv4(127, 0, 0, 1).To4(), Port: 8080}, {IP: net.IPv6loopback, Port: 22}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if !got[i].IP.Equal(want[i].IP) || got[i].Port != want[i].Port {
			t.Errorf("listener %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestParseTorVersion(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
		v  string
	}{
		{"Tor version 0.4.9.11.\nThis build of Tor is covered by the GNU General Public License", true, "0.4.9.11"},
		{"Tor version 0.4.9.2-alpha.", true, "0.4.9.2"},
		{"Tor version 0.4.8.10 (git-abc).", true, "0.4.8.10"},
		{"tor 1.0", false, ""},
		{"Tor version x.y.z.", false, ""},
	} {
		v, ok := parseTorVersion([]byte(tc.in))
		if ok != tc.ok || (ok && joinVersion(v) != tc.v) {
			t.Errorf("parseTorVersion(%q) = %v, %v", tc.in, v, ok)
		}
	}
	if !versionAtLeast([]int{0, 4, 8, 1}, minTorPoW) || versionAtLeast([]int{0, 4, 7, 16}, minTorPoW) || !versionAtLeast([]int{1, 0, 0}, minTorPoW) {
		t.Error("versionAtLeast")
	}
}

func FuzzParseSwaps(f *testing.F) {
	f.Add([]byte("Filename Type Size Used Priority\n/dev/sda3 partition 1 0 -2\n/swap\\040file file 1 0 -3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, a := range parseSwaps(b) {
			if a.Name == "" || a.Type == "" {
				t.Fatalf("empty swap area from %q", b)
			}
		}
	})
}

func FuzzParseListeners(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A 0\n"))
	f.Add([]byte("0: 00000000000000000000000001000000:0016 x 0A\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, a := range parseListeners(b) {
			if (len(a.IP) != 4 && len(a.IP) != 16) || a.Port < 0 || a.Port > 65535 {
				t.Fatalf("bad listener %v from %q", a, b)
			}
		}
	})
}

func FuzzParseTorVersion(f *testing.F) {
	f.Add([]byte("Tor version 0.4.9.11.\n"))
	f.Add([]byte("Tor version 0.4.9.2-alpha (git-1234)."))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, ok := parseTorVersion(b); ok && len(v) < 3 {
			t.Fatalf("short version %v from %q", v, b)
		}
	})
}

func FuzzParseConsensusTimes(f *testing.F) {
	f.Add([]byte("valid-after 2026-11-25 12:00:00\nvalid-until 2026-11-25 15:00:00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if after, until, ok := parseConsensusTimes(b); ok && until.Before(after) {
			t.Fatalf("until before after from %q", b)
		}
	})
}

func FuzzParseCoreLimit(f *testing.F) {
	f.Add([]byte("Max core file size        0                    unlimited            bytes\n"))
	f.Add([]byte("Max core file size        unlimited            unlimited            bytes\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, ok := parseCoreLimit(b); ok && n < -1 {
			t.Fatalf("limit %d from %q", n, b)
		}
	})
}

func FuzzHostConfig(f *testing.F) {
	f.Add([]byte("PasswordAuthentication no\nMatch User x\n"), []byte("APT::Periodic::Unattended-Upgrade \"1\";\n"))
	f.Fuzz(func(t *testing.T, sshd, apt []byte) {
		if v, ok := sshdSetting(sshd, "PasswordAuthentication"); ok && strings.ContainsAny(v, " \t\n") {
			t.Fatalf("value %q from %q", v, sshd)
		}
		aptSetting(apt, "APT::Periodic::Unattended-Upgrade")
	})
}

func TestCompactionPays(t *testing.T) {
	for _, c := range []struct {
		file, free int64
		want       bool
	}{
		{709 << 20, 708 << 20, true}, // everything deleted (issue 18's figure)
		{200 << 20, 64 << 20, false}, // a third free: bbolt reuses it
		{128 << 20, 64 << 20, true},  // half free, and 64 MiB
		{100 << 20, 63 << 20, false}, // too little to be worth a stop
		{0, 0, false},
	} {
		if got := compactionPays(c.file, c.free); got != c.want {
			t.Errorf("compactionPays(%d, %d) = %v, want %v", c.file, c.free, got, c.want)
		}
	}
}

// TestDoctorCompaction: on a stopped relay whose spool is mostly deleted
// submissions, doctor says compaction would pay, from bbolt's free pages;
// after 'compact' it says it would not.
func TestDoctorCompaction(t *testing.T) {
	f := newFakeHost(t)
	sp, err := store.Open(f.data, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	var ids []string
	for i := 0; i < 80; i++ {
		sub, err := sp.PutSubmission(store.UploadSpec{Desk: "d", Routes: []string{"h"}, Stanzas: []string{"X25519"},
			DeleteAfterAck: time.Hour, KeepUnacked: time.Hour}, chunk)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.ID)
	}
	for _, id := range ids[1:] {
		if _, _, err := sp.Ack(id, "h", nil); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	level := func(want string) {
		t.Helper()
		for _, g := range doctor(f.host(), f.data) {
			if strings.Contains(g.What, "of it free (bbolt's free pages)") {
				if g.Level != want || (want == "warn") != strings.Contains(g.What, "compaction would give that back") {
					t.Errorf("%s %s, want %s", g.Level, g.What, want)
				}
				if want == "warn" && !strings.Contains(g.Fix, "amana-relay compact --data") {
					t.Errorf("the fix does not say how: %s", g.Fix)
				}
				return
			}
		}
		t.Errorf("no compaction finding")
	}
	level("warn")
	if _, _, err := store.Compact(f.data); err != nil {
		t.Fatal(err)
	}
	level("ok")
}

// TestDoctorCompactionRunning: while the relay runs, the free part is
// estimated from the file's size less the data the quota counts, and said
// to be an estimate.
func TestDoctorCompactionRunning(t *testing.T) {
	for _, c := range []struct {
		committed int64
		level     string
	}{{1 << 20, "warn"}, {150 << 20, "ok"}} {
		f := newFakeHost(t)
		sp, err := store.Open(f.data, nil) // holds the lock, as a running relay does
		if err != nil {
			t.Fatal(err)
		}
		// A 200 MiB file (sparse: only its size counts here).
		if err := os.Truncate(filepath.Join(f.data, store.FileName), 200<<20); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(daemon.Status{PID: 4242, Mode: "tor", PoW: true, Committed: c.committed, Quota: 10 << 30})
		f.write(filepath.Join(f.data, daemon.StatusFile), string(b), 0o600)
		found := false
		for _, g := range doctor(f.host(), f.data) {
			if strings.Contains(g.What, "spool file 200.0 MiB, about ") && strings.Contains(g.What, "(file size less the data the quota counts)") {
				found = true
				if g.Level != c.level {
					t.Errorf("committed %d: %s %s, want %s", c.committed, g.Level, g.What, c.level)
				}
			}
		}
		if !found {
			t.Errorf("committed %d: no compaction estimate", c.committed)
		}
		sp.Close()
	}
}
