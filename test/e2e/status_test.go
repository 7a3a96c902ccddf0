package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestStatusLive: right after a publish and a submission, 'amana-relay
// status' on the running relay shows them, since it asks the relay through
// its control socket rather than waiting for the status file; without the
// socket it says its counts come from that file.
func TestStatusLive(t *testing.T) {
	w := setup(t)
	data := w.path("data")
	os.WriteFile(w.path("msg.txt"), []byte("what happened\n"), 0o600)
	submit(t, w, "classic", "")
	r := must(t, run(t, nil, nil, "amana-relay", "status", "--data", data))
	for _, want := range []string{
		"desks:       2\n",
		"submissions: 1 waiting, 0 upload(s) unfinished\n",
		"counts:      live, from the running relay\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^spool:       \d+\.\d KiB of 10\.0 GiB quota used`).MatchString(r.stdout) || strings.Contains(r.stdout, "spool:       0 B") {
		t.Errorf("status shows no spool use:\n%s", r.stdout)
	}

	// Without the control socket, the counts are the status file's, and
	// status says so.
	if err := os.Remove(filepath.Join(data, "control.sock")); err != nil {
		t.Fatal(err)
	}
	r = must(t, run(t, nil, nil, "amana-relay", "status", "--data", data))
	if !strings.Contains(r.stdout, "counts:      from the status file, up to 5 seconds old (the relay's control socket did not answer") {
		t.Errorf("status without the socket:\n%s", r.stdout)
	}
}
