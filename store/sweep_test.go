package store

import (
	"errors"
	"testing"
	"time"
)

// dueSubs stores n submissions for route "me" that are due an hour from
// now.
func dueSubs(t *testing.T, s *Spool, n int) {
	t.Helper()
	for i := range n {
		sp := spec(10, "me")
		sp.KeepUnacked = time.Hour
		if _, err := s.PutSubmission(sp, data(10+i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSweepSharesCommit: the sweep's deletions join the durable commit of
// a submission waiting for its batch, instead of committing on their own
// while the submission waits. The batch here starts only once two calls
// are in it (and otherwise after an hour): a sweep committing on its own
// leaves the submission waiting.
func TestSweepSharesCommit(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	dueSubs(t, s, 5)
	c.add(10 * time.Hour)
	s.db.MaxBatchSize, s.db.MaxBatchDelay = 2, time.Hour
	put := make(chan error, 1)
	go func() {
		_, err := s.PutSubmission(spec(10, "me"), data(99))
		put <- err
	}()
	res, err := s.Sweep()
	if err != nil || res.Submissions != 5 {
		t.Fatalf("swept %d: %v", res.Submissions, err)
	}
	select {
	case err := <-put:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the submission still waits for its batch: the sweep committed on its own")
	}
	s.db.MaxBatchSize, s.db.MaxBatchDelay = 1000, time.Millisecond
	if subs, _, _ := s.RoutePage("me", "", 100, nil); len(subs) != 1 {
		t.Fatalf("me lists %d after the sweep, want the 1 not due", len(subs))
	}
}

// TestSweepBatchRunTwice: when another call in the sweep's batch fails,
// bbolt runs the sweep's deletions again in a transaction of their own;
// the sweep counts them once.
func TestSweepBatchRunTwice(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now})
	kept := spec(10, "me")
	kept.Idempotency = "k"
	if _, err := s.PutSubmission(kept, data(10)); err != nil {
		t.Fatal(err)
	}
	dueSubs(t, s, 5)
	c.add(10 * time.Hour)
	s.db.MaxBatchSize, s.db.MaxBatchDelay = 2, time.Hour
	put := make(chan error, 1)
	started := false
	s.sweepHook = func(write bool, _ int, _ time.Duration) {
		if write || started {
			return
		}
		// The sweep's first batch follows at once: this submission,
		// whose bytes differ from the ones stored under its key, fails
		// after the deletions ran in the shared transaction.
		started = true
		go func() {
			_, err := s.PutSubmission(kept, data(11))
			put <- err
		}()
	}
	res, err := s.Sweep()
	if err != nil || res.Submissions != 5 {
		t.Fatalf("swept %d, want 5: %v", res.Submissions, err)
	}
	if err := <-put; !errors.Is(err, ErrIdempotency) {
		t.Fatalf("the other call: %v, want ErrIdempotency", err)
	}
	s.db.MaxBatchSize, s.db.MaxBatchDelay = 1000, time.Millisecond
	if subs, _, _ := s.RoutePage("me", "", 100, nil); len(subs) != 1 {
		t.Fatalf("me lists %d after the sweep, want the 1 not due", len(subs))
	}
}
