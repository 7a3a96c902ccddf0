// Command soak is the bounded load and soak run behind 'make soak'. It
// measures how an amana-relay process built from this tree holds up under
// sustained honest load mixed with hostile clients, and whether it leaks.
//
// It starts 'amana-relay serve --no-tor' on 127.0.0.1 with its own temporary
// data directory and a desk of two classic (X25519) handlers, and for a
// duration (-duration, 5 minutes by default) runs:
//
//   - honest submitters (-submitters, 300 by default), each looping: seal a
//     report with crypto.SealBundle (mostly 1 to 64 KiB, a share of 1 to
//     8 MiB that go through the resumable upload; sealing is outside the
//     timed region), send it with client.Submit, record the latency and the
//     answer, and wait out busy answers (429, 503, 507) before sending the
//     same report again;
//   - a tenth as many hostile clients, each looping through a mix: slowloris
//     headers, slowly trickled bodies, huge headers, bodies that are not age,
//     age files with the wrong number of recipients, oversize declared
//     lengths, made-up upload tokens, replayed and forged signed inbox
//     requests, 50 idle connections at a time, and abandoned uploads;
//   - a sampler of the relay process: resident memory (VmRSS, and the peak
//     VmHWM), OS threads and open file descriptors, from /proc.
//
// The relay's goroutines cannot be seen from outside the process without
// adding code to it, so the same load then runs for a short phase
// (-inproc-duration) against a relay served inside this program (relay.New
// over a durable spool, on loopback, with serve's default limits), counting
// goroutines before the load, at its peak, and after it: the count must come
// back to the baseline, within a tolerance, a few seconds after the load
// ends.
//
// After each phase it checks that the relay answers /api/v1/health, that one
// more honest submission is accepted, and that the handler's inbox lists
// exactly the submissions the relay gave receipts for.
//
// It prints honest submissions accepted per second, p50 and p99 latencies
// of single and resumable submissions, the answers honest and hostile
// requests got, the relay process's peak memory and threads, and the
// goroutine counts. It exits 1 when an honest submission failed with
// anything but a busy or storage-full answer (more than -max-failures), when
// the relay stops answering or the final submission fails, when goroutines
// do not come back to the baseline, or when the relay panicked; 2 on bad
// flags. It stops every process and removes every temporary directory it
// made, also on error or interrupt.
//
// Usage:
//
//	go run ./test/soak [-quick] [-duration D] [-submitters N] [-json FILE] [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// config is what the flags choose.
type config struct {
	quick              bool
	duration           time.Duration // of the load on the relay process
	inproc             time.Duration // of the load on the in-process relay
	submitters         int
	hostile            int
	largeShare         float64 // of honest reports that are large
	hold               time.Duration
	requestTimeout     time.Duration
	settle             time.Duration
	goroutineTolerance int
	maxFailures        int
	jsonOut            string
	dir                string
	relayFlags         []string
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	fs.BoolVar(&cfg.quick, "quick", false, "a short run for CI: 60 submitters, 20s, 10s in process, 6s hold, unless set explicitly")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Minute, "how long the load runs against the relay process")
	fs.IntVar(&cfg.submitters, "submitters", 300, "concurrent honest submitters")
	fs.IntVar(&cfg.hostile, "hostile", -1, "concurrent hostile clients (default: a tenth of -submitters, at least 1)")
	fs.DurationVar(&cfg.inproc, "inproc-duration", 30*time.Second, "how long the load runs against the in-process relay, for the goroutine count")
	fs.Float64Var(&cfg.largeShare, "large-share", 0.05, "share of honest reports of 1 to 8 MiB, sent through the resumable upload")
	fs.DurationVar(&cfg.hold, "hold", 30*time.Second, "how long a hostile client keeps a slow or idle connection open at most")
	fs.DurationVar(&cfg.requestTimeout, "request-timeout", 5*time.Minute, "how long an honest submission may take before it counts as failed")
	fs.DurationVar(&cfg.settle, "settle", 15*time.Second, "how long goroutines have to come back to the baseline after the in-process load")
	fs.IntVar(&cfg.goroutineTolerance, "goroutine-tolerance", 5, "goroutines allowed above the baseline after the in-process load")
	fs.IntVar(&cfg.maxFailures, "max-failures", 0, "honest submissions allowed to fail with something other than a busy or storage-full answer")
	fs.StringVar(&cfg.jsonOut, "json", "", "also write the figures as JSON to `FILE`")
	fs.StringVar(&cfg.dir, "dir", "", "make the temporary directory under `DIR` (default: the system's)")
	fs.Var((*listFlag)(&cfg.relayFlags), "relay-flag", "extra `FLAG` for amana-relay serve, like --create-rate=100 (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./test/soak [-quick] [-duration D] [-submitters N] [-json FILE] [flags]\n\n")
		fmt.Fprintf(stderr, "Drives an amana-relay process with honest and hostile clients and reports how it holds up.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.quick {
		// The hold is shorter than the relay's header timeout: the quick run
		// sees the whole mix, not the relay closing slow connections.
		err := relayproc.QuickDefaults(fs, map[string]string{
			"submitters": "60", "duration": "20s", "inproc-duration": "10s", "hold": "6s",
		})
		if err != nil {
			return nil, err
		}
	}
	if cfg.hostile < 0 {
		cfg.hostile = max(1, cfg.submitters/10)
	}
	switch {
	case cfg.submitters < 1:
		return nil, errors.New("-submitters must be at least 1")
	case cfg.duration < time.Second || cfg.inproc < time.Second:
		return nil, errors.New("-duration and -inproc-duration must be at least 1s")
	case cfg.largeShare < 0 || cfg.largeShare > 1:
		return nil, errors.New("-large-share must be between 0 and 1")
	case cfg.hold < time.Second || cfg.requestTimeout < time.Second || cfg.settle < 0:
		return nil, errors.New("-hold and -request-timeout must be at least 1s")
	case cfg.goroutineTolerance < 0 || cfg.maxFailures < 0:
		return nil, errors.New("-goroutine-tolerance and -max-failures must not be negative")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
	if !res.Passed {
		os.Exit(1)
	}
}

