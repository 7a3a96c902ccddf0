package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"filippo.io/age"
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
	// The backup unit needs no network and writes only two directories:
	// it is held to less.
	backup := filepath.Join(deployDir, "amana-relay-backup.service")
	out, err = exec.Command(sa, "security", "--offline=true", "--no-pager", backup).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m = regexp.MustCompile(`Overall exposure level for amana-relay-backup\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 1.0 {
		t.Errorf("the backup unit's exposure is %.1f, more than 1.0:\n%s", score, out)
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

// releaseLayout lays out what make release puts in an archive: the
// binaries, deploy/ (every unit and install.sh) and docs/ (every document).
func releaseLayout(t *testing.T) string {
	t.Helper()
	rel := t.TempDir()
	for _, d := range []string{"bin", "deploy", "docs"} {
		os.Mkdir(filepath.Join(rel, d), 0o755)
	}
	copyFile(t, filepath.Join(bin, "amana-relay"), filepath.Join(rel, "bin", "amana-relay"), 0o755)
	copyFile(t, filepath.Join(bin, "amana"), filepath.Join(rel, "bin", "amana"), 0o755)
	for _, glob := range []string{"*.service", "*.timer", "install.sh"} {
		fs, _ := filepath.Glob(filepath.Join(deployDir, glob))
		for _, f := range fs {
			copyFile(t, f, filepath.Join(rel, "deploy", filepath.Base(f)), 0o755)
		}
	}
	docs, _ := filepath.Glob("../../docs/*.md")
	for _, f := range docs {
		copyFile(t, f, filepath.Join(rel, "docs", filepath.Base(f)), 0o644)
	}
	return rel
}

// TestReleaseHasDeploy: make release puts every file of deploy/ in the
// archive, as releaseLayout does: install.sh needs them all.
func TestReleaseHasDeploy(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*cp ((?:cmd/amana-relay/deploy/\S+ )+)dist/\$\$d/deploy/`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no 'cp cmd/amana-relay/deploy/… dist/$$d/deploy/' in the release target")
	}
	copied := map[string]bool{}
	for _, g := range strings.Fields(string(m[1])) {
		fs, _ := filepath.Glob(filepath.Join("../..", g))
		for _, f := range fs {
			copied[filepath.Base(f)] = true
		}
	}
	all, _ := os.ReadDir(deployDir)
	for _, f := range all {
		if !copied[f.Name()] {
			t.Errorf("make release leaves deploy/%s out of the archive", f.Name())
		}
	}
}

// installTo runs the release's install.sh with ROOT=root.
func installTo(t *testing.T, rel, root string) string {
	t.Helper()
	cmd := exec.Command("sh", filepath.Join(rel, "deploy", "install.sh"))
	cmd.Env = append(os.Environ(), "ROOT="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	return string(out)
}

// TestInstallScript runs deploy/install.sh from a release layout with ROOT
// set, twice (an install, then an upgrade that keeps the data), and checks
// what it laid out.
func TestInstallScript(t *testing.T) {
	rel := releaseLayout(t)
	root := filepath.Join(t.TempDir(), "root")
	install := func() string { return installTo(t, rel, root) }
	out := install()
	if !strings.Contains(out, "installed amana-relay version") || !strings.Contains(out, "systemctl enable --now amana-relay") ||
		!strings.Contains(out, "systemctl enable --now amana-relay-backup.timer") {
		t.Fatalf("install.sh said:\n%s", out)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"usr/local/bin/amana-relay", 0o755},
		{"usr/local/bin/amana", 0o755},
		{"etc/systemd/system/amana-relay.service", 0o644},
		{"etc/systemd/system/amana-relay-backup.service", 0o644},
		{"etc/systemd/system/amana-relay-backup.timer", 0o644},
		{"usr/local/share/doc/amana-relay/operator.md", 0o644},
		{"etc/amana-relay", 0o755 | os.ModeDir},
		{"var/lib/amana-relay", 0o700 | os.ModeDir},
		{"var/backups/amana-relay", 0o700 | os.ModeDir},
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
	// The units start the binary where install.sh put it, on the data
	// directory it made, and write backups where it made room for them.
	for _, u := range []string{"amana-relay.service", "amana-relay-backup.service"} {
		unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system", u))
		sc := bufio.NewScanner(strings.NewReader(string(unit)))
		for sc.Scan() {
			if exe, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
				for _, p := range regexp.MustCompile(`/(usr/local/bin|var/lib|var/backups)/[a-z-]+`).FindAllString(exe, -1) {
					if _, err := os.Stat(filepath.Join(root, p)); err != nil {
						t.Errorf("%s: ExecStart uses %s, which install.sh did not make", u, p)
					}
				}
			}
			if dir, ok := strings.CutPrefix(sc.Text(), "ReadWritePaths="); ok {
				if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
					t.Errorf("%s: ReadWritePaths=%s, which install.sh did not make (systemd would not start the unit)", u, dir)
				}
			}
		}
	}

	// An upgrade keeps the data, the backups, the operator's settings and
	// their drop-in (operator.md says so).
	data := filepath.Join(root, "var/lib/amana-relay")
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", data, "--admin", adminCard(t)))
	kept := []string{"var/backups/amana-relay/amana-2026-11-25.age", "etc/amana-relay/torrc",
		"etc/amana-relay/backup-recipients", "etc/systemd/system/amana-relay.service.d/override.conf"}
	for _, f := range kept {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte("the operator's\n"), 0o600)
	}
	install()
	if _, err := os.Stat(filepath.Join(data, "spool.db")); err != nil {
		t.Fatalf("the upgrade lost the spool: %v", err)
	}
	for _, f := range kept {
		if b, err := os.ReadFile(filepath.Join(root, f)); err != nil || string(b) != "the operator's\n" {
			t.Errorf("the upgrade lost /%s: %q, %v", f, b, err)
		}
	}
}

