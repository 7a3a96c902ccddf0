package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amana-relay/amana/store"
)

// The scale section: a spool holding many submissions for other handlers,
// and what that costs the one handler who has a few pending, the writers
// and the sweep.
const (
	scaleMine     = 100      // submissions waiting for the measured handler
	scaleIngest   = 2000     // durable submissions timed at each size, in each round
	scaleRounds   = 3        // rounds of ingest, each into a fresh empty spool then into the full one
	scaleBody     = 1 << 10  // bytes of each stored submission
	scaleDueShare = 10       // one in this many backlog submissions is due at the sweep
	scaleWriteAim = 10       // ms: the longest a sweep should hold the write lock
	scaleRepeat   = 20       // inbox listings timed at each size
	scaleOther    = "others" // the route of the backlog
	scaleMe       = "me"
)

// The stored submissions of the scale section's spools, and with -quick.
var (
	scaleSizes      = []int{10_000, 100_000}
	scaleQuickSizes = []int{1_000, 10_000}
)

type scaleRow struct {
	Stored       int     `json:"stored"`
	IngestPerSec float64 `json:"ingest_per_sec"`
	// The median over scaleRounds rounds of the ratio of ingest into
	// this spool to ingest into a fresh empty one just before, and the
	// median of those empty rates.
	IngestRatio     float64 `json:"ingest_ratio_vs_empty"`
	IngestRounds    int     `json:"ingest_rounds"`
	EmptyPerSec     float64 `json:"empty_ingest_per_sec_same_rounds"`
	InboxMillis     float64 `json:"inbox_ms"`
	InboxRatio      float64 `json:"inbox_ratio_vs_empty"`
	FullScanMillis  float64 `json:"full_scan_ms"`
	SweepLongestMs  float64 `json:"sweep_longest_write_ms"`
	SweepSeconds    float64 `json:"sweep_seconds"`
	SweepDeleted    int     `json:"sweep_deleted"`
	SweepWriteAimMs float64 `json:"sweep_write_aim_ms"`
	// The longest and the 99th percentile of a durable submission's
	// wait while the sweep ran beside the writers, and the same during
	// the ingest before it, without a sweep: what a sweep costs writers.
	WaitSweepMaxMs float64 `json:"ingest_wait_during_sweep_max_ms"`
	WaitSweepP99Ms float64 `json:"ingest_wait_during_sweep_p99_ms"`
	WaitMaxMs      float64 `json:"ingest_wait_max_ms"`
	WaitP99Ms      float64 `json:"ingest_wait_p99_ms"`
	SweepIngested  int     `json:"ingested_during_sweep"`
	// Ingest during the sweep against ingest into this spool without
	// one (the median of the rounds): how much of the writers' pace the
	// sweep takes.
	SweepIngestRatio float64 `json:"ingest_during_sweep_ratio"`
}

type scaleResult struct {
	EmptyIngestPerSec float64    `json:"empty_ingest_per_sec"`
	EmptyInboxMillis  float64    `json:"empty_inbox_ms"`
	Pending           int        `json:"pending_for_handler"`
	Rows              []scaleRow `json:"rows"`
}

func (r *scaleResult) print(out io.Writer) {
	printLine(out, "scale: empty spool", fmt.Sprintf("ingest %.0f/s  inbox of %d %.2f ms", r.EmptyIngestPerSec, r.Pending, r.EmptyInboxMillis))
	for _, row := range r.Rows {
		printLine(out, fmt.Sprintf("scale: %d stored for other handlers", row.Stored),
			fmt.Sprintf("ingest %.0f/s (empty %.0f/s) ratio %.2fx (median of %d alternating rounds; aim >= 0.9x)  inbox %.2f ms ratio %.2fx (scan of all %.0f ms)  sweep of %d: longest write %.1f ms (aim <= %.0f ms), %.1fs",
				row.IngestPerSec, row.EmptyPerSec, row.IngestRatio, row.IngestRounds, row.InboxMillis, row.InboxRatio, row.FullScanMillis,
				row.SweepDeleted, row.SweepLongestMs, row.SweepWriteAimMs, row.SweepSeconds))
		printLine(out, fmt.Sprintf("scale: %d stored, a submission's wait", row.Stored),
			fmt.Sprintf("during the sweep (%d stored meanwhile, %.2fx the pace without) p99 %.1f ms, longest %.1f ms; without a sweep p99 %.1f ms, longest %.1f ms",
				row.SweepIngested, row.SweepIngestRatio, row.WaitSweepP99Ms, row.WaitSweepMaxMs, row.WaitP99Ms, row.WaitMaxMs))
	}
}

