package crash

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// ---------------------------------------------------------------------------
// TestRelayCrash

// item is a submission the relay holds: it gave a receipt for it, or it was
// found complete in the inbox although its answer was lost in the crash.
type item struct {
	id, sha   string
	size      int64
	s         *sub
	receipted bool
	round     int
	found     bool // seen intact after its round's crash

	survivor bool // never acked
	half     bool // acked by bob only, this round
	planned  bool // to be acked in the coming round

	bobTry, bobAcked bool // bob's ack sent / confirmed
	aliceTry         bool // alice's ack (the last one) sent
	deleted          bool // alice's ack confirmed, or the submission gone after it was sent
}

type totals struct {
	attempted, small, resumable int
	acknowledged                int // receipts
	found                       int // receipted submissions found intact after the crash
	lost                        int // receipted or known submissions missing or different
	halfVisible                 int // inbox items that do not open completely or are not what was sent
	unreceipted                 int // complete in the inbox though the receipt was lost
	resurrected                 int // visible again after a confirmed ack deleted them
	acksConfirmed, acksInFlight int // acks during a round, into its crash
	acksBetween                 int // acks between rounds, all confirmed
	busy                        int // submissions refused as busy (rate or body limits)
	checksRun, checksFailed     int // spool checks
	uploadsLeft                 int // abandoned uploads found by the checks, summed
	logLines                    int // relay log lines of note
}

type harness struct {
	t *testing.T
	w *world

	mu       sync.Mutex
	subs     map[string]*sub  // by marker
	items    map[string]*item // by ID
	tot      totals
	problems []string // unexpected errors from submitters and ackers
}

func (h *harness) problem(format string, args ...any) {
	h.mu.Lock()
	h.problems = append(h.problems, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

// submitter sends submissions until ctx ends.
func (h *harness) submitter(ctx context.Context, c *client.Client, round, worker int) {
	for seq := 0; ctx.Err() == nil; seq++ {
		small := rand.IntN(10) < 6
		var size int64
		switch {
		case !small:
			size = minLarge + rand.Int64N(maxLarge-minLarge)
		case rand.IntN(4) == 0:
			size = rand.Int64N(maxSmall)
		default:
			size = rand.Int64N(16 << 10)
		}
		s := newSub(fmt.Sprintf("crash-r%03d-w%02d-n%03d-%s", round, worker, seq, randHex(4)), small, size)
		h.mu.Lock()
		h.subs[s.marker] = s
		h.tot.attempted++
		if small {
			h.tot.small++
		} else {
			h.tot.resumable++
		}
		h.mu.Unlock()
		err := s.submit(ctx, c, h.w.cards)
		if err == nil {
			h.receipted(s, round)
			continue
		}
		var ae *client.Error
		var ne *client.NetError
		switch {
		case ctx.Err() != nil || errors.As(err, &ne):
			// The relay was killed (or is being killed) under it.
		case errors.As(err, &ae) && ae.Body.Code == "busy":
			h.mu.Lock()
			h.tot.busy++
			h.mu.Unlock()
			sleepCtx(ctx, 20*time.Millisecond)
		default:
			h.problem("round %d: submission %s (%d bytes): %v", round, s.marker, s.ctLen, err)
		}
	}
}

func (h *harness) receipted(s *sub, round int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rc := s.receipt
	h.tot.acknowledged++
	if rc.Size != s.ctLen || rc.SHA256 != s.ctSHA || rc.Desk != deskID {
		h.problems = append(h.problems, fmt.Sprintf("round %d: receipt for %s says %d bytes, SHA-256 %.12s, desk %q; sent %d bytes, %.12s",
			round, s.marker, rc.Size, rc.SHA256, rc.Desk, s.ctLen, s.ctSHA))
	}
	if old := h.items[rc.ID]; old != nil {
		h.problems = append(h.problems, fmt.Sprintf("round %d: receipt ID %s given twice (%s and %s)", round, rc.ID, old.s.marker, s.marker))
		return
	}
	h.items[rc.ID] = &item{id: rc.ID, sha: rc.SHA256, size: rc.Size, s: s, receipted: true, round: round}
}

// acker acks the items of plan: bob first, then alice, whose ack deletes
// the submission; half items get bob's ack only. crash says the relay is
// about to be killed: then acking starts after a random part of the first
// half of the time left (acks wait behind the uploads' commits), and the
// outcome of an ack without an answer is settled after the restart.
func (h *harness) acker(ctx context.Context, alice, bob *client.Client, plan []*item, crash bool, before time.Duration, round int) {
	if crash {
		sleepCtx(ctx, rand.N(before/2+1))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(plan) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				it := plan[i]
				if !h.ack(ctx, bob, it, false, crash, round) || it.half {
					continue
				}
				h.ack(ctx, alice, it, true, crash, round)
			}
		})
	}
	wg.Wait()
}

