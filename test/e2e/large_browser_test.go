package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests in this file send large files from the desk page with
// JavaScript on, in Chromium, with and without JIT: the page hashes each
// file, then reads it again through typage's streaming encryption into the
// upload's pieces (docs/protocol.md §10.13), so its memory does not grow
// with the file.

// pageMemoryBound is how much the page's renderer may grow above what it
// held before the report was sent (§10.13): its peak resident memory, so
// garbage the page no longer holds but V8 has not yet collected counts too
// (V8 lets array buffers pile up to about 64 MiB before it collects them;
// measured: about 100 MiB with a 300 MiB file, 40 MiB without JIT). A page
// that held the file, the bundle or the ciphertext in memory would exceed
// it with a 300 MiB file: the file alone is 300 MiB.
const pageMemoryBound = 160 << 20

// heapBound is the same for the page's JS heap (performance.memory).
const heapBound = 96 << 20

// MiB is a mebibyte, for the figures the tests log.
const MiB = 1 << 20

// largeDriven is what drive.mjs reports with cfg.memory set.
type largeDriven struct {
	driven
	ElapsedMs int64 `json:"elapsedMs"`
	Memory    *struct {
		Renderers []struct {
			PID         int   `json:"pid"`
			BaselineRSS int64 `json:"baselineRSS"`
			PeakHWM     int64 `json:"peakHWM"`
		} `json:"renderers"`
		HeapBaseline int64 `json:"heapBaseline"`
		HeapPeak     int64 `json:"heapPeak"`
		Samples      []struct {
			Ms   int64   `json:"ms"`
			RSS  []int64 `json:"rss"`
			Heap int64   `json:"heap"`
		} `json:"samples"`
		Statuses []struct {
			Status string `json:"status"`
			Ms     int64  `json:"ms"`
		} `json:"statuses"`
	} `json:"memory"`
}

