package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// TestBackupRestore backs up a running relay through its control socket,
// restores the backup into a new directory, and serves from it: the same
// onion keys and addresses, and the submissions that were waiting.
func TestBackupRestore(t *testing.T) {
	w := setup(t)
	data := w.path("data")
	// The onion files a relay on Tor keeps (this one runs without Tor).
	os.MkdirAll(filepath.Join(data, "onion"), 0o700)
	onionFiles := map[string]string{
		"onion/intake.key": "ED25519-V3:intake-key-bytes", "onion/intake.hostname": "intakeintakeintake.onion\n",
		"onion/handler.key": "ED25519-V3:handler-key-bytes", "onion/handler.hostname": "handlerhandler.onion\n",
	}
	for name, content := range onionFiles {
		os.WriteFile(filepath.Join(data, name), []byte(content), 0o600)
	}
	os.WriteFile(w.path("msg.txt"), []byte("a report kept across a restore\n"), 0o600)
	id := submit(t, w, "classic", "")

	op, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(w.path("operator.key"), []byte(op.String()+"\n"), 0o600)
	backup := w.path("relay.backup")
	r := must(t, run(t, nil, nil, "amana-relay", "backup", "--data", data, "--recipient", op.Recipient().String(), "--out", backup))
	if !strings.Contains(r.stderr, "and 4 onion file(s)") {
		t.Fatalf("backup said: %s", r.stderr)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	raw, _ := os.ReadFile(backup)
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) || bytes.Contains(raw, []byte("intake-key-bytes")) {
		t.Fatal("the backup is not age-encrypted")
	}
	if !strings.Contains(w.relayErr.String(), "backup: a copy of the spool was taken") {
		t.Fatalf("the running relay did not make the copy:\n%s", w.relayErr.String())
	}
	// A second backup to the same file is refused.
	if r := run(t, nil, nil, "amana-relay", "backup", "--data", data, "--recipient", op.Recipient().String(), "--out", backup); r.code == 0 {
		t.Fatal("backup overwrote an existing file")
	}

	// Stop the relay; bring it back elsewhere.
	w.proc.Process.Signal(os.Interrupt)
	w.proc.Wait()
	restored := w.path("restored")
	r = must(t, run(t, nil, nil, "amana-relay", "restore", "--data", restored, "--from", backup, "-i", w.path("operator.key")))
	if !strings.Contains(r.stderr, "1 submission(s)") || !strings.Contains(r.stderr, "http://intakeintakeintake.onion") {
		t.Fatalf("restore said: %s", r.stderr)
	}
	for name, content := range onionFiles {
		got, err := os.ReadFile(filepath.Join(restored, name))
		if err != nil || string(got) != content {
			t.Errorf("restored %s: %q, %v", name, got, err)
		}
		if fi, _ := os.Stat(filepath.Join(restored, name)); fi == nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s has mode %v", name, fi.Mode())
		}
	}
	if fi, _ := os.Stat(restored); fi.Mode().Perm() != 0o700 {
		t.Errorf("restored directory has mode %v", fi.Mode())
	}

	// The restored relay serves the submission.
	proc := exec.Command(filepath.Join(bin, "amana-relay"), "serve", "--data", restored, "--no-tor", "--listen", "127.0.0.1:0")
	stdout, _ := proc.StdoutPipe()
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { proc.Process.Signal(os.Interrupt); proc.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	url := strings.TrimSpace(strings.TrimPrefix(line, "amana-relay: listening on "))
	must(t, run(t, w.home("bob"), nil, "amana", "pull", "--relay", url, "-i", w.path("bob.key")))
	if r := must(t, run(t, w.home("bob"), nil, "amana", "show", id, "-i", w.path("bob.key"))); !strings.Contains(r.stdout, "kept across a restore") {
		t.Fatalf("the restored submission: %s", r.stdout)
	}

	// Refusals: a directory in use, the wrong key, a damaged backup. None
	// leaves anything behind.
	if r := run(t, nil, nil, "amana-relay", "restore", "--data", restored, "--from", backup, "-i", w.path("operator.key")); r.code != 2 || !strings.Contains(r.stderr, "is not empty") {
		t.Errorf("restore into a used directory: exit %d %s", r.code, r.stderr)
	}
	other, _ := age.GenerateX25519Identity()
	os.WriteFile(w.path("other.key"), []byte(other.String()+"\n"), 0o600)
	if r := run(t, nil, nil, "amana-relay", "restore", "--data", w.path("r2"), "--from", backup, "-i", w.path("other.key")); r.code == 0 || !strings.Contains(r.stderr, "cannot decrypt the backup") {
		t.Errorf("restore with another key: exit %d %s", r.code, r.stderr)
	}
	damaged := append([]byte(nil), raw...)
	damaged[len(damaged)-100] ^= 1
	os.WriteFile(w.path("damaged.backup"), damaged, 0o600)
	if r := run(t, nil, nil, "amana-relay", "restore", "--data", w.path("r3"), "--from", w.path("damaged.backup"), "-i", w.path("operator.key")); r.code == 0 {
		t.Errorf("a damaged backup was restored: %s", r.stderr)
	}
	for _, d := range []string{"r2", "r3"} {
		if _, err := os.Stat(w.path(d)); err == nil {
			t.Errorf("a failed restore left %s behind", d)
		}
	}
}
