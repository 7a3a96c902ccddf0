package store

import (
	"crypto/sha256"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fillSubs stores n submissions of size bytes for route, one in dueEvery
// due an hour from now and the others in 1,000 hours, in transactions of
// 5,000, as PutSubmission would one at a time.
func fillSubs(tb testing.TB, s *Spool, n, size, dueEvery int, route string) {
	tb.Helper()
	body := data(size)
	for i := 0; i < n; i += 5000 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for j := i; j < min(n, i+5000); j++ {
				sp := UploadSpec{Desk: "d", Routes: []string{route}, Stanzas: []string{"X25519"}, Length: int64(size), KeepUnacked: 1000 * time.Hour}
				if j%dueEvery == 0 {
					sp.KeepUnacked = time.Hour
				}
				_, key := token()
				if err := s.reserve(tx, sp.Desk, sp.Length); err != nil {
					return err
				}
				if err := putChunks(tx, key, 0, [][]byte{body}); err != nil {
					return err
				}
				h := sha256.New()
				h.Write(body)
				if _, err := s.newSubmission(tx, key, &sp, h); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkSweepSubmissions sweeps a durable spool of 100,000 submissions
// of 1 KiB, a tenth of them due, as the bench's scale section does, and
// reports how long reopening it took (bbolt rebuilds its free list at open,
// NoFreelistSync), the sweep's longest batch of deletions (from the call to
// its durable commit, so with no other writer it includes the BatchDelay
// its Batch waits), its median and 99th percentile, and what one of its
// write transactions costs on average: page writes (bbolt counts a run of
// pages once), time spilling and rebalancing the tree, and time writing
// the pages and the meta page with their two fdatasyncs.
func BenchmarkSweepSubmissions(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := newClock()
		dir := filepath.Join(b.TempDir(), "data")
		o := &Options{Now: c.now, Quota: 1 << 40, DeskQuota: 1 << 40, NoSync: true}
		s, err := Open(dir, o)
		if err != nil {
			b.Fatal(err)
		}
		fillSubs(b, s, n, 1<<10, 10, "others")
		s.Close()
		o.NoSync = false
		t0 := time.Now()
		s, err = Open(dir, o)
		if err != nil {
			b.Fatal(err)
		}
		open := time.Since(t0)
		var writes []time.Duration
		st0 := s.db.Stats().TxStats
		s.sweepHook = func(write bool, _ int, took time.Duration) {
			if write {
				writes = append(writes, took)
			}
		}
		c.add(10 * time.Hour)
		b.StartTimer()
		res, err := s.Sweep()
		b.StopTimer()
		if err != nil || res.Submissions != n/10 {
			b.Fatalf("swept %d: %v", res.Submissions, err)
		}
		st := s.db.Stats().TxStats
		s.Close()
		slices.Sort(writes)
		tx := float64(len(writes))
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(open), "open-ms")
		b.ReportMetric(ms(writes[len(writes)-1]), "max-write-ms")
		b.ReportMetric(ms(writes[len(writes)/2]), "p50-write-ms")
		b.ReportMetric(ms(writes[len(writes)*99/100]), "p99-write-ms")
		b.ReportMetric(float64(st.GetWrite()-st0.GetWrite())/tx, "page-writes/tx")
		b.ReportMetric(ms(st.GetSpillTime()-st0.GetSpillTime())/tx, "spill-ms/tx")
		b.ReportMetric(ms(st.GetRebalanceTime()-st0.GetRebalanceTime())/tx, "rebalance-ms/tx")
		b.ReportMetric(ms(st.GetWriteTime()-st0.GetWriteTime())/tx, "write+sync-ms/tx")
	}
}
