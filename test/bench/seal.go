package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// sealAim: client sealing should take at most this many times as long as
// the reference age encrypting the same bytes to the same recipients.
const sealAim = 1.5

// sealSeed seeds the sealed file's bytes.
const sealSeed = 4

type sealResult struct {
	FileBytes int64 `json:"file_bytes"`
	// Rounds alternate the two: amana's sealing, then age on the same file.
	Rounds []sealRound `json:"rounds"`
	// AmanaSeconds is the median time of what 'amana submit' does before
	// the network: seal the padded bundle in one read of the file (no
	// sha256 in report.json), the ciphertext's SHA-256 for the receipt
	// check taken beside the encryption; the output is discarded.
	AmanaSeconds float64 `json:"amana_seconds"`
	// AgeSeconds is the median time of 'age -r ... -o /dev/null FILE',
	// built from the module's age version, to the same recipients.
	AgeSeconds float64 `json:"age_seconds"`
	Ratio      float64 `json:"ratio"` // amana / age, median of the rounds
	Aim        float64 `json:"aim_ratio"`
	Recipients string  `json:"recipients"`
}

type sealRound struct {
	AmanaSeconds float64 `json:"amana_seconds"`
	AgeSeconds   float64 `json:"age_seconds"`
	Ratio        float64 `json:"ratio"`
}

func (r *sealResult) print(out io.Writer) {
	printLine(out, fmt.Sprintf("client sealing (one %s file)", mib(r.FileBytes)),
		fmt.Sprintf("amana %.0f MiB/s  age %.0f MiB/s  time ratio %.2fx (aim <= %.1fx; median of %d alternating rounds; %s)",
			toMiB(r.FileBytes)/r.AmanaSeconds, toMiB(r.FileBytes)/r.AgeSeconds, r.Ratio, r.Aim, len(r.Rounds), r.Recipients))
}

// benchSeal times amana's client-side sealing of one file of cfg.uploadSize
// bytes against the reference age encrypting the same file to the same
// recipients, in cfg.rounds alternating rounds. Both read the file from the
// page cache and write nowhere.
func benchSeal(ctx context.Context, cfg *config, dir string) (*sealResult, error) {
	d, err := newDesk(2, cfg.classic, 1<<40)
	if err != nil {
		return nil, err
	}
	if err := relayproc.Build(ctx, dir, "filippo.io/age/cmd/age"); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "video.bin")
	if err := writeFile(file, stream(sealSeed, cfg.uploadSize)); err != nil {
		return nil, err
	}
	defer os.Remove(file)
	recips := crypto.RecipientsOf(d.Cards())
	args := []string{"-o", os.DevNull}
	for _, rc := range recips {
		args = append(args, "-r", rc)
	}
	args = append(args, file)
	r := &sealResult{FileBytes: cfg.uploadSize, Aim: sealAim, Recipients: fmt.Sprintf("%d %s recipients", len(recips), cfg.handlerKind())}
	var amanas, ages, ratios []float64
	for i := 0; i < cfg.rounds; i++ {
		a, err := sealOnce(recips, file)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if out, err := exec.CommandContext(ctx, filepath.Join(dir, "age"), args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("age: %w\n%s", err, out)
		}
		g := time.Since(start)
		rd := sealRound{AmanaSeconds: a.Seconds(), AgeSeconds: g.Seconds(), Ratio: ratio(a.Seconds(), g.Seconds())}
		r.Rounds = append(r.Rounds, rd)
		amanas, ages, ratios = append(amanas, rd.AmanaSeconds), append(ages, rd.AgeSeconds), append(ratios, rd.Ratio)
	}
	r.AmanaSeconds, r.AgeSeconds, r.Ratio = median(amanas), median(ages), median(ratios)
	return r, nil
}

// sealOnce does what 'amana submit' does with one attached file before the
// network (cmd/internal/cli/submit.go): open it without hashing it
// (crypto.OpenFile; report.json carries no sha256 for it), seal the bundle
// to recips with a new receipt in one read of the file, the ciphertext's
// SHA-256 taken beside the encryption (HashCiphertext), and read the
// ciphertext as client.Submit does, in pieces of client.PieceSize, here to
// nowhere. It returns how long that took.
func sealOnce(recips []string, path string) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	file, err := crypto.OpenFile(f, "video.bin", "application/octet-stream")
	if err != nil {
		return 0, err
	}
	report := &crypto.Report{
		Desk:      deskID,
		Submitted: crypto.SubmittedAt(time.Now()),
		SealedBy:  crypto.SealedByClient,
		Client:    crypto.ClientCLI,
		Answers:   []crypto.Answer{{Field: "message", Value: "client sealing benchmark"}},
	}
	sealed, total, err := crypto.SealReport(recips, crypto.NewReceipt(), report, []crypto.File{file})
	if err != nil {
		return 0, err
	}
	defer sealed.Close()
	sealed.HashCiphertext()
	piece := make([]byte, client.PieceSize)
	for off := int64(0); off < total; {
		n, err := io.ReadFull(sealed, piece[:min(int64(len(piece)), total-off)])
		if err != nil {
			return 0, fmt.Errorf("sealing: %w", err)
		}
		off += int64(n)
	}
	if _, err := sealed.SHA256(); err != nil {
		return 0, fmt.Errorf("sealing: %w", err)
	}
	return time.Since(start), nil
}
