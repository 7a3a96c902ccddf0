package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// relayLabel marks the goroutines of the in-process relay: the server's
// goroutine and every goroutine it starts inherit it.
var relayLabel = pprof.Labels("soak", "relay")

// settleMin is how long after the load the goroutines are first counted.
const settleMin = 3 * time.Second

// goroutines is the in-process phase's goroutine counts: the whole process
// (runtime.NumGoroutine, load generator included), and the relay's own.
type goroutines struct {
	Before         int      `json:"before"`
	Peak           int      `json:"peak"`
	After          int      `json:"after"`
	AfterSeconds   float64  `json:"after_seconds"` // after the load ended, when After was taken
	Settled        bool     `json:"settled"`       // After is within the tolerance of Before
	Tolerance      int      `json:"tolerance"`
	RelayBefore    int      `json:"relay_before"`
	RelayPeak      int      `json:"relay_peak"`
	RelayAfter     int      `json:"relay_after"`
	LeftoverStacks []string `json:"leftover_stacks,omitempty"`
}

// inprocResult is the in-process phase.
type inprocResult struct {
	Load       *loadResult    `json:"load"`
	Goroutines goroutines     `json:"goroutines"`
	Final      *finalChecks   `json:"final"`
	Events     map[string]int `json:"relay_events"`
}

// runInProcess serves a relay over a durable spool in this process, on
// loopback, with amana-relay serve's default limits, runs the same load
// against it for cfg.inproc, and counts goroutines before, during and after.
func runInProcess(ctx context.Context, root string, d *relayproc.Desk, fx *fixtures, cfg *config, log io.Writer) (*inprocResult, error) {
	dir := filepath.Join(root, "inproc")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	sp, err := store.Open(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("opening the spool: %w", err)
	}
	defer sp.Close()
	events := &eventLog{}
	srv, err := relay.New(sp, relay.Config{Admin: d.AdminKey(), Eventf: events.event})
	if err != nil {
		return nil, fmt.Errorf("starting the relay: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := srv.HTTPServer(srv.Combined())
	served := make(chan struct{})
	go pprof.Do(context.Background(), relayLabel, func(context.Context) {
		hs.Serve(relay.CapConns(hs, ln, daemon.DefaultMaxConns))
		close(served)
	})
	defer func() {
		hs.Close()
		<-served
	}()

	t, err := newTarget(ctx, "in-process", "http://"+ln.Addr().String(), d, fx)
	if err != nil {
		return nil, err
	}
	res := &inprocResult{}
	g := &res.Goroutines
	g.Tolerance = cfg.goroutineTolerance
	time.Sleep(500 * time.Millisecond) // let the set-up's connection close
	g.Before, g.RelayBefore = runtime.NumGoroutine(), relayGoroutines(nil)
	baseline := goroutineGroups()

	// Sample the peak: the whole process often, the relay's own (a goroutine
	// profile) twice a second.
	stop := make(chan struct{})
	var swg sync.WaitGroup
	var peak, relayPeak atomic.Int64
	swg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var last time.Time
		for {
			peak.Store(max(peak.Load(), int64(runtime.NumGoroutine())))
			if time.Since(last) >= 500*time.Millisecond {
				last = time.Now()
				relayPeak.Store(max(relayPeak.Load(), int64(relayGoroutines(nil))))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	status := func() string {
		return fmt.Sprintf("goroutines %d (peak %d)", runtime.NumGoroutine(), peak.Load())
	}
	res.Load = runLoad(ctx, t, cfg, cfg.inproc, log, status)
	close(stop)
	swg.Wait()
	g.Peak, g.RelayPeak = int(peak.Load()), int(relayPeak.Load())
	if ctx.Err() != nil {
		return nil, errInterrupted
	}

	// After the load: every client connection is closed; the relay's
	// goroutines must end within cfg.settle. The count is taken a few
	// seconds after the load, or later if it is not back by then.
	ended := time.Now()
	sleep(ctx, min(settleMin, cfg.settle))
	for {
		g.After = runtime.NumGoroutine()
		if g.After <= g.Before+g.Tolerance {
			g.Settled = true
			break
		}
		if time.Since(ended) > cfg.settle || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.AfterSeconds = time.Since(ended).Round(100 * time.Millisecond).Seconds()
	g.RelayAfter = relayGoroutines(nil)
	if !g.Settled {
		g.LeftoverStacks = leftover(baseline, goroutineGroups())
	}

	res.Final = t.check(ctx, res.Load.receipts, res.Load.honestFailures())
	res.Events = events.counts.snapshot()
	return res, nil
}

// goroutineGroup is one group of a goroutine profile: goroutines with the
// same stack.
type goroutineGroup struct {
	count int
	relay bool
	stack string // the functions, innermost first
}

// goroutineGroups reads this process's goroutine profile.
func goroutineGroups() []goroutineGroup {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	var out []goroutineGroup
	var cur *goroutineGroup
	var frames []string
	flush := func() {
		if cur != nil {
			cur.stack = strings.Join(frames, " < ")
			out = append(out, *cur)
		}
		cur, frames = nil, nil
	}
	sc := bufio.NewScanner(&b)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, " @ ") && !strings.HasPrefix(line, "#"):
			flush()
			n, err := strconv.Atoi(strings.Fields(line)[0])
			if err != nil {
				continue
			}
			cur = &goroutineGroup{count: n}
		case cur != nil && strings.HasPrefix(line, "# labels:"):
			cur.relay = strings.Contains(line, `"soak":"relay"`)
		case cur != nil && strings.HasPrefix(line, "#\t"):
			f := strings.Fields(line)
			if len(f) >= 3 {
				fn := f[2]
				if i := strings.LastIndex(fn, "+0x"); i > 0 {
					fn = fn[:i]
				}
				if len(frames) < 6 {
					frames = append(frames, fn)
				}
			}
		}
	}
	flush()
	return out
}

// relayGoroutines counts the in-process relay's goroutines in groups, or
// in a fresh profile when groups is nil.
func relayGoroutines(groups []goroutineGroup) int {
	if groups == nil {
		groups = goroutineGroups()
	}
	n := 0
	for _, g := range groups {
		if g.relay {
			n += g.count
		}
	}
	return n
}

// leftover describes the goroutines in after that were not in before,
// the most numerous first.
func leftover(before, after []goroutineGroup) []string {
	count := func(gs []goroutineGroup) map[string]int {
		m := map[string]int{}
		for _, g := range gs {
			k := g.stack
			if g.relay {
				k = "[relay] " + k
			}
			m[k] += g.count
		}
		return m
	}
	b, a := count(before), count(after)
	type d struct {
		k string
		n int
	}
	var ds []d
	for k, n := range a {
		if n > b[k] {
			ds = append(ds, d{k, n - b[k]})
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].n > ds[j].n })
	var out []string
	for i, x := range ds {
		if i == 10 {
			break
		}
		out = append(out, fmt.Sprintf("+%d %s", x.n, x.k))
	}
	return out
}
