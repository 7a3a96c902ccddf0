package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amana-relay/amana/test/internal/relayproc"
)

// TestMakeRunInterrupt: 'make run' (and scripts/demo/run.sh under it) stops
// on Ctrl-C without an error: the terminal's SIGINT goes to the whole
// process group, as here; the relay shuts down, the script exits 0, and make
// reports neither "Error" nor "Interrupt". The built binaries stand in for
// make's build step (-o build), which would rebuild them.
func TestMakeRunInterrupt(t *testing.T) {
	makeBin := needTool(t, "make", "make")
	// bash and make read these, not this process: look at them, so that
	// go test runs this again when they change (relayproc.WatchSources).
	for _, f := range []string{"../../scripts/demo/run.sh", "../../Makefile"} {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		argv func(data, port string) []string
	}{
		{"run.sh", func(data, port string) []string { return []string{"bash", "scripts/demo/run.sh"} }},
		{"make run", func(data, port string) []string {
			return []string{makeBin, "--no-print-directory", "-o", "build", "run", "BIN=" + bin, "DATA=" + data, "PORT=" + port}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "demo-data")
			port := freePort(t)
			argv := tc.argv(data, port)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Dir = "../.."
			cmd.Env = append(os.Environ(), "BIN="+bin, "DATA="+data, "PORT="+port)
			out := &relayproc.TailBuffer{Max: 1 << 20}
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pgid := cmd.Process.Pid
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				syscall.Kill(-pgid, syscall.SIGKILL)
				<-done
			}()

			// Ready when the relay answers and the script has published the
			// desk and printed what to try.
			url := "http://127.0.0.1:" + port + "/api/v1/health"
			deadline := time.Now().Add(20 * time.Second)
			for {
				if strings.Contains(out.String(), "Press Ctrl-C") {
					if resp, err := http.Get(url); err == nil {
						resp.Body.Close()
						break
					}
				}
				select {
				case err := <-done:
					done <- err
					t.Fatalf("exited before it was ready: %v\n%s", err, out.String())
				case <-time.After(50 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("not ready after 20 s:\n%s", out.String())
				}
			}

			syscall.Kill(-pgid, syscall.SIGINT)
			var err error
			select {
			case err = <-done:
				done <- err
			case <-time.After(20 * time.Second):
				t.Fatalf("still running 20 s after SIGINT:\n%s", out.String())
			}
			text := out.String()
			var ee *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee) && tc.name == "make run" && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT:
				// make ends itself with the SIGINT it got, once its recipe
				// has ended, as a shell expects; it prints nothing for it.
			default:
				t.Errorf("exit: %v, want 0\n%s", err, text)
			}
			// make's "make: *** [Makefile:19: run] Error 1" or "... Interrupt"
			// (the temporary paths hold the test's name, so match make's
			// words, not any "Interrupt").
			for _, bad := range []string{`\*\*\*`, `\bError \d+`, `\] Interrupt`, `(?i)\berror:`} {
				if regexp.MustCompile(bad).MatchString(text) {
					t.Errorf("output matches %s:\n%s", bad, text)
				}
			}
			if !strings.Contains(text, "amana-relay: shutting down") || !strings.Contains(text, "stopped the relay") {
				t.Errorf("the relay did not shut down cleanly:\n%s", text)
			}
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
				t.Errorf("the relay still answers on %s after the interrupt", url)
			}
		})
	}
}

// freePort returns a loopback port nothing listened on a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
