package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// Aims of the large upload: throughput against the plain file write, and the
// relay process's peak resident memory.
const (
	uploadAim = 0.7
	rssAimMiB = 64
)

// uploadSeed seeds the large attachment's bytes.
const uploadSeed = 2

type uploadResult struct {
	AttachmentBytes int64 `json:"attachment_bytes"`
	Bytes           int64 `json:"ciphertext_bytes"`
	PieceBytes      int   `json:"piece_bytes"`
	// Rounds holds each round: the relay's upload, then the file baseline
	// on the same bytes, so that both see the disk in the same state.
	Rounds        []uploadRound `json:"rounds"`
	RelayMiBps    float64       `json:"relay_mib_per_sec"`            // median of the rounds
	BaselineMiBps float64       `json:"file_write_fsync_mib_per_sec"` // median of the rounds
	Ratio         float64       `json:"ratio"`                        // median of the rounds' ratios
	Aim           float64       `json:"aim_ratio"`
	// The sync cadence of each side, as the output states it.
	RelaySync    string `json:"relay_sync_cadence"`
	BaselineSync string `json:"baseline_sync_cadence"`
	// PeakRSSMiB is the relay's highest VmHWM over the rounds; it and the
	// sample figures are zero where there is no /proc.
	PeakRSSMiB float64 `json:"relay_peak_rss_mib"`
	// The sample of the relay's memory, taken every 100 ms, with the
	// highest VmRSS, and how it splits between anonymous memory (heap,
	// stacks) and resident file-backed pages (the spool's mmap).
	SampledRSSMiB  float64 `json:"relay_max_sampled_rss_mib"`
	SampledAnonMiB float64 `json:"relay_sampled_anon_mib"`
	SampledFileMiB float64 `json:"relay_sampled_file_mib"`
	RSSAimMiB      float64 `json:"rss_aim_mib"`
	// Before is the -before checkout, medians of the same rounds.
	Before           string  `json:"before,omitempty"`
	BeforeMiBps      float64 `json:"before_relay_mib_per_sec,omitempty"`
	BeforeRatio      float64 `json:"before_ratio,omitempty"`
	BeforePeakRSSMiB float64 `json:"before_relay_peak_rss_mib,omitempty"`
	// AnswerWait is the median over the rounds of the time the client
	// spent between sending a piece's last byte and its answer (the relay
	// committing the bytes it has read; a relay of in_flight 2 reads the
	// next piece meanwhile, an older one makes it wait for the answer),
	// summed over the pieces; AnswerWaitShare is that time over the
	// upload's.
	AnswerWaitSeconds float64 `json:"answer_wait_seconds"`
	AnswerWaitShare   float64 `json:"answer_wait_share"`
	Pieces            int     `json:"pieces"`
}

type uploadRound struct {
	RelayMiBps    float64 `json:"relay_mib_per_sec"`
	BaselineMiBps float64 `json:"file_write_fsync_mib_per_sec"`
	Ratio         float64 `json:"ratio"`
	PeakRSSMiB    float64 `json:"relay_peak_rss_mib"`
	// AnswerWaitSeconds is the time between the end of each piece and
	// its answer, summed over the pieces.
	AnswerWaitSeconds float64 `json:"answer_wait_seconds"`
	// The relay built from -before, in the same round (zero without it).
	BeforeMiBps      float64 `json:"before_relay_mib_per_sec,omitempty"`
	BeforeRatio      float64 `json:"before_ratio,omitempty"`
	BeforePeakRSSMiB float64 `json:"before_relay_peak_rss_mib,omitempty"`
}

