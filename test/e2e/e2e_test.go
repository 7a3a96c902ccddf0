package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/test/internal/relayproc"
)

var bin string // directory with amana, amana-relay and age

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "amana-e2e-bin")
	if err != nil {
		panic(err)
	}
	for _, pkg := range []string{"../../cmd/amana", "../../cmd/amana-relay", "filippo.io/age/cmd/age"} {
		out, err := exec.Command("go", "build", "-o", dir+"/", pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	bin = dir
	code := m.Run()
	stopTorNetwork()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs one of the built programs with extra environment variables.
func run(t *testing.T, env []string, stdin io.Reader, prog string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, prog), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out.String(), errb.String(), 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", prog, args, err)
	}
	return r
}

func must(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

// world is a relay with two desks (one post-quantum, one classic), their
// admin and handlers, each person with their own --home.
type world struct {
	dir      string
	relay    string
	proc     *exec.Cmd
	relayErr *relayproc.TailBuffer // safe to read while the relay writes
	// env is added to the environment of the relay and of every command
	// run with home: a test's own TMPDIR, set without t.Setenv so that
	// the test can run in parallel with others.
	env []string
}

func (w *world) path(p string) string { return filepath.Join(w.dir, p) }

func (w *world) home(name string) []string {
	return append([]string{"AMANA_HOME=" + w.path("home-"+name), "AMANA_PASSPHRASE_FILE=" + w.path("pass")}, w.env...)
}

func setup(t *testing.T) *world {
	t.Helper()
	return setupEnv(t, nil)
}

// setupEnv is setup with env added to the environment of the relay and of
// the commands run with w.home (world.env).
func setupEnv(t *testing.T, env []string) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), relayErr: &relayproc.TailBuffer{Max: 1 << 20}, env: env}
	os.WriteFile(w.path("pass"), []byte("a passphrase for the tests\n"), 0o600)
	must(t, run(t, nil, nil, "amana", "keygen", "-o", w.path("admin.key"), "--name", "admin", "--no-passphrase"))
	must(t, run(t, nil, nil, "amana", "keygen", "-o", w.path("alice.key"), "--name", "alice", "--no-passphrase"))
	must(t, run(t, w.home("carol"), nil, "amana", "keygen", "-o", w.path("carol.key"), "--name", "carol"))
	must(t, run(t, nil, nil, "amana", "keygen", "-o", w.path("bob.key"), "--name", "bob", "--classic", "--no-passphrase"))
	must(t, run(t, nil, nil, "amana", "keygen", "-o", w.path("dan.key"), "--name", "dan", "--classic", "--no-passphrase"))
	for _, n := range []string{"admin", "alice", "carol", "bob", "dan"} {
		r := must(t, run(t, w.home(n), nil, "amana", "card", "-i", w.path(n+".key")))
		os.WriteFile(w.path(n+".card"), []byte(r.stdout), 0o644)
	}
	data := w.path("data")
	must(t, run(t, nil, nil, "amana-relay", "init", "--data", data, "--admin", w.path("admin.card")))
	w.proc = exec.Command(filepath.Join(bin, "amana-relay"), "serve", "--data", data, "--no-tor", "--listen", "127.0.0.1:0")
	w.proc.Env = append(os.Environ(), env...)
	stdout, _ := w.proc.StdoutPipe()
	w.proc.Stderr = w.relayErr
	if err := w.proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.proc.Process.Signal(os.Interrupt)
		w.proc.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("relay did not start: %v\n%s", err, w.relayErr.String())
	}
	w.relay = strings.TrimSpace(strings.TrimPrefix(line, "amana-relay: listening on "))
	must(t, run(t, nil, nil, "amana", "desk", "create", "--id", "pq", "--title", "Helpdesk",
		"--handler", w.path("alice.card"), "--handler", w.path("carol.card"),
		"--category", "incident=alice,carol", "--category", "sea=carol", "--serial", "10",
		"-i", w.path("admin.key"), "-o", w.path("pq.json")))
	must(t, run(t, nil, nil, "amana", "desk", "create", "--id", "classic", "--title", "Classic desk",
		"--handler", w.path("bob.card"), "--handler", w.path("dan.card"), "--serial", "1",
		"-i", w.path("admin.key"), "-o", w.path("classic.json")))
	for _, d := range []string{"pq", "classic"} {
		must(t, run(t, nil, nil, "amana", "desk", "publish", w.path(d+".json"), "--relay", w.relay, "-i", w.path("admin.key")))
	}
	return w
}