// processResult is the phase against the amana-relay process.
type processResult struct {
	RelayFlags    []string       `json:"relay_flags"`
	Load          *loadResult    `json:"load"`
	Relay         relayFigures   `json:"relay_process"`
	Final         *finalChecks   `json:"final"`
	Shutdown      string         `json:"shutdown"`
	ShutdownClean bool           `json:"shutdown_clean"`
	Events        map[string]int `json:"relay_events"`
}

// relayFigures are the relay process's resources, from /proc; zero where
// there is no /proc.
type relayFigures struct {
	PeakRSSMiB   float64           `json:"peak_sampled_rss_mib"`
	PeakHWMMiB   float64           `json:"peak_vmhwm_mib"`
	PeakAnonMiB  float64           `json:"peak_rss_anon_mib"`
	PeakFileMiB  float64           `json:"peak_rss_file_mib"`
	PeakThreads  int64             `json:"peak_os_threads"`
	PeakFDs      int64             `json:"peak_fds"`
	AfterRSSMiB  float64           `json:"rss_after_load_mib"`
	AfterThreads int64             `json:"os_threads_after_load"`
	AfterFDs     int64             `json:"fds_after_load"`
	Series       []relayproc.Point `json:"series"`
}

// results is everything a run measured; it is also the JSON output.
type results struct {
	Go             string         `json:"go"`
	OS             string         `json:"os"`
	Arch           string         `json:"arch"`
	CPUs           int            `json:"cpus"`
	Quick          bool           `json:"quick"`
	Submitters     int            `json:"submitters"`
	HostileClients int            `json:"hostile_clients"`
	DurationSec    float64        `json:"duration_s"`
	InprocSec      float64        `json:"inproc_duration_s"`
	Process        *processResult `json:"process"`
	InProcess      *inprocResult  `json:"in_process"`
	Problems       []string       `json:"problems"` // each makes the run fail
	Notes          []string       `json:"notes"`    // findings that do not
	Passed         bool           `json:"passed"`
}

