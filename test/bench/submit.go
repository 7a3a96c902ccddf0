package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/amana-relay/amana/test/internal/relayproc"
)

// submitRSSAimMiB is what 'amana submit' should stay under, resident,
// whatever the size of its files (docs/reliability.md).
const submitRSSAimMiB = 64

// submitSeed seeds the submitted file's bytes.
const submitSeed = 3

type submitResult struct {
	FileBytes int64   `json:"file_bytes"`
	Seconds   float64 `json:"seconds"`
	MiBps     float64 `json:"mib_per_sec"`
	// PeakRSSMiB is the amana process's peak resident memory (its VmHWM,
	// sampled every 10 ms; getrusage's ru_maxrss where there is no /proc),
	// zero where the system does not report it.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	RSSAimMiB  float64 `json:"rss_aim_mib"`
	// Rounds is amana submit's time in each round (Seconds is the median).
	Rounds []float64 `json:"round_seconds"`
	// OnionShare is the same file through OnionShare's receive mode,
	// alternating with amana submit; nil with OnionShareSkipped saying why.
	OnionShare        *onionShareResult `json:"onionshare,omitempty"`
	OnionShareSkipped string            `json:"onionshare_skipped,omitempty"`
	// Before is the -before checkout's amana and relay in the same rounds.
	Before           string    `json:"before,omitempty"`
	BeforeSeconds    float64   `json:"before_seconds,omitempty"`
	BeforePeakRSSMiB float64   `json:"before_peak_rss_mib,omitempty"`
	BeforeRounds     []float64 `json:"before_round_seconds,omitempty"`
}

func (r *submitResult) print(out io.Writer) {
	rss := "n/a"
	if r.PeakRSSMiB > 0 {
		rss = fmt.Sprintf("%.0f MiB (aim < %.0f MiB)", r.PeakRSSMiB, r.RSSAimMiB)
	}
	printLine(out, fmt.Sprintf("amana submit (one %s file)", mib(r.FileBytes)),
		fmt.Sprintf("%.0f MiB/s end to end (hash, seal, upload)  peak RSS %s; median of %d rounds", r.MiBps, rss, len(r.Rounds)))
	if r.Before != "" {
		printLine(out, "  before ("+r.Before+")", fmt.Sprintf("%.1fs (now %.1fs: %.2fx as fast), peak RSS %.0f MiB",
			r.BeforeSeconds, r.Seconds, ratio(r.BeforeSeconds, r.Seconds), r.BeforePeakRSSMiB))
	}
	if o := r.OnionShare; o != nil {
		printLine(out, "  vs OnionShare receive mode (plaintext)",
			fmt.Sprintf("OnionShare %.1fs, with sync %.1fs, amana %.1fs: time ratio %.2fx, %.2fx with sync (aim <= %.1fx); OnionShare peak RSS %.0f MiB",
				o.Seconds, o.SyncSeconds, r.Seconds, o.Ratio, o.SyncRatio, o.Aim, o.PeakRSSMiB))
		if r.Before != "" {
			printLine(out, "  before vs OnionShare", fmt.Sprintf("time ratio %.2fx, %.2fx with sync",
				ratio(r.BeforeSeconds, o.Seconds), ratio(r.BeforeSeconds, o.SyncSeconds)))
		}
	} else {
		printLine(out, "  vs OnionShare receive mode", "skipped: "+r.OnionShareSkipped)
	}
}

