package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const deployDir = "../../cmd/amana-relay/deploy"

// needTool finds a program on PATH; where it is missing, the test fails if
// CI is set and is skipped, loudly, otherwise.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed and CI is set: .ci/run must apt-get install %s", name, pkg)
	}
	fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: %s (Debian package %s) is not installed ***\n", t.Name(), name, pkg)
	t.Skipf("%s not installed", name)
	return ""
}

// TestUnitSecurity scores the systemd unit with systemd-analyze and holds
// it to "OK" (exposure 2.0 or less of 10), and checks the settings the
// relay relies on are there.
func TestUnitSecurity(t *testing.T) {
	sa := needTool(t, "systemd-analyze", "systemd")
	unit := filepath.Join(deployDir, "amana-relay.service")
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for amana-relay\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	fmt.Fprintf(os.Stderr, "unit: systemd-analyze security exposure %.1f\n", score)
	if score > 2.0 {
		t.Errorf("the unit's exposure is %.1f, more than 2.0:\n%s", score, out)
	}
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"User=amana-relay", "StateDirectory=amana-relay", "StateDirectoryMode=0700", "UMask=0077", "LimitCORE=0",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "MemoryDenyWriteExecute=yes",
		"SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet=\n",
		"ExecStart=/usr/local/bin/amana-relay serve --data /var/lib/amana-relay\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
}

// TestInstallScript runs deploy/install.sh from a release layout with ROOT
// set, twice (an install, then an upgrade that keeps the data), and checks
// what it laid out.
func TestInstallScript(t *testing.T) {
	rel := t.TempDir()
	for _, d := range []string{"bin", "deploy", "docs"} {
		os.Mkdir(filepath.Join(rel, d), 0o755)
	}
	copyFile(t, filepath.Join(bin, "amana-relay"), filepath.Join(rel, "bin", "amana-relay"), 0o755)
	copyFile(t, filepath.Join(bin, "amana"), filepath.Join(rel, "bin", "amana"), 0o755)
	for _, f := range []string{"amana-relay.service", "install.sh"} {
		copyFile(t, filepath.Join(deployDir, f), filepath.Join(rel, "deploy", f), 0o755)
	}
	copyFile(t, "../../docs/operator.md", filepath.Join(rel, "docs", "operator.md"), 0o644)

	root := filepath.Join(t.TempDir(), "root")
	install := func() string {
		cmd := exec.Command("sh", filepath.Join(rel, "deploy", "install.sh"))
		cmd.Env = append(os.Environ(), "ROOT="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	out := install()
	if !strings.Contains(out, "installed amana-relay version") || !strings.Contains(out, "systemctl enable --now amana-relay") {
		t.Fatalf("install.sh said:\n%s", out)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"usr/local/bin/amana-relay", 0o755},
		{"usr/local/bin/amana", 0o755},
		{"etc/systemd/system/amana-relay.service", 0o644},
		{"usr/local/share/doc/amana-relay/operator.md", 0o644},
		{"var/lib/amana-relay", 0o700 | os.ModeDir},
	} {
		fi, err := os.Stat(filepath.Join(root, c.path))
		if err != nil {
			t.Errorf("install.sh did not lay out /%s: %v", c.path, err)
			continue
		}
		if fi.Mode()&(os.ModeDir|os.ModePerm) != c.mode {
			t.Errorf("/%s has mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
	// The unit starts the binary where install.sh put it, on the data
	// directory it made.
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/amana-relay.service"))
	sc := bufio.NewScanner(strings.NewReader(string(unit)))
	for sc.Scan() {
		if exe, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			f := strings.Fields(exe)
			if _, err := os.Stat(filepath.Join(root, f[0])); err != nil {
				t.Errorf("ExecStart runs %s, which install.sh did not install", f[0])
			}
			if _, err := os.Stat(filepath.Join(root, f[len(f)-1])); err != nil {
				t.Errorf("ExecStart serves %s, which install.sh did not make", f[len(f)-1])
			}
		}
	}

	// An upgrade keeps the data.
	data := filepath.Join(root, "var/lib/amana-relay")
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", data, "--admin", adminCard(t)))
	install()
	if _, err := os.Stat(filepath.Join(data, "spool.db")); err != nil {
		t.Fatalf("the upgrade lost the spool: %v", err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// adminCard makes an admin key and card in a temporary directory and
// returns the card's path.
func adminCard(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	key, card := filepath.Join(dir, "admin.key"), filepath.Join(dir, "admin.card")
	must(t, run(t, nil, nil, "amana", "keygen", "--name", "admin", "--classic", "--no-passphrase", "-o", key))
	r := must(t, run(t, nil, nil, "amana", "card", "-i", key))
	os.WriteFile(card, []byte(r.stdout), 0o600)
	return card
}

// TestMetricsEndpoint starts a relay with --metrics and scrapes it.
func TestMetricsEndpoint(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", data, "--admin", adminCard(t)))
	if r := run(t, nil, nil, "amana-relay", "serve", "--data", data, "--no-tor", "--listen", "127.0.0.1:0", "--metrics", "0.0.0.0:9464"); r.code != 2 || !strings.Contains(r.stderr, "loopback only") {
		t.Fatalf("metrics on a public address: exit %d %s", r.code, r.stderr)
	}
	cmd := exec.Command(filepath.Join(bin, "amana-relay"), "serve", "--data", data, "--no-tor", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	var url string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "amana-relay: metrics on "); ok {
			url = u
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %q: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"amana_up 1", "amana_submissions_waiting 0", "amana_spool_quota_bytes 10737418240"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	resp, err = http.Get(strings.TrimSuffix(url, "/metrics") + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v %v", resp, err)
	}
	resp.Body.Close()
}
