package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// Each pulled case carries one attachment of caseAttachment bytes drawn
// from caseSeed.
const (
	caseAttachment = 2 << 10
	caseSeed       = 3
)

type pullResult struct {
	Cases          int     `json:"cases"`
	Rounds         int     `json:"rounds"`
	RelayPerSec    float64 `json:"relay_per_sec"`
	PullSeconds    float64 `json:"pull_seconds"`
	OpenSeconds    float64 `json:"open_seconds"`
	BaselinePerSec float64 `json:"in_process_decrypt_per_sec"`
	Ratio          float64 `json:"ratio"` // the median round's
	RatioMin       float64 `json:"ratio_min"`
	RatioMax       float64 `json:"ratio_max"`
}

func (r *pullResult) print(out io.Writer) {
	printLine(out, fmt.Sprintf("pull and open (%d cases)", r.Cases),
		fmt.Sprintf("relay %.0f/s (pull %.2fs, open %.2fs)  in-process decrypt %.0f/s  ratio %.2fx (%d rounds: %.2f to %.2fx)",
			r.RelayPerSec, r.PullSeconds, r.OpenSeconds, r.BaselinePerSec, r.Ratio, r.Rounds, r.RatioMin, r.RatioMax))
}

// benchPull times what 'amana pull' and then 'amana show' do for every case
// waiting at a relay in this process, against decrypting the same
// ciphertexts in memory, -rounds times, each round a new relay and case
// store, then its baseline; it reports the median round. The opening and
// its baseline both decrypt one case after the other, on one core, as
// 'amana show' does; the pull stores PullWorkers cases at once (both
// cores).
func benchPull(ctx context.Context, cfg *config, dir string) (*pullResult, error) {
	d, err := newDesk(1, cfg.classic, 0)
	if err != nil {
		return nil, err
	}
	bodies, err := sealCases(d, cfg.cases)
	if err != nil {
		return nil, err
	}
	var runs []*pullResult
	for i := range max(cfg.rounds, 1) {
		r, err := pullRound(ctx, cfg, d, bodies, filepath.Join(dir, fmt.Sprintf("round-%d", i+1)))
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b *pullResult) int { return cmp.Compare(a.Ratio, b.Ratio) })
	r := *runs[len(runs)/2]
	r.Rounds, r.RatioMin, r.RatioMax = len(runs), runs[0].Ratio, runs[len(runs)-1].Ratio
	return &r, nil
}

// pullRound submits bodies to a new relay, pulls and opens them into a new
// case store, and then times the baseline.
func pullRound(ctx context.Context, cfg *config, d *relayproc.Desk, bodies [][]byte, dir string) (*pullResult, error) {
	handler := d.Handlers[0]
	lr, err := startLocalRelay(filepath.Join(dir, "relay"), d.AdminKey())
	if err != nil {
		return nil, err
	}
	defer lr.Close()
	if err := d.Publish(ctx, lr.url); err != nil {
		return nil, err
	}
	cs, err := newClients(ctx, lr.url, cfg.clients)
	if err != nil {
		return nil, err
	}
	if err := submitAll(ctx, cs, bodies); err != nil {
		return nil, err
	}
	st, err := cases.Open(filepath.Join(dir, "cases"))
	if err != nil {
		return nil, err
	}

	start := time.Now()
	ids, err := pullCases(ctx, lr.url, handler, st)
	if err != nil {
		return nil, err
	}
	pulled := time.Since(start)
	if err := openCases(st, ids, handler.Age()); err != nil {
		return nil, err
	}
	took := time.Since(start)
	if len(ids) != len(bodies) {
		return nil, fmt.Errorf("pulled %d cases of %d submitted", len(ids), len(bodies))
	}
	if left, err := lr.spool.Stats(); err != nil || left.Submissions != 0 {
		return nil, fmt.Errorf("relay still holds %d acknowledged submissions (%v)", left.Submissions, err)
	}

	base, err := decryptAll(bodies, handler.Age())
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	n := float64(len(bodies))
	r := &pullResult{
		Cases: len(bodies), RelayPerSec: n / took.Seconds(),
		PullSeconds: pulled.Seconds(), OpenSeconds: (took - pulled).Seconds(),
		BaselinePerSec: n / base.Seconds(),
	}
	r.Ratio = ratio(r.RelayPerSec, r.BaselinePerSec)
	return r, nil
}

