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
// "storage full" answer, everything stored stays intact, every
// acknowledgement succeeds on the full disk (the disk reserve, 8 MiB here,
// is left to them), and intake resumes when space comes back. The spool
// sits on a 64 MiB tmpfs where this process may mount one (root, as in
// CI, where failing to mount fails the test); elsewhere the relay's own
// cap on its spool file plays the full disk.
func TestDiskFull(t *testing.T) {
	w := setup(t)
	// Stop the shared relay of setup; this test runs its own.
	w.proc.Process.Signal(os.Interrupt)
	w.proc.Wait()

	data := w.path("small/data")
	os.MkdirAll(filepath.Dir(data), 0o700)
	const reserve = 8 << 20
	extra := []string{"--max-spool-file", "80MiB"}
	tmpfs := false
	if err := syscall.Mount("tmpfs", filepath.Dir(data), "tmpfs", 0, "size=64m,mode=0700"); err == nil {
		t.Cleanup(func() { syscall.Unmount(filepath.Dir(data), 0) })
		extra = nil
		tmpfs = true
		t.Log("spool on a 64 MiB tmpfs")
	} else if os.Getenv("CI") != "" {
		t.Fatalf("cannot mount a tmpfs in CI: %v", err)
	} else {
		fmt.Fprintf(os.Stderr, "SKIPPED PART of TestDiskFull: cannot mount a tmpfs (%v): the relay caps its spool file at 80 MiB instead of filling a real disk\n", err)
	}
	extra = append(extra, "--disk-reserve", "8MiB")
	freeSpace := func() int64 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Dir(data), &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bavail) * int64(st.Bsize)
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
	for i := 0; i < 40 && full == ""; i++ {
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
	if tmpfs {
		if free := freeSpace(); free < reserve/2 {
			t.Fatalf("the full disk has %d bytes free: ingest ate the %d-byte reserve", free, reserve)
		}
	}
	// Everything stored is intact: both handlers pull and open every one;
	// their acks (POST /api/v1/acks, on the full disk) all succeed and
	// delete them, which makes room.
	for _, h := range []string{"bob", "dan"} {
		r := run(t, w.home(h), nil, "amana", "pull", "--relay", w.relay, "-i", w.path(h+".key"))
		if r.code != 0 || strings.Contains(r.stderr, "storage") || strings.Contains(r.stderr, "problem") {
			t.Fatalf("%s's pull and acknowledgements on the full disk: exit %d %s", h, r.code, r.stderr)
		}
		for _, id := range stored {
			must(t, run(t, w.home(h), nil, "amana", "show", id, "-i", w.path(h+".key")))
		}
	}
	// A second pull finds nothing: every acknowledgement was recorded.
	r := run(t, w.home("bob"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("bob.key"))
	if r.code != 0 || !strings.Contains(r.stderr, "pulled 0 new") {
		t.Fatalf("a second pull after the acknowledgements: exit %d %s", r.code, r.stderr)
	}
	if tmpfs {
		if free := freeSpace(); free < reserve/2 {
			t.Fatalf("after the acknowledgements the disk has %d bytes free: the reserve is not back", free)
		}
	}
	// Intake resumes.
	writeRandom(t, w.path("blob.bin"), 3<<20)
	r = run(t, w.home("s"), nil, "amana", "submit", "--relay", w.relay, "--desk", "classic", "--message-file", w.path("msg.txt"), "--file", w.path("blob.bin"))
	if r.code != 0 {
		t.Fatalf("intake did not resume after space came back: %s", r.stderr)
	}
	fmt.Fprintln(os.Stderr, "disk full: stored", len(stored), "then storage_full; all", 2*len(stored), "acknowledgements succeeded; intake resumed")
}
