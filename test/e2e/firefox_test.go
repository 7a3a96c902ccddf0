package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests in this file drive Debian's Firefox ESR, the engine Tor Browser
// is built on, with puppeteer-core over WebDriver BiDi
// (relay/web/js/browser/firefox.mjs), at Tor Browser's Safer level (no JIT,
// no WebAssembly) and at Safest (no JavaScript), and once through the
// private Tor network to the relay's intake onion, as a submitter arrives.

// needFirefox finds node, Firefox ESR and puppeteer-core, or skips loudly
// (fails where CI is set).
func needFirefox(t *testing.T) string {
	t.Helper()
	return needTools(t, "/usr/bin/firefox-esr", "firefox-esr", "puppeteer-core")
}

// uiText is the page text with key in lang, from relay/web/i18n.
func uiText(t *testing.T, lang, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../relay/web/i18n", lang+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s.json: %v", lang, err)
	}
	if m[key] == "" {
		t.Fatalf("%s.json has no %q", lang, key)
	}
	return m[key]
}

// visit is what a submitter writes in one language.
type visit struct {
	file, text, reply, followup string
}

var visits = map[string]visit{
	"en": {"recording.ogg", "Threats at the port, by phone.", "Thank you. Are you safe now?", "Yes, I am safe. More details follow."},
	"ar": {"صورة.jpg", "تهديدات في الميناء عبر الهاتف (Port 7).", "شكراً لك. هل أنت بأمان الآن؟", "نعم، أنا بأمان. سأرسل التفاصيل لاحقاً."},
	"fr": {"pièce-jointe.pdf", "Menaces au port, par téléphone.", "Merci. Êtes-vous en sécurité maintenant ?", "Oui, je suis en sécurité. D'autres détails suivront."},
}

// tour is one submitter's whole visit in lang, in the browser base sets
// up: the desk's form with a file, the receipt, carol's reply read on the
// check page, and a follow-up that reaches carol's case. Screenshots of the
// desk, receipt and check pages go to the artefacts as
// PREFIX-PAGE-LANG.png. It returns the marker written into the report.
func tour(t *testing.T, w *world, base map[string]any, lang, prefix string) string {
	t.Helper()
	v := visits[lang]
	js := base["js"] != false && base["level"] != "safest"
	marker := fmt.Sprintf("MARKER-%s-%s-%d", prefix, lang, time.Now().UnixNano())
	dir := w.path("visit-" + prefix + "-" + lang)
	os.Mkdir(dir, 0o700)
	file := filepath.Join(dir, v.file)
	size := 200 << 10
	if lang == "en" {
		size = 5 << 20 // several upload pieces with JavaScript
	}
	data := append([]byte(marker+"\n"), writeRandom(t, file, size)...)
	os.WriteFile(file, data, 0o600)
	art := artifacts(t)
	shot := func(page string) string { return filepath.Join(art, prefix+"-"+page+"-"+lang+".png") }

	text := v.text + " (" + prefix + ") " + marker
	d := drive(t, with(base, "desk", "pq", "lang", lang, "text", text, "category", "sea", "file", file,
		"screenshot", shot("desk"), "receiptShot", shot("receipt"), "timeout", 300000))
	wantDir := map[bool]string{true: "rtl", false: "ltr"}[lang == "ar"]
	if d.Dir != wantDir || d.Lang != lang {
		t.Errorf("%s page: dir %q lang %q", lang, d.Dir, d.Lang)
	}
	if d.ModeJS != js || len(d.Receipt.ID) != 32 || strings.TrimSpace(d.Words) == "" {
		t.Fatalf("no receipt (javascript %v): %+v", js, d)
	}
	if base["level"] == "safer" {
		if d.Engine == nil || d.Engine.Wasm != "undefined" || !d.Engine.SecureContext || !d.Engine.Subtle {
			t.Errorf("not Tor Browser's Safer level on a secure context: %+v", d.Engine)
		}
		moving := 0
		for _, p := range d.Progress {
			if p > 0 && p < 100 {
				moving++
			}
		}
		if lang == "en" && moving < 2 {
			t.Errorf("the progress bar did not move: %v", d.Progress)
		}
	}
	if !js && !strings.Contains(d.Body, uiText(t, lang, "sealed_server")) {
		t.Errorf("the no-JS receipt does not say the server sealed it:\n%s", d.Body)
	}

	out, show := pullAndExport(t, w, "carol", d.Receipt.ID)
	if got, _ := os.ReadFile(filepath.Join(out, v.file)); !bytes.Equal(got, data) {
		t.Fatalf("the attachment %s sent from the browser differs", v.file)
	}
	sealed := map[bool]string{true: "the submitter's own device", false: "sealed by: the relay"}[js]
	if !strings.Contains(show, sealed) || !strings.Contains(show, v.text) {
		t.Fatalf("show lacks %q or the report text:\n%s", sealed, show)
	}
	assertNotInDir(t, w.path("data"), marker)
	if strings.Contains(w.relayErr.String(), marker) {
		t.Errorf("the relay's log holds the marker")
	}

	reply := v.reply + " (" + prefix + ")"
	os.WriteFile(w.path("reply.txt"), []byte(reply+"\n"), 0o600)
	must(t, run(t, w.home("carol"), nil, "amana", "reply", d.Receipt.ID, "--relay", w.relay, "-i", w.path("carol.key"), "--message-file", w.path("reply.txt")))

	followup := v.followup + " (" + prefix + ")"
	c := drive(t, with(base, "page", "check", "lang", lang, "receipt", strings.Join(strings.Fields(d.Words), " "),
		"followup", followup, "screenshot", shot("check")))
	if !strings.Contains(c.Body, reply) || !strings.Contains(c.Body, "carol") || strings.Contains(c.Body, uiText(t, lang, "reply_unverified")) {
		t.Fatalf("check page:\n%s", c.Body)
	}
	if !strings.Contains(c.FollowupStatus+c.FollowupBody, uiText(t, lang, "followup_sent")) {
		t.Fatalf("follow-up not confirmed: %q %q", c.FollowupStatus, c.FollowupBody)
	}
	must(t, run(t, w.home("carol"), nil, "amana", "pull", "--relay", w.relay, "-i", w.path("carol.key")))
	show = must(t, run(t, w.home("carol"), nil, "amana", "show", d.Receipt.ID, "-i", w.path("carol.key"))).stdout
	if !strings.Contains(show, followup) || !strings.Contains(show, "-- followup from the submitter") {
		t.Fatalf("the follow-up is not in carol's case:\n%s", show)
	}
	for _, page := range []string{"desk", "receipt", "check"} {
		if fi, err := os.Stat(shot(page)); err != nil || fi.Size() < 1000 {
			t.Errorf("no screenshot of the %s %s page: %v", lang, page, err)
		}
	}
	return marker
}