func writeRandom(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

var receiptID = regexp.MustCompile(`id:\s+([0-9a-f]{32})`)

func submit(t *testing.T, w *world, desk, category string, files ...string) string {
	t.Helper()
	args := []string{"submit", "--relay", w.relay, "--desk", desk, "--message-file", w.path("msg.txt")}
	if category != "" {
		args = append(args, "--category", category)
	}
	for _, f := range files {
		args = append(args, "--file", f)
	}
	r := must(t, run(t, w.home("submitter"), nil, "amana", args...))
	m := receiptID.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no receipt in %q", r.stdout)
	}
	return m[1]
}

func TestEndToEnd(t *testing.T) {
	w := setup(t)
	const marker = "MARKER-7f3e9a-report-text"
	os.WriteFile(w.path("msg.txt"), []byte("ما حدث: تهديدات عبر الهاتف\nWhat happened: threats by phone. "+marker+"\n"), 0o600)
	big := writeRandom(t, w.path("recording.ogg"), 5<<20+123) // large enough for the resumable upload
	small := writeRandom(t, w.path("صورة.jpg"), 1000)
	id := submit(t, w, "pq", "incident", w.path("recording.ogg"), w.path("صورة.jpg"))

	// The relay holds only ciphertext: the marker is nowhere in its data.
	assertNotInDir(t, w.path("data"), marker)

	// Both handlers of "incident" pull it; carol's key is passphrase-protected.
	for _, h := range []string{"alice", "carol"} {
		r := must(t, run(t, w.home(h), nil, "amana", "pull", "--relay", w.relay, "-i", w.path(h+".key")))
		if !strings.Contains(r.stderr, "pulled 1 new case") {
			t.Fatalf("%s pull: %s", h, r.stderr)
		}
	}
	var list []map[string]any
	r := must(t, run(t, w.home("alice"), nil, "amana", "list", "--json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("list: %v %s", err, r.stdout)
	}
	// Every handler it went to acknowledged it, so the relay deleted it.
	time.Sleep(100 * time.Millisecond)
	r = must(t, run(t, w.home("alice"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("alice.key")))
	if !strings.Contains(r.stderr, "pulled 0 new case") {
		t.Fatalf("second pull: %s", r.stderr)
	}

	r = must(t, run(t, w.home("alice"), nil, "amana", "show", id[:8], "-i", w.path("alice.key")))
	for _, want := range []string{"تهديدات", marker, "recording.ogg", "صورة.jpg", "SHA-256 computed when opened", "category:  incident", "the submitter's own device"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	out := w.path("export")
	must(t, run(t, w.home("alice"), nil, "amana", "export", id, "--out", out, "-i", w.path("alice.key")))
	for name, want := range map[string][]byte{"recording.ogg": big, "صورة.jpg": small} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("exported %s differs: %v", name, err)
		}
		if fi, _ := os.Stat(filepath.Join(out, name)); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o", name, fi.Mode().Perm())
		}
	}
	// Export never overwrites.
	r = run(t, w.home("alice"), nil, "amana", "export", id, "--out", out, "-i", w.path("alice.key"))
	if r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second export: exit %d %s", r.code, r.stderr)
	}

	// Interop: the reference age CLI at go.mod's version and the system tar
	// open the case as pulled, without amana.
	bundle := filepath.Join(w.path("home-alice"), "cases", id, "submission.age")
	tarDir := w.path("untar")
	os.Mkdir(tarDir, 0o700)
	ageTar(t, filepath.Join(bin, "age"), w.path("alice.key"), bundle, tarDir)
	got, _ := os.ReadFile(filepath.Join(tarDir, "files", "001-recording.ogg"))
	if !bytes.Equal(got, big) {
		t.Fatal("age | tar: attachment differs")
	}
	rep, _ := os.ReadFile(filepath.Join(tarDir, "report.json"))
	if !bytes.Contains(rep, []byte(`"sealed_by":"client"`)) || !bytes.Contains(rep, []byte("تهديدات")) {
		t.Fatalf("age | tar: report.json %s", rep)
	}
	// carol's passphrase-protected identity file is one the age CLI reads
	// too: it asks for the passphrase on the terminal, given here through
	// script(1)'s pseudo-terminal.
	if _, err := exec.LookPath("script"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("script(1) is missing and CI is set")
		}
		fmt.Fprintln(os.Stderr, "\n*** SKIPPED: age CLI with a passphrase-protected identity: script(1) is not installed ***")
	} else {
		out := w.path("carol.tar")
		cmd := exec.Command("script", "-qec", fmt.Sprintf("%s -d -i %s -o %s %s", filepath.Join(bin, "age"), w.path("carol.key"), out,
			filepath.Join(w.path("home-carol"), "cases", id, "submission.age")), "/dev/null")
		cmd.Stdin = strings.NewReader("a passphrase for the tests\n")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("age with carol's protected key: %v\n%s", err, b)
		}
		if fi, err := os.Stat(out); err != nil || fi.Size() < int64(len(big)) {
			t.Fatalf("age with carol's protected key wrote nothing: %v", err)
		}
	}

	// The relay logged nothing about the submission or the people involved.
	for _, secret := range []string{marker, id, "recording.ogg", "alice", "carol"} {
		if strings.Contains(w.relayErr.String(), secret) {
			t.Errorf("relay log mentions %q:\n%s", secret, w.relayErr.String())
		}
	}
}

