package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
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
	scaleIngest   = 2000     // durable submissions timed at each size
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
	Stored          int     `json:"stored"`
	IngestPerSec    float64 `json:"ingest_per_sec"`
	IngestRatio     float64 `json:"ingest_ratio_vs_empty"`
	InboxMillis     float64 `json:"inbox_ms"`
	InboxRatio      float64 `json:"inbox_ratio_vs_empty"`
	FullScanMillis  float64 `json:"full_scan_ms"`
	SweepLongestMs  float64 `json:"sweep_longest_write_ms"`
	SweepSeconds    float64 `json:"sweep_seconds"`
	SweepDeleted    int     `json:"sweep_deleted"`
	SweepWriteAimMs float64 `json:"sweep_write_aim_ms"`
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
			fmt.Sprintf("ingest %.0f/s ratio %.2fx (aim >= 0.9x)  inbox %.2f ms ratio %.2fx (scan of all %.0f ms)  sweep of %d: longest write %.1f ms (aim <= %.0f ms), %.1fs",
				row.IngestPerSec, row.IngestRatio, row.InboxMillis, row.InboxRatio, row.FullScanMillis,
				row.SweepDeleted, row.SweepLongestMs, row.SweepWriteAimMs, row.SweepSeconds))
	}
}

// benchScale measures, at each size, a durable spool holding that many
// submissions for other handlers: ingest of small submissions against the
// same into an empty spool, one handler's inbox (its scaleMine pending,
// read through the relay's per-handler index) against the same in an
// empty spool, and a sweep deleting one in scaleDueShare of the backlog,
// timed by its longest write transaction.
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
		row.IngestRatio = ratio(row.IngestPerSec, res.EmptyIngestPerSec)
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
	fill := func(n int, mk func(i int) store.UploadSpec) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, cfg.clients)
		for range cfg.clients {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
					if _, err := sp.PutSubmission(mk(i), body); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		return ctx.Err()
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
	// single-request submissions.
	start := time.Now()
	if err := fill(scaleIngest, func(int) store.UploadSpec { return spec(scaleOther, 1000*time.Hour) }); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	row.IngestPerSec = float64(scaleIngest) / time.Since(start).Seconds()

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

	// A sweep once a tenth of the backlog is due.
	offset.Store(int64(10 * time.Hour))
	start = time.Now()
	sw, err := sp.Sweep()
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	row.SweepSeconds = time.Since(start).Seconds()
	row.SweepDeleted = sw.Submissions
	row.SweepLongestMs = float64(sw.LongestWrite.Microseconds()) / 1000
	if want := (backlog + scaleDueShare - 1) / scaleDueShare; sw.Submissions != want {
		return nil, fmt.Errorf("the sweep deleted %d, want %d", sw.Submissions, want)
	}
	return row, nil
}
