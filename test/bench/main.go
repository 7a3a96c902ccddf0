// Command bench is the harness behind 'make bench'. It measures three paths
// of Amana against a baseline measured in the same run, on the same machine
// and in the same temporary filesystem, and prints each as a ratio:
//
//   - small submissions: 4 KiB ciphertexts, encrypted before the clock
//     starts, POSTed over loopback HTTP by concurrent clients to an
//     in-process relay over a durable spool; the baseline is bbolt's own
//     db.Batch putting the same bytes from as many goroutines into a fresh,
//     durable bbolt file.
//   - large upload: one large submission, sealed into a file first (the
//     client's encryption would otherwise compete with the relay for the
//     same two cores), then sent through the resumable upload API, the way
//     'amana submit' sends it, to an amana-relay process built from this tree;
//     the baseline is writing as many bytes to a file in 8 MiB writes with one
//     fsync at the end. It also reports the relay process's peak RSS.
//     It runs -rounds rounds, each the relay then the baseline, and states
//     the sync cadence of each.
//   - client sealing: what 'amana submit' does before the network (hash the
//     file, seal the padded bundle, hash the ciphertext), against the
//     reference age, built from the module's version, encrypting the same
//     file to the same recipients; alternating, -rounds rounds.
//   - amana submit: the real 'amana submit', built from this tree, sending
//     one large file (2 GiB by default) to an amana-relay process: its speed
//     end to end, and the amana process's peak RSS (getrusage of the child),
//     which must not grow with the file. When onionshare-cli and curl are
//     installed, each round also sends the same file through OnionShare's
//     receive mode (--local-only --receive, curl -F), without and with an
//     fsync of what it stored, and prints amana's time over each.
//   - pull and open: downloading, storing, acknowledging and decrypting small
//     cases the way 'amana pull' and 'amana show' do, against an in-process
//     relay; the baseline is decrypting the same ciphertexts in memory.
//   - case journal: replaying a handler's journal of many events from disk
//     (read, decrypt, parse, merge), against decrypting the same ciphertexts
//     in memory; and every case's state from the sealed index, filtered as
//     'amana list' filters, against reading the cases' case.json files.
//   - report: 'amana report' on the -journal-cases cases (the states from
//     the index, the HTML and CSV report, the aggregate), against replaying
//     their journal from disk.
//   - scale: a durable spool holding 10,000 and 100,000 submissions for
//     other handlers (1,000 and 10,000 with -quick): ingest against an
//     empty spool, one handler's inbox against the same in an empty spool,
//     and a sweep's longest write transaction.
//
// The aims it prints are targets to read, not thresholds it checks: it never
// fails on a figure. It exits 1 only when something breaks (a request fails,
// a receipt or a case does not verify), and 2 on bad flags. It removes every
// temporary directory and stops the relay process it started, also on error
// or interrupt.
//
// Usage:
//
//	go run ./test/bench [-quick] [-only SECTIONS] [-rounds N] [-json FILE] [flags]
//
// The figures are also written as JSON, by default to bench-out/bench.json
// (git ignores bench-out/), for comparison across runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// config is what the flags choose.
type config struct {
	submissions  int   // small submissions to send
	clients      int   // concurrent clients (and baseline goroutines)
	uploadSize   int64 // bytes of the large upload's attachment
	submitSize   int64 // bytes of the file 'amana submit' sends
	cases        int   // cases to pull and open
	classic      bool  // X25519 handlers instead of post-quantum ones
	quick        bool
	dir          string // parent of the temporary directory; empty means the system's
	jsonOut      string // file to write the figures to as JSON; empty means none
	torRequests  int    // submissions through Tor, each paired with one to a bare onion
	events       int    // case journal events to replay
	journalCases int    // cases whose state the index gives
	noTor        bool   // skip the Tor measurement
	only         string // comma-separated sections to run; empty means all
	rounds       int    // rounds of the large upload, each alternating with its baseline
	before       string // a checkout of an earlier tree whose programs are measured too; empty means none
}

func (c *config) handlerKind() string {
	if c.classic {
		return "classic X25519"
	}
	return "post-quantum ML-KEM-768+X25519"
}

