package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tests in this file drive Debian's Chromium through the submitter
// pages, with JavaScript on, on without JIT (close to Tor Browser's Safer
// level), and off.

const webJS = "../../relay/web/js"

// driven is what relay/web/js/browser/drive.mjs reports.
type driven struct {
	CSPViolations  []string  `json:"cspViolations"`
	Foreign        []string  `json:"foreign"`
	Console        []string  `json:"console"`
	Progress       []float64 `json:"progress"`
	Patches        []int64   `json:"patches"`
	Dir, Lang      string
	ModeJS         bool   `json:"modeJS"`
	Status         string `json:"status"`
	Body           string `json:"body"`
	Words          string `json:"words"`
	FollowupBody   string `json:"followupBody"`
	FollowupStatus string `json:"followupStatus"`
	// What the check page offered for the route of a follow-up, and
	// whether the browser refused to send it with no route chosen.
	RouteShown      bool    `json:"routeShown"`
	RouteDefault    *string `json:"routeDefault"`
	RouteMissing    bool    `json:"routeMissing"`
	FollowupBlocked bool    `json:"followupBlocked"`
	Error           string  `json:"error"`
	Receipt         struct {
		ID, SHA256, Received string
	} `json:"receipt"`
	BrowserVersion string `json:"browserVersion"`
	// Firefox's own /favicon.ico fetch, upgraded to https on the same host
	// (firefox.mjs), when it made one.
	UpgradedFavicon string   `json:"upgradedFavicon"`
	Screenshots     []string `json:"screenshots"`
	// What Firefox's engine offered the page's own scripts.
	Engine *struct {
		Wasm          string `json:"wasm"`
		SecureContext bool   `json:"secureContext"`
		Subtle        bool   `json:"subtle"`
	} `json:"engine"`
}

// needBrowser finds node, Chromium and playwright-core, or skips loudly
// (fails where CI is set).
func needBrowser(t *testing.T) string {
	t.Helper()
	return needTools(t, "/usr/bin/chromium", "chromium", "playwright-core")
}

// needTools finds node, the browser at path (Debian package pkg) and the
// npm package driver, or skips loudly (fails where CI is set).
func needTools(t *testing.T, path, pkg, driver string) string {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(path); err != nil {
		missing = append(missing, pkg+" (apt install "+pkg+")")
	}
	if _, err := os.Stat(filepath.Join(webJS, "node_modules", driver)); err != nil {
		missing = append(missing, driver+" (make web-deps)")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("missing %s and CI is set: .ci/run must install them", strings.Join(missing, ", "))
		}
		fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: missing %s ***\n", t.Name(), strings.Join(missing, ", "))
		t.Skip("no " + pkg)
	}
	return path
}

// drive runs one scenario and fails the test on CSP violations or requests
// to another origin.
func drive(t *testing.T, cfg map[string]any) *driven {
	t.Helper()
	return checkDriven(t, runDrive(t, cfg))
}

// checkDriven fails the test on a scenario's error, CSP violations or
// requests to another origin.
func checkDriven(t *testing.T, d *driven) *driven {
	t.Helper()
	if d.Error != "" {
		t.Fatalf("browser: %s\nconsole:\n%s", d.Error, strings.Join(d.Console, "\n"))
	}
	if len(d.CSPViolations) > 0 {
		t.Errorf("CSP violations: %v", d.CSPViolations)
	}
	if len(d.Foreign) > 0 {
		t.Errorf("requests to other origins: %v", d.Foreign)
	}
	return d
}

// runDrive runs one scenario and returns what drive.mjs reported, its
// error included.
func runDrive(t *testing.T, cfg map[string]any) *driven {
	t.Helper()
	var d driven
	driveInto(t, cfg, &d)
	return &d
}

// driveInto runs drive.mjs with cfg and decodes the JSON line it prints
// into v.
func driveInto(t *testing.T, cfg map[string]any, v any) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command("node", filepath.Join(webJS, "browser", "drive.mjs"), string(b))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("drive.mjs: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), v) == nil {
			return
		}
	}
	t.Fatalf("drive.mjs printed no JSON:\n%s\n%s", out, stderr.String())
}

