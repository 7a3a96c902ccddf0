//go:build linux

// Crash-safety harness.
//
// TestRelayCrash runs the built amana-relay as a separate process over one
// data directory, round after round: 12 concurrent submitters send small
// single-request submissions and resumable uploads of 1–12 MiB while a
// handler acks earlier ones, and after 10–600 ms the relay is killed with
// SIGKILL. The relay is then restarted on the same directory and the test
// checks that every submission that got a receipt is in the inbox, byte for
// byte, and opens with the handler's key; that every inbox item opens
// completely (nothing half-written is visible); that confirmed acks stuck;
// and, after a clean SIGINT stop, that the bbolt file passes its consistency
// check and its byte counters match what it holds.
//
// TestPullCrash kills 'amana pull' at random moments and checks that every
// case the relay no longer lists for the handler is complete on the
// handler's disk and every partial download is a prefix of the case, then
// lets a pull finish and opens every case.
//
// By default TestRelayCrash runs 8 rounds (3 with -short, fewer if they pass
// 40 s) and TestPullCrash one campaign, so each stays well under a minute
// (about 5 s and 2 s, 15 s and 4 s with -race). The long run, which
// 'make crash' does with 200 rounds (and 8 pull campaigns, one per 25
// rounds); either line works:
//
//	go test ./test/crash -run Crash -count=1 -v -timeout 60m -args -rounds=200
//	AMANA_CRASH_ROUNDS=200 go test ./test/crash -run Crash -count=1 -v -timeout 60m
//
// -rounds wins over $AMANA_CRASH_ROUNDS. Each test ends with a summary line
// starting "crash:" on stdout (shown with -v) and in the test log; lost,
// half-written visible and missing after ack must be 0. The tests need Linux:
// the programs they start get SIGKILL if the test binary dies. They kill
// processes, not the machine: they test what the relay and amana write
// before they answer, not what the disk keeps across a power cut.

package crash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/store/cases"
	"github.com/amana-relay/amana/test/internal/relayproc"

)

var roundsFlag = flag.Int("rounds", 0, "TestRelayCrash rounds (default 8, 3 with -short; also $AMANA_CRASH_ROUNDS)")

var bin string // directory with the built amana and amana-relay

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "amana-crash-bin")
	if err != nil {
		panic(err)
	}
	if err := relayproc.Build(context.Background(), dir, "./cmd/amana", "./cmd/amana-relay"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rounds is how many rounds TestRelayCrash runs, and whether the number was
// asked for (rather than the default).
func rounds(t *testing.T) (int, bool) {
	if *roundsFlag > 0 {
		return *roundsFlag, true
	}
	if s := os.Getenv("AMANA_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("AMANA_CRASH_ROUNDS=%q: want a positive number", s)
		}
		return n, true
	}
	if testing.Short() {
		return 3, false
	}
	return 8, false
}

const (
	deskID     = "crash"
	workers    = 12               // concurrent submitters
	maxSmall   = 800 << 10        // attachment of a single-request submission, at most
	minLarge   = 1 << 20          // attachment of a resumable one, at least
	maxLarge   = 12 << 20         // and at most
	survivors  = 4                // submissions never acked, checked after every crash
	crashAcks  = 12               // submissions acked during a round, into its crash
	timeBudget = 40 * time.Second // for the default rounds, so that CI stays under a minute
)

// ---------------------------------------------------------------------------
// Processes