// benchSubmit runs the real 'amana submit', built from this tree, with one
// attachment of cfg.submitSize bytes to an amana-relay process, and records
// the amana process's peak resident memory: the client reads the file
// twice (its SHA-256 goes into report.json, which comes first) and seals and
// uploads it as a stream, so its memory must not grow with the file.
func benchSubmit(ctx context.Context, cfg *config, dir string) (*submitResult, error) {
	maxGiB := relayLimitGiB(cfg.submitSize)
	d, err := newDesk(2, cfg.classic, maxGiB<<30)
	if err != nil {
		return nil, err
	}
	if err := relayproc.Build(ctx, dir, "./cmd/amana-relay", "./cmd/amana"); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "relay-data")
	if err := relayproc.Init(ctx, filepath.Join(dir, "amana-relay"), data, d.Admin.Card()); err != nil {
		return nil, err
	}
	p, err := relayproc.StartRelay(ctx, filepath.Join(dir, "amana-relay"), data, nil,
		"--quota", fmt.Sprintf("%dGiB", 2*maxGiB), "--max-submission", fmt.Sprintf("%dGiB", maxGiB))
	if err != nil {
		return nil, err
	}
	defer p.StopRelay()
	if err := d.Publish(ctx, p.URL); err != nil {
		return nil, err
	}

	file := filepath.Join(dir, "video.bin")
	if err := writeFile(file, stream(submitSeed, cfg.submitSize)); err != nil {
		return nil, err
	}
	defer os.Remove(file)
	msg := filepath.Join(dir, "message.txt")
	if err := os.WriteFile(msg, []byte("a large file from amana submit\n"), 0o600); err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return nil, err
	}

	r := &submitResult{FileBytes: cfg.submitSize, RSSAimMiB: submitRSSAimMiB, OnionShareSkipped: onionShareMissing()}
	var beforeURL string
	if cfg.before != "" {
		r.Before = cfg.before
		bdir := filepath.Join(dir, "before")
		if err := buildIn(ctx, cfg.before, bdir, "./cmd/amana-relay", "./cmd/amana"); err != nil {
			return nil, err
		}
		bdata := filepath.Join(bdir, "relay-data")
		if err := relayproc.Init(ctx, filepath.Join(bdir, "amana-relay"), bdata, d.Admin.Card()); err != nil {
			return nil, err
		}
		bp, err := relayproc.StartRelay(ctx, filepath.Join(bdir, "amana-relay"), bdata, nil,
			"--quota", fmt.Sprintf("%dGiB", 2*maxGiB), "--max-submission", fmt.Sprintf("%dGiB", maxGiB))
		if err != nil {
			return nil, err
		}
		defer bp.StopRelay()
		if err := d.Publish(ctx, bp.URL); err != nil {
			return nil, err
		}
		if err := os.Mkdir(filepath.Join(bdir, "home"), 0o700); err != nil {
			return nil, err
		}
		beforeURL = bp.URL
	}
	var os1 *onionShare
	if r.OnionShareSkipped == "" {
		if os1, err = startOnionShare(ctx, dir); err != nil {
			return nil, err
		}
		defer os1.stop()
	}
	var plain, synced []float64
	for i := 0; i < cfg.rounds; i++ {
		took, rss, err := runSubmit(ctx, filepath.Join(dir, "amana"), home, p.URL, msg, file)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, p.Tail())
		}
		r.Rounds = append(r.Rounds, took.Seconds())
		r.PeakRSSMiB = max(r.PeakRSSMiB, rss)
		if beforeURL != "" {
			bdir := filepath.Join(dir, "before")
			took, rss, err := runSubmit(ctx, filepath.Join(bdir, "amana"), filepath.Join(bdir, "home"), beforeURL, msg, file)
			if err != nil {
				return nil, fmt.Errorf("before: %w", err)
			}
			r.BeforeRounds = append(r.BeforeRounds, took.Seconds())
			r.BeforePeakRSSMiB = max(r.BeforePeakRSSMiB, rss)
		}
		if os1 == nil {
			continue
		}
		for _, sync := range []bool{false, true} {
			t, err := os1.upload(ctx, file, sync)
			if err != nil {
				return nil, err
			}
			if sync {
				synced = append(synced, t.Seconds())
			} else {
				plain = append(plain, t.Seconds())
			}
		}
	}
	r.Seconds = median(append([]float64(nil), r.Rounds...))
	r.BeforeSeconds = median(append([]float64(nil), r.BeforeRounds...))
	r.MiBps = toMiB(cfg.submitSize) / r.Seconds
	if os1 != nil {
		o := &onionShareResult{Seconds: median(plain), SyncSeconds: median(synced), Aim: onionShareAim, PeakRSSMiB: os1.peakMiB()}
		o.Ratio, o.SyncRatio = ratio(r.Seconds, o.Seconds), ratio(r.Seconds, o.SyncSeconds)
		r.OnionShare = o
	}
	return r, nil
}

// runSubmit runs 'amana submit' (the program bin) of file once and returns its time and peak
// resident memory in MiB (zero where the system does not say).
func runSubmit(ctx context.Context, bin, home, url, msg, file string) (time.Duration, float64, error) {
	cmd := exec.CommandContext(ctx, bin, "submit", "--relay", url, "--desk", deskID,
		"--message-file", msg, "--file", file, "--json")
	cmd.Env = append(os.Environ(), "AMANA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("amana submit: %w", err)
	}
	// The child's own VmHWM, sampled: getrusage's ru_maxrss of a child
	// started with vfork (as Go starts it) counts the parent's peak too,
	// this benchmark's, which can be the larger.
	sampler := relayproc.Sample(cmd.Process.Pid, 10*time.Millisecond)
	err := cmd.Wait()
	took := time.Since(start)
	sampler.Stop()
	if err != nil {
		return 0, 0, fmt.Errorf("amana submit: %w\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"sha256"`) {
		return 0, 0, fmt.Errorf("amana submit printed no receipt:\n%s\n%s", stdout.String(), stderr.String())
	}
	var rss float64
	if each, _, ok := sampler.Peaks(); ok {
		rss = toMiB(each.Peak)
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		rss = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return took, rss, nil
}

// writeFile writes what r gives to a new file at path.
func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