func (r *uploadResult) print(out io.Writer) {
	printLine(out, fmt.Sprintf("large upload (%s, %d MiB pieces)", mib(r.Bytes), r.PieceBytes>>20),
		fmt.Sprintf("relay %.0f MiB/s  file write+fsync %.0f MiB/s  ratio %.2fx (aim >= %.1fx; median of %d alternating rounds)",
			r.RelayMiBps, r.BaselineMiBps, r.Ratio, r.Aim, len(r.Rounds)))
	for i, rd := range r.Rounds {
		b := ""
		if r.Before != "" {
			b = fmt.Sprintf("; before: relay %.0f MiB/s ratio %.2fx peak RSS %.0f MiB", rd.BeforeMiBps, rd.BeforeRatio, rd.BeforePeakRSSMiB)
		}
		printLine(out, fmt.Sprintf("  round %d", i+1), fmt.Sprintf("relay %.0f MiB/s  baseline %.0f MiB/s  ratio %.2fx  relay peak RSS %.0f MiB  answer wait %.2fs%s",
			rd.RelayMiBps, rd.BaselineMiBps, rd.Ratio, rd.PeakRSSMiB, rd.AnswerWaitSeconds, b))
	}
	if r.Before != "" {
		printLine(out, "  before ("+r.Before+")", fmt.Sprintf("relay %.0f MiB/s  ratio %.2fx  peak RSS %.0f MiB; now %.2fx as fast (same client, same rounds)",
			r.BeforeMiBps, r.BeforeRatio, r.BeforePeakRSSMiB, ratio(r.RelayMiBps, r.BeforeMiBps)))
	}
	printLine(out, "  waiting for piece answers", fmt.Sprintf("%.2fs of the upload (%.0f %%), %d pieces, %.0f ms a piece: the relay committing what it has read; to a relay of in_flight 2 the next piece goes out meanwhile",
		r.AnswerWaitSeconds, 100*r.AnswerWaitShare, r.Pieces, 1000*r.AnswerWaitSeconds/float64(max(r.Pieces, 1))))
	printLine(out, "  sync cadence", fmt.Sprintf("relay: %s; baseline: %s", r.RelaySync, r.BaselineSync))
	rss := "n/a (no /proc)"
	if r.PeakRSSMiB > 0 {
		rss = fmt.Sprintf("peak %.0f MiB (aim < %.0f MiB); highest sample %.0f MiB = %.0f anon + %.0f file-backed",
			r.PeakRSSMiB, r.RSSAimMiB, r.SampledRSSMiB, r.SampledAnonMiB, r.SampledFileMiB)
	}
	printLine(out, "relay process RSS during the upload", rss)
}

func toMiB(n int64) float64 { return float64(n) / (1 << 20) }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", toMiB(n)) }