// TestFirefox runs the submitter's visit in every language at Tor
// Browser's Safer and Safest levels, a follow-up before any reply, and an
// upload cut and resumed at Safer.
func TestFirefox(t *testing.T) {
	firefox := needFirefox(t)
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	tmp := t.TempDir()
	// The relay's and the handlers' temporary directory, checked below.
	w := setupEnv(t, []string{"TMPDIR=" + tmp})
	profiles := w.path("profiles")
	os.Mkdir(profiles, 0o700)
	var markers []string
	for _, level := range []string{"safer", "safest"} {
		base := map[string]any{"url": w.relay, "browser": "firefox", "firefox": firefox, "level": level, "profiles": profiles}
		t.Run(level, func(t *testing.T) {
			start := time.Now()
			for _, lang := range []string{"en", "ar", "fr"} {
				t.Run(lang, func(t *testing.T) {
					markers = append(markers, tour(t, w, base, lang, "firefox-"+level))
				})
			}
			t.Run("follow-up before a reply", func(t *testing.T) {
				followUpBeforeReply(t, w, base, "firefox at "+level)
			})
			t.Logf("firefox at %s: %v", level, time.Since(start).Round(100*time.Millisecond))
		})
	}
	t.Run("safer upload cut and resumed", func(t *testing.T) {
		file := w.path("evidence.zip")
		data := writeRandom(t, file, 3<<20)
		d := drive(t, map[string]any{"url": w.relay, "browser": "firefox", "firefox": firefox, "level": "safer", "profiles": profiles,
			"desk": "pq", "text": "resume me in Firefox", "category": "sea", "file": file, "abortPatch": 2, "timeout": 300000})
		if len(d.Receipt.ID) != 32 {
			t.Fatalf("no receipt: %+v", d)
		}
		zeros := 0
		for _, off := range d.Patches {
			if off == 0 {
				zeros++
			}
		}
		if zeros != 1 || len(d.Patches) < 3 {
			t.Errorf("the upload started again instead of resuming: offsets %v", d.Patches)
		}
		out, _ := pullAndExport(t, w, "carol", d.Receipt.ID)
		if got, _ := os.ReadFile(filepath.Join(out, "evidence.zip")); !bytes.Equal(got, data) {
			t.Fatal("the resumed attachment differs")
		}
	})
	for _, m := range markers {
		assertNotInDir(t, tmp, m)
	}
}