// sealCases seals n small bundles to the desk's handlers, each a short
// report with one attachment.
func sealCases(d *relayproc.Desk, n int) ([][]byte, error) {
	sum, err := streamSHA256(caseSeed, caseAttachment)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i := range out {
		report := &crypto.Report{
			Desk:      deskID,
			Submitted: crypto.SubmittedAt(time.Now()),
			SealedBy:  crypto.SealedByClient,
			Answers:   []crypto.Answer{{Field: "message", Value: fmt.Sprintf("case %d of the pull benchmark", i+1)}},
		}
		files := []crypto.File{{
			Attachment: crypto.Attachment{Name: "photo.jpg", Size: caseAttachment, SHA256: sum, Type: "image/jpeg"},
			Body:       stream(caseSeed, caseAttachment),
		}}
		sealed, _, err := crypto.SealBundle(d.Cards(), report, files)
		if err != nil {
			return nil, fmt.Errorf("sealing case %d: %w", i+1, err)
		}
		out[i], err = io.ReadAll(sealed)
		sealed.Close()
		if err != nil {
			return nil, fmt.Errorf("sealing case %d: %w", i+1, err)
		}
	}
	return out, nil
}

// pullCases runs what 'amana pull' runs (client.Pull) and returns the IDs
// pulled.
func pullCases(ctx context.Context, url string, h *crypto.Identity, st *cases.Store) ([]string, error) {
	c, err := client.New(url, nil)
	if err != nil {
		return nil, err
	}
	c.Key = h.SigningKey()
	res, err := handler.Pull(ctx, c, st, h.Age(), url, nil)
	if err != nil {
		return nil, err
	}
	if len(res.Problems) > 0 {
		return nil, fmt.Errorf("case %s: %w", res.Problems[0].ID, res.Problems[0].Err)
	}
	return res.Pulled, nil
}

// openCases does what 'amana show' does to each case: open it through
// handler.Open (which uses the file key the pull kept sealed in case.json,
// or else the identity) and read every attachment through, checking its
// SHA-256.
func openCases(st *cases.Store, ids []string, id age.Identity) error {
	for _, cid := range ids {
		if err := openCase(st, cid, id); err != nil {
			return fmt.Errorf("opening case %s: %w", cid, err)
		}
	}
	return nil
}

func openCase(st *cases.Store, cid string, id age.Identity) error {
	c, err := handler.Open(st, cid, id)
	if err != nil {
		return err
	}
	defer c.Close()
	return readAll(c.Bundle)
}

// readBundle decrypts a bundle and reads every attachment through, which
// checks each against its SHA-256, and then the end of the archive.
func readBundle(r io.Reader, id age.Identity) error {
	br, err := crypto.OpenBundle(r, id)
	if err != nil {
		return err
	}
	return readAll(br)
}

// readAll reads every attachment of br through, which checks each against
// its SHA-256, and then the end of the archive.
func readAll(br *crypto.BundleReader) error {
	for {
		_, rd, err := br.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return err
		}
	}
}

// decryptAll times opening every body in memory: the floor under pulling
// and opening them.
func decryptAll(bodies [][]byte, id age.Identity) (time.Duration, error) {
	start := time.Now()
	for i, b := range bodies {
		if err := readBundle(bytes.NewReader(b), id); err != nil {
			return 0, fmt.Errorf("decrypting case %d: %w", i+1, err)
		}
	}
	return time.Since(start), nil
}
