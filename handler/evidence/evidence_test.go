package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTools skips a test when a tool is missing, loudly, and only when CI
// is unset: CI (.ci/run) installs them all.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
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
	fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: missing %s (apt-get install libimage-exiftool-perl mat2 bubblewrap ffmpeg) ***\n", t.Name(), strings.Join(missing, ", "))
	t.Skip("missing " + strings.Join(missing, ", "))
}

// gpsJPEG writes a small JPEG carrying a GPS position, a make, a model,
// an artist, a capture time and a software name, as exiftool writes them.
func gpsJPEG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	img.Set(1, 1, color.White)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("exiftool", "-q", "-overwrite_original", "-GPSLatitude=33.89", "-GPSLatitudeRef=N",
		"-GPSLongitude=35.50", "-GPSLongitudeRef=E", "-Make=TestPhone", "-Model=X1", "-Artist=Jane Roe",
		"-DateTimeOriginal=2026:11:30 14:02:11", "-Software=CamApp 2", path).CombinedOutput()
	if err != nil {
		t.Fatalf("exiftool: %v: %s", err, out)
	}
}

func TestParseExiftool(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // kind=tag=value
		err      bool
	}{
		{"photo", `[{"SourceFile":"-","ExifTool:ExifToolVersion":12.57,"System:FileSize":10,"File:FileType":"JPEG",
			"IFD0:Make":"TestPhone","IFD0:Model":"X1","IFD0:Software":"CamApp","IFD0:Artist":"Jane",
			"ExifIFD:DateTimeOriginal":"2026:11:30 14:02:11","GPS:GPSLatitude":33.89,"Composite:GPSPosition":"33.89 35.5",
			"ExifIFD:ExposureTime":0.01}]`,
			[]string{"location=GPS:GPSLatitude=33.89", "location=Composite:GPSPosition=33.89 35.5", "device=IFD0:Make=TestPhone",
				"device=IFD0:Model=X1", "person=IFD0:Artist=Jane", "time=ExifIFD:DateTimeOriginal=2026:11:30 14:02:11", "software=IFD0:Software=CamApp"}, false},
		{"pdf creator is software, zero dates dropped", `[{"PDF:Creator":"Writer","PDF:Author":"Jane","QuickTime:CreateDate":"0000:00:00 00:00:00","XMP-x:XMPToolkit":["a","b"]}]`,
			[]string{"person=PDF:Author=Jane", "software=PDF:Creator=Writer", "software=XMP-x:XMPToolkit=a, b"}, false},
		{"nothing", `[{"SourceFile":"-","File:FileType":"TXT"}]`, nil, false},
		{"error", `[{"ExifTool:Error":"Unknown file type"}]`, nil, false},
		{"empty array", `[]`, nil, true},
		{"two files", `[{},{}]`, nil, true},
		{"not JSON", `Error: x`, nil, true},
		{"trailing", `[{}] x`, nil, true},
		{"object", `{}`, nil, true},
		{"unterminated", `[{"a:b":"c"`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, err := ParseExiftool([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, ErrExiftoolJSON) {
					t.Fatalf("got %v, want ErrExiftoolJSON", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range md.Findings {
				got = append(got, f.Kind+"="+f.Tag+"="+f.Value)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.name == "error" && md.Err == "" {
				t.Error("exiftool's error is lost")
			}
		})
	}
	long := `[{"IFD0:Artist":"` + strings.Repeat("é", 300) + `"}]`
	md, err := ParseExiftool([]byte(long))
	if err != nil || len(md.Findings[0].Value) > MaxValue+len("…") {
		t.Fatalf("a long value is not cut: %v", err)
	}
}

func FuzzParseExiftool(f *testing.F) {
	f.Add([]byte(`[{"SourceFile":"-","IFD0:Make":"A","GPS:GPSLatitude":1.5,"XMP-x:XMPToolkit":["a",{"b":1}]}]`))
	f.Add([]byte(`[{"ExifTool:Error":"Unknown file type"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := ParseExiftool(b)
		if err != nil {
			return
		}
		if len(md.Findings) > MaxFindings {
			t.Fatalf("%d findings", len(md.Findings))
		}
		for _, fd := range md.Findings {
			if len(fd.Value) > MaxValue+len("…") || strings.ContainsAny(fd.Value, "\n\t") {
				t.Fatalf("value not bounded to one line: %q", fd.Value)
			}
		}
	})
}

func FuzzParseSums(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 64) + "  originals/x.jpg\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		sums, err := ParseSums(b)
		if err != nil {
			return
		}
		again, err := MarshalSums(sums)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("what parses does not write back: %v\n%q\n%q", err, b, again)
		}
	})
}

func TestParseSums(t *testing.T) {
	h := strings.Repeat("0", 64)
	for _, bad := range []string{h + " x\n", h + "  x", h + "  ../x\n", h + "  /x\n", h + "  a//b\n", h + "  x\n" + h + "  x\n",
		strings.ToUpper(strings.Repeat("a", 64)) + "  x\n", h + "  a\\b\n", h[:63] + "  x\n"} {
		if _, err := ParseSums([]byte(bad)); !errors.Is(err, ErrSums) {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

// writeBundle makes a sealed bundle with a file in a subdirectory.
func writeBundle(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(nil)
	os.MkdirAll(filepath.Join(dir, "originals"), 0o700)
	for name, data := range map[string]string{"originals/photo 1.jpg": "\xff\xd8 not really", "report.json": "{}\n", "custody.json": "[]\n"} {
		if err := WriteNew(filepath.Join(dir, name), []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Seal(dir, priv); err != nil {
		t.Fatal(err)
	}
	return dir, priv
}

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(dir string)
		want   []Problem
	}{
		{"intact", func(string) {}, nil},
		{"one byte changed", func(dir string) { flipByte(t, filepath.Join(dir, "originals/photo 1.jpg")) },
			[]Problem{{"originals/photo 1.jpg", ProblemChanged}}},
		{"readme changed", func(dir string) { flipByte(t, filepath.Join(dir, ReadmeFile)) }, []Problem{{ReadmeFile, ProblemChanged}}},
		{"removed", func(dir string) { os.Remove(filepath.Join(dir, "report.json")) }, []Problem{{"report.json", ProblemMissing}}},
		{"added", func(dir string) { os.WriteFile(filepath.Join(dir, "originals", "more.txt"), []byte("x"), 0o600) },
			[]Problem{{"originals/more.txt", ProblemExtra}}},
		{"sums changed", func(dir string) { flipByte(t, filepath.Join(dir, SumsFile)) }, nil},
		{"signature changed", func(dir string) { flipByte(t, filepath.Join(dir, SigFile)) }, []Problem{{SigFile, ProblemSignature}}},
		{"signature removed", func(dir string) { os.Remove(filepath.Join(dir, SigFile)) }, []Problem{{SigFile, ProblemMissing}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, priv := writeBundle(t)
			tc.break_(dir)
			v, err := Verify(dir)
			if tc.name == "sums changed" {
				// A changed SHA256SUMS is malformed or fails its signature.
				if err == nil && !hasProblem(v, SigFile, ProblemSignature) {
					t.Fatalf("a changed SHA256SUMS passes: %+v", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !v.Key.Equal(priv.Public()) {
				t.Error("wrong key")
			}
			if fmt.Sprint(v.Problems) != fmt.Sprint(tc.want) {
				t.Errorf("problems %v, want %v", v.Problems, tc.want)
			}
		})
	}
}

func hasProblem(v *Verification, path, what string) bool {
	for _, p := range v.Problems {
		if p.Path == path && p.What == what {
			return true
		}
	}
	return false
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBundleThirdParty: the README's two commands, on the real tools,
// pass on a sealed bundle and fail after a byte changes.
func TestBundleThirdParty(t *testing.T) {
	needTools(t, "sha256sum", "openssl")
	dir, _ := writeBundle(t)
	sums := exec.Command("sha256sum", "-c", "--quiet", SumsFile)
	sums.Dir = dir
	if out, err := sums.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	verify := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", KeyFile, "-rawin", "-in", SumsFile, "-sigfile", SigFile)
	verify.Dir = dir
	if out, err := verify.CombinedOutput(); err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	if !strings.Contains(Readme, strings.Join(verify.Args[1:], " ")) || !strings.Contains(Readme, "sha256sum -c SHA256SUMS") {
		t.Fatal("README.txt does not give the commands tested here")
	}
}

func TestInspectAndClean(t *testing.T) {
	needTools(t, "exiftool", "mat2", "bwrap", "prlimit")
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "photo.jpg")
	gpsJPEG(t, src)
	orig, _ := os.ReadFile(src)
	in := &Inspector{}
	if err := in.Check(ctx); err != nil {
		t.Fatal(err)
	}
	md, err := in.Inspect(ctx, bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		if len(md.Of(k)) == 0 {
			t.Errorf("no %s found in %+v", k, md.Findings)
		}
	}
	var c Cleaner
	cl, err := c.Clean(ctx, src, dir, "photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if cl.Name != "photo.cleaned.jpg" || filepath.Dir(cl.Path) != dir {
		t.Fatalf("cleaned copy at %s", cl.Path)
	}
	after, _ := os.ReadFile(src)
	if !bytes.Equal(orig, after) {
		t.Fatal("the original changed")
	}
	cleaned, _ := os.ReadFile(cl.Path)
	md2, err := in.Inspect(ctx, bytes.NewReader(cleaned), int64(len(cleaned)))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{KindLocation, KindDevice, KindPerson, KindTime} {
		if f := md2.Of(k); len(f) > 0 {
			t.Errorf("the cleaned copy still shows %s: %+v", k, f)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("scratch left behind: %v", ents)
	}
	defer func() {
		for _, e := range must(os.ReadDir(dir)) {
			if strings.HasPrefix(e.Name(), ".amana-clean-") {
				t.Errorf("scratch left behind: %s", e.Name())
			}
		}
	}()
	if _, err := c.Clean(ctx, src, dir, "photo.jpg"); err == nil {
		t.Error("an existing cleaned copy was overwritten")
	}
	// A file mat2 cannot clean is refused, with no copy.
	bad := filepath.Join(dir, "notes.xyz")
	os.WriteFile(bad, []byte("hello"), 0o600)
	if _, err := c.Clean(ctx, bad, dir, "notes.xyz"); !errors.Is(err, ErrNotCleaned) {
		t.Fatalf("got %v, want ErrNotCleaned", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.cleaned.xyz")); err == nil {
		t.Error("a copy of an uncleanable file was written")
	}
	// Nor is a damaged file of a format it knows, nor a video it cannot
	// remux: mat2 fails, and leaves no copy.
	for _, name := range []string{"broken.jpg", "broken.mp4"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte{7}, 500)...), 0o600)
		if _, err := c.Clean(ctx, p, dir, name); !errors.Is(err, ErrNotCleaned) {
			t.Errorf("%s: got %v, want ErrNotCleaned", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, CleanedName(name))); err == nil {
			t.Errorf("a copy of the damaged %s was written", name)
		}
	}
	// A damaged reader is a ReadError, and exiftool's failures are not.
	_, err = in.Inspect(ctx, &failing{}, 0)
	var re *ReadError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a ReadError", err)
	}
}

type failing struct{ n int }

func (f *failing) Read(p []byte) (int, error) {
	if f.n > 2 {
		return 0, errors.New("digest mismatch")
	}
	f.n++
	return copy(p, "\xff\xd8\xff"), nil
}

// TestSandboxHasNoNetwork: the tools run without a network, without the
// handler's home or environment, cannot write to the host, and their
// output is bounded.
func TestSandboxHasNoNetwork(t *testing.T) {
	needTools(t, "bwrap", "prlimit")
	sb := &Sandbox{}
	out, _, err := sb.exec(context.Background(), &run{}, "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1; echo --; ls /root /home 2>&1; env")
	if err != nil {
		t.Fatal(err)
	}
	ifaces, rest, _ := strings.Cut(string(out), "--\n")
	if strings.Join(strings.Fields(ifaces), " ") != "lo" {
		t.Errorf("the sandbox sees network interfaces other than its own loopback: %q", ifaces)
	}
	if !strings.Contains(rest, "/root': No such file") || !strings.Contains(rest, "/home': No such file") || strings.Contains(rest, "AMANA") || strings.Contains(rest, "CI=") ||
		strings.Contains(rest, "GOPATH") {
		t.Errorf("the sandbox sees the home or the environment: %s", rest)
	}
	// Nothing it writes reaches the host: /tmp is its own, the rest read-only.
	probe := filepath.Join(os.TempDir(), "amana-sandbox-probe")
	os.Remove(probe)
	if _, _, err := sb.exec(context.Background(), &run{}, "sh", "-c", "echo x > "+probe+" && touch /usr/amana-probe"); err == nil {
		t.Error("the sandbox could write to /usr")
	}
	if _, err := os.Stat(probe); err == nil {
		os.Remove(probe)
		t.Error("a file the sandbox wrote to its /tmp is on the host")
	}
	if _, err := os.Stat("/usr/amana-probe"); err == nil {
		os.Remove("/usr/amana-probe")
		t.Error("the sandbox wrote to the host's /usr")
	}
	bigOut := &Sandbox{MaxOutput: 1000}
	if _, _, err := bigOut.exec(context.Background(), &run{}, "sh", "-c", "yes"); !errors.Is(err, ErrToolOutput) {
		t.Errorf("unbounded output: %v", err)
	}
}

// TestSandboxLimits: the limits docs/threat-model.md §8.14 names hold
// inside: CPU seconds, file size, open files, its own session (no
// terminal to inject into), no further user namespaces; and a tool's
// stderr saying "bwrap:" is the tool's failure, not a missing sandbox.
func TestSandboxLimits(t *testing.T) {
	needTools(t, "bwrap", "prlimit", "unshare")
	ctx := context.Background()
	sb := &Sandbox{CPU: 7 * time.Second}
	// The session is made inside (its leader is the sandbox's pid 1); the
	// handler's session, outside the PID namespace, would read 0.
	out, _, err := sb.exec(ctx, &run{fsize: 4096}, "sh", "-c", "ulimit -t; ulimit -n; cut -d' ' -f6 /proc/$$/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[0] != "7" || f[1] != "256" || f[2] == "0" {
		t.Errorf("CPU seconds, open files and session inside: %q, want 7, 256 and a session of its own", f)
	}
	if _, _, err := sb.exec(ctx, &run{fsize: 4096}, "sh", "-c", "head -c 10000 /dev/zero > /tmp/big"); err == nil {
		t.Error("the sandbox wrote a file past its size limit")
	}
	if _, _, err := sb.exec(ctx, &run{fsize: 4096}, "sh", "-c", "head -c 4000 /dev/zero > /tmp/small"); err != nil {
		t.Errorf("a file within the size limit: %v", err)
	}
	if out, _, err := sb.exec(ctx, &run{}, "sh", "-c", "unshare -U true && echo made"); err == nil || strings.Contains(string(out), "made") {
		t.Errorf("the tool could make a user namespace: %v %q", err, out)
	}
	_, _, err = sb.exec(ctx, &run{}, "sh", "-c", "echo 'bwrap: pretend' >&2; exit 1")
	var ee *exec.ExitError
	if errors.Is(err, ErrNoSandbox) || !errors.As(err, &ee) {
		t.Errorf("a tool's own \"bwrap:\" words: %v, want its exit error", err)
	}
}

// TestNoSandboxNoTool: without bubblewrap neither tool runs, and the
// reader is still read through (so show still verifies the attachment).
func TestNoSandboxNoTool(t *testing.T) {
	needTools(t, "exiftool", "mat2")
	missing := &Sandbox{Bwrap: filepath.Join(t.TempDir(), "absent")}
	in := &Inspector{Sandbox: missing}
	if err := in.Check(context.Background()); !errors.Is(err, ErrNoSandbox) {
		t.Fatalf("Check without bwrap: %v", err)
	}
	r := bytes.NewReader([]byte("\xff\xd8\xff some bytes"))
	if _, err := in.Inspect(context.Background(), r, 0); !errors.Is(err, ErrNoSandbox) || r.Len() != 0 {
		t.Fatalf("Inspect without bwrap: %v, %d bytes left unread", err, r.Len())
	}
	c := &Cleaner{Sandbox: missing}
	dir := t.TempDir()
	src := filepath.Join(dir, "a.jpg")
	os.WriteFile(src, []byte("x"), 0o600)
	if _, err := c.Clean(context.Background(), src, dir, "a.jpg"); !errors.Is(err, ErrNoSandbox) {
		t.Fatalf("Clean without bwrap: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("Clean without bwrap wrote %v", ents)
	}
}

// TestInspectLarge: a video larger than FastAbove, its location after the
// media data as phones write it, is read with -fast from a stream (never
// a file) and its location found.
func TestInspectLarge(t *testing.T) {
	needTools(t, "exiftool", "bwrap", "prlimit")
	dir := t.TempDir()
	// A QuickTime file: ftyp, a large mdat, then a moov with a ©xyz
	// location, written by exiftool into a small file first.
	small := filepath.Join(dir, "small.mov")
	mdat := []byte{0, 0, 0, 16, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 0}
	ftyp := []byte{0, 0, 0, 20, 'f', 't', 'y', 'p', 'q', 't', ' ', ' ', 0, 0, 0, 0, 'q', 't', ' ', ' '}
	mvhd := make([]byte, 108)
	copy(mvhd, []byte{0, 0, 0, 108, 'm', 'v', 'h', 'd'})
	moov := append([]byte{0, 0, 0, 116, 'm', 'o', 'o', 'v'}, mvhd...)
	os.WriteFile(small, append(append(ftyp, moov...), mdat...), 0o600)
	out, err := exec.Command("exiftool", "-q", "-overwrite_original", "-UserData:GPSCoordinates=33.89, 35.50", small).CombinedOutput()
	if err != nil {
		t.Fatalf("exiftool: %v %s", err, out)
	}
	b, _ := os.ReadFile(small)
	// Move the moov (with its new udta) after a large mdat.
	i := bytes.Index(b, []byte("moov")) - 4
	n := int(b[i])<<24 | int(b[i+1])<<16 | int(b[i+2])<<8 | int(b[i+3])
	moovNew := b[i : i+n]
	size := int64(FastAbove + 1<<20)
	hdr := []byte{0, 0, 0, 0, 'm', 'd', 'a', 't'}
	hdr[0], hdr[1], hdr[2], hdr[3] = byte((size+8)>>24), byte((size+8)>>16), byte((size+8)>>8), byte(size+8)
	r := io.MultiReader(bytes.NewReader(ftyp), bytes.NewReader(hdr), io.LimitReader(zeros{}, size), bytes.NewReader(moovNew))
	md, err := (&Inspector{}).Inspect(context.Background(), r, int64(len(ftyp)+8+len(moovNew))+size)
	if err != nil {
		t.Fatal(err)
	}
	if !md.Fast || len(md.Of(KindLocation)) == 0 {
		t.Fatalf("fast %v, findings %+v, error %q", md.Fast, md.Findings, md.Err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
