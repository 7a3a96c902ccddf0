package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFull fills the relay's storage: new submissions get a clear
// "storage full" answer, everything stored stays intact, and intake resumes
// when space comes back. The spool sits on a 24 MiB tmpfs where this
// process may mount one (root, as in CI); elsewhere the relay's own cap on
// its spool file plays the full disk.
func TestDiskFull(t *testing.T) {
	w := setup(t)
	// Stop the shared relay of setup; this test runs its own.
	w.proc.Process.Signal(os.Interrupt)
	w.proc.Wait()

	data := w.path("small/data")
	os.MkdirAll(filepath.Dir(data), 0o700)
	extra := []string{"--max-spool-file", "24MiB"}
	if err := syscall.Mount("tmpfs", filepath.Dir(data), "tmpfs", 0, "size=24m,mode=0700"); err == nil {
		t.Cleanup(func() { syscall.Unmount(filepath.Dir(data), 0) })
		extra = nil
		t.Log("spool on a 24 MiB tmpfs")
	} else {
		t.Logf("cannot mount a tmpfs (%v): the relay caps its spool file at 24 MiB instead", err)
	}
	// A copy of the initialised spool, on the small filesystem.
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", data, "--admin", w.path("admin.card")))
	proc := exec.Command(filepath.Join(bin, "amana-relay"), append([]string{"serve", "--data", data, "--no-tor", "--listen", "127.0.0.1:0", "--quota", "1GiB"}, extra...)...)
	stdout, _ := proc.StdoutPipe()
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { proc.Process.Signal(os.Interrupt); proc.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	w.relay = strings.TrimSpace(strings.TrimPrefix(line, "amana-relay: listening on "))
	must(t, run(t, nil, nil, "amana", "desk", "publish", w.path("classic.json"), "--relay", w.relay, "-i", w.path("admin.key")))

	os.WriteFile(w.path("msg.txt"), []byte("filling\n"), 0o600)
	var stored []string
	full := ""
	for i := 0; i < 20 && full == ""; i++ {
		writeRandom(t, w.path("blob.bin"), 3<<20)
		r := run(t, w.home("s"), nil, "amana", "submit", "--relay", w.relay, "--desk", "classic", "--message-file", w.path("msg.txt"), "--file", w.path("blob.bin"))
		switch {
		case r.code == 0:
			stored = append(stored, receiptID.FindStringSubmatch(r.stdout)[1])
		case strings.Contains(r.stderr, "storage_full"):
			full = r.stderr
		default:
			t.Fatalf("submission %d: exit %d %s", i, r.code, r.stderr)
		}
	}
	if full == "" || len(stored) == 0 {
		t.Fatalf("storage never filled (%d stored)", len(stored))
	}
	if !strings.Contains(full, "try again later") {
		t.Errorf("the full answer does not say what to do: %s", full)
	}
	t.Logf("%d submissions stored before the disk was full", len(stored))
	// Everything stored is intact: both handlers pull and open every one;
	// their acks delete them, which makes room.
	for _, h := range []string{"bob", "dan"} {
		must(t, run(t, w.home(h), nil, "amana", "pull", "--relay", w.relay, "-i", w.path(h+".key")))
		for _, id := range stored {
			must(t, run(t, w.home(h), nil, "amana", "show", id, "-i", w.path(h+".key")))
		}
	}
	// Intake resumes.
	writeRandom(t, w.path("blob.bin"), 3<<20)
	r := run(t, w.home("s"), nil, "amana", "submit", "--relay", w.relay, "--desk", "classic", "--message-file", w.path("msg.txt"), "--file", w.path("blob.bin"))
	if r.code != 0 {
		t.Fatalf("intake did not resume after space came back: %s", r.stderr)
	}
	fmt.Fprintln(os.Stderr, "disk full: stored", len(stored), "then storage_full, then intake resumed")
}