func run(ctx context.Context, cfg *config, out, log io.Writer) (*results, error) {
	root, err := os.MkdirTemp(cfg.dir, "amana-soak-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(root)
	res := &results{
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Quick: cfg.quick,
		Submitters: cfg.submitters, HostileClients: cfg.hostile,
		DurationSec: cfg.duration.Seconds(), InprocSec: cfg.inproc.Seconds(),
		Problems: []string{}, Notes: []string{},
	}
	d, err := newDesk()
	if err != nil {
		return nil, err
	}
	fx, err := newFixtures(d)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "soak: building amana-relay and running %d honest submitters and %d hostile clients against it for %s\n",
		cfg.submitters, cfg.hostile, cfg.duration)
	if res.Process, err = runProcess(ctx, root, d, fx, cfg, log); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "soak: the same load against a relay in this process for %s, counting goroutines\n", cfg.inproc)
	if res.InProcess, err = runInProcess(ctx, root, d, fx, cfg, log); err != nil {
		return nil, fmt.Errorf("in-process phase: %w", err)
	}
	judge(cfg, res)
	printResults(out, cfg, res)
	if cfg.jsonOut != "" {
		if err := relayproc.WriteFigures(cfg.jsonOut, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// runProcess is the main phase: the load against an amana-relay process.
func runProcess(ctx context.Context, root string, d *relayproc.Desk, fx *fixtures, cfg *config, log io.Writer) (*processResult, error) {
	if err := relayproc.Build(ctx, root, "./cmd/amana-relay"); err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "amana-relay")
	data := filepath.Join(root, "relay-data")
	if err := relayproc.Init(ctx, bin, data, d.Admin.Card()); err != nil {
		return nil, err
	}
	events := &eventLog{prefix: "amana-relay: "}
	p, err := relayproc.StartRelay(ctx, bin, data, events, cfg.relayFlags...)
	if err != nil {
		return nil, err
	}
	defer p.StopRelay()
	t, err := newTarget(ctx, "process", p.URL, d, fx)
	if err != nil {
		return nil, fmt.Errorf("%w\nrelay log:\n%s", err, events.tailText())
	}
	pr := &processResult{RelayFlags: append([]string{"serve", "--no-tor", "--listen", "127.0.0.1:0"}, cfg.relayFlags...)}
	sampler := relayproc.Sample(p.PID(), 200*time.Millisecond)
	defer sampler.Stop()
	status := func() string {
		st, ok := sampler.Current()
		if !ok {
			return ""
		}
		return fmt.Sprintf("relay RSS %.0f MiB (heap and stacks %.0f MiB), %d threads, %d fds", toMiB(st.RSS), toMiB(st.Anon), st.Threads, st.FDs)
	}
	pr.Load = runLoad(ctx, t, cfg, cfg.duration, log, status)
	if ctx.Err() != nil {
		return nil, errInterrupted
	}
	if !p.Alive() {
		_, how := p.StopRelay() // it has exited: this only says how
		pr.Final = &finalChecks{Health: "the relay process exited", FinalSubmission: "not tried", Inbox: "not checked",
			Problems: []string{fmt.Sprintf("the relay process exited during the load: %s\nrelay log:\n%s", how, events.tailText())}}
	} else {
		pr.Final = t.check(ctx, pr.Load.receipts, pr.Load.honestFailures())
	}
	time.Sleep(300 * time.Millisecond)
	sampler.Stop()
	peak, _, _ := sampler.Peaks()
	last, _ := sampler.Current()
	pr.Relay = relayFigures{
		PeakRSSMiB: toMiB(peak.RSS), PeakHWMMiB: toMiB(peak.Peak), PeakAnonMiB: toMiB(peak.Anon), PeakFileMiB: toMiB(peak.File),
		PeakThreads: peak.Threads, PeakFDs: peak.FDs,
		AfterRSSMiB: toMiB(last.RSS), AfterThreads: last.Threads, AfterFDs: last.FDs,
		Series: sampler.Series(),
	}
	pr.ShutdownClean, pr.Shutdown = p.StopRelay()
	pr.Events = events.counts.snapshot()
	return pr, nil
}

// judge decides whether the run passed, and what else is worth saying.
func judge(cfg *config, res *results) {
	phases := []struct {
		name   string
		load   *loadResult
		final  *finalChecks
		events map[string]int
	}{
		{"relay process", res.Process.Load, res.Process.Final, res.Process.Events},
		{"in-process relay", res.InProcess.Load, res.InProcess.Final, res.InProcess.Events},
	}
	for _, ph := range phases {
		if n := ph.load.honestFailures(); n > cfg.maxFailures {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: %d honest submission(s) failed with something other than a busy or storage-full answer (allowed: %d): %s",
				ph.name, n, cfg.maxFailures, tallyText(ph.load.Honest.Failures)))
		}
		res.Problems = append(res.Problems, ph.final.Problems...)
		if ph.final.Inbox != "ok" && len(ph.final.Problems) == 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: inbox: %s (as many honest submissions failed after sending)", ph.name, ph.final.Inbox))
		}
		for kind, n := range ph.events {
			switch {
			case strings.Contains(kind, "panic"):
				res.Problems = append(res.Problems, fmt.Sprintf("%s: the relay logged %d panic(s): %s", ph.name, n, kind))
			case !routineEvent(kind):
				res.Notes = append(res.Notes, fmt.Sprintf("%s: the relay logged %q ×%d", ph.name, kind, n))
			}
		}
		if ph.load.Probe.Max > 2000 || len(ph.load.ProbeFailures) > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: a new connection waited up to %s for /api/v1/health during the load (p99 %s; failures: %s)",
				ph.name, fmtMS(ph.load.Probe.Max), fmtMS(ph.load.Probe.P99), tallyText(ph.load.ProbeFailures)))
		}
		for _, u := range hostileSummary(ph.load.Hostile) {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: unexpected hostile answer: %s", ph.name, u))
		}
	}
	if r := res.Process.Relay; r.PeakFDs >= daemon.DefaultMaxConns {
		res.Notes = append(res.Notes, fmt.Sprintf("relay process: %d open fds at the peak: its %d-connection cap was full, and connections past it wait unaccepted in the kernel's backlog, where no relay timeout applies",
			r.PeakFDs, daemon.DefaultMaxConns))
	}
	if !res.Process.ShutdownClean {
		res.Notes = append(res.Notes, "relay process: did not shut down cleanly on SIGTERM: "+res.Process.Shutdown)
	}
	g := res.InProcess.Goroutines
	if !g.Settled {
		res.Problems = append(res.Problems, fmt.Sprintf("in-process relay: %d goroutines %.0f s after the load, against %d before (tolerance +%d)",
			g.After, g.AfterSeconds, g.Before, g.Tolerance))
	}
	res.Passed = len(res.Problems) == 0
}