// Quick sizes, for CI: the whole run takes well under a minute.
const (
	quickSubmissions = 300
	quickUploadMiB   = 64
	quickSubmitMiB   = 128
	quickCases       = 100
	quickEvents      = 5000
	quickJournal     = 1000
)

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	fs.IntVar(&cfg.submissions, "submissions", 3000, "small submissions to send")
	fs.IntVar(&cfg.clients, "clients", 32, "concurrent clients sending small submissions, and goroutines of their baseline")
	mib := fs.Int64("upload-mib", 1024, "size of the large upload's attachment, in `MiB`")
	submitMiB := fs.Int64("submit-mib", 2048, "size of the file 'amana submit' sends, in `MiB`")
	fs.IntVar(&cfg.cases, "cases", 1000, "small cases to pull and open")
	fs.IntVar(&cfg.events, "events", 100000, "case journal events to replay")
	fs.IntVar(&cfg.journalCases, "journal-cases", 10000, "cases to list from the case journal's index")
	fs.IntVar(&cfg.torRequests, "tor-requests", 100, "submissions through Tor, each paired with one to a bare onion (needs tor)")
	fs.BoolVar(&cfg.noTor, "no-tor", false, "skip the measurement over a private Tor network")
	fs.BoolVar(&cfg.classic, "classic", false, "use X25519 handler keys instead of post-quantum ones")
	fs.BoolVar(&cfg.quick, "quick", false, fmt.Sprintf("small sizes for CI (%d submissions, a %d MiB upload, %d cases) unless set explicitly",
		quickSubmissions, quickUploadMiB, quickCases))
	fs.StringVar(&cfg.jsonOut, "json", filepath.Join("bench-out", "bench.json"), "also write the figures as JSON to `FILE` (empty: none)")
	fs.StringVar(&cfg.only, "only", "", "run only these comma-separated `sections`: small, upload, seal, submit, pull, journal, report, scale, tor")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds of the large upload (each followed by its file baseline), of client sealing and of pull and open")
	fs.StringVar(&cfg.before, "before", "", "also measure the large upload and amana submit with the programs of the checkout in `DIR`, alternating, for before/after ratios")
	fs.StringVar(&cfg.dir, "dir", "", "make the temporary directory under `DIR` (default: the system's)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./test/bench [-quick] [-json FILE] [flags]\n\n")
		fmt.Fprintf(stderr, "Measures the relay against baselines taken in the same run and prints ratios.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.quick {
		err := relayproc.QuickDefaults(fs, map[string]string{
			"submissions": strconv.Itoa(quickSubmissions), "upload-mib": strconv.Itoa(quickUploadMiB),
			"submit-mib": strconv.Itoa(quickSubmitMiB), "rounds": "1", "cases": strconv.Itoa(quickCases), "tor-requests": "20",
			"events": strconv.Itoa(quickEvents), "journal-cases": strconv.Itoa(quickJournal),
		})
		if err != nil {
			return nil, err
		}
	}
	cfg.uploadSize = *mib << 20
	cfg.submitSize = *submitMiB << 20
	switch {
	case cfg.submissions < 1 || cfg.clients < 1 || cfg.cases < 1 || cfg.torRequests < 1 || cfg.events < 1 || cfg.journalCases < 1:
		return nil, errors.New("-submissions, -clients, -cases, -events and -journal-cases must be at least 1")
	case cfg.rounds < 1:
		return nil, errors.New("-rounds must be at least 1")
	case cfg.submitSize < 1:
		return nil, errors.New("-submit-mib must be at least 1")
	case cfg.uploadSize <= client.SingleMax:
		return nil, fmt.Errorf("-upload-mib must be over %d bytes, or the client does not use the resumable upload", client.SingleMax)
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// results is everything a run measured; it is also the JSON output.
type results struct {
	Go       string         `json:"go"`
	OS       string         `json:"os"`
	Arch     string         `json:"arch"`
	CPUs     int            `json:"cpus"`
	Handlers string         `json:"handlers"`
	Quick    bool           `json:"quick"`
	Small    *smallResult   `json:"small_submissions"`
	Upload   *uploadResult  `json:"large_upload"`
	Seal     *sealResult    `json:"client_sealing"`
	Submit   *submitResult  `json:"amana_submit"`
	Pull     *pullResult    `json:"pull_and_open"`
	Journal  *journalResult `json:"case_journal"`
	Report   *reportResult  `json:"report"`
	Tor      *torResult     `json:"submission_over_tor"`
	Scale    *scaleResult   `json:"scale"`
}

func run(ctx context.Context, cfg *config, out io.Writer) error {
	root, err := os.MkdirTemp(cfg.dir, "amana-bench-")
	if err != nil {
		return fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(root)

	res := &results{
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		Handlers: cfg.handlerKind(), Quick: cfg.quick,
	}
	fmt.Fprintf(out, "amana bench: %s %s/%s, %d CPUs, %s handler keys\n", res.Go, res.OS, res.Arch, res.CPUs, res.Handlers)
	fmt.Fprintf(out, "every figure is measured against a baseline taken in this run, in %s\n\n", root)

	for _, sec := range sections(cfg, res) {
		if !cfg.wants(sec.name) {
			continue
		}
		if err := inDir(root, sec.name, func(dir string) error { return sec.run(ctx, dir) }); err != nil {
			return fmt.Errorf("%s: %w", sec.title, err)
		}
		sec.print(out)
	}

	if cfg.jsonOut != "" {
		if dir := filepath.Dir(cfg.jsonOut); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("creating %s: %w", dir, err)
			}
		}
		if err := relayproc.WriteFigures(cfg.jsonOut, res); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nfigures written to %s\n", cfg.jsonOut)
	}
	return nil
}