// median returns the median of xs (the mean of the middle two for an even
// count); xs is sorted in place.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// benchUpload times one large submission through the resumable upload API
// to an amana-relay process, against writing as many bytes to a file, in
// cfg.rounds rounds that alternate the two.
func benchUpload(ctx context.Context, cfg *config, dir string) (*uploadResult, error) {
	sum, err := streamSHA256(uploadSeed, cfg.uploadSize)
	if err != nil {
		return nil, fmt.Errorf("hashing the attachment: %w", err)
	}
	maxGiB := relayLimitGiB(cfg.uploadSize)
	d, err := newDesk(2, cfg.classic, maxGiB<<30)
	if err != nil {
		return nil, err
	}
	if err := relayproc.Build(ctx, dir, "./cmd/amana-relay"); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "amana-relay")
	sealed, total, ctSum, err := sealLarge(d, cfg.uploadSize, sum, dir)
	if err != nil {
		return nil, err
	}
	defer os.Remove(sealed)
	r := &uploadResult{
		AttachmentBytes: cfg.uploadSize, Bytes: total, PieceBytes: client.PieceSize,
		Aim: uploadAim, RSSAimMiB: rssAimMiB,
		RelaySync:    store.UploadSyncCadence,
		BaselineSync: fmt.Sprintf("%d MiB writes, one fsync at the end", client.PieceSize>>20),
	}
	var beforeBin string
	if cfg.before != "" {
		r.Before = cfg.before
		if err := buildIn(ctx, cfg.before, filepath.Join(dir, "before"), "./cmd/amana-relay"); err != nil {
			return nil, err
		}
		beforeBin = filepath.Join(dir, "before", "amana-relay")
	}
	// one uploads the sealed file to a new relay from bin and returns its
	// speed and the relay's memory.
	var w answerWait
	one := func(bin string) (float64, relayproc.Status, relayproc.Status, error) {
		data := filepath.Join(dir, "relay-data")
		if err := relayproc.Init(ctx, bin, data, d.Admin.Card()); err != nil {
			return 0, relayproc.Status{}, relayproc.Status{}, err
		}
		defer os.RemoveAll(data)
		p, err := relayproc.StartRelay(ctx, bin, data, nil, "--quota", fmt.Sprintf("%dGiB", 2*maxGiB), "--max-submission", fmt.Sprintf("%dGiB", maxGiB))
		if err != nil {
			return 0, relayproc.Status{}, relayproc.Status{}, err
		}
		defer p.StopRelay()
		if err := d.Publish(ctx, p.URL); err != nil {
			return 0, relayproc.Status{}, relayproc.Status{}, err
		}
		sampler := relayproc.Sample(p.PID(), 100*time.Millisecond)
		w = answerWait{}
		took, err := uploadFile(ctx, p.URL, sealed, total, ctSum, &w)
		sampler.Stop()
		_, sampled, _ := sampler.Peaks()
		if err != nil {
			return 0, relayproc.Status{}, relayproc.Status{}, fmt.Errorf("%w\n%s", err, p.Tail())
		}
		final, _ := relayproc.ReadStatus(p.PID())
		return toMiB(total) / took.Seconds(), final, sampled, nil
	}
	var relays, bases, ratios, befores, beforeRatios, beforeRSS, waits, shares []float64
	for i := 0; i < cfg.rounds; i++ {
		speed, final, sampled, err := one(bin)
		if err != nil {
			return nil, err
		}
		wait := w.total().Seconds()
		waits, shares = append(waits, wait), append(shares, wait/(toMiB(total)/speed))
		r.Pieces = w.pieces()
		var bspeed float64
		var bfinal relayproc.Status
		if beforeBin != "" {
			if bspeed, bfinal, _, err = one(beforeBin); err != nil {
				return nil, fmt.Errorf("before: %w", err)
			}
		}
		base, err := fileBaseline(filepath.Join(dir, "baseline.bin"), total)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		rd := uploadRound{RelayMiBps: speed, BaselineMiBps: toMiB(total) / base.Seconds(), PeakRSSMiB: toMiB(final.Peak), AnswerWaitSeconds: wait}
		rd.Ratio = ratio(rd.RelayMiBps, rd.BaselineMiBps)
		r.PeakRSSMiB = max(r.PeakRSSMiB, rd.PeakRSSMiB)
		if s := toMiB(sampled.RSS); s > r.SampledRSSMiB {
			r.SampledRSSMiB, r.SampledAnonMiB, r.SampledFileMiB = s, toMiB(sampled.Anon), toMiB(sampled.File)
		}
		if beforeBin != "" {
			rd.BeforeMiBps, rd.BeforeRatio, rd.BeforePeakRSSMiB = bspeed, ratio(bspeed, rd.BaselineMiBps), toMiB(bfinal.Peak)
			befores, beforeRatios, beforeRSS = append(befores, rd.BeforeMiBps), append(beforeRatios, rd.BeforeRatio), append(beforeRSS, rd.BeforePeakRSSMiB)
		}
		r.Rounds = append(r.Rounds, rd)
		relays, bases, ratios = append(relays, rd.RelayMiBps), append(bases, rd.BaselineMiBps), append(ratios, rd.Ratio)
	}
	if beforeBin != "" {
		r.BeforeMiBps, r.BeforeRatio = median(befores), median(beforeRatios)
		for _, x := range beforeRSS {
			r.BeforePeakRSSMiB = max(r.BeforePeakRSSMiB, x)
		}
	}
	r.RelayMiBps, r.BaselineMiBps, r.Ratio = median(relays), median(bases), median(ratios)
	r.AnswerWaitSeconds, r.AnswerWaitShare = median(waits), median(shares)
	return r, nil
}