// ack sends one handler's ack of it and records what is known of it; it
// reports whether the ack is confirmed.
func (h *harness) ack(ctx context.Context, c *client.Client, it *item, last, crash bool, round int) bool {
	h.mu.Lock()
	if !last && it.bobAcked {
		h.mu.Unlock()
		return true
	}
	if last {
		it.aliceTry = true
	} else {
		it.bobTry = true
	}
	h.mu.Unlock()
	a, err := c.Ack(ctx, it.id)
	deleted := a.Deleted
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		var ne *client.NetError
		if errors.Is(err, syscall.ECONNREFUSED) {
			// Never sent: the relay was already dead.
			it.aliceTry = it.aliceTry && !last
			it.bobTry = it.bobTry && last
		}
		if !crash || ctx.Err() == nil && !errors.As(err, &ne) {
			h.problems = append(h.problems, fmt.Sprintf("round %d: ack of %s: %v", round, it.id, err))
		}
		return false
	}
	if deleted != last {
		h.problems = append(h.problems, fmt.Sprintf("round %d: ack of %s by %s answered deleted=%v", round, it.id, map[bool]string{true: "alice (the last handler)", false: "bob"}[last], deleted))
	}
	if last {
		it.deleted = true
		if crash {
			h.tot.acksConfirmed++
		} else {
			h.tot.acksBetween++
		}
	} else {
		it.bobAcked = true
	}
	return true
}

func TestRelayCrash(t *testing.T) {
	n, asked := rounds(t)
	begin := time.Now()
	w := newWorld(t)
	h := &harness{t: t, w: w, subs: map[string]*sub{}, items: map[string]*item{}}
	r := startRelay(t, w.data)
	w.publish(t, r)
	ran := 0
	defer func() { h.summary(ran, time.Since(begin)) }()
	for round := 1; round <= n; round++ {
		if round > 1 {
			r = startRelay(t, w.data)
		}
		h.round(round, r)
		ran = round
		if t.Failed() {
			break
		}
		if !asked && time.Since(begin) > timeBudget && round < n {
			t.Logf("stopping after %d of %d rounds: the default run keeps within %v (ask for rounds with -rounds or $AMANA_CRASH_ROUNDS)", round, n, timeBudget)
			break
		}
	}
}

// scanLog fails the test on relay log lines that say something went wrong
// inside it (a panic, an internal or storage error); it logs lines it does
// not know.
func (h *harness) scanLog(round int, which string, p *relayproc.Process) {
	for _, line := range strings.Split(p.Stderr(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.Contains(line, "panic") || strings.Contains(line, "internal error") || strings.Contains(line, "storage error") ||
			strings.Contains(line, "fatal error") || strings.Contains(line, "DATA RACE"):
			h.t.Errorf("round %d: the %s relay logged: %s\n%s", round, which, line, p.Tail())
		case strings.HasPrefix(line, "amana-relay: started:"), strings.HasPrefix(line, "amana-relay: shutting down"),
			strings.HasPrefix(line, "amana-relay: desk \""+deskID+"\" manifest serial"):
		default:
			h.tot.logLines++
			h.t.Logf("round %d: the %s relay logged: %s", round, which, line)
		}
	}
}

