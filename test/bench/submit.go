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
	// PeakRSSMiB is the amana process's peak resident memory (getrusage's
	// ru_maxrss of the child), zero where the system does not report it.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	RSSAimMiB  float64 `json:"rss_aim_mib"`
}

func (r *submitResult) print(out io.Writer) {
	rss := "n/a"
	if r.PeakRSSMiB > 0 {
		rss = fmt.Sprintf("%.0f MiB (aim < %.0f MiB)", r.PeakRSSMiB, r.RSSAimMiB)
	}
	printLine(out, fmt.Sprintf("amana submit (one %s file)", mib(r.FileBytes)),
		fmt.Sprintf("%.0f MiB/s end to end (hash, seal, upload)  peak RSS %s", r.MiBps, rss))
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

	cmd := exec.CommandContext(ctx, filepath.Join(dir, "amana"), "submit", "--relay", p.URL, "--desk", deskID,
		"--message-file", msg, "--file", file, "--json")
	cmd.Env = append(os.Environ(), "AMANA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("amana submit: %w\n%s\n%s", err, stderr.String(), p.Tail())
	}
	if !strings.Contains(stdout.String(), `"sha256"`) {
		return nil, fmt.Errorf("amana submit printed no receipt:\n%s\n%s", stdout.String(), stderr.String())
	}
	r := &submitResult{FileBytes: cfg.submitSize, Seconds: took.Seconds(), MiBps: toMiB(cfg.submitSize) / took.Seconds(), RSSAimMiB: submitRSSAimMiB}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		r.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return r, nil
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