func tallyText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

const labelWidth = 34

func line(out io.Writer, label, figures string) {
	fmt.Fprintf(out, "  %-*s %s\n", labelWidth, label+":", figures)
}

func printResults(out io.Writer, cfg *config, res *results) {
	fmt.Fprintf(out, "\namana soak: %s %s/%s, %d CPUs; %d honest submitters, %d hostile clients; desk of 2 classic handlers\n",
		res.Go, res.OS, res.Arch, res.CPUs, res.Submitters, res.HostileClients)

	p := res.Process
	fmt.Fprintf(out, "\nagainst an amana-relay process (amana-relay %s) for %s:\n", strings.Join(p.RelayFlags, " "), cfg.duration)
	line(out, "relay limits", fmt.Sprintf("serve's defaults unless a -relay-flag changed them: --create-rate %d/s and --create-burst %d "+
		"shared by every client, --max-concurrent-bodies %d, --max-connections %d",
		relay.DefaultCreateRate, relay.DefaultCreateBurst, relay.DefaultMaxConcurrentBodies, daemon.DefaultMaxConns))
	printLoad(out, p.Load)
	r := p.Relay
	if r.PeakHWMMiB > 0 {
		line(out, "relay process, peak", fmt.Sprintf("RSS %.0f MiB sampled (VmHWM %.0f MiB), %d OS threads, %d open fds",
			r.PeakRSSMiB, r.PeakHWMMiB, r.PeakThreads, r.PeakFDs))
		line(out, "  of which, at most", fmt.Sprintf("%.0f MiB heap and stacks (RssAnon), %.0f MiB mapped spool pages (RssFile, the kernel's to drop)",
			r.PeakAnonMiB, r.PeakFileMiB))
		line(out, "relay process, after the load", fmt.Sprintf("RSS %.0f MiB, %d OS threads, %d open fds", r.AfterRSSMiB, r.AfterThreads, r.AfterFDs))
	} else {
		line(out, "relay process", "n/a (no /proc)")
	}
	printFinal(out, p.Final)
	printEvents(out, p.Events)
	line(out, "shutdown on SIGTERM", p.Shutdown)

	ip := res.InProcess
	fmt.Fprintf(out, "\nagainst a relay in this process (relay.New, serve's default limits) for %s:\n", cfg.inproc)
	printLoad(out, ip.Load)
	g := ip.Goroutines
	verdict := "back to the baseline"
	if !g.Settled {
		verdict = "NOT back to the baseline"
	}
	line(out, "goroutines, whole process", fmt.Sprintf("before %d, peak %d, after %d (%.1f s after the load; %s, tolerance +%d)",
		g.Before, g.Peak, g.After, g.AfterSeconds, verdict, g.Tolerance))
	line(out, "goroutines, the relay's own", fmt.Sprintf("before %d, peak %d, after %d", g.RelayBefore, g.RelayPeak, g.RelayAfter))
	for _, s := range g.LeftoverStacks {
		fmt.Fprintf(out, "      %s\n", s)
	}
	printFinal(out, ip.Final)
	printEvents(out, ip.Events)

	fmt.Fprintln(out)
	for _, n := range res.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	if res.Passed {
		fmt.Fprintln(out, "soak: PASS")
		return
	}
	for _, pb := range res.Problems {
		fmt.Fprintf(out, "FAIL: %s\n", pb)
	}
	fmt.Fprintln(out, "soak: FAIL")
}