// start runs the built program name; it is killed when the test ends, and
// by the kernel if the test binary dies.
func start(t *testing.T, env []string, stdout io.Writer, name string, args ...string) *relayproc.Process {
	t.Helper()
	p, err := relayproc.Start(filepath.Join(bin, name), env, stdout, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// startRelay runs 'amana-relay serve --no-tor' on data.
func startRelay(t *testing.T, data string) *relayproc.Relay {
	t.Helper()
	r, err := relayproc.StartRelay(context.Background(), filepath.Join(bin, "amana-relay"), data, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// stopRelay stops the relay with SIGINT and checks it exits cleanly and in
// time, so that the spool is unlocked.
func stopRelay(t *testing.T, r *relayproc.Relay) {
	t.Helper()
	if clean, how := r.Stop(os.Interrupt, 20*time.Second); !clean {
		t.Errorf("amana-relay serve after SIGINT: %s\n%s", how, r.Tail())
	}
}

// ---------------------------------------------------------------------------
// The desk and its people

// world is a relay data directory with a desk of two classic handlers,
// alice and bob, every submission going to both.
type world struct {
	dir, data         string
	admin, alice, bob *crypto.Identity
	cards             []*crypto.Card
	envelope          []byte
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	w.data = filepath.Join(w.dir, "data")
	var err error
	for _, p := range []struct {
		id   **crypto.Identity
		name string
	}{{&w.admin, "admin"}, {&w.alice, "alice"}, {&w.bob, "bob"}} {
		if *p.id, err = crypto.GenerateIdentity(p.name, true); err != nil {
			t.Fatal(err)
		}
	}
	m := &crypto.Manifest{Version: 1, Desk: deskID, Title: "Crash desk", Serial: 1,
		Handlers: []string{w.alice.Card().String(), w.bob.Card().String()}}
	if w.envelope, err = crypto.SignManifest(m, w.admin.SigningKey()); err != nil {
		t.Fatal(err)
	}
	w.cards = m.Cards()
	card := filepath.Join(w.dir, "admin.card")
	if err := os.WriteFile(card, []byte(w.admin.Card().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(bin, "amana-relay"), "init", "--data", w.data, "--admin", card).CombinedOutput(); err != nil {
		t.Fatalf("amana-relay init: %v\n%s", err, out)
	}
	return w
}

func (w *world) publish(t *testing.T, r *relayproc.Relay) {
	t.Helper()
	c := w.client(t, r.URL, nil, w.admin)
	if _, err := c.Publish(context.Background(), deskID, w.envelope); err != nil {
		t.Fatalf("publishing the desk: %v\n%s", err, r.Tail())
	}
}

// client returns a client of the relay at url signing as id (nil: none).
func (w *world) client(t *testing.T, url string, hc *http.Client, id *crypto.Identity) *client.Client {
	t.Helper()
	c, err := client.New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = 20 * time.Millisecond
	if id != nil {
		c.Key = id.SigningKey()
	}
	return c
}

// ---------------------------------------------------------------------------
// Submissions

// sub is one submission: a bundle whose report carries a unique marker and
// whose one attachment is a stream derived from the marker, so its content
// can be recomputed.
type sub struct {
	marker  string
	small   bool // sent in one request
	attSize int64
	attSHA  string

	// Set by the submitter once Submit returned.
	ctLen   int64
	ctSHA   string // of the ciphertext, if it was read to its end
	keep    bool   // keep the ciphertext in ct
	ct      []byte
	receipt *api.Receipt
}

func content(marker string, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(sha256.Sum256([]byte(marker))), n)
}

func newSub(marker string, small bool, size int64) *sub {
	h := sha256.New()
	io.Copy(h, content(marker, size))
	return &sub{marker: marker, small: small, attSize: size, attSHA: hex.EncodeToString(h.Sum(nil))}
}

func (s *sub) seal(cards []*crypto.Card) (io.ReadCloser, int64, error) {
	r := &crypto.Report{Desk: deskID, Language: "en", Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
		Answers: []crypto.Answer{{Field: "marker", Value: s.marker}}}
	f := crypto.File{Attachment: crypto.Attachment{Name: "evidence.bin", Size: s.attSize, SHA256: s.attSHA, Type: "application/octet-stream"},
		Body: content(s.marker, s.attSize)}
	return crypto.SealBundle(cards, r, []crypto.File{f})
}

// opened is what a ciphertext opened to.
type opened struct {
	marker  string
	attSize int64
	attSHA  string
}

// openAll decrypts a bundle and reads all of it: report.json, the
// attachment (checked against its SHA-256 in report.json) and the padding.
func openAll(ct []byte, id *crypto.Identity) (*opened, error) {
	br, err := crypto.OpenBundle(bytes.NewReader(ct), id.Age())
	if err != nil {
		return nil, err
	}
	o := &opened{}
	for _, a := range br.Report().Answers {
		if a.Field == "marker" {
			o.marker = a.Value
		}
	}
	if o.marker == "" {
		return nil, errors.New("report.json has no marker")
	}
	a, rd, err := br.Next()
	if err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, rd); err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	o.attSize, o.attSHA = a.Size, hex.EncodeToString(h.Sum(nil))
	if a.Name != "evidence.bin" {
		return nil, fmt.Errorf("attachment named %q", a.Name)
	}
	if _, _, err := br.Next(); err != io.EOF {
		return nil, fmt.Errorf("end of bundle: %v", err)
	}
	return o, nil
}

// matches says how an opened bundle differs from the submission it claims
// to be, or "" if it does not.
func (s *sub) matches(o *opened) string {
	if o.attSize != s.attSize || o.attSHA != s.attSHA {
		return fmt.Sprintf("attachment is %d bytes with SHA-256 %.12s, sent %d bytes with %.12s", o.attSize, o.attSHA, s.attSize, s.attSHA)
	}
	return ""
}

type hashReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	keep *[]byte
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	if h.keep != nil {
		*h.keep = append(*h.keep, p[:n]...)
	}
	h.n += int64(n)
	return n, err
}

// submit seals s and sends it with c.
func (s *sub) submit(ctx context.Context, c *client.Client, cards []*crypto.Card) error {
	rc, n, err := s.seal(cards)
	if err != nil {
		return err
	}
	defer rc.Close()
	s.ctLen = n
	hr := &hashReader{r: rc, h: sha256.New()}
	if s.keep {
		hr.keep = &s.ct
	}
	rcpt, err := c.Submit(ctx, deskID, "", hr, n, nil)
	if hr.n == n {
		s.ctSHA = hex.EncodeToString(hr.h.Sum(nil))
	}
	s.receipt = rcpt
	return err
}

func randHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

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
	deleted, err := c.Ack(ctx, it.id)
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

type verified struct {
	inbox int
	bytes int64
}

// verify checks the restarted relay against what the harness knows, and
// plans the next round's acks.
func (h *harness) verify(round int, r *relayproc.Relay, hc *http.Client) verified {
	t, w := h.t, h.w
	ctx := context.Background()
	alice, bob := w.client(t, r.URL, hc, w.alice), w.client(t, r.URL, hc, w.bob)
	aliceIn, err := alice.Inbox(ctx)
	if err != nil {
		t.Fatalf("round %d: alice's inbox after the restart: %v\n%s", round, err, r.Tail())
	}
	bobIn, err := bob.Inbox(ctx)
	if err != nil {
		t.Fatalf("round %d: bob's inbox after the restart: %v\n%s", round, err, r.Tail())
	}
	inA, inB := map[string]api.Item{}, map[string]bool{}
	for _, it := range aliceIn {
		inA[it.ID] = it
	}
	for _, it := range bobIn {
		inB[it.ID] = true
		if _, ok := inA[it.ID]; !ok {
			t.Errorf("round %d: %s is in bob's inbox but not alice's, though bob always acks first", round, it.ID)
		}
	}

	// Acks: what was confirmed must hold; what was in flight is settled by
	// what the relay shows now.
	for _, it := range h.items {
		_, a := inA[it.id]
		b := inB[it.id]
		switch {
		case it.deleted && (a || b):
			h.tot.resurrected++
			t.Errorf("round %d: %s (%s) is visible again after alice's ack deleted it (alice %v, bob %v)", round, it.id, it.s.marker, a, b)
		case it.deleted:
		case it.aliceTry && !a:
			it.deleted = true // alice's ack committed; its answer was lost
			h.tot.acksInFlight++
		case it.aliceTry:
			h.tot.acksInFlight++ // it did not commit
		}
		if it.bobTry && !it.bobAcked && !it.deleted {
			it.bobAcked = !b
			h.tot.acksInFlight++
		}
		it.aliceTry, it.bobTry, it.half, it.planned = false, false, false, false
		if it.deleted {
			continue
		}
		if !a {
			h.tot.lost++
			t.Errorf("round %d: LOST: %s (%s, %d bytes, %s, submitted in round %d) is not in the inbox", round, it.id, it.s.marker, it.size,
				map[bool]string{true: "receipt given", false: "found complete earlier"}[it.receipted], it.round)
			continue
		}
		if it.bobAcked && b {
			t.Errorf("round %d: %s is still in bob's inbox after his confirmed ack", round, it.id)
		}
		if !it.bobAcked && !b {
			t.Errorf("round %d: %s is missing from bob's inbox though he never acked it", round, it.id)
		}
	}

	// Every inbox item must download byte for byte and open completely.
	type result struct {
		it  api.Item
		o   *opened
		sum string
		err error
	}
	results := make([]result, len(aliceIn))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(aliceIn); i = int(next.Add(1) - 1) {
				it := aliceIn[i]
				res := &results[i]
				res.it = it
				var buf bytes.Buffer
				if _, err := alice.Download(ctx, it.ID, 0, &buf); err != nil {
					res.err = fmt.Errorf("download: %w", err)
					continue
				}
				sum := sha256.Sum256(buf.Bytes())
				res.sum = hex.EncodeToString(sum[:])
				if int64(buf.Len()) != it.Size || res.sum != it.SHA256 {
					res.err = fmt.Errorf("downloaded %d bytes with SHA-256 %.12s; the inbox says %d bytes, %.12s", buf.Len(), res.sum, it.Size, it.SHA256)
					continue
				}
				res.o, res.err = openAll(buf.Bytes(), w.alice)
			}
		})
	}
	wg.Wait()
	v := verified{inbox: len(aliceIn)}
	markers := map[string]string{}
	var fresh []*item
	for _, res := range results {
		v.bytes += res.it.Size
		known := h.items[res.it.ID]
		what := "an unknown submission"
		if known != nil {
			what = known.s.marker
		}
		if res.err != nil {
			h.tot.halfVisible++
			t.Errorf("round %d: HALF-WRITTEN: inbox item %s (%s, %d bytes) does not open: %v", round, res.it.ID, what, res.it.Size, res.err)
			continue
		}
		s := h.subs[res.o.marker]
		switch {
		case s == nil:
			h.tot.halfVisible++
			t.Errorf("round %d: inbox item %s opens to marker %q, which no submitter sent", round, res.it.ID, res.o.marker)
			continue
		case s.matches(res.o) != "":
			h.tot.halfVisible++
			t.Errorf("round %d: inbox item %s (%s) is not what was sent: %s", round, res.it.ID, s.marker, s.matches(res.o))
			continue
		case markers[s.marker] != "":
			t.Errorf("round %d: submission %s stored twice, as %s and %s", round, s.marker, markers[s.marker], res.it.ID)
			continue
		}
		markers[s.marker] = res.it.ID
		if known == nil {
			// Completed on the relay; the answer was lost in the crash.
			if s.receipt != nil {
				t.Errorf("round %d: %s has receipt %s but is also stored as %s", round, s.marker, s.receipt.ID, res.it.ID)
				continue
			}
			if s.ctSHA != res.sum || s.ctLen != res.it.Size {
				t.Errorf("round %d: inbox item %s (%s) has %d bytes with SHA-256 %.12s, the submitter sent %d bytes with %.12s", round, res.it.ID, s.marker, res.it.Size, res.sum, s.ctLen, s.ctSHA)
				continue
			}
			known = &item{id: res.it.ID, sha: res.sum, size: res.it.Size, s: s, round: round}
			h.items[res.it.ID] = known
			h.tot.unreceipted++
		} else if known.s != s || known.sha != res.sum || known.size != res.it.Size {
			h.tot.lost++
			t.Errorf("round %d: %s was %s (%d bytes, %.12s) but now holds %s (%d bytes, %.12s)", round, res.it.ID, known.s.marker, known.size, known.sha, s.marker, res.it.Size, res.sum)
			continue
		}
		if known.receipted && !known.found {
			known.found = true
			h.tot.found++
		}
		if known.round == round {
			fresh = append(fresh, known)
		}
	}

	// Acks. A few survivors are never acked, to be checked after every
	// crash. Up to crashAcks others are acked during the next round, into
	// its crash, some by bob only; the rest are acked now, between rounds,
	// which keeps the spool and this check small.
	nsurv := 0
	for _, it := range h.items {
		if it.survivor && !it.deleted {
			nsurv++
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].size < fresh[j].size })
	for _, it := range fresh {
		if nsurv < survivors && it.receipted {
			it.survivor = true
			nsurv++
		}
	}
	var candidates, now []*item
	for _, res := range results {
		it := h.items[res.it.ID]
		if it == nil || it.survivor || it.deleted || res.err != nil {
			continue
		}
		candidates = append(candidates, it)
	}
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	halves := 0
	for i, it := range candidates {
		if i >= crashAcks {
			now = append(now, it)
			continue
		}
		it.planned = true
		if !it.bobAcked && halves < 2 && rand.IntN(3) == 0 {
			it.half = true
			halves++
		}
	}
	h.acker(ctx, alice, bob, now, false, 0, round)
	for _, p := range h.problems {
		t.Errorf("%s\n%s", p, r.Tail())
	}
	h.problems = nil
	return v
}