// artifacts is where screenshots go: $AMANA_ARTIFACTS, else test-artifacts
// at the top of the repository.
func artifacts(t *testing.T) string {
	dir := os.Getenv("AMANA_ARTIFACTS")
	if dir == "" {
		dir, _ = filepath.Abs("../../test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pullAndExport pulls as handler h and exports case id, returning the
// export directory and what show printed.
func pullAndExport(t *testing.T, w *world, h, id string) (string, string) {
	t.Helper()
	must(t, run(t, w.home(h), nil, "amana", "pull", "--relay", w.relay, "-i", w.path(h+".key")))
	show := must(t, run(t, w.home(h), nil, "amana", "show", id, "-i", w.path(h+".key")))
	out := w.path("export-" + id[:8])
	must(t, run(t, w.home(h), nil, "amana", "export", id, "--out", out, "-i", w.path(h+".key")))
	return out, show.stdout
}

func TestBrowser(t *testing.T) {
	chromium := needBrowser(t)
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	tmp := t.TempDir()
	// The relay's and the handlers' temporary directory, checked below.
	w := setupEnv(t, []string{"TMPDIR=" + tmp})
	base := map[string]any{"url": w.relay, "desk": "pq", "chromium": chromium}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	t.Run("javascript 20 MiB", func(t *testing.T) {
		file := w.path("video.mp4")
		data := writeRandom(t, file, 20<<20)
		d := drive(t, with("text", "report from the browser", "category", "incident", "file", file))
		if !d.ModeJS || len(d.Receipt.ID) != 32 {
			t.Fatalf("no receipt: %+v", d)
		}
		out, show := pullAndExport(t, w, "alice", d.Receipt.ID)
		if got, _ := os.ReadFile(filepath.Join(out, "video.mp4")); !bytes.Equal(got, data) {
			t.Fatal("the attachment sent from the browser differs")
		}
		if !strings.Contains(show, "the submitter's own device") || !strings.Contains(show, "report from the browser") {
			t.Fatalf("show:\n%s", show)
		}
	})

	t.Run("javascript without JIT 10 MiB", func(t *testing.T) {
		file := w.path("recording.ogg")
		data := writeRandom(t, file, 10<<20)
		d := drive(t, with("text", "sent at the Safer level", "category", "sea", "file", file, "jitless", true, "timeout", 300000))
		if len(d.Receipt.ID) != 32 {
			t.Fatalf("no receipt: %+v", d)
		}
		moving := 0
		for _, v := range d.Progress {
			if v > 0 && v < 100 {
				moving++
			}
		}
		if moving < 2 {
			t.Errorf("the progress bar did not move: %v", d.Progress)
		}
		out, _ := pullAndExport(t, w, "carol", d.Receipt.ID)
		if got, _ := os.ReadFile(filepath.Join(out, "recording.ogg")); !bytes.Equal(got, data) {
			t.Fatal("the attachment differs")
		}
	})

	t.Run("upload cut and resumed", func(t *testing.T) {
		file := w.path("evidence.zip")
		data := writeRandom(t, file, 5<<20)
		d := drive(t, with("text", "resume me", "category", "incident", "file", file, "abortPatch", 3))
		if len(d.Receipt.ID) != 32 {
			t.Fatalf("no receipt: %+v", d)
		}
		zeros := 0
		for _, off := range d.Patches {
			if off == 0 {
				zeros++
			}
		}
		if zeros != 1 || len(d.Patches) < 4 {
			t.Errorf("the upload started again instead of resuming: offsets %v", d.Patches)
		}
		out, _ := pullAndExport(t, w, "alice", d.Receipt.ID)
		if got, _ := os.ReadFile(filepath.Join(out, "evidence.zip")); !bytes.Equal(got, data) {
			t.Fatal("the resumed attachment differs")
		}
	})

	t.Run("javascript off", func(t *testing.T) {
		const marker = "MARKER-c0ffee-nojs-browser"
		file := w.path("note.txt")
		os.WriteFile(file, []byte("attached "+marker), 0o600)
		d := drive(t, with("js", false, "text", "no script here "+marker, "category", "incident", "file", file))
		if d.ModeJS || len(d.Receipt.ID) != 32 || !strings.Contains(d.Body, "encrypted your report as it arrived") {
			t.Fatalf("no-JS receipt: %+v", d)
		}
		out, show := pullAndExport(t, w, "alice", d.Receipt.ID)
		if !strings.Contains(show, "sealed by: the relay") {
			t.Fatalf("show does not say the relay sealed it:\n%s", show)
		}
		if got, _ := os.ReadFile(filepath.Join(out, "note.txt")); !bytes.Contains(got, []byte(marker)) {
			t.Fatal("attachment differs")
		}
		assertNotInDir(t, w.path("data"), marker)
		assertNotInDir(t, tmp, marker)
		if strings.Contains(w.relayErr.String(), marker) {
			t.Errorf("the relay's log holds the marker:\n%s", w.relayErr.String())
		}
	})

	// The whole visit in each language, with screenshots of the desk,
	// receipt and check pages.
	for _, lang := range []string{"en", "ar", "fr"} {
		t.Run("visit in "+lang, func(t *testing.T) {
			tour(t, w, base, lang, "chromium")
		})
	}
}

// TestBrowserFollowUp: a report sent from the browser, a reply with amana,
// the reply read on the check page and a follow-up sent from it, with
// JavaScript and without; each follow-up reaches the handler's case.
func TestBrowserFollowUp(t *testing.T) {
	chromium := needBrowser(t)
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	w := setup(t)
	for _, js := range []bool{true, false} {
		name := map[bool]string{true: "javascript", false: "no javascript"}[js]
		t.Run(name, func(t *testing.T) {
			text := "report for the follow-up test, " + name
			d := drive(t, map[string]any{"url": w.relay, "desk": "pq", "chromium": chromium, "js": js, "text": text, "category": "sea"})
			words := strings.Join(strings.Fields(d.Words), " ")
			if len(strings.Fields(words)) != 12 || len(d.Receipt.ID) != 32 {
				t.Fatalf("no receipt words: %+v", d)
			}
			// carol (the only handler of "sea") pulls and replies.
			must(t, run(t, w.home("carol"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("carol.key")))
			os.WriteFile(w.path("reply.txt"), []byte("Thank you. Are you safe now? ("+name+")\n"), 0o600)
			must(t, run(t, w.home("carol"), nil, "amana", "reply", d.Receipt.ID, "--relay", w.relay, "-i", w.path("carol.key"), "--message-file", w.path("reply.txt")))

			followup := "Yes, I am safe. More details follow (" + name + ")."
			c := drive(t, map[string]any{"url": w.relay, "chromium": chromium, "js": js, "page": "check", "receipt": strings.ToUpper(words), "followup": followup})
			if !strings.Contains(c.Body, "Are you safe now? ("+name+")") || !strings.Contains(c.Body, "carol") || strings.Contains(c.Body, "WARNING") {
				t.Fatalf("check page:\n%s", c.Body)
			}
			if !strings.Contains(c.FollowupStatus+c.FollowupBody, "Your message was received") {
				t.Fatalf("follow-up not confirmed: %q %q", c.FollowupStatus, c.FollowupBody)
			}
			must(t, run(t, w.home("carol"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("carol.key")))
			show := must(t, run(t, w.home("carol"), nil, "amana", "show", d.Receipt.ID, "-i", w.path("carol.key")))
			if !strings.Contains(show.stdout, followup) || !strings.Contains(show.stdout, "-- followup from the submitter") {
				t.Fatalf("the follow-up is not in carol's case:\n%s", show.stdout)
			}
		})
	}
}

// TestBrowserFollowUpBeforeReply: before the desk replies, the check page
// pre-selects no route: a follow-up left on the empty choice is not sent,
// with JavaScript or without, and one sent to the route the submitter
// chooses reaches that category's handlers only.
func TestBrowserFollowUpBeforeReply(t *testing.T) {
	chromium := needBrowser(t)
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	w := setup(t)
	for _, js := range []bool{true, false} {
		name := map[bool]string{true: "javascript", false: "no javascript"}[js]
		t.Run(name, func(t *testing.T) {
			followUpBeforeReply(t, w, map[string]any{"url": w.relay, "chromium": chromium, "js": js}, name)
		})
	}
}

// followUpBeforeReply sends a report to "sea" from a browser set up by base,
// then a follow-up left on the empty route (not sent) and one to "sea"
// (carol's only), and checks where they went.
func followUpBeforeReply(t *testing.T, w *world, base map[string]any, name string) {
	t.Helper()
	d := drive(t, with(base, "desk", "pq", "text", "report before a reply, "+name, "category", "sea"))
	words := strings.Join(strings.Fields(d.Words), " ")
	if len(strings.Fields(words)) != 12 || len(d.Receipt.ID) != 32 {
		t.Fatalf("no receipt words: %+v", d)
	}
	check := with(base, "page", "check", "receipt", words)

	// Left on the empty choice, the form is not sent.
	c := drive(t, with(check, "followup", "not sent: no route ("+name+")", "route", ""))
	if !c.RouteShown || c.RouteDefault == nil || *c.RouteDefault != "" || !c.RouteMissing || !c.FollowupBlocked {
		t.Fatalf("follow-up with no route chosen: shown %v, default %v, missing %v, blocked %v, status %q",
			c.RouteShown, c.RouteDefault, c.RouteMissing, c.FollowupBlocked, c.Status)
	}
	// Chosen explicitly: "sea", carol's only.
	followup := "sent to sea before a reply (" + name + ")"
	c = drive(t, with(check, "followup", followup, "route", "pq|sea"))
	if !strings.Contains(c.FollowupStatus+c.FollowupBody, "Your message was received") {
		t.Fatalf("follow-up not confirmed: %q %q", c.FollowupStatus, c.FollowupBody)
	}
	must(t, run(t, w.home("carol"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("carol.key")))
	show := must(t, run(t, w.home("carol"), nil, "amana", "show", d.Receipt.ID, "-i", w.path("carol.key")))
	if !strings.Contains(show.stdout, followup) || strings.Contains(show.stdout, "not sent: no route") {
		t.Fatalf("carol's case:\n%s", show.stdout)
	}
	// alice handles the desk but not "sea": she gets nothing.
	r := must(t, run(t, w.home("alice"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("alice.key")))
	if !strings.Contains(r.stderr, "pulled 0 new case") {
		t.Fatalf("alice pulled something: %s", r.stderr)
	}
}

// with is cfg with more keys.
func with(cfg map[string]any, kv ...any) map[string]any {
	m := map[string]any{}
	for k, v := range cfg {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}