func printLoad(out io.Writer, l *loadResult) {
	h := l.Honest
	line(out, "honest submissions accepted", fmt.Sprintf("%.1f/s (%d of %d attempts in %.0f s; %.1f MiB/s)",
		h.AcceptedPerSec, h.Accepted, h.Attempts, l.Seconds, h.MiBPerSec))
	line(out, "single-request latency", h.Single.String())
	line(out, "resumable-upload latency", h.Resumable.String())
	line(out, "with busy waits: single", h.SingleE2E.String())
	line(out, "with busy waits: resumable", h.ResumableE2E.String())
	line(out, "honest answers not accepted", tallyText(h.Answers))
	line(out, "honest failures (not busy)", tallyText(h.Failures))
	if h.GaveUpAtEnd > 0 {
		line(out, "honest still busy at the end", fmt.Sprintf("%d report(s) given up", h.GaveUpAtEnd))
	}
	total := 0
	for _, a := range l.Hostile {
		total += a.Count
	}
	line(out, "health on a fresh connection", l.Probe.String()+"  failures: "+tallyText(l.ProbeFailures))
	line(out, "hostile requests by answer", fmt.Sprintf("%d from %d clients", total, l.HostileClients))
	for _, a := range l.Hostile {
		held := ""
		if a.HeldMaxSec > 0 {
			held = fmt.Sprintf("  held %.1f–%.1f s", a.HeldMinSec, a.HeldMaxSec)
		}
		mark := ""
		if !a.Expected {
			mark = "  (unexpected)"
		}
		fmt.Fprintf(out, "      %-17s %-46s ×%-5d%s%s\n", a.Action, a.Answer, a.Count, held, mark)
	}
}

func printFinal(out io.Writer, f *finalChecks) {
	line(out, "after the load: health", fmt.Sprintf("%s (%.1f s)", f.Health, f.HealthSeconds))
	line(out, "after the load: one more honest", fmt.Sprintf("%s (%.1f s)", f.FinalSubmission, f.FinalSeconds))
	line(out, "inbox against receipts", fmt.Sprintf("%s (%d listed, %d receipts)", f.Inbox, f.InboxListed, f.InboxExpected))
}

func printEvents(out io.Writer, ev map[string]int) {
	var parts []string
	for _, k := range sortedKeys(ev) {
		if !routineEvent(k) {
			parts = append(parts, fmt.Sprintf("%q ×%d", k, ev[k]))
		}
	}
	if len(parts) == 0 {
		parts = []string{"nothing unusual"}
	}
	line(out, "relay log", strings.Join(parts, ", "))
}