func assertNotInDir(t *testing.T, dir, marker string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s contains the plaintext marker", p)
		}
		return nil
	})
}

// ageTar decrypts bundle with the age CLI at agePath and extracts it with
// the system tar into dir.
func ageTar(t *testing.T, agePath, key, bundle, dir string) {
	t.Helper()
	dec := exec.Command(agePath, "-d", "-i", key, bundle)
	tr := exec.Command("tar", "-xi", "-C", dir)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	dec.Stdout, tr.Stdin = pw, pr
	var e1, e2 bytes.Buffer
	dec.Stderr, tr.Stderr = &e1, &e2
	if err := dec.Start(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	// Like a shell pipeline: only the two programs hold the pipe.
	pr.Close()
	pw.Close()
	if err := tr.Wait(); err != nil {
		t.Fatalf("tar -x: %v %s", err, e2.String())
	}
	if err := dec.Wait(); err != nil {
		t.Fatalf("%s -d: %v %s", agePath, err, e1.String())
	}
}

func TestDebianAgeClassicInterop(t *testing.T) {
	agePath, err := exec.LookPath("age")
	if err != nil || filepath.Dir(agePath) == bin {
		if os.Getenv("CI") != "" {
			t.Fatal("the system age CLI is not installed and CI is set: .ci/run must apt-get install age")
		}
		fmt.Fprintln(os.Stderr, "\n*** SKIPPED TestDebianAgeClassicInterop: the system age CLI (Debian package age) is not installed ***")
		t.Skip("system age not installed")
	}
	w := setup(t)
	os.WriteFile(w.path("msg.txt"), []byte("classic desk report\n"), 0o600)
	file := writeRandom(t, w.path("doc.pdf"), 200<<10)
	id := submit(t, w, "classic", "", w.path("doc.pdf"))
	must(t, run(t, w.home("bob"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("bob.key")))
	dir := w.path("untar")
	os.Mkdir(dir, 0o700)
	ageTar(t, agePath, w.path("bob.key"), filepath.Join(w.path("home-bob"), "cases", id, "submission.age"), dir)
	got, _ := os.ReadFile(filepath.Join(dir, "files", "001-doc.pdf"))
	if !bytes.Equal(got, file) {
		t.Fatal("attachment differs")
	}
}

func TestDamagedCaseLeavesOthersOpen(t *testing.T) {
	w := setup(t)
	os.WriteFile(w.path("msg.txt"), []byte("one\n"), 0o600)
	first := submit(t, w, "classic", "")
	second := submit(t, w, "classic", "")
	must(t, run(t, w.home("bob"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("bob.key")))
	path := filepath.Join(w.path("home-bob"), "cases", first, "submission.age")
	b, _ := os.ReadFile(path)
	b[len(b)-30] ^= 0x40
	os.WriteFile(path, b, 0o600)
	r := run(t, w.home("bob"), nil, "amana", "show", first, "-i", w.path("bob.key"))
	want := fmt.Sprintf("amana: case %s is damaged", first[:12])
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "hint: the other cases are unaffected") {
		t.Fatalf("damaged case: exit %d, stderr %q", r.code, r.stderr)
	}
	must(t, run(t, w.home("bob"), nil, "amana", "show", second, "-i", w.path("bob.key")))
}

func TestUserErrors(t *testing.T) {
	w := setup(t)
	os.WriteFile(w.path("msg.txt"), []byte("x\n"), 0o600)
	wrongFP := "00000 00000 00000 00000 00000 00000"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"wrong desk fingerprint", w.home("s1"), []string{"submit", "--relay", w.relay, "--desk", "pq", "--message-file", w.path("msg.txt"), "--desk-fingerprint", wrongFP},
			3, "desk fingerprint mismatch"},
		{"unknown category", w.home("s2"), []string{"submit", "--relay", w.relay, "--desk", "pq", "--category", "fraud", "--message-file", w.path("msg.txt")},
			2, `has no category "fraud"`},
		{"unknown desk", w.home("s3"), []string{"submit", "--relay", w.relay, "--desk", "nosuch", "--message-file", w.path("msg.txt")},
			5, "unknown_desk"},
		{"relay down", w.home("s4"), []string{"submit", "--relay", "http://127.0.0.1:1", "--desk", "pq", "--message-file", w.path("msg.txt")},
			4, "cannot reach the relay"},
		{"missing flag", nil, []string{"submit", "--relay", w.relay}, 2, "required flag"},
		{"no such case", w.home("alice"), []string{"show", "ffff", "-i", w.path("alice.key")}, 2, `no case "ffff"`},
		{"wrong passphrase", []string{"AMANA_HOME=" + w.path("home-carol"), "AMANA_PASSPHRASE_FILE=" + w.path("msg.txt")},
			[]string{"pull", "--relay", w.relay, "-i", w.path("carol.key")}, 6, "incorrect passphrase"},
		{"publish by a handler", w.home("bob"), []string{"desk", "publish", w.path("pq.json"), "--relay", w.relay, "-i", w.path("bob.key")},
			5, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, nil, "amana", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "hint: ") {
				t.Fatalf("exit %d (want %d), stderr:\n%s", r.code, tc.code, r.stderr)
			}
		})
	}
	// A second relay on the same data directory says so at once.
	start := time.Now()
	r := run(t, nil, nil, "amana-relay", "serve", "--data", w.path("data"), "--no-tor", "--listen", "127.0.0.1:0")
	if r.code != 8 || !strings.Contains(r.stderr, "in use") || time.Since(start) > 10*time.Second {
		t.Fatalf("second relay: exit %d after %v: %s", r.code, time.Since(start), r.stderr)
	}
	// A desk key that changes after first use is refused loudly.
	must(t, run(t, w.home("tofu"), nil, "amana", "submit", "--relay", w.relay, "--desk", "pq", "--message-file", w.path("msg.txt")))
	knownPath := filepath.Join(w.path("home-tofu"), "known_desks.json")
	known, _ := os.ReadFile(knownPath)
	os.WriteFile(knownPath, regexp.MustCompile(`"key": "[^"]+"`).ReplaceAll(known, []byte(`"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`)), 0o600)
	r = run(t, w.home("tofu"), nil, "amana", "submit", "--relay", w.relay, "--desk", "pq", "--message-file", w.path("msg.txt"))
	if r.code != 3 || !strings.Contains(r.stderr, "THE DESK'S KEY HAS CHANGED") {
		t.Fatalf("changed key: exit %d %s", r.code, r.stderr)
	}
}