// benchScale measures, at each size, a durable spool holding that many
// submissions for other handlers: ingest of small submissions against the
// same into an empty spool (alternating, scaleRounds rounds), one handler's inbox (its scaleMine pending,
// read through the relay's per-handler index) against the same in an
// empty spool, and a sweep deleting one in scaleDueShare of the backlog
// while cfg.clients writers go on storing durable submissions, timed by its
// longest batch of deletions and by the writers' waits (against their waits
// in the ingest before, without a sweep).
func benchScale(ctx context.Context, cfg *config, dir string) (*scaleResult, error) {
	sizes := scaleSizes
	if cfg.quick {
		sizes = scaleQuickSizes
	}
	res := &scaleResult{Pending: scaleMine}
	empty, err := scaleAt(ctx, cfg, filepath.Join(dir, "empty"), 0)
	if err != nil {
		return nil, err
	}
	res.EmptyIngestPerSec, res.EmptyInboxMillis = empty.IngestPerSec, empty.InboxMillis
	for _, n := range sizes {
		row, err := scaleAt(ctx, cfg, filepath.Join(dir, fmt.Sprint(n)), n)
		if err != nil {
			return nil, err
		}
		row.InboxRatio = ratio(res.EmptyInboxMillis, row.InboxMillis)
		res.Rows = append(res.Rows, *row)
	}
	return res, nil
}