// spoolFacts is what checkSpool found.
type spoolFacts struct {
	subs, uploads int
	uploadBytes   int64
	file          int64
}

// checkSpool opens the stopped relay's spool, runs bbolt's consistency
// check and, if sweep is set, a sweep with a clock two days ahead (which
// removes the uploads the crashes abandoned, and nothing else here). Then it
// reads the file directly and checks that the spool's byte counters equal
// the bytes it holds and that every stored submission and upload has exactly
// its chunks.
func checkSpool(data string, sweep bool) (spoolFacts, error) {
	var f spoolFacts
	opts := &store.Options{LockTimeout: 5 * time.Second, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }}
	sp, err := store.Open(data, opts)
	if err != nil {
		return f, fmt.Errorf("opening the spool after the relay stopped: %w", err)
	}
	if err := sp.Check(); err != nil {
		sp.Close()
		return f, fmt.Errorf("bbolt consistency check: %w", err)
	}
	if sweep {
		if _, err := sp.Sweep(); err != nil {
			sp.Close()
			return f, fmt.Errorf("sweep: %w", err)
		}
	}
	if err := sp.Close(); err != nil {
		return f, err
	}
	path := filepath.Join(data, store.FileName)
	fi, err := os.Stat(path)
	if err != nil {
		return f, err
	}
	f.file = fi.Size()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return f, fmt.Errorf("opening the spool read-only: %w", err)
	}
	defer db.Close()
	var problems []string
	err = db.View(func(tx *bolt.Tx) error {
		meta, subs, ups, chunks, mbox := tx.Bucket([]byte("meta")), tx.Bucket([]byte("submissions")), tx.Bucket([]byte("uploads")), tx.Bucket([]byte("chunks")), tx.Bucket([]byte("mailboxes"))
		if meta == nil || subs == nil || ups == nil || chunks == nil || mbox == nil {
			return errors.New("the spool's buckets are not the ones this check knows (store/spool.go changed?): update checkSpool")
		}
		u64 := func(b []byte) int64 {
			if len(b) != 8 {
				return 0
			}
			return int64(binary.BigEndian.Uint64(b))
		}
		perDesk := map[string]int64{}
		extent := map[string]int64{} // bytes of chunks each key must have
		var total int64
		err := subs.ForEach(func(k, v []byte) error {
			var s struct {
				Desk string `json:"desk"`
				Size int64  `json:"size"`
			}
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("submission %x: %w", k, err)
			}
			f.subs++
			perDesk[s.Desk] += s.Size
			total += s.Size
			extent[string(k)] = s.Size
			return nil
		})
		if err != nil {
			return err
		}
		err = ups.ForEach(func(k, v []byte) error {
			var u struct {
				Desk   string `json:"desk"`
				Length int64  `json:"length"`
				Offset int64  `json:"offset"`
			}
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("upload %x: %w", k, err)
			}
			if u.Offset < 0 || u.Offset > u.Length {
				problems = append(problems, fmt.Sprintf("upload %x at offset %d of %d", k, u.Offset, u.Length))
			}
			f.uploads++
			f.uploadBytes += u.Offset
			perDesk[u.Desk] += u.Offset
			total += u.Offset
			if _, dup := extent[string(k)]; dup {
				problems = append(problems, fmt.Sprintf("%x is both a submission and an upload", k))
			}
			extent[string(k)] = u.Offset
			return nil
		})
		if err != nil {
			return err
		}
		if c := u64(meta.Get([]byte("committed"))); c != total {
			problems = append(problems, fmt.Sprintf("the quota counter says %d bytes; submissions and uploads hold %d", c, total))
		}
		c := meta.Cursor()
		for k, v := c.Seek([]byte("committed/")); k != nil && bytes.HasPrefix(k, []byte("committed/")); k, v = c.Next() {
			desk := string(k[len("committed/"):])
			if u64(v) != perDesk[desk] {
				problems = append(problems, fmt.Sprintf("desk %q's quota counter says %d bytes; it holds %d", desk, u64(v), perDesk[desk]))
			}
			delete(perDesk, desk)
		}
		for desk, n := range perDesk {
			if n != 0 {
				problems = append(problems, fmt.Sprintf("desk %q holds %d bytes and has no quota counter", desk, n))
			}
		}
		noMailboxes := mbox.Stats().KeyN == 0
		seen := map[string]bool{}
		err = chunks.ForEach(func(k, v []byte) error {
			if v != nil {
				problems = append(problems, fmt.Sprintf("chunks holds a value at %x", k))
				return nil
			}
			want, ok := extent[string(k)]
			if !ok {
				if noMailboxes {
					problems = append(problems, fmt.Sprintf("orphan chunks %x: no submission or upload owns them", k))
				}
				return nil
			}
			seen[string(k)] = true
			sb := chunks.Bucket(k)
			var next int64
			err := sb.ForEachBucket(func(bk []byte) error {
				if u64(bk) != next {
					problems = append(problems, fmt.Sprintf("chunks of %x: a commit starts at %d, expected %d", k, u64(bk), next))
				}
				return sb.Bucket(bk).ForEach(func(ck, cv []byte) error {
					if u64(ck) != next {
						problems = append(problems, fmt.Sprintf("chunks of %x: chunk at %d, expected %d", k, u64(ck), next))
					}
					next = u64(ck) + int64(len(cv))
					return nil
				})
			})
			if err != nil {
				return err
			}
			if next != want {
				problems = append(problems, fmt.Sprintf("chunks of %x cover %d bytes; it has %d", k, next, want))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, n := range extent {
			if n > 0 && !seen[k] {
				problems = append(problems, fmt.Sprintf("%x has %d bytes and no chunks", k, n))
			}
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	if sweep && f.uploads != 0 {
		problems = append(problems, fmt.Sprintf("%d uploads left after a sweep two days ahead", f.uploads))
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return f, errors.New(strings.Join(problems, "\n"))
	}
	return f, nil
}

func byteSize(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ---------------------------------------------------------------------------
// TestPullCrash

// pullStats adds up the pull campaigns.
type pullStats struct{ killed, inAcks, finished, missing int }

// TestPullCrash runs one campaign of killed pulls; a long run (-rounds or
// $AMANA_CRASH_ROUNDS) runs one per 25 rounds, each on a fresh relay.
func TestPullCrash(t *testing.T) {
	n, asked := rounds(t)
	campaigns := 1
	if asked {
		campaigns = max(1, n/25)
	}
	begin := time.Now()
	var tot pullStats
	for c := 1; c <= campaigns && !t.Failed(); c++ {
		pullCampaign(t, c, campaigns, &tot)
	}
	if campaigns > 1 {
		line := fmt.Sprintf("crash: pull: %d campaigns, %d pulls killed (%d during the acks), %d finished before their kill; missing after ack: %d; %.1fs",
			campaigns, tot.killed, tot.inAcks, tot.finished, tot.missing, time.Since(begin).Seconds())
		t.Log(line)
		fmt.Println(line)
	}
}

// pullCampaign puts M submissions on a fresh relay, kills 'amana pull' at
// random moments and checks what each kill left, then pulls to the end and
// opens every case.
func pullCampaign(t *testing.T, campaign, of int, tot *pullStats) {
	m, kills := 40, 8
	if testing.Short() {
		m, kills = 16, 3
	}
	begin := time.Now()
	w := newWorld(t)
	r := startRelay(t, w.data)
	w.publish(t, r)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()

	// M submissions of 64 KiB to 2 MiB, every one acknowledged.
	subs := map[string]*sub{} // by ID
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, m)
	for range 4 {
		c := w.client(t, r.URL, hc, nil)
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < m; i = int(next.Add(1) - 1) {
				s := newSub(fmt.Sprintf("pull-%02d-%s", i, randHex(4)), false, 64<<10+rand.Int64N(2<<20-64<<10))
				s.keep = true
				if err := s.submit(context.Background(), c, w.cards); err != nil {
					errs <- fmt.Errorf("submission %d: %w", i, err)
					continue
				}
				mu.Lock()
				subs[s.receipt.ID] = s
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v\n%s", err, r.Tail())
	}

	key := filepath.Join(w.dir, "alice.key")
	if err := os.WriteFile(key, w.alice.MarshalText(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(w.dir, "home-alice")
	missing := 0 // cases acked and not complete on alice's disk
	env := []string{"AMANA_HOME=" + home}
	alice := w.client(t, r.URL, hc, w.alice)
	pullArgs := []string{"pull", "--quiet", "--relay", r.URL, "-i", key}

	// look checks what a killed pull left: every case the relay no longer
	// lists for alice is complete on her disk, every complete case is what
	// the relay held, and every partial download is a prefix of it. It
	// returns how many cases the relay no longer lists, how many are
	// complete locally and how many partial.
	look := func(when string) (acked, local, partials int) {
		t.Helper()
		in, err := alice.Inbox(context.Background())
		if err != nil {
			t.Fatalf("%s: alice's inbox: %v\n%s", when, err, r.Tail())
		}
		listed := map[string]bool{}
		for _, it := range in {
			listed[it.ID] = true
		}
		st, err := cases.Open(filepath.Join(home, "cases"))
		if err != nil {
			t.Fatal(err)
		}
		for id, s := range subs {
			complete := false
			if b, err := os.ReadFile(st.BundlePath(id)); err == nil {
				sum := sha256.Sum256(b)
				if hex.EncodeToString(sum[:]) != s.ctSHA {
					t.Errorf("%s: case %s is stored complete but differs from what the relay held (%d bytes, %d expected)", when, id, len(b), s.ctLen)
				} else if _, err := st.Meta(id); err != nil {
					t.Errorf("%s: case %s has its submission.age but no metadata: %v", when, id, err)
				} else {
					complete = true
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: reading case %s: %v", when, id, err)
			}
			// A partial download is resumed by appending: it must be a
			// prefix of the submission.
			if b, err := os.ReadFile(filepath.Join(st.Dir(), id, cases.BundleFile+".part")); err == nil {
				partials++
				if !bytes.HasPrefix(s.ct, b) {
					t.Errorf("%s: the partial download of %s (%d bytes) is not a prefix of the submission", when, id, len(b))
				}
			}
			if complete {
				local++
			}
			if !listed[id] {
				acked++
				if !complete {
					missing++
					t.Errorf("%s: MISSING AFTER ACK: the relay no longer lists %s for alice, and her case store does not have it complete", when, id)
				}
			}
		}
		return acked, local, partials
	}

	// Pulls killed at random moments. A pull downloads every new case, then
	// syncs, then acks them all: the early kills land in the downloads, the
	// later ones, with less left to download, in the acks. Killing goes on
	// until kills pulls were killed and one of them in its acks, or until
	// everything is acked (or 4×kills pulls were started).
	var ackedAfter []int // after each kill
	killed, finished, inAcks := 0, 0, 0
	openOK := 0 // cases that open at the end
	defer func() {
		tot.killed += killed
		tot.inAcks += inAcks
		tot.finished += finished
		tot.missing += missing
		name := "pull"
		if of > 1 {
			name = fmt.Sprintf("pull %d/%d", campaign, of)
		}
		line := fmt.Sprintf("crash: %s: %d submissions, %d pulls killed (%d during the acks), %d finished before their kill; acked at each kill: %v; missing after ack: %d; %d of %d present and open at the end; %.1fs",
			name, m, killed, inAcks, finished, ackedAfter, missing, openOK, m, time.Since(begin).Seconds())
		t.Log(line)
		fmt.Println(line)
	}()
	maxDelay := 60 * time.Millisecond
	for attempt := 1; (killed < kills || inAcks == 0) && attempt <= 4*kills; attempt++ {
		p := start(t, env, io.Discard, "amana", pullArgs...)
		t0 := time.Now()
		delay := 3*time.Millisecond + rand.N(maxDelay)
		timer := time.NewTimer(delay)
		var what string
		select {
		case <-p.Exited():
			if p.Err() != nil {
				t.Fatalf("pull %d exited with %v\n%s", attempt, p.Err(), p.Tail())
			}
			finished++
			what = fmt.Sprintf("finished in %v", time.Since(t0).Round(time.Millisecond))
			maxDelay = max(maxDelay*2/3, 10*time.Millisecond)
		case <-timer.C:
			p.Kill()
			killed++
			what = fmt.Sprintf("killed after %v", delay.Round(time.Millisecond))
		}
		timer.Stop()
		acked, local, partials := look(fmt.Sprintf("pull %d (%s)", attempt, what))
		if strings.HasPrefix(what, "killed") {
			ackedAfter = append(ackedAfter, acked)
			if acked > 0 && acked < m {
				inAcks++
			}
		}
		t.Logf("pull %d: %s; %d of %d cases complete locally, %d partial, %d acked", attempt, what, local, m, partials, acked)
		if t.Failed() {
			t.FailNow()
		}
		if acked == m && local == m {
			break
		}
	}

	// One pull to the end.
	p := start(t, env, io.Discard, "amana", pullArgs...)
	select {
	case <-p.Exited():
	case <-time.After(60 * time.Second):
		p.Kill()
		t.Fatalf("the final pull did not finish within 60 s\n%s", p.Tail())
	}
	if p.Err() != nil {
		t.Fatalf("the final pull: %v\n%s\n%s", p.Err(), p.Tail(), r.Tail())
	}
	acked, local, _ := look("after the final pull")
	if acked != m || local != m {
		t.Fatalf("after the final pull: %d of %d acked, %d complete locally", acked, m, local)
	}
	st, err := cases.Open(filepath.Join(home, "cases"))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(subs))
	for id := range subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := subs[id]
		b, err := os.ReadFile(st.BundlePath(id))
		if err != nil {
			t.Fatal(err)
		}
		o, err := openAll(b, w.alice)
		if err != nil {
			t.Errorf("case %s does not open: %v", id, err)
			continue
		}
		if o.marker != s.marker || s.matches(o) != "" {
			t.Errorf("case %s opens to %s; %s", id, o.marker, s.matches(o))
			continue
		}
		openOK++
	}
	// And amana itself opens every case.
	for _, id := range ids {
		cmd := exec.Command(filepath.Join(bin, "amana"), "show", id, "-i", key)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(subs[id].marker)) || !bytes.Contains(out, []byte("evidence.bin")) {
			t.Errorf("amana show %s: %v\n%s", id, err, out)
		}
	}
	hc.CloseIdleConnections()
	stopRelay(t, r)
	if _, err := checkSpool(w.data, false); err != nil {
		t.Errorf("spool check: %v", err)
	}
}
