package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
)

// monitor serves health and Prometheus metrics on loopback, and runs the
// notification command on a fixed schedule.
//
// Whatever moves when a submission arrives (counts, bytes, answers given)
// is read once per time granule (the spool's Coarse, an hour by default)
// and served unchanged until the next: scraping the metrics shows no more
// about when submissions came than the spool keeps. What says whether the
// relay works (tor, the onions, free disk) is live.
type monitor struct {
	sp      statser
	srv     counter
	data    string
	gran    time.Duration
	version string
	now     func() time.Time

	mu   sync.Mutex
	snap snapshot
	live Status // the latest status, as StatusFile has it
}

// statser and counter are what the monitor reads of the spool and the
// relay.
type statser interface {
	Stats() (store.Stats, error)
}

type counter interface {
	DeskCount() int
	Answers() relay.Answers
}

type snapshot struct {
	At      time.Time
	Stats   store.Stats
	Desks   int
	Answers relay.Answers
}

func newMonitor(sp statser, srv counter, data string, gran time.Duration, version string) *monitor {
	m := &monitor{sp: sp, srv: srv, data: data, gran: gran, version: version, now: time.Now}
	m.take()
	return m
}

// take reads the granular figures now.
func (m *monitor) take() {
	st, err := m.sp.Stats()
	if err != nil {
		return
	}
	s := snapshot{At: m.now().UTC().Truncate(m.gran), Stats: st, Desks: m.srv.DeskCount(), Answers: m.srv.Answers()}
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
}

// setLive records the relay's latest status.
func (m *monitor) setLive(st *Status) {
	m.mu.Lock()
	m.live = *st
	m.mu.Unlock()
}

// run takes a snapshot at every granule boundary, and runs notify (if set)
// at every multiple of every, until ctx ends.
func (m *monitor) run(ctx context.Context, notify func(waiting int), every time.Duration) {
	nextSnap := m.now().Truncate(m.gran).Add(m.gran)
	var nextNote time.Time
	if notify != nil {
		nextNote = m.now().Truncate(every).Add(every)
	}
	for {
		next := nextSnap
		if notify != nil && nextNote.Before(next) {
			next = nextNote
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		now := m.now()
		if !now.Before(nextSnap) {
			m.take()
			nextSnap = now.Truncate(m.gran).Add(m.gran)
		}
		if notify != nil && !now.Before(nextNote) {
			st, err := m.sp.Stats()
			if err == nil {
				notify(st.Submissions)
			}
			nextNote = now.Truncate(every).Add(every)
		}
	}
}

func (m *monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "/health":
		if problem := m.problem(); problem != "" {
			http.Error(w, problem, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	case "/metrics":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.write(w)
	default:
		http.NotFound(w, r)
	}
}

// problem says what keeps the relay from working, or "".
func (m *monitor) problem() string {
	m.mu.Lock()
	live := m.live
	m.mu.Unlock()
	if live.Mode == "tor" && live.HandlerDown {
		return "the handler onion is down"
	}
	if live.Mode == "tor" && !torConnected(live.TorState) {
		return "tor: " + live.TorState
	}
	return ""
}

func (m *monitor) write(w io.Writer) {
	m.mu.Lock()
	s, live := m.snap, m.live
	m.mu.Unlock()
	g := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	fmt.Fprintf(w, "# HELP amana_build_info The relay's version.\n# TYPE amana_build_info gauge\namana_build_info{version=%q} 1\n", m.version)
	g("amana_up", "1 while the relay answers and has nothing to report on /health.", b(m.problem() == ""))
	if live.Mode == "tor" {
		g("amana_tor_connected", "1 while the relay's tor is connected to the Tor network.", b(torConnected(live.TorState)))
		g("amana_handler_onion_up", "1 while the handler onion is published.", b(!live.HandlerDown))
		g("amana_intake_pow", "1 while tor's proof-of-work defence is on for the intake onion.", b(live.PoW))
	}
	if free, err := DiskFree(m.data); err == nil {
		g("amana_disk_free_bytes", "Free space on the data directory's filesystem.", free)
	}
	g("amana_snapshot_timestamp_seconds", "When the figures below were read: the start of a time granule.", s.At.Unix())
	g("amana_submissions_waiting", "Submissions stored and not yet deleted.", s.Stats.Submissions)
	g("amana_uploads_unfinished", "Resumable uploads not yet completed or expired.", s.Stats.Uploads)
	g("amana_events_waiting", "Case journal events stored and not yet deleted.", s.Stats.Events)
	g("amana_desks", "Desks served.", s.Desks)
	g("amana_spool_bytes", "Bytes counted against the quota.", s.Stats.Committed)
	g("amana_spool_quota_bytes", "The spool's quota.", s.Stats.Quota)
	g("amana_spool_file_bytes", "Size of the spool file.", s.Stats.FileSize)
	fmt.Fprintf(w, "# HELP amana_answers_total Answers the relay gave since it started, by kind.\n# TYPE amana_answers_total counter\n")
	for _, a := range []struct {
		kind string
		n    int64
	}{{"success", s.Answers.Success}, {"client_error", s.Answers.ClientError}, {"busy", s.Answers.Busy},
		{"storage_full", s.Answers.StorageFull}, {"server_error", s.Answers.ServerError}} {
		fmt.Fprintf(w, "amana_answers_total{kind=%q} %d\n", a.kind, a.n)
	}
}

// torConnected reads the tor state the status keeps ("100% Done").
func torConnected(state string) bool { return strings.HasPrefix(state, "100%") }

// DiskFree is the space free for the relay's user on dir's filesystem, as
// amana_disk_free_bytes reports it.
func DiskFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
