package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// makeVideo writes a real MP4 of about 300 MiB to path, carrying a
// location (QuickTime loci, ©xyz and Keys) and a device make and model,
// and returns its SHA-256. Random frames encoded as MPEG-4 Part 2 at the
// highest quality give about 1.6 MiB a frame; one second is encoded and
// then looped by stream copy, which costs no encoding, so the file takes
// seconds to make. It is MP4 with moov first (faststart), as phones
// write it, so exiftool reading a stream with -fast still reaches the
// metadata; mat2 cleans it by stream copy through ffmpeg.
func makeVideo(t *testing.T, path string) string {
	t.Helper()
	start := time.Now()
	seg := filepath.Join(t.TempDir(), "seg.mp4")
	ffmpeg := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ffmpeg", append([]string{"-y", "-v", "error", "-nostdin"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	ffmpeg("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "1280x720", "-r", "30", "-i", "/dev/urandom",
		"-frames:v", "30", "-c:v", "mpeg4", "-q:v", "1", "-g", "1", seg)
	ffmpeg("-stream_loop", "-1", "-i", seg, "-c", "copy", "-frames:v", "190",
		"-metadata", "location=+33.8900+035.5000/", "-movflags", "+faststart", path)
	os.Remove(seg)
	exiftoolSet(t, path, "-UserData:GPSCoordinates=33.89, 35.50, 10", "-Keys:GPSCoordinates=33.89, 35.50",
		"-UserData:Make=TestPhone", "-UserData:Model=X1")
	if k := exifKeys(t, path); k["UserData:GPSCoordinates"] == nil || k["UserData:Make"] != "TestPhone" || k["UserData:Model"] != "X1" {
		t.Fatalf("the generated video lacks its location or device: %v", k)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 290<<20 || fi.Size() > 310<<20 {
		t.Fatalf("the generated video is %d MiB, not about 300", fi.Size()/MiB)
	}
	os.Chmod(path, 0o600)
	t.Logf("made a %.1f MiB video in %.1f s", float64(fi.Size())/MiB, time.Since(start).Seconds())
	return fileSHA256(t, path)
}

// videoToBundle takes the video the browser sent (report id, sent as name,
// with SHA-256 want) from alice's pull to a verified evidence bundle:
// show names its location and device; export --clean writes the original
// byte for byte beside a copy in which exiftool finds neither; the bundle
// passes 'amana evidence verify', sha256sum -c and openssl; and the
// original in it has the SHA-256 the submitter's page computed and wrote
// in report.json, which is the generated file's.
func videoToBundle(t *testing.T, w *world, id, name, want string) {
	t.Helper()
	start := time.Now()
	key := w.path("alice.key")
	var steps []string
	amana := func(args ...string) result {
		t.Helper()
		t0 := time.Now()
		r := must(t, run(t, w.home("alice"), nil, "amana", append(args, "-i", key)...))
		label := args[0]
		if slices.Contains(args, "--clean") || args[0] == "evidence" {
			label += " " + map[bool]string{true: "--clean", false: args[1]}[args[0] == "export"]
		}
		steps = append(steps, fmt.Sprintf("%s %.1f s", label, time.Since(t0).Seconds()))
		return r
	}
	amana("pull", "--relay", w.relay)
	show := amana("show", id)
	for _, s := range []string{name, "verified", "reveals location: ", "(UserData:GPSCoordinates)", "reveals device: TestPhone (UserData:Make); X1 (UserData:Model)"} {
		if !strings.Contains(show.stdout, s) {
			t.Errorf("show lacks %q:\n%s", s, show.stdout)
		}
	}
	out := w.path("export-" + id[:8])
	amana("export", id, "--out", out, "--clean", "--reason", "working copy of the video")
	if got := fileSHA256(t, filepath.Join(out, name)); got != want {
		t.Fatalf("the exported original has SHA-256 %s, the generated file %s", got, want)
	}
	cleaned := filepath.Join(out, "cleaned", "clip.cleaned.mp4")
	if k := exifKeys(t, cleaned); len(revealing(k)) > 0 || k["UserData:LocationInformation"] != nil || k["Composite:GPSPosition"] != nil {
		t.Errorf("exiftool still finds %v or a location in the cleaned copy: %v", revealing(k), k)
	}
	if fileSHA256(t, cleaned) == want {
		t.Error("the cleaned copy is the original")
	}
	os.RemoveAll(out)

	bundle := w.path("bundle-" + id[:8])
	amana("evidence", "export", id, "--out", bundle, "--reason", "for the tribunal")
	var report crypto.Report
	rb, err := os.ReadFile(filepath.Join(bundle, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rb, &report); err != nil || len(report.Attachments) != 1 {
		t.Fatalf("report.json: %v, %d attachments", err, len(report.Attachments))
	}
	if a := report.Attachments[0]; a.Name != name || a.SHA256 != want {
		t.Errorf("the submitter's page wrote %s with SHA-256 %s in report.json; the generated file is %s", a.Name, a.SHA256, want)
	}
	if got := fileSHA256(t, filepath.Join(bundle, "originals", name)); got != want {
		t.Errorf("the bundle's original has SHA-256 %s, the generated file %s", got, want)
	}
	if left := revealing(exifKeys(t, filepath.Join(bundle, "derived", "clip.cleaned.mp4"))); len(left) > 0 {
		t.Errorf("exiftool finds %v in the bundle's cleaned copy", left)
	}
	r := run(t, w.home("alice"), nil, "amana", "evidence", "verify", bundle)
	if r.code != 0 || !strings.Contains(r.stderr, "none missing or extra") {
		t.Errorf("evidence verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, c := range [][]string{
		{"sha256sum", "-c", "--quiet", "SHA256SUMS"},
		{"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "handler.pub.pem", "-rawin", "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"},
		{"bash", "-c", listingCheck},
	} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = bundle
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%v in the bundle: %v\n%s", c, err, out)
		}
	}
	os.RemoveAll(bundle)
	t.Logf("from the pull to the checked bundle: %.1f s (%s)", time.Since(start).Seconds(), strings.Join(steps, ", "))
}
