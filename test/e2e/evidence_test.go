package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// needEvidenceTools skips when exiftool, mat2 (with ffmpeg for video),
// bubblewrap, sha256sum or openssl is missing, loudly, and only when CI is
// unset: .ci/run installs them.
func needEvidenceTools(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"exiftool", "mat2", "ffmpeg", "bwrap", "prlimit", "sha256sum", "openssl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("missing %s and CI is set: .ci/run must install them", strings.Join(missing, ", "))
	}
	fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: missing %s (apt-get install libimage-exiftool-perl mat2 ffmpeg bubblewrap) ***\n", t.Name(), strings.Join(missing, ", "))
	t.Skip("missing " + strings.Join(missing, ", "))
}

func exiftoolSet(t *testing.T, path string, args ...string) {
	t.Helper()
	out, err := exec.Command("exiftool", append([]string{"-q", "-overwrite_original"}, append(args, path)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("exiftool %v: %v\n%s", args, err, out)
	}
}

// exifKeys is every GROUP:TAG exiftool reads in a file.
func exifKeys(t *testing.T, path string) map[string]any {
	t.Helper()
	out, err := exec.Command("exiftool", "-j", "-n", "-G1", "-a", path).Output()
	if err != nil {
		t.Fatalf("exiftool %s: %v", path, err)
	}
	var v []map[string]any
	if err := json.Unmarshal(out, &v); err != nil || len(v) != 1 {
		t.Fatalf("exiftool %s: %v", path, err)
	}
	return v[0]
}

// evidenceFixtures writes a JPEG with a GPS position, make and model, an
// MP4 with a location (QuickTime ©xyz and Keys) and a make and model, a
// PDF with an author, and a file of no format mat2 knows.
func evidenceFixtures(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	jpeg.Encode(&b, img, nil)
	files["photo"] = filepath.Join(dir, "photo.jpg")
	os.WriteFile(files["photo"], b.Bytes(), 0o600)
	exiftoolSet(t, files["photo"], "-GPSLatitude=33.89", "-GPSLatitudeRef=N", "-GPSLongitude=35.50", "-GPSLongitudeRef=E",
		"-Make=TestPhone", "-Model=X1", "-Artist=Jane Roe", "-DateTimeOriginal=2026:11:30 14:02:11", "-Software=CamApp 2")

	mp4, err := os.ReadFile("testdata/tiny.mp4")
	if err != nil {
		t.Fatal(err)
	}
	files["video"] = filepath.Join(dir, "video.mp4")
	os.WriteFile(files["video"], mp4, 0o600)
	exiftoolSet(t, files["video"], "-UserData:GPSCoordinates=33.89, 35.50, 10", "-Keys:GPSCoordinates=33.89, 35.50",
		"-UserData:Make=TestPhone", "-UserData:Model=X1")

	// A one-page PDF, its cross-reference table exact.
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>"}
	var pdf bytes.Buffer
	pdf.WriteString("%PDF-1.4\n")
	var offs []int
	for i, o := range objs {
		offs = append(offs, pdf.Len())
		fmt.Fprintf(&pdf, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := pdf.Len()
	fmt.Fprintf(&pdf, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&pdf, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&pdf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	files["pdf"] = filepath.Join(dir, "statement.pdf")
	os.WriteFile(files["pdf"], pdf.Bytes(), 0o600)
	exiftoolSet(t, files["pdf"], "-Author=Jane Roe", "-Creator=Writer", "-Producer=ProdX")

	files["other"] = filepath.Join(dir, "notes.xyz")
	os.WriteFile(files["other"], []byte("no format mat2 knows\n"), 0o600)

	// The fixtures carry what the test looks for.
	if k := exifKeys(t, files["photo"]); k["GPS:GPSLatitude"] == nil || k["IFD0:Make"] != "TestPhone" {
		t.Fatalf("the photo fixture lacks its GPS or make: %v", k)
	}
	if k := exifKeys(t, files["video"]); k["UserData:GPSCoordinates"] == nil || k["UserData:Make"] != "TestPhone" {
		t.Fatalf("the video fixture lacks its location or make: %v", k)
	}
	if k := exifKeys(t, files["pdf"]); k["PDF:Author"] != "Jane Roe" {
		t.Fatalf("the PDF fixture lacks its author: %v", k)
	}
	return files
}

// revealing are the fields the fixtures carry that a cleaned copy must not.
func revealing(keys map[string]any) []string {
	var out []string
	for k := range keys {
		_, tag, _ := strings.Cut(k, ":")
		if strings.HasPrefix(tag, "GPS") || slices.Contains([]string{"Make", "Model", "Artist", "Author", "DateTimeOriginal", "Software", "Producer"}, tag) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

type custodyChain struct {
	Case   string `json:"case"`
	Events []struct {
		Author struct{ Key, Name string } `json:"author"`
		Seq    uint64                     `json:"seq"`
		Time   string                     `json:"time"`
		Change crypto.Custody             `json:"custody"`
	} `json:"events"`
}

func (w *jworld) custody(who, id string) *custodyChain {
	w.t.Helper()
	r := w.ok(who, "case", "custody", id, "--json", "-i", w.path(who+".key"))
	var c custodyChain
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		w.t.Fatalf("case custody --json: %v\n%s", err, r.stdout)
	}
	return &c
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

// TestEvidence: a report with a photo, a video and a PDF carrying a
// location, a device and an author goes from the submitter to a verified
// evidence bundle: show names what each reveals; export --clean writes the
// originals byte for byte beside copies in which exiftool finds none of
// it, names the file mat2 cannot clean, and records each derivation; the
// custody chain reaches the other handler signed; the bundle passes
// sha256sum -c and openssl, and every change, removal and addition is
// caught by them and by 'amana evidence verify'.
func TestEvidence(t *testing.T) {
	needEvidenceTools(t)
	w := newJournalWorld(t, false)
	fx := evidenceFixtures(t, w.path(""))
	id := w.submit("sea", "the video and the photo from the distribution point", fx["photo"], fx["video"], fx["pdf"], fx["other"])
	w.pullAll("carol", "alice")
	key := func(who string) string { return w.path(who + ".key") }

	// show lists what the metadata reveals.
	r := w.ok("carol", "show", id)
	for _, want := range []string{
		"reveals location: 33.89 (GPS:GPSLatitude)", "reveals device: TestPhone (IFD0:Make); X1 (IFD0:Model)",
		"reveals names: Jane Roe (IFD0:Artist)", "reveals times: 2026:11:30 14:02:11", "reveals software: CamApp 2",
		"(UserData:GPSCoordinates)", "TestPhone (UserData:Make)", "reveals names: Jane Roe (PDF:Author)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "custody: decrypt recorded") {
		t.Errorf("show does not say the decryption is recorded:\n%s", r.stderr)
	}

	// export --clean: originals untouched, cleaned copies clean, the
	// file mat2 cannot clean named, exit code 7.
	out := w.path("export")
	r = w.amana("carol", "export", id, "--out", out, "--clean", "--reason", "working copies for the investigation", "-i", key("carol"))
	if r.code != 7 || !strings.Contains(r.stderr, "notes.xyz was NOT cleaned") || !strings.Contains(r.stderr, "1 file(s) not cleaned by mat2: notes.xyz") {
		t.Fatalf("export --clean: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "cleaned", "notes.cleaned.xyz")); err == nil {
		t.Error("a copy of the file mat2 cannot clean was written")
	}
	// Cleaned copies are in cleaned/, never beside the originals, where a
	// submitter's file so named could pose as one.
	if beside, _ := filepath.Glob(filepath.Join(out, "*.cleaned*")); len(beside) > 0 {
		t.Errorf("cleaned copies beside the originals: %v", beside)
	}
	cleaned := map[string]string{"photo.jpg": "photo.cleaned.jpg", "video.mp4": "video.cleaned.mp4", "statement.pdf": "statement.cleaned.pdf"}
	for _, src := range fx {
		name := filepath.Base(src)
		want, _ := os.ReadFile(src)
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("the original %s is not byte-identical: %v", name, err)
		}
		if c, ok := cleaned[name]; ok {
			if left := revealing(exifKeys(t, filepath.Join(out, "cleaned", c))); len(left) > 0 {
				t.Errorf("exiftool still finds %v in %s", left, c)
			}
			if orig := revealing(exifKeys(t, filepath.Join(out, name))); len(orig) == 0 {
				t.Errorf("the original %s lost its metadata", name)
			}
		}
	}

	// The custody chain: decrypt, export, a derivation per cleaned copy.
	mat2v, _ := exec.Command("mat2", "--version").Output()
	version := strings.TrimPrefix(strings.TrimSpace(string(mat2v)), "mat2 ")
	chain := w.custody("carol", id)
	var actions []string
	for _, ev := range chain.Events {
		actions = append(actions, ev.Change.Action)
		if ev.Author.Name != "carol" || ev.Time == "" {
			t.Errorf("event %d: author %+v time %q", ev.Seq, ev.Author, ev.Time)
		}
		if d := ev.Change.Derived; d != nil {
			orig := ev.Change.Files[0]
			if d.From != fileSHA(t, filepath.Join(out, orig.Name)) || d.SHA256 != fileSHA(t, filepath.Join(out, "cleaned", d.Name)) ||
				d.Name != cleaned[orig.Name] || d.Tool != "mat2" || d.ToolVersion != version || ev.Change.Reason != "working copies for the investigation" {
				t.Errorf("derivation record %+v of %+v does not match the files", d, orig)
			}
		}
	}
	if strings.Join(actions, " ") != "decrypt export derive derive derive" {
		t.Errorf("custody actions %v", actions)
	}
	if exp := chain.Events[1].Change; len(exp.Files) != 4 || exp.Reason == "" {
		t.Errorf("the export event names %d files: %+v", len(exp.Files), exp)
	}

	// The chain reaches alice, signed; she sees carol's events.
	w.ok("carol", "sync")
	w.ok("alice", "sync")
	if got := w.custody("alice", id); len(got.Events) != len(chain.Events) {
		t.Errorf("alice holds %d of carol's %d custody events", len(got.Events), len(chain.Events))
	}
	text := w.ok("alice", "case", "custody", id, "-i", key("alice")).stdout
	for _, want := range []string{"carol #", "derived a cleaned copy", "with mat2 " + version, "reason: working copies", "exported files", "decrypted the case"} {
		if !strings.Contains(text, want) {
			t.Errorf("case custody lacks %q:\n%s", want, text)
		}
	}

	// The evidence bundle.
	bundle := w.path("bundle")
	r = w.amana("alice", "evidence", "export", id, "--out", bundle, "--reason", "for the tribunal", "-i", key("alice"))
	if r.code != 7 || !strings.Contains(r.stderr, "notes.xyz") {
		t.Fatalf("evidence export: exit %d\n%s", r.code, r.stderr)
	}
	var report crypto.Report
	rb, _ := os.ReadFile(filepath.Join(bundle, "report.json"))
	if err := json.Unmarshal(rb, &report); err != nil {
		t.Fatal(err)
	}
	for _, a := range report.Attachments {
		// The submitter's side computed the hash in report.json.
		if got := fileSHA(t, filepath.Join(bundle, "originals", a.Name)); got != a.SHA256 || got != fileSHA(t, fx[map[string]string{
			"photo.jpg": "photo", "video.mp4": "video", "statement.pdf": "pdf", "notes.xyz": "other"}[a.Name]]) {
			t.Errorf("the original %s in the bundle does not have the submitter's SHA-256", a.Name)
		}
	}
	for _, c := range cleaned {
		if left := revealing(exifKeys(t, filepath.Join(bundle, "derived", c))); len(left) > 0 {
			t.Errorf("exiftool finds %v in the bundle's %s", left, c)
		}
	}
	var log struct {
		Events []json.RawMessage `json:"events"`
	}
	lb, _ := os.ReadFile(filepath.Join(bundle, "custody.json"))
	if err := json.Unmarshal(lb, &log); err != nil {
		t.Fatal(err)
	}
	var lastAction string
	for _, raw := range log.Events {
		e, err := crypto.ParseEvent(raw)
		if err != nil {
			t.Fatalf("custody.json: %v", err)
		}
		if _, err := crypto.VerifyEvent(e, w.manifest().Cards()); err != nil {
			t.Errorf("custody.json event by %s does not verify against the desk: %v", e.Author[:8], err)
		}
		lastAction = e.Change.Custody.Action
	}
	// carol's five, then alice's three derivations and the bundle.
	if len(log.Events) != 5+3+1 || lastAction != crypto.CustodyEvidenceExport {
		t.Errorf("custody.json holds %d events, the last %q", len(log.Events), lastAction)
	}

	third := func(dir string) (sums, sig, listing bool) {
		c := exec.Command("sha256sum", "-c", "--quiet", "SHA256SUMS")
		c.Dir = dir
		sums = c.Run() == nil
		c = exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "handler.pub.pem", "-rawin", "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig")
		c.Dir = dir
		sig = c.Run() == nil
		c = exec.Command("bash", "-c", listingCheck)
		c.Dir = dir
		listing = c.Run() == nil
		return
	}
	if s, g, l := third(bundle); !s || !g || !l {
		t.Fatalf("the intact bundle fails: sha256sum %v, openssl %v, listing %v", s, g, l)
	}
	readme, _ := os.ReadFile(filepath.Join(bundle, "README.txt"))
	if !strings.Contains(string(readme), listingCheck) {
		t.Error("README.txt does not give the listing check tested here")
	}
	r = w.ok("alice", "evidence", "verify", bundle)
	if !strings.Contains(r.stderr, "none missing or extra") || !strings.Contains(r.stderr, crypto.KeyFingerprint(w.ids["alice"].Card().SignKey)) {
		t.Errorf("evidence verify: %s", r.stderr)
	}

	// One byte of any file changed; a file removed; a file added.
	var all []string
	filepath.WalkDir(bundle, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(bundle, p)
			all = append(all, rel)
		}
		return nil
	})
	for _, rel := range all {
		t.Run("changed "+rel, func(t *testing.T) {
			dir := copyDir(t, bundle)
			b, _ := os.ReadFile(filepath.Join(dir, rel))
			b[len(b)/2] ^= 0x01
			os.WriteFile(filepath.Join(dir, rel), b, 0o600)
			s, g, _ := third(dir)
			switch rel {
			case "SHA256SUMS", "SHA256SUMS.sig":
				if g {
					t.Error("openssl accepts the signature")
				}
			default:
				if s {
					t.Error("sha256sum -c passes")
				}
			}
			r := w.amana("alice", "evidence", "verify", dir)
			if r.code != 3 {
				t.Errorf("evidence verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if rel != "SHA256SUMS" && rel != "SHA256SUMS.sig" && !strings.Contains(r.stdout, "CHANGED: "+rel) {
				t.Errorf("evidence verify does not name %s:\n%s", rel, r.stdout)
			}
		})
	}
	t.Run("removed", func(t *testing.T) {
		dir := copyDir(t, bundle)
		os.Remove(filepath.Join(dir, "derived", "photo.cleaned.jpg"))
		if s, _, l := third(dir); s || l {
			t.Errorf("sha256sum -c (%v) or the listing (%v) passes without a file", s, l)
		}
		if r := w.amana("alice", "evidence", "verify", dir); r.code != 3 || !strings.Contains(r.stdout, "MISSING: derived/photo.cleaned.jpg") {
			t.Errorf("evidence verify: exit %d\n%s", r.code, r.stdout)
		}
	})
	t.Run("show json", func(t *testing.T) {
		var shown struct {
			Attachments []struct {
				Name     string `json:"name"`
				Metadata *struct {
					Findings []struct{ Kind, Tag, Value string } `json:"findings"`
				} `json:"metadata"`
			} `json:"attachments"`
		}
		r := w.ok("alice", "show", id, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || len(shown.Attachments) != 4 || shown.Attachments[0].Metadata == nil {
			t.Fatalf("show --json: %v\n%s", err, r.stdout)
		}
		var kinds []string
		for _, f := range shown.Attachments[0].Metadata.Findings {
			if !slices.Contains(kinds, f.Kind) {
				kinds = append(kinds, f.Kind)
			}
		}
		if strings.Join(kinds, " ") != "location device person time software" {
			t.Errorf("show --json of %s: kinds %v", shown.Attachments[0].Name, kinds)
		}
	})
	t.Run("added", func(t *testing.T) {
		dir := copyDir(t, bundle)
		os.WriteFile(filepath.Join(dir, "originals", "planted.jpg"), []byte("planted"), 0o600)
		if _, _, l := third(dir); l {
			t.Error("the listing check passes with a file added")
		}
		if r := w.amana("alice", "evidence", "verify", dir); r.code != 3 || !strings.Contains(r.stdout, "EXTRA: originals/planted.jpg") {
			t.Errorf("evidence verify: exit %d\n%s", r.code, r.stdout)
		}
	})
}

// listingCheck is README.txt's check that the bundle holds exactly the
// files SHA256SUMS lists.
const listingCheck = `diff <(cut -c67- SHA256SUMS) <(find . -type f ! -path ./SHA256SUMS ! -path ./SHA256SUMS.sig | cut -c3- | LC_ALL=C sort)`

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// TestEvidenceRenamed: an attachment whose name cannot be a file name
// does not block the evidence bundle: it is stored as
// renamed/attachment-N.EXT, its real name in renamed/NAMES.txt and in the
// custody event, and the bundle verifies.
func TestEvidenceRenamed(t *testing.T) {
	w := newJournalWorld(t, false)
	id := w.submit("general", "a report with an odd file name", w.file("ok.txt", "fine\n"), w.file("a:b.txt", "odd\n"))
	w.pullAll("alice")
	bundle := w.path("bundle-renamed")
	r := w.amana("alice", "evidence", "export", id, "--out", bundle, "--no-clean", "-i", w.path("alice.key"))
	if r.code != 0 || !strings.Contains(r.stderr, "it is in the bundle as renamed/attachment-2.txt") {
		t.Fatalf("evidence export: exit %d\n%s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(bundle, "renamed", "attachment-2.txt")); err != nil || string(b) != "odd\n" {
		t.Errorf("renamed/attachment-2.txt: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(bundle, "originals", "ok.txt")); err != nil || string(b) != "fine\n" {
		t.Errorf("originals/ok.txt: %q %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(bundle, "renamed", "NAMES.txt")); !strings.Contains(string(b), "renamed/attachment-2.txt\t\"a:b.txt\"") {
		t.Errorf("renamed/NAMES.txt:\n%s", b)
	}
	w.ok("alice", "evidence", "verify", bundle)
	c := w.custody("alice", id)
	last := c.Events[len(c.Events)-1].Change
	if last.Action != crypto.CustodyEvidenceExport || !strings.Contains(last.Detail, "renamed/attachment-2.txt\t\"a:b.txt\"") {
		t.Errorf("the evidence-export event: %s %q", last.Action, last.Detail)
	}
}

// TestEvidenceCustodyForged: show, share and refer record custody events,
// which reach the other handlers of the case; they are signed, and a relay that
// invents one in a handler's name, or changes a byte of a real one, gets
// it refused, and the chain stays as the handlers wrote it.
func TestEvidenceCustodyForged(t *testing.T) {
	w := newJournalWorld(t, true)
	id := w.submit("general", "a report to export", w.file("note.txt", "an attachment\n"))
	w.pullAll("alice", "carol")
	alice, carol := w.keyID("alice"), w.keyID("carol")
	w.ok("alice", "show", id)
	w.ok("alice", "sync")
	real := w.proxy.lastPost(t, alice, "case")
	w.ok("carol", "sync")
	before := w.custody("carol", id)
	if len(before.Events) != 1 || before.Events[0].Change.Action != crypto.CustodyDecrypt || before.Events[0].Author.Key != alice {
		t.Fatalf("carol's custody chain: %+v", before)
	}
	// A share and a referral are custody events too.
	w.ok("alice", "case", "share", id, "--to", "carol", "--reason", "carol's new machine")
	w.ok("alice", "case", "refer", id, "--to", "Legal aid clinic", "--consent", "yes")
	w.ok("carol", "sync")
	before = w.custody("carol", id)
	var acts []string
	for _, ev := range before.Events {
		acts = append(acts, ev.Change.Action+":"+ev.Change.Detail+":"+ev.Change.Reason)
	}
	if len(acts) != 3 || !strings.HasPrefix(acts[1], "share:the case's history") || !strings.HasSuffix(acts[1], ":carol's new machine") ||
		acts[2] != "refer:to Legal aid clinic:" {
		t.Fatalf("after a share and a referral carol's custody chain is %q", acts)
	}
	route, _ := w.manifest().Route("general")
	hour := time.Now().UTC().Format("2006-01-02T15:00:00Z")
	impostor, err := crypto.GenerateIdentity("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	meta := w.caseMeta("carol", id)
	e := &crypto.Event{Desk: journalDesk, Case: id, CaseSHA256: meta.SHA256, Category: "general", Seq: 9, Clock: 9,
		Prev: strings.Repeat("ab", 32), Time: time.Now().UTC().Format("2006-01-02T15:04:05Z"),
		Change: crypto.Change{Custody: &crypto.Custody{Action: crypto.CustodyExport, Reason: "forged",
			Files: []crypto.CustodyFile{{Name: "note.txt", SHA256: strings.Repeat("00", 32), Size: 1}}}}}
	if err := crypto.SignEvent(e, impostor); err != nil {
		t.Fatal(err)
	}
	e.Author = alice
	js, err := crypto.MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	var items []api.Item
	_, it := w.proxy.invent(sealTo(t, route, js), journalDesk, "general", hour)
	items = append(items, it)
	changed := w.proxy.body(t, real)
	changed[len(changed)-20] ^= 1
	_, it = w.proxy.invent(changed, journalDesk, "general", hour)
	items = append(items, it)
	w.proxy.attack(carol, func(in []api.Item) []api.Item { return append(in, items...) }, nil)
	r := w.amana("carol", "sync")
	w.proxy.attack("", nil, nil)
	if !strings.Contains(r.stderr, "2 refused") || !strings.Contains(r.stderr, "signature does not verify") {
		t.Errorf("carol's sync does not refuse the forged custody events:\n%s", r.stderr)
	}
	if after := w.custody("carol", id); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("forged custody events changed the chain:\n%+v\n%+v", before, after)
	}
}
