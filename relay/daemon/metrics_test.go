package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
)

type fakeRelay struct {
	mu    sync.Mutex
	stats store.Stats
	ans   relay.Answers
}

func (f *fakeRelay) Stats() (store.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, nil
}
func (f *fakeRelay) DeskCount() int         { return 2 }
func (f *fakeRelay) Answers() relay.Answers { f.mu.Lock(); defer f.mu.Unlock(); return f.ans }

func scrape(t *testing.T, m *monitor, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestMetricsMoveOncePerGranule(t *testing.T) {
	f := &fakeRelay{stats: store.Stats{Submissions: 3, Uploads: 1, Events: 5, Committed: 4096, Quota: 10 << 30, FileSize: 1 << 20},
		ans: relay.Answers{Success: 10, Busy: 2}}
	clock := time.Date(2026, 11, 25, 10, 20, 0, 0, time.UTC)
	m := newMonitor(f, f, t.TempDir(), time.Hour, "v1.2.3 (go1.26)")
	m.now = func() time.Time { return clock }
	m.take()
	m.setLive(&Status{Mode: "tor", TorState: "100% Done", PoW: true})
	code, body := scrape(t, m, "/metrics")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		"amana_up 1", "amana_tor_connected 1", "amana_handler_onion_up 1", "amana_intake_pow 1",
		"amana_submissions_waiting 3", "amana_uploads_unfinished 1", "amana_events_waiting 5", "amana_desks 2", "amana_spool_bytes 4096",
		`amana_answers_total{kind="success"} 10`, `amana_answers_total{kind="busy"} 2`,
		"amana_snapshot_timestamp_seconds 1795600800", // 10:00, the granule's start
		"amana_disk_free_bytes ", `amana_build_info{version="v1.2.3 (go1.26)"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// A submission arrives: nothing moves until the next granule.
	f.mu.Lock()
	f.stats.Submissions, f.ans.Success = 4, 11
	f.mu.Unlock()
	if _, body := scrape(t, m, "/metrics"); !strings.Contains(body, "amana_submissions_waiting 3") || !strings.Contains(body, `{kind="success"} 10`) {
		t.Errorf("metrics moved within a granule:\n%s", body)
	}
	clock = clock.Add(time.Hour)
	m.take()
	if _, body := scrape(t, m, "/metrics"); !strings.Contains(body, "amana_submissions_waiting 4") || !strings.Contains(body, "amana_snapshot_timestamp_seconds 1795604400") {
		t.Errorf("metrics did not move at the next granule:\n%s", body)
	}
	// The details of the metrics never name a desk or a route.
	if strings.Contains(body, "desk=") || strings.Contains(body, "route") {
		t.Errorf("metrics name a desk or a route:\n%s", body)
	}
}

func TestHealth(t *testing.T) {
	f := &fakeRelay{}
	for _, tc := range []struct {
		live Status
		code int
	}{
		{Status{Mode: "loopback"}, 200},
		{Status{Mode: "tor", TorState: "100% Done"}, 200},
		{Status{Mode: "tor", TorState: "100% Done", HandlerDown: true}, 503},
		{Status{Mode: "tor", TorState: "40% Loading relay descriptors"}, 503},
	} {
		m := newMonitor(f, f, t.TempDir(), time.Hour, "v1.2.3 (go1.26)")
		m.setLive(&tc.live)
		if code, body := scrape(t, m, "/health"); code != tc.code {
			t.Errorf("%+v: /health %d %q, want %d", tc.live, code, body, tc.code)
		}
	}
	m := newMonitor(f, f, t.TempDir(), time.Hour, "v1.2.3 (go1.26)")
	if code, _ := scrape(t, m, "/other"); code != http.StatusNotFound {
		t.Errorf("/other: %d", code)
	}
}

// TestNotifySchedule: the command runs at every multiple of the interval,
// with the count, also when nothing waits.
func TestNotifySchedule(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|' \"$AMANA_WAITING\" >> "+out+"\ncat >> "+out+"\n"), 0o700)
	f := &fakeRelay{}
	m := newMonitor(f, f, dir, time.Hour, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	calls := make(chan int, 10)
	run := notifier(script, t.Logf)
	go func() {
		m.run(ctx, func(n int) { run(n); calls <- n }, 200*time.Millisecond)
		close(done)
	}()
	if n := <-calls; n != 0 {
		t.Fatalf("first notification said %d waiting", n)
	}
	f.mu.Lock()
	f.stats.Submissions = 5
	f.mu.Unlock()
	for n := range calls {
		if n == 5 {
			break
		}
	}
	cancel()
	<-done
	b, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(b), "0|0 submission(s) waiting on the relay\n") || !strings.Contains(string(b), "5|5 submission(s) waiting on the relay\n") {
		t.Fatalf("the command was given %q", b)
	}
}