// section is one measurement: its name for -only, its title for errors,
// what runs it in its own directory and what prints its figures.
type section struct {
	name, title string
	run         func(ctx context.Context, dir string) error
	print       func(out io.Writer)
}

// sections lists the measurements in the order they run; each stores its
// figures in res.
func sections(cfg *config, res *results) []section {
	return []section{
		{"small", "small submissions", func(ctx context.Context, dir string) (err error) {
			res.Small, err = benchSmall(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Small.print(out) }},
		{"upload", "large upload", func(ctx context.Context, dir string) (err error) {
			res.Upload, err = benchUpload(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Upload.print(out) }},
		{"seal", "client sealing", func(ctx context.Context, dir string) (err error) {
			res.Seal, err = benchSeal(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Seal.print(out) }},
		{"submit", "amana submit", func(ctx context.Context, dir string) (err error) {
			res.Submit, err = benchSubmit(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Submit.print(out) }},
		{"pull", "pull and open", func(ctx context.Context, dir string) (err error) {
			res.Pull, err = benchPull(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Pull.print(out) }},
		{"journal", "case journal", func(ctx context.Context, dir string) (err error) {
			res.Journal, err = benchJournal(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Journal.print(out) }},
		{"report", "report", func(ctx context.Context, dir string) (err error) {
			res.Report, err = benchReport(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Report.print(out) }},
		{"scale", "scale", func(ctx context.Context, dir string) (err error) {
			res.Scale, err = benchScale(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Scale.print(out) }},
		{"tor", "submission over Tor", func(ctx context.Context, dir string) (err error) {
			res.Tor, err = benchTor(ctx, cfg, dir)
			return err
		}, func(out io.Writer) { res.Tor.print(out) }},
	}
}

// wants reports whether -only (and -no-tor) let the section named run.
func (c *config) wants(name string) bool {
	if name == "tor" && c.noTor {
		return false
	}
	if c.only == "" {
		return true
	}
	for _, n := range strings.Split(c.only, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// buildIn builds pkgs of the module checked out in src into dir.
func buildIn(ctx context.Context, src, dir string, pkgs ...string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s in %s: %w\n%s", strings.Join(pkgs, " "), src, err, out)
	}
	return nil
}

// inDir runs fn in a new private directory under root, and removes the
// directory afterwards so each benchmark starts with the disk as it found it.
func inDir(root, name string, fn func(dir string) error) error {
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	return fn(dir)
}

// labelWidth aligns the figures of every line.
const labelWidth = 46

func printLine(out io.Writer, label, figures string) {
	fmt.Fprintf(out, "  %-*s %s\n", labelWidth, label+":", figures)
}

func ratio(relay, baseline float64) float64 {
	if baseline == 0 {
		return 0
	}
	return relay / baseline
}
