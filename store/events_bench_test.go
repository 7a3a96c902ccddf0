package store

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fillEvents stores n events of 600 bytes for routes, the first acked, in
// transactions of 10,000, as PutEvent would one at a time.
func fillEvents(b *testing.B, s *Spool, n int, keep time.Duration, routes ...string) {
	b.Helper()
	payload := data(600)
	for i := 0; i < n; i += 10000 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for j := i; j < min(n, i+10000); j++ {
				ev, key := s.newEvent(EventSpec{Desk: "d", Kind: KindEvent, Routes: routes, Acked: routes[:1], KeepUnacked: keep}, payload)
				if err := s.putEvent(tx, ev, key, payload); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func openBench(b *testing.B, o *Options) *Spool {
	o.NoSync = true
	o.Quota, o.EventQuota = 1<<40, 1<<40
	s, err := Open(filepath.Join(b.TempDir(), "data"), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

var (
	benchAuthor = strings.Repeat("a", 43)
	benchOther  = strings.Repeat("o", 43)
	benchMe     = strings.Repeat("m", 43)
)

// BenchmarkSweepEvents sweeps 200,000 events not due and 200 due, and
// reports the longest write transaction (the writer lock every submission
// and ack waits for) and the longest read transaction.
func BenchmarkSweepEvents(b *testing.B) {
	c := newClock()
	s := openBench(b, &Options{Now: c.now})
	fillEvents(b, s, 200000, 90*24*time.Hour, benchAuthor, benchOther)
	var maxWrite, maxRead time.Duration
	s.sweepHook = func(write bool, _ int, took time.Duration) {
		if write {
			maxWrite = max(maxWrite, took)
		} else {
			maxRead = max(maxRead, took)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fillEvents(b, s, 200, time.Hour, benchAuthor, benchOther)
		c.add(2 * time.Hour)
		b.StartTimer()
		res, err := s.Sweep()
		if err != nil || res.Events != 200 {
			b.Fatalf("swept %d: %v", res.Events, err)
		}
	}
	b.ReportMetric(float64(maxWrite.Microseconds())/1000, "max-write-ms")
	b.ReportMetric(float64(maxRead.Microseconds())/1000, "max-read-ms")
}

// BenchmarkEventsPageOthers lists a handler's 10 events among 200,000 of
// other handlers.
func BenchmarkEventsPageOthers(b *testing.B) {
	s := openBench(b, &Options{})
	fillEvents(b, s, 200000, time.Hour, benchAuthor, benchOther)
	fillEvents(b, s, 10, time.Hour, benchAuthor, benchMe)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs, _, err := s.EventsPage(benchMe, "", 100, nil)
		if err != nil || len(evs) != 10 {
			b.Fatalf("%d events: %v", len(evs), err)
		}
	}
}