// summary prints the run's figures, also when it failed.
func (h *harness) summary(ran int, took time.Duration) {
	t, tt := h.t, h.tot
	check := fmt.Sprintf("ok after each of %d rounds", tt.checksRun)
	switch {
	case tt.checksRun == 0:
		check = "not run"
	case tt.checksFailed > 0:
		check = fmt.Sprintf("FAILED in %d of %d rounds", tt.checksFailed, tt.checksRun)
	}
	line := fmt.Sprintf("crash: relay: %d rounds, %d submissions attempted (%d single, %d resumable), %d acknowledged, %d found, %d lost, %d half-written visible, %d complete without receipt, %d refused busy; acks into the crash: %d deletions confirmed, %d in flight at the kill, %d resurrected; %d deletions between rounds; bbolt check: %s; %d abandoned uploads seen; %d other relay log lines; %.1fs",
		ran, tt.attempted, tt.small, tt.resumable, tt.acknowledged, tt.found, tt.lost, tt.halfVisible, tt.unreceipted, tt.busy,
		tt.acksConfirmed, tt.acksInFlight, tt.resurrected, tt.acksBetween, check, tt.uploadsLeft, tt.logLines, took.Seconds())
	t.Log(line)
	fmt.Println(line)
	if tt.acknowledged == 0 && !t.Failed() {
		t.Errorf("no submission was acknowledged in %d rounds: the harness tested nothing", ran)
	}
}

// round runs one round against the running relay r.
func (h *harness) round(round int, r *relayproc.Relay) {
	t, w := h.t, h.w
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()

	// The acks of this round: those the last round's check set aside.
	var plan []*item
	for _, it := range h.items {
		if it.planned {
			plan = append(plan, it)
		}
	}
	rand.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })

	began := time.Now()
	killAfter := 10*time.Millisecond + rand.N(590*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	before := h.tot
	var wg sync.WaitGroup
	for i := range workers {
		c := w.client(t, r.URL, hc, nil)
		wg.Go(func() { h.submitter(ctx, c, round, i) })
	}
	alice, bob := w.client(t, r.URL, hc, w.alice), w.client(t, r.URL, hc, w.bob)
	wg.Go(func() { h.acker(ctx, alice, bob, plan, true, killAfter, round) })
	time.Sleep(killAfter)
	if !r.Alive() {
		t.Errorf("round %d: amana-relay exited by itself before the kill: %v\n%s", round, r.Err(), r.Tail())
	}
	r.Kill()
	cancel()
	wg.Wait()
	killed := r
	h.scanLog(round, "killed", killed.Process)

	h.mu.Lock()
	problems := h.problems
	h.problems = nil
	h.mu.Unlock()
	for _, p := range problems {
		t.Errorf("%s\n%s", p, killed.Tail())
	}

	// Restart on the same data directory and look.
	r = startRelay(t, w.data)
	defer r.Kill()
	v := h.verify(round, r, hc)
	if t.Failed() {
		t.Logf("round %d: the killed relay's %s\nthe restarted relay's %s", round, killed.Tail(), r.Tail())
	}
	// A connection the transport opened but never sent a request on keeps
	// net/http's Shutdown waiting for 5 s: close them first.
	hc.CloseIdleConnections()
	stopRelay(t, r)
	h.scanLog(round, "restarted", r.Process)
	if r.Alive() {
		return
	}
	sweep := round%4 == 0
	facts, err := checkSpool(w.data, sweep)
	h.tot.checksRun++
	if err != nil {
		h.tot.checksFailed++
		t.Errorf("round %d: spool check: %v\n%s", round, err, r.Tail())
		return
	}
	h.tot.uploadsLeft += facts.uploads
	d := h.tot
	t.Logf("round %d: killed after %v; attempted %d, acknowledged %d, found %d, complete without receipt %d, busy %d; inbox %d (%s); acks %d confirmed, %d in flight; spool: %d submissions, %d abandoned uploads (%s), %s%s; %.1fs",
		round, killAfter.Round(time.Millisecond), d.attempted-before.attempted, d.acknowledged-before.acknowledged, d.found-before.found,
		d.unreceipted-before.unreceipted, d.busy-before.busy, v.inbox, byteSize(v.bytes), d.acksConfirmed-before.acksConfirmed,
		d.acksInFlight-before.acksInFlight, facts.subs, facts.uploads, byteSize(facts.uploadBytes), byteSize(facts.file), map[bool]string{true: ", swept", false: ""}[sweep], time.Since(began).Seconds())
}