// writeRandomFile writes n random bytes to path without holding them and
// returns their SHA-256 in hex.
func writeRandomFile(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fileSHA256 is the SHA-256 of the file at path, in hex.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sendLarge sends a file of size bytes from the desk page as cfg says, and
// checks that it reached alice's case byte-identical: show verified the
// decrypted file against the SHA-256 the page computed and put in
// report.json, and the exported file has the original's SHA-256.
func sendLarge(t *testing.T, w *world, cfg map[string]any, name string, size int64) *largeDriven {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	want := writeRandomFile(t, file, size)
	var d largeDriven
	driveInto(t, with(cfg, "text", "a large file", "category", "incident", "file", file, "memory", true), &d)
	checkDriven(t, &d.driven)
	if len(d.Receipt.ID) != 32 {
		t.Fatalf("no receipt: status %q\nconsole:\n%s", d.Status, strings.Join(d.Console, "\n"))
	}
	out, show := pullAndExport(t, w, "alice", d.Receipt.ID)
	if !strings.Contains(show, name) || !strings.Contains(show, "verified") {
		t.Fatalf("show does not verify the attachment:\n%s", show)
	}
	if got := fileSHA256(t, filepath.Join(out, name)); got != want {
		t.Fatalf("the attachment arrived with SHA-256 %s, sent %s", got, want)
	}
	os.RemoveAll(out)
	return &d
}

// checkMemory logs the page's memory figures and fails if its renderer grew
// by more than pageMemoryBound. It measures the renderer process's peak
// resident memory (VmHWM, which counts the JS heap, array buffers and
// everything else the page holds) against its resident memory before the
// report was sent, and the JS heap (performance.memory) against its own
// baseline.
func checkMemory(t *testing.T, d *largeDriven, size int64) {
	t.Helper()
	if d.Memory == nil || len(d.Memory.Renderers) == 0 {
		t.Fatalf("drive.mjs found no renderer process to measure: %+v", d.Memory)
	}
	var grew int64
	for _, r := range d.Memory.Renderers {
		if r.PeakHWM == 0 {
			t.Fatalf("renderer %d: no VmHWM read", r.PID)
		}
		if g := r.PeakHWM - r.BaselineRSS; g > grew {
			grew = g
		}
	}
	t.Logf("%d MiB file: sent in %.1f s; renderer peak %.1f MiB above its baseline (bound %d MiB); JS heap peak %.1f MiB above its baseline of %.1f MiB (bound %d MiB)",
		size/MiB, float64(d.ElapsedMs)/1000, float64(grew)/MiB, pageMemoryBound/MiB,
		float64(d.Memory.HeapPeak-d.Memory.HeapBaseline)/MiB, float64(d.Memory.HeapBaseline)/MiB, heapBound/MiB)
	for _, s := range d.Memory.Samples {
		if s.Ms >= 0 {
			t.Logf("  sample at %6.1f s: renderers %v MiB, JS heap %.1f MiB", float64(s.Ms)/1000, mibs(s.RSS), float64(s.Heap)/MiB)
		}
	}
	for _, s := range d.Memory.Statuses {
		t.Logf("  at %6.1f s: %s", float64(s.Ms)/1000, s.Status)
	}
	if grew >= pageMemoryBound {
		t.Errorf("the page's renderer grew by %.1f MiB sending a %d MiB file, bound %d MiB", float64(grew)/MiB, size/MiB, pageMemoryBound/MiB)
	}
	if d.Memory.HeapPeak-d.Memory.HeapBaseline >= heapBound {
		t.Errorf("the page's JS heap grew by %.1f MiB, bound %d MiB", float64(d.Memory.HeapPeak-d.Memory.HeapBaseline)/MiB, heapBound/MiB)
	}
}

// TestLargeBrowser sends 300 MiB from the desk page with JIT and checks the
// page's memory bound, then 50 MiB without JIT (Tor Browser's Safer level),
// in Chromium and in Firefox ESR, Tor Browser's engine, at Safer; the
// Firefox file at Standard is a real video with a location and a device,
// taken on to a verified evidence bundle with a cleaned copy.
func TestLargeBrowser(t *testing.T) {
	chromium := needBrowser(t)
	t.Parallel() // with the other long browser and onion tests (see doc.go)
	w := setup(t)
	base := map[string]any{"url": w.relay, "desk": "pq", "chromium": chromium, "timeout": 900000}

	t.Run("300 MiB with JIT", func(t *testing.T) {
		const size = 300 << 20
		d := sendLarge(t, w, base, "video.mp4", size)
		checkMemory(t, d, size)
		// Both passes showed: the hashing under "encrypting", the
		// encryption as it is sent under "uploading".
		var seen []string
		for _, s := range d.Memory.Samples {
			if s.Ms >= 0 {
				t.Logf("  sample at %6.1f s: renderers %v MiB, JS heap %.1f MiB", float64(s.Ms)/1000, mibs(s.RSS), float64(s.Heap)/MiB)
			}
		}
		for _, s := range d.Memory.Statuses {
			seen = append(seen, s.Status)
		}
		joined := strings.Join(seen, "|")
		if !strings.Contains(joined, "Encrypting") || !strings.Contains(joined, "Sending") {
			t.Errorf("the page did not show both passes: %q", seen)
		}
		if !twoPasses(d.Progress) {
			t.Errorf("the progress bar did not run once for each pass: %v", d.Progress)
		}
	})

	t.Run("50 MiB without JIT", func(t *testing.T) {
		const size = 50 << 20
		d := sendLarge(t, w, with(base, "jitless", true), "recording.ogg", size)
		checkMemory(t, d, size)
	})

	// Firefox ESR, Tor Browser's engine, through firefox.mjs (no memory
	// figures there): Blob byte streams and both passes in SpiderMonkey, at
	// Tor Browser's Standard level with 300 MiB and at Safer with 20 MiB
	// (50 MiB took 99 s there, docs/reliability.md).
	for _, c := range []struct {
		level string
		size  int64
	}{{"standard", 300 << 20}, {"safer", 20 << 20}} {
		t.Run(fmt.Sprintf("%d MiB in Firefox at %s", c.size/MiB, c.level), func(t *testing.T) {
			firefox := needFirefox(t)
			file := filepath.Join(t.TempDir(), "clip.mp4")
			var want string
			if c.level == "standard" {
				// A real video with a location and a device, taken on
				// to a verified evidence bundle (issue 16).
				needEvidenceTools(t)
				want = makeVideo(t, file)
			} else {
				want = writeRandomFile(t, file, c.size)
			}
			start := time.Now()
			d := drive(t, map[string]any{"url": w.relay, "browser": "firefox", "firefox": firefox, "level": c.level, "profiles": t.TempDir(),
				"desk": "pq", "text": "a large file from Firefox", "category": "incident", "file": file, "timeout": 900000})
			if len(d.Receipt.ID) != 32 {
				t.Fatalf("no receipt: status %q\nconsole:\n%s", d.Status, strings.Join(d.Console, "\n"))
			}
			t.Logf("%d MiB from Firefox at %s: %.1f s from opening the page to the receipt", c.size/MiB, c.level, time.Since(start).Seconds())
			if c.level == "standard" {
				videoToBundle(t, w, d.Receipt.ID, "clip.mp4", want)
				return
			}
			out, show := pullAndExport(t, w, "alice", d.Receipt.ID)
			if !strings.Contains(show, "verified") {
				t.Fatalf("show does not verify the attachment:\n%s", show)
			}
			if got := fileSHA256(t, filepath.Join(out, "clip.mp4")); got != want {
				t.Fatalf("the attachment arrived with SHA-256 %s, sent %s", got, want)
			}
			os.RemoveAll(out)
		})
	}
}

// mibs gives byte counts in whole MiB.
func mibs(b []int64) []int64 {
	out := make([]int64, len(b))
	for i, v := range b {
		out[i] = v >> 20
	}
	return out
}

// twoPasses reports whether the progress bar's values rose past the middle,
// fell back and rose again: pass 1 (hashing) and pass 2 (encrypting as it
// is sent) each had their run.
func twoPasses(p []float64) bool {
	first := 0.0
	for i, v := range p {
		if v > first {
			first = v
		}
		if i > 0 && v < p[i-1] && first >= 0.5 {
			for _, w := range p[i:] {
				if w >= 0.5 {
					return true
				}
			}
		}
	}
	return false
}