func scaleAt(ctx context.Context, cfg *config, dir string, backlog int) (*scaleRow, error) {
	var offset atomic.Int64 // the spool's clock runs ahead by this much
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	body := make([]byte, scaleBody)
	rand.Read(body)
	spec := func(route string, keep time.Duration) store.UploadSpec {
		return store.UploadSpec{Desk: "scale", Routes: []string{route}, Stanzas: []string{"X25519"}, KeepUnacked: keep}
	}
	// Fill without syncs (the filling is not what is measured), then
	// reopen durable.
	sp, err := store.Open(dir, &store.Options{NoSync: true, Now: now, Quota: 1 << 40, DeskQuota: 1 << 40})
	if err != nil {
		return nil, err
	}
	// fill stores n submissions from cfg.clients goroutines (until stop
	// is closed, when n is negative), and returns how long each waited,
	// sorted, when timed.
	var waits []time.Duration
	var waitsMu sync.Mutex
	fillUntil := func(sp *store.Spool, n int, stop <-chan struct{}, timed bool, mk func(i int) store.UploadSpec) error {
		waits = waits[:0]
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, cfg.clients)
		more := func(i int) bool {
			if n >= 0 {
				return i < n && ctx.Err() == nil
			}
			select {
			case <-stop:
				return false
			default:
				return ctx.Err() == nil
			}
		}
		for range cfg.clients {
			wg.Go(func() {
				var mine []time.Duration
				defer func() {
					waitsMu.Lock()
					waits = append(waits, mine...)
					waitsMu.Unlock()
				}()
				for i := int(next.Add(1) - 1); more(i); i = int(next.Add(1) - 1) {
					t0 := time.Now()
					if _, err := sp.PutSubmission(mk(i), body); err != nil {
						errs <- err
						return
					}
					if timed {
						mine = append(mine, time.Since(t0))
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		slices.Sort(waits)
		if err := <-errs; err != nil {
			return err
		}
		return ctx.Err()
	}
	fill := func(n int, mk func(i int) store.UploadSpec) error { return fillUntil(sp, n, nil, false, mk) }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	tail := func() (p99, longest float64) {
		if len(waits) == 0 {
			return 0, 0
		}
		return ms(waits[len(waits)*99/100]), ms(waits[len(waits)-1])
	}
	err = fill(backlog, func(i int) store.UploadSpec {
		if i%scaleDueShare == 0 {
			return spec(scaleOther, time.Hour)
		}
		return spec(scaleOther, 1000*time.Hour)
	})
	if err == nil {
		err = fill(scaleMine, func(int) store.UploadSpec { return spec(scaleMe, 1000*time.Hour) })
	}
	sp.Close()
	if err != nil {
		return nil, fmt.Errorf("filling the spool: %w", err)
	}
	sp, err = store.Open(dir, &store.Options{Now: now, Quota: 1 << 40, DeskQuota: 1 << 40})
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	row := &scaleRow{Stored: backlog, SweepWriteAimMs: scaleWriteAim}

	// Ingest: durable, from cfg.clients goroutines, as the relay stores
	// single-request submissions. With a backlog, each round first times
	// the same into a fresh empty spool, so that a ratio compares two
	// moments of the shared disk next to each other.
	ingest := func(into *store.Spool) (float64, error) {
		start := time.Now()
		if err := fillUntil(into, scaleIngest, nil, true, func(int) store.UploadSpec { return spec(scaleOther, 1000*time.Hour) }); err != nil {
			return 0, fmt.Errorf("ingest: %w", err)
		}
		return float64(scaleIngest) / time.Since(start).Seconds(), nil
	}
	rounds := 1
	if backlog > 0 {
		rounds = scaleRounds
	}
	var rates, empties, ratios []float64
	for r := range rounds {
		if backlog > 0 {
			e, err := store.Open(fmt.Sprintf("%s-empty-%d", dir, r), &store.Options{Now: now, Quota: 1 << 40, DeskQuota: 1 << 40})
			if err != nil {
				return nil, err
			}
			rate, err := ingest(e)
			e.Close()
			if err != nil {
				return nil, err
			}
			empties = append(empties, rate)
		}
		rate, err := ingest(sp)
		if err != nil {
			return nil, err
		}
		rates = append(rates, rate)
		if backlog > 0 {
			ratios = append(ratios, ratio(rate, empties[r]))
		}
	}
	// The waits of the last round into this spool.
	row.WaitP99Ms, row.WaitMaxMs = tail()
	row.IngestPerSec, row.IngestRounds = median(rates), rounds
	if backlog > 0 {
		row.EmptyPerSec, row.IngestRatio = median(empties), median(ratios)
	}

	// One handler's inbox, page by page as the relay lists it.
	list := func(page func(after string) ([]*store.Submission, string, error)) (time.Duration, error) {
		start := time.Now()
		for range scaleRepeat {
			got, after := 0, ""
			for {
				subs, next, err := page(after)
				if err != nil {
					return 0, err
				}
				got += len(subs)
				if next == "" {
					break
				}
				after = next
			}
			if got != scaleMine {
				return 0, fmt.Errorf("the inbox lists %d, want %d", got, scaleMine)
			}
		}
		return time.Since(start) / scaleRepeat, nil
	}
	mine := func(s *store.Submission) bool { return s.Routes[0] == scaleMe }
	took, err := list(func(after string) ([]*store.Submission, string, error) {
		return sp.RoutePage(scaleMe, after, 1000, mine)
	})
	if err != nil {
		return nil, err
	}
	row.InboxMillis = float64(took.Microseconds()) / 1000
	// The same listing by a scan of every record, as the inbox was read
	// before the index: what the index saves.
	took, err = list(func(after string) ([]*store.Submission, string, error) { return sp.SubmissionsPage(after, 1000, mine) })
	if err != nil {
		return nil, err
	}
	row.FullScanMillis = float64(took.Microseconds()) / 1000

	// A sweep once a tenth of the backlog is due, beside writers storing
	// submissions that are not.
	offset.Store(int64(10 * time.Hour))
	stop := make(chan struct{})
	ingested := make(chan error, 1)
	go func() {
		ingested <- fillUntil(sp, -1, stop, true, func(int) store.UploadSpec { return spec(scaleOther, 1000*time.Hour) })
	}()
	start := time.Now()
	sw, err := sp.Sweep()
	row.SweepSeconds = time.Since(start).Seconds()
	close(stop)
	if ierr := <-ingested; ierr != nil {
		return nil, fmt.Errorf("ingest during the sweep: %w", ierr)
	}
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	row.SweepIngested = len(waits)
	row.SweepIngestRatio = ratio(float64(len(waits))/row.SweepSeconds, row.IngestPerSec)
	row.WaitSweepP99Ms, row.WaitSweepMaxMs = tail()
	row.SweepDeleted = sw.Submissions
	row.SweepLongestMs = ms(sw.LongestWrite)
	if want := (backlog + scaleDueShare - 1) / scaleDueShare; sw.Submissions != want {
		return nil, fmt.Errorf("the sweep deleted %d, want %d", sw.Submissions, want)
	}
	return row, nil
}