// TestInstalledDocLinks: every document the installed guide links to, and
// those they link to in turn, is installed next to it, as are the ones the
// units name in Documentation=.
func TestInstalledDocLinks(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	installTo(t, releaseLayout(t), root)
	docdir := filepath.Join(root, "usr/local/share/doc/amana-relay")
	link := regexp.MustCompile(`\]\(([^)\s#]*)(?:#([^)\s]*))?\)`)
	type anchor struct{ doc, frag string }
	var anchors []anchor
	seen := map[string]bool{}
	todo := []string{"operator.md"}
	units, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/*"))
	for _, u := range units {
		b, _ := os.ReadFile(u)
		for _, m := range regexp.MustCompile(`(?m)^Documentation=file:/usr/local/share/doc/amana-relay/(\S+)$`).FindAllSubmatch(b, -1) {
			todo = append(todo, string(m[1]))
		}
		if !strings.Contains(string(b), "Documentation=") {
			t.Errorf("%s names no Documentation=", filepath.Base(u))
		}
	}
	for len(todo) > 0 {
		doc := todo[0]
		todo = todo[1:]
		if seen[doc] {
			continue
		}
		seen[doc] = true
		b, err := os.ReadFile(filepath.Join(docdir, doc))
		if err != nil {
			t.Errorf("install.sh did not install %s, which the guide leads to: %v", doc, err)
			continue
		}
		for _, m := range link.FindAllSubmatch(b, -1) {
			target := string(m[1])
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if target == "" {
				target = doc
			} else {
				todo = append(todo, filepath.Clean(target))
			}
			if len(m[2]) > 0 {
				anchors = append(anchors, anchor{filepath.Clean(target), string(m[2])})
			}
		}
	}
	// Every #section a link names is a heading of its document, as GitHub
	// makes the ids: lower case, punctuation dropped, spaces as hyphens.
	heading := regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	for _, a := range anchors {
		b, err := os.ReadFile(filepath.Join(docdir, a.doc))
		if err != nil {
			continue // reported above
		}
		found := false
		for _, h := range heading.FindAllSubmatch(b, -1) {
			if slug(string(h[1])) == a.frag {
				found = true
			}
		}
		if !found {
			t.Errorf("a link goes to %s#%s, which has no such heading", a.doc, a.frag)
		}
	}
	// operator.md links at least to these; the test must not pass by
	// finding no link at all.
	for _, want := range []string{"protocol.md", "threat-model.md", "cli.md", "reliability.md"} {
		if !seen[want] {
			t.Errorf("the guide no longer leads to %s (found %v): is the link pattern still right?", want, seen)
		}
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

// slug is the id GitHub gives a Markdown heading.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// dropIn is the drop-in for amana-relay.service that operator.md shows, in
// its "Changing the relay's flags" section.
func dropIn(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/operator.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```ini\n(\\[Service\\]\nExecStart=\n.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("operator.md shows no drop-in that resets ExecStart= (```ini, [Service], ExecStart=)")
	}
	return string(m[1])
}

// TestUnitsVerify checks the units install.sh lays out, and the unit with
// the drop-in operator.md shows, with systemd-analyze verify: every
// directive known, every program there. The drop-in's flags are ones serve
// takes, each flag the guide says it covers among them.
func TestUnitsVerify(t *testing.T) {
	sa := needTool(t, "systemd-analyze", "systemd")
	root := filepath.Join(t.TempDir(), "root")
	installTo(t, releaseLayout(t), root)
	// What the units need from the system besides what install.sh lays
	// out: systemd's own units, and the programs the backup runs.
	os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755)
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying systemd's units: %v\n%s", err, out)
	}
	for _, p := range []string{"/bin/sh", "/usr/bin/find"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		copyFile(t, p, filepath.Join(root, p), 0o755)
	}
	d := dropIn(t)
	os.MkdirAll(filepath.Join(root, "etc/systemd/system/amana-relay.service.d"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/amana-relay.service.d/override.conf"), []byte(d), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--root="+root, "amana-relay.service", "amana-relay-backup.service", "amana-relay-backup.timer").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	var line string
	for _, l := range strings.Split(d, "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok && v != "" {
			line = v
		}
	}
	args := strings.Fields(line)
	if len(args) < 3 || args[0] != "/usr/local/bin/amana-relay" || args[1] != "serve" {
		t.Fatalf("the drop-in's ExecStart is %q", line)
	}
	for _, flag := range []string{"--metrics", "--notify-command", "--torrc", "--require-client-encryption", "--data"} {
		if !slices.Contains(args, flag) {
			t.Errorf("the drop-in in operator.md lacks %s", flag)
		}
	}
	// --help after the flags: serve parses them all first, and refuses an
	// unknown one or a missing value.
	must(t, run(t, nil, nil, "amana-relay", append(args[1:], "--help")...))
}

// TestBackupTimerCommand runs the commands of amana-relay-backup.service, as
// systemd would after unescaping them, on a relay in a temporary directory:
// the backup lands where the unit says, opens with the operator's key, and
// the clean-up deletes only old backups.
func TestBackupTimerCommand(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "amana-relay-backup.service"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, backups, recipients := filepath.Join(dir, "data"), filepath.Join(dir, "backups"), filepath.Join(dir, "backup-recipients")
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", data, "--admin", adminCard(t)))
	os.Mkdir(backups, 0o700)
	op, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "operator.key")
	os.WriteFile(key, []byte(op.String()+"\n"), 0o600)
	os.WriteFile(recipients, []byte(op.Recipient().String()+"\n"), 0o644)
	old := filepath.Join(backups, "amana-2026-01-01.age")
	other := filepath.Join(backups, "notes.txt")
	for _, f := range []string{old, other} {
		os.WriteFile(f, nil, 0o600)
		past := time.Now().Add(-30 * 24 * time.Hour)
		os.Chtimes(f, past, past)
	}
	// systemd's unescaping: $$ and %% stand for $ and %.
	unescape := strings.NewReplacer("$$", "$", "%%", "%",
		"/usr/local/bin/amana-relay", filepath.Join(bin, "amana-relay"),
		"/var/lib/amana-relay", data, "/var/backups/amana-relay", backups, "/etc/amana-relay/backup-recipients", recipients)
	var cmds []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		for _, k := range []string{"ExecStart=", "ExecStartPost="} {
			if v, ok := strings.CutPrefix(sc.Text(), k); ok {
				cmds = append(cmds, unescape.Replace(v))
			}
		}
	}
	if len(cmds) != 2 {
		t.Fatalf("the backup unit has %d commands: %q", len(cmds), cmds)
	}
	for _, c := range cmds {
		// Each is a program and its arguments; the first is sh -c '…'.
		var argv []string
		if rest, ok := strings.CutPrefix(c, "/bin/sh -c '"); ok {
			argv = []string{"/bin/sh", "-c", strings.TrimSuffix(rest, "'")}
		} else {
			argv = strings.Fields(c)
		}
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	today := filepath.Join(backups, "amana-"+time.Now().UTC().Format(time.DateOnly)+".age")
	fi, err := os.Stat(today)
	if err != nil {
		t.Fatalf("no backup %s: %v", today, err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the backup has mode %v", fi.Mode())
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("a backup older than 14 days was kept")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("the clean-up deleted a file that is not a backup")
	}
	must(t, run(t, nil, nil, "amana-relay", "restore", "--data", filepath.Join(dir, "restored"), "--from", today, "-i", key))
}
