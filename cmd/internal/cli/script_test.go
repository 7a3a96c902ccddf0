package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/amana-relay/amana/cmd/internal/relaycli"
)

// TestMain lets the test binary play both programs: testscript runs it as
// "amana" or "amana-relay" from a directory it puts on the scripts' PATH,
// and the program is cli.Main or relaycli.Main, with no binary built.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"amana":       func() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		"amana-relay": func() { os.Exit(relaycli.Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs testdata/script/*.txtar: the messages, hints and exit
// codes of both programs, as docs/cli.md gives them. Besides testscript's
// own commands, the scripts have:
//
//	exitcode N PROG ARGS...       run PROG, which must exit with code N
//	capture VAR stdout|stderr RE [FILE]
//	                              set $VAR to RE's first group in the last
//	                              command's output (and write it to FILE)
//	relay start DATA              serve DATA with --no-tor on 127.0.0.1:0
//	                              in the background; $RELAY is its URL
//	relay stop                    stop it with SIGINT; it must exit 0, and its
//	                              stdout and stderr become the last output
//	relay start DATA URL          the same, listening where the relay at URL did
//	json [-len] stdout|FILE PATH WANT
//	                              the last stdout (or FILE) is one JSON value
//	                              whose member at PATH (dot-separated keys and
//	                              array indexes) is WANT: a string as it is,
//	                              anything else in JSON; with -len, WANT is
//	                              its number of items
//	! json stdout|FILE PATH       there is no member at PATH
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(e *testscript.Env) error {
			// State goes to the work directory; the scripts set
			// AMANA_PASSPHRASE_FILE and AMANA_RELAY_DATA where they test them.
			e.Setenv("AMANA_HOME", filepath.Join(e.WorkDir, "home"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitcode,
			"capture":  cmdCapture,
			"relay":    cmdRelay,
			"json":     cmdJSON,
		},
	})
}

func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil || want == 0 {
		ts.Fatalf("exitcode: %q is not a non-zero exit code (use exec for success)", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		ts.Fatalf("%s exited 0, want %d", args[1], want)
	case !errors.As(err, &ee):
		ts.Fatalf("running %s: %v", args[1], err)
	case ee.ExitCode() != want:
		ts.Fatalf("%s exited %d, want %d", args[1], ee.ExitCode(), want)
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 || len(args) > 4 || (args[1] != "stdout" && args[1] != "stderr") {
		ts.Fatalf("usage: capture VAR stdout|stderr REGEXP [FILE]")
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[1]))
	if len(m) < 2 {
		ts.Fatalf("capture: no match for %q in %s", args[2], args[1])
	}
	ts.Setenv(args[0], m[1])
	if len(args) == 4 {
		ts.Check(os.WriteFile(ts.MkAbs(args[3]), []byte(m[1]+"\n"), 0o600))
	}
}

func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	count := len(args) > 0 && args[0] == "-len"
	if count {
		args = args[1:]
	}
	if len(args) != 3 && !(neg && len(args) == 2) {
		ts.Fatalf("usage: json [-len] stdout|FILE PATH WANT | ! json stdout|FILE PATH")
	}
	src := ts.ReadFile(args[0])
	var v any
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("json: %s is not JSON: %v", args[0], err)
	}
	if dec.More() {
		ts.Fatalf("json: %s holds more than one JSON value", args[0])
	}
	path := args[1]
	found := true
	for _, k := range strings.Split(path, ".") {
		if k == "" {
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			v, found = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			found = err == nil && i >= 0 && i < len(x)
			if found {
				v = x[i]
			}
		default:
			found = false
		}
		if !found {
			break
		}
	}
	if neg {
		if found {
			ts.Fatalf("json: %s has %s", args[0], args[1])
		}
		return
	}
	if !found {
		ts.Fatalf("json: %s has no %s", args[0], args[1])
	}
	var got string
	switch x := v.(type) {
	case string:
		got = x
	default:
		b, _ := json.Marshal(x)
		got = string(b)
	}
	if count {
		switch x := v.(type) {
		case []any:
			got = strconv.Itoa(len(x))
		case map[string]any:
			got = strconv.Itoa(len(x))
		default:
			ts.Fatalf("json: %s in %s is neither an array nor an object", path, args[0])
		}
	}
	if got != args[2] {
		ts.Fatalf("json: %s in %s is %s, want %s", args[1], args[0], got, args[2])
	}
}

// relayProc is a relay that a script started.
type relayProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan error
}

var relays sync.Map // *testscript.TestScript → *relayProc

func cmdRelay(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: relay start DATA [URL] | relay stop")
	}
	switch {
	case args[0] == "start" && (len(args) == 2 || len(args) == 3):
		if _, ok := relays.Load(ts); ok {
			ts.Fatalf("relay: already started")
		}
		listen := "127.0.0.1:0"
		if len(args) == 3 {
			listen = strings.TrimPrefix(args[2], "http://")
		}
		p := startRelay(ts, ts.MkAbs(args[1]), listen)
		relays.Store(ts, p)
		ts.Defer(func() {
			if _, ok := relays.LoadAndDelete(ts); ok {
				p.cmd.Process.Kill()
				<-p.done
			}
		})
	case args[0] == "stop" && len(args) == 1:
		v, ok := relays.LoadAndDelete(ts)
		if !ok {
			ts.Fatalf("relay: not started")
		}
		p := v.(*relayProc)
		ts.Check(p.cmd.Process.Signal(os.Interrupt))
		err := <-p.done
		fmt.Fprint(ts.Stdout(), p.stdout.String())
		fmt.Fprint(ts.Stderr(), p.stderr.String())
		if err != nil {
			ts.Fatalf("relay stop: amana-relay serve: %v\n%s", err, p.stderr.String())
		}
	default:
		ts.Fatalf("usage: relay start DATA [URL] | relay stop")
	}
}

func startRelay(ts *testscript.TestScript, data, listen string) *relayProc {
	bin, err := exec.LookPath("amana-relay") // on PATH from testscript.Main
	ts.Check(err)
	p := &relayProc{done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--no-tor", "--listen", listen, "--data", data)
	p.cmd.Dir = ts.MkAbs(".")
	p.cmd.Env = []string{"PATH=" + ts.Getenv("PATH"), "HOME=" + ts.Getenv("HOME"), "TMPDIR=" + ts.Getenv("TMPDIR")}
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	ts.Check(err)
	ts.Check(p.cmd.Start())
	url := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		p.stdout.WriteString(line)
		url <- strings.TrimSpace(strings.TrimPrefix(line, "amana-relay: listening on "))
		io.Copy(&p.stdout, r)
		p.done <- p.cmd.Wait()
	}()
	select {
	case u := <-url:
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			ts.Fatalf("relay start: no listening line on stdout (got %q); stderr:\n%s", u, p.stderr.String())
		}
		ts.Setenv("RELAY", u)
	case <-time.After(time.Minute): // a hang, not a timing check
		p.cmd.Process.Kill()
		ts.Fatalf("relay start: no listening line within a minute; stderr:\n%s", p.stderr.String())
	}
	return p
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