// relayLimitGiB is the largest submission the relay and the desk accept, in
// GiB: 4, or twice the upload rounded up when that is more. The relay's
// quota is twice this.
func relayLimitGiB(size int64) int64 {
	const gib = 1 << 30
	return max(4, 2*((size+gib-1)/gib))
}

// sealLarge seals a bundle with one attachment of size bytes into a file
// in dir (not timed: the figure is the relay's, not the client's encryption
// on the same two cores) and returns its path, size and SHA-256.
func sealLarge(d *relayproc.Desk, size int64, sum, dir string) (string, int64, [32]byte, error) {
	report := &crypto.Report{
		Desk:      deskID,
		Submitted: crypto.SubmittedAt(time.Now()),
		SealedBy:  crypto.SealedByClient,
		Answers:   []crypto.Answer{{Field: "message", Value: "large upload benchmark"}},
	}
	files := []crypto.File{{
		Attachment: crypto.Attachment{Name: "large.bin", Size: size, SHA256: sum, Type: "application/octet-stream"},
		Body:       stream(uploadSeed, size),
	}}
	sealed, total, err := crypto.SealBundle(d.Cards(), report, files)
	if err != nil {
		return "", 0, [32]byte{}, fmt.Errorf("sealing the bundle: %w", err)
	}
	defer sealed.Close()
	path := filepath.Join(dir, "upload.age")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, [32]byte{}, fmt.Errorf("creating the ciphertext file: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), sealed); err != nil {
		f.Close()
		os.Remove(path)
		return "", 0, [32]byte{}, fmt.Errorf("sealing the bundle: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", 0, [32]byte{}, err
	}
	return path, total, [32]byte(h.Sum(nil)), nil
}

// answerWait sums, over an upload's pieces (PATCH requests), the time from
// writing a piece's last byte to the first byte of its answer: the time the
// connection stands idle while the relay commits the piece's last batch.
type answerWait struct {
	mu   sync.Mutex
	sum  time.Duration
	n    int
	next http.RoundTripper
}

func (a *answerWait) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != "PATCH" {
		return a.next.RoundTrip(req)
	}
	// The transport writes the request and reads its answer in two
	// goroutines, and an early answer may come before the last byte is
	// written, so the two hooks share wrote under a.mu.
	var wrote time.Time
	trace := &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			a.mu.Lock()
			wrote = time.Now()
			a.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			a.mu.Lock()
			if !wrote.IsZero() {
				a.sum += time.Since(wrote)
				a.n++
			}
			a.mu.Unlock()
		},
	}
	return a.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

func (a *answerWait) total() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sum
}

func (a *answerWait) pieces() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// uploadFile submits the sealed file at path to the relay at url the way
// 'amana submit' does, checks the receipt, and returns how long it took;
// w, if not nil, records how long the client waited for piece answers.
func uploadFile(ctx context.Context, url, path string, total int64, sum [32]byte, w *answerWait) (time.Duration, error) {
	var hc *http.Client
	if w != nil {
		w.next = &http.Transport{Proxy: nil, ResponseHeaderTimeout: 2 * time.Minute, IdleConnTimeout: time.Minute}
		hc = &http.Client{Transport: w}
	}
	c, err := client.New(url, hc)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	rc, err := c.Submit(ctx, deskID, "", f, total, nil)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("uploading: %w", err)
	}
	if err := checkReceipt(rc, total, sum); err != nil {
		return 0, err
	}
	return took, nil
}

// fileBaseline times writing n bytes to a new file at path in pieces of the
// client's upload size, with one fsync at the end, and removes the file.
func fileBaseline(path string, n int64) (time.Duration, error) {
	buf := make([]byte, client.PieceSize)
	rand.NewChaCha8([32]byte{uploadSeed}).Read(buf)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", path, err)
	}
	defer os.Remove(path)
	defer f.Close()
	start := time.Now()
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			return 0, fmt.Errorf("writing %s: %w", path, err)
		}
		left -= k
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("syncing %s: %w", path, err)
	}
	return time.Since(start), nil
}