// TestSelfEncryptedFile: a careful submitter encrypts a file with the age
// CLI to recipients.txt and uploads it from the page; the handler opens it.
func TestSelfEncryptedFile(t *testing.T) {
	w := setup(t)
	resp, err := http.Get(w.relay + "/desks/classic/recipients.txt")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(w.path("recipients.txt"), rec, 0o600)
	plain := writeRandom(t, w.path("dossier.zip"), 300<<10)
	out, err := exec.Command(filepath.Join(bin, "age"), "-R", w.path("recipients.txt"), "-o", w.path("dossier.zip.age"), w.path("dossier.zip")).CombinedOutput()
	if err != nil {
		t.Fatalf("age: %v %s", err, out)
	}
	ct, _ := os.ReadFile(w.path("dossier.zip.age"))
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("lang", "en")
	part, _ := mw.CreateFormFile("age", "dossier.zip.age")
	part.Write(ct)
	mw.Close()
	resp, err = http.Post(w.relay+"/desks/classic/self", mw.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("You encrypted this file yourself")) {
		t.Fatalf("self upload: %d\n%s", resp.StatusCode, page)
	}
	must(t, run(t, w.home("dan"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("dan.key")))
	var list []map[string]any
	json.Unmarshal([]byte(must(t, run(t, w.home("dan"), nil, "amana", "list", "--json")).stdout), &list)
	id := list[0]["id"].(string)
	show := must(t, run(t, w.home("dan"), nil, "amana", "show", id, "-i", w.path("dan.key")))
	if !strings.Contains(show.stdout, "the submitter, with age, outside Amana") {
		t.Fatalf("show:\n%s", show.stdout)
	}
	must(t, run(t, w.home("dan"), nil, "amana", "export", id, "--out", w.path("dan-out"), "-i", w.path("dan.key")))
	if got, _ := os.ReadFile(filepath.Join(w.path("dan-out"), "submission.bin")); !bytes.Equal(got, plain) {
		t.Fatal("exported self-encrypted file differs")
	}
}

var wordsRE = regexp.MustCompile(`receipt words[^\n]*\n\s+([a-z ]+)\n`)

// TestFollowUpChannel: submit, pull, reply, check with the receipt, send a
// follow-up, and pull it into the same case; the whole team sees the thread.
func TestFollowUpChannel(t *testing.T) {
	w := setup(t)
	os.WriteFile(w.path("msg.txt"), []byte("Someone is threatening our office.\n"), 0o600)
	r := must(t, run(t, w.home("submitter"), nil, "amana", "submit", "--relay", w.relay, "--desk", "pq", "--category", "incident", "--message-file", w.path("msg.txt")))
	m := wordsRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no receipt words:\n%s", r.stdout)
	}
	os.WriteFile(w.path("receipt.txt"), []byte(m[1]+"\n"), 0o600)
	id := receiptID.FindStringSubmatch(r.stdout)[1]

	// Nothing yet.
	r = must(t, run(t, w.home("submitter"), nil, "amana", "check", "--relay", w.relay, "--receipt-file", w.path("receipt.txt")))
	if !strings.Contains(r.stdout, "no replies yet") {
		t.Fatalf("check before a reply:\n%s", r.stdout)
	}
	must(t, run(t, w.home("alice"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("alice.key")))
	os.WriteFile(w.path("reply.txt"), []byte("We received it. Can you tell us when it started?\n"), 0o600)
	must(t, run(t, w.home("alice"), nil, "amana", "reply", id[:10], "--relay", w.relay, "-i", w.path("alice.key"), "--message-file", w.path("reply.txt")))

	r = must(t, run(t, w.home("submitter"), nil, "amana", "check", "--relay", w.relay, "--receipt-file", w.path("receipt.txt")))
	if !strings.Contains(r.stdout, "from alice of desk pq (signature verified)") || !strings.Contains(r.stdout, "Can you tell us when it started?") {
		t.Fatalf("check after the reply:\n%s", r.stdout)
	}
	os.WriteFile(w.path("more.txt"), []byte("It started last Monday.\n"), 0o600)
	extra := writeRandom(t, w.path("photo.jpg"), 2000)
	must(t, run(t, w.home("submitter"), nil, "amana", "followup", "--relay", w.relay, "--receipt-file", w.path("receipt.txt"),
		"--message-file", w.path("more.txt"), "--file", w.path("photo.jpg")))

	// alice gets the follow-up into the same case.
	must(t, run(t, w.home("alice"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("alice.key")))
	r = must(t, run(t, w.home("alice"), nil, "amana", "show", id, "-i", w.path("alice.key")))
	for _, want := range []string{"thread (2)", "-- reply from handler alice (you)", "Can you tell us when it started?", "-- followup from the submitter", "It started last Monday.", "attached: photo.jpg"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("alice's thread lacks %q:\n%s", want, r.stdout)
		}
	}
	// carol, the other handler of the category, sees the report, alice's
	// reply and the follow-up.
	must(t, run(t, w.home("carol"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("carol.key")))
	r = must(t, run(t, w.home("carol"), nil, "amana", "show", id, "-i", w.path("carol.key")))
	if !strings.Contains(r.stdout, "thread (2)") || !strings.Contains(r.stdout, "It started last Monday.") || !strings.Contains(r.stdout, "Can you tell us when it started?") ||
		!strings.Contains(r.stdout, "-- reply from handler alice,") {
		t.Errorf("carol's thread:\n%s", r.stdout)
	}
	carolOut := w.path("carol-out")
	_ = extra
	_ = carolOut
	// A mistyped receipt is refused on the submitter's machine.
	words := strings.Fields(m[1])
	words[4] = "qqqqq" // no word of the list starts so
	os.WriteFile(w.path("bad.txt"), []byte(strings.Join(words, " ")), 0o600)
	r = run(t, w.home("submitter"), nil, "amana", "check", "--relay", w.relay, "--receipt-file", w.path("bad.txt"))
	if r.code != 6 || !strings.Contains(r.stderr, "not a valid receipt") {
		t.Errorf("bad receipt: exit %d %s", r.code, r.stderr)
	}
}