// TestFirefoxOnion: Firefox at Safer through the private Tor network's
// SOCKS port, with remote DNS and onions as secure contexts as in Tor
// Browser, sends a report with a file to the relay's intake onion,
// encrypted in the page; alice pulls it over the handler onion with amana.
func TestFirefoxOnion(t *testing.T) {
	firefox := needFirefox(t)
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	n := torNetwork(t)
	start := time.Now()
	w := keysAndRelay(t)
	torrc, err := n.WriteTorrc(w.path("network.torrc"))
	if err != nil {
		t.Fatal(err)
	}
	r := &onionRelay{w: w, torrc: torrc}
	r.start(t)
	defer func() { r.stop() }()
	viaTor := []string{"--tor-launch", "--torrc", torrc}
	retry(t, w.home("admin"), "amana", append([]string{"desk", "publish", w.path("pq.json"), "--relay", r.handler, "-i", w.path("admin.key")}, viaTor...)...)
	r.waitLog(t, "the handler onion is published again", 2*time.Minute)

	client, err := n.StartClient(context.Background(), "firefox")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const marker = "MARKER-firefox-over-tor"
	file := w.path("evidence.bin")
	data := writeRandom(t, file, 1<<20)
	cfg := map[string]any{"url": r.intake, "desk": "pq", "browser": "firefox", "firefox": firefox, "level": "safer",
		"socks": client.SocksAddr, "text": "sent from Firefox over Tor " + marker, "category": "incident", "file": file, "timeout": 300000}
	// A test network rotates onion descriptors every few minutes: a first
	// load can miss, and is tried again while nothing was sent.
	var d *driven
	for i := 0; ; i++ {
		browserStart := time.Now()
		d = runDrive(t, cfg)
		t.Logf("firefox over Tor: %v (%s)", time.Since(browserStart).Round(100*time.Millisecond), d.BrowserVersion)
		if d.Error == "" || i == 3 || len(d.Patches) > 0 || !strings.Contains(d.Error, "NS_ERROR") {
			break
		}
		t.Logf("loading the intake onion failed, trying again: %.200s", d.Error)
		time.Sleep(3 * time.Second)
	}
	checkDriven(t, d)
	if d.UpgradedFavicon != "" {
		t.Logf("Firefox's own favicon fetch went to %s (upgraded as mixed display content)", d.UpgradedFavicon)
	}
	if !d.ModeJS || len(d.Receipt.ID) != 32 {
		t.Fatalf("no receipt from the page's own encryption: %+v", d)
	}
	if d.Engine == nil || d.Engine.Wasm != "undefined" || !d.Engine.SecureContext || !d.Engine.Subtle {
		t.Errorf("the onion is not a secure context at Safer: %+v", d.Engine)
	}

	retry(t, w.home("alice"), "amana", append([]string{"pull", "--relay", r.handler, "-i", w.path("alice.key")}, viaTor...)...)
	out := w.path("export-alice")
	must(t, run(t, w.home("alice"), nil, "amana", "export", d.Receipt.ID, "--out", out, "-i", w.path("alice.key")))
	if got, _ := os.ReadFile(filepath.Join(out, "evidence.bin")); !bytes.Equal(got, data) {
		t.Fatal("the file sent from Firefox over Tor differs from what alice pulled")
	}
	show := must(t, run(t, w.home("alice"), nil, "amana", "show", d.Receipt.ID, "-i", w.path("alice.key"))).stdout
	if !strings.Contains(show, "the submitter's own device") || !strings.Contains(show, marker) {
		t.Fatalf("show:\n%s", show)
	}
	assertNotInDir(t, w.path("data"), marker)
	if strings.Contains(r.log.String(), marker) {
		t.Error("the relay's log holds the marker")
	}
	t.Logf("the whole onion scenario: %v", time.Since(start).Round(100*time.Millisecond))
}
