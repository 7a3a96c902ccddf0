//go:build linux

package powercut

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

const deskID = "powercut"

// result adds up a campaign.
type result struct {
	name        string
	barrier     bool
	cuts        int
	kinds       [numKinds]int
	pending     int // cached writes at the cuts, summed
	kept        int // of them kept whole or in part, summed
	checked     int // acknowledged items checked on the cuts, summed
	gone        int // answered acks checked, summed
	lost        int // acknowledged and missing or different
	resurrected int // visible again after an answered ack
	damaged     int // cuts that fsck, mount or bbolt's check refused
	lossCuts    int // cuts that lost or damaged anything
	inAcks      int // pull: cuts after some of the pull's own acks
	writes      int
	flushes     int
	secs        float64
}

func (r result) line() string {
	mode := "barrier"
	if !r.barrier {
		mode = "nobarrier (control)"
	}
	acks := ""
	if r.name == "pull" {
		acks = fmt.Sprintf(", %d of them after the pull's own acks began", r.inAcks)
	}
	return fmt.Sprintf("powercut: %s %s: %d cuts (none %d, subset %d, prefix %d, torn %d)%s, %d cached writes at the cuts (%d kept), %d acknowledged items and %d answered acks checked; lost %d, resurrected %d, damaged %d, cuts with a loss %d; disk saw %d writes, %d flushes; %.1fs",
		r.name, mode, r.cuts, r.kinds[KindNone], r.kinds[KindSubset], r.kinds[KindPrefix], r.kinds[KindTorn], acks,
		r.pending, r.kept, r.checked, r.gone, r.lost, r.resurrected, r.damaged, r.lossCuts, r.writes, r.flushes, r.secs)
}

// finish checks a campaign's pass condition: with barriers nothing lost
// (the per-cut errors say what), without them something lost.
func (r *result) finish(t *testing.T, d *Disk, begin time.Time) {
	r.writes, r.flushes, _ = d.Stats()
	r.secs = time.Since(begin).Seconds()
	t.Log(r.line())
	if r.cuts == 0 {
		t.Fatal("no cut was taken")
	}
	if r.barrier {
		if r.flushes == 0 {
			t.Error("ext4 with barriers sent no flush to the disk: the harness tests nothing")
		}
		if r.checked == 0 {
			t.Error("no acknowledged item was there to check at any cut")
		}
		return
	}
	if r.lossCuts == 0 {
		t.Errorf("NEGATIVE CONTROL PASSED: %d cuts of ext4 mounted nobarrier lost nothing; the harness cannot show a loss", r.cuts)
	}
}

// decide picks a cut's trigger and kind from its seed: its kind is the
// seed's low two bits (seeds.cut makes the kinds take turns), and it is
// taken at the first write that finds 1..maxN writes in the cache, once
// 0..maxSkip-1 writes have come.
func decide(seed uint64, maxN, maxSkip int) (n, skip int, kind Kind) {
	rng := rand.New(rand.NewPCG(seed, 1))
	return 1 + rng.IntN(maxN), rng.IntN(maxSkip), Kind(seed % uint64(numKinds))
}

// relayWorld is a relay on a rig, with a desk of one handler.
type relayWorld struct {
	rig   *rig
	desk  *relayproc.Desk
	alice *crypto.Identity
	hc    *http.Client

	mu      sync.Mutex
	present map[string]string // receipted and never acked: ID -> SHA-256 of the ciphertext
	acking  map[string]bool   // ack sent, answer not received
	gone    map[string]bool   // ack answered
	order   []string          // receipted IDs, oldest first
	errs    []string
}

// ackState is what had been acknowledged at a cut's instant.
type ackState struct {
	present map[string]string
	gone    []string
}

func (w *relayWorld) snapshot() any {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &ackState{present: make(map[string]string, len(w.present))}
	for id, sum := range w.present {
		s.present[id] = sum
	}
	for id := range w.gone {
		s.gone = append(s.gone, id)
	}
	return s
}

func (w *relayWorld) client(t *testing.T, url string, id *crypto.Identity) *client.Client {
	c, err := client.New(url, w.hc)
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = 20 * time.Millisecond
	if id != nil {
		c.Key = id.SigningKey()
	}
	return c
}

// seal makes a submission of about size bytes carrying marker.
func seal(cards []*crypto.Card, marker string, size int) ([]byte, error) {
	r := &crypto.Report{Desk: deskID, Language: "en", Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
		Answers: []crypto.Answer{{Field: "marker", Value: marker}}}
	body := make([]byte, size)
	rand.NewChaCha8(sha256.Sum256([]byte(marker))).Read(body)
	f := crypto.File{Attachment: crypto.Attachment{Name: "evidence.bin", Size: int64(size), SHA256: hexSum(body), Type: "application/octet-stream"},
		Body: bytes.NewReader(body)}
	rc, _, err := crypto.SealBundle(cards, r, []crypto.File{f})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// submitter sends submissions of 1–48 KiB until ctx ends; two of them
// run at once.
func (w *relayWorld) submitter(ctx context.Context, c *client.Client, worker int) {
	for seq := 0; ctx.Err() == nil; seq++ {
		// Wait while 100 submissions wait for their ack, so that the
		// spool stays small and every cut has about as many to check.
		for ctx.Err() == nil {
			w.mu.Lock()
			backlog := len(w.order)
			w.mu.Unlock()
			if backlog < 100 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		ct, err := seal(w.desk.Cards(), fmt.Sprintf("pc-w%d-n%04d", worker, seq), 1<<10+rand.IntN(47<<10))
		if err != nil {
			w.problem("sealing: %v", err)
			return
		}
		rc, err := c.Submit(ctx, deskID, "", bytes.NewReader(ct), int64(len(ct)), nil)
		if err != nil {
			var ae *client.Error
			if ctx.Err() == nil && !(errors.As(err, &ae) && ae.Body.Code == "busy") {
				w.problem("submission: %v", err)
			}
			continue
		}
		if rc.SHA256 != hexSum(ct) || rc.Size != int64(len(ct)) {
			w.problem("receipt for %s does not match what was sent", rc.ID)
			continue
		}
		w.mu.Lock()
		w.present[rc.ID] = rc.SHA256
		w.order = append(w.order, rc.ID)
		w.mu.Unlock()
	}
}

// acker acknowledges, as alice, a random one of the older receipted
// submissions every few milliseconds until ctx ends.
func (w *relayWorld) acker(ctx context.Context, c *client.Client) {
	for ctx.Err() == nil {
		time.Sleep(time.Duration(2+rand.IntN(10)) * time.Millisecond)
		w.mu.Lock()
		if len(w.order) < 8 {
			w.mu.Unlock()
			continue
		}
		i := rand.IntN(len(w.order) - 4)
		id := w.order[i]
		w.order = append(w.order[:i], w.order[i+1:]...)
		delete(w.present, id)
		w.acking[id] = true
		w.mu.Unlock()
		if _, err := c.Ack(ctx, id); err != nil {
			if ctx.Err() == nil {
				w.problem("ack: %v", err)
			}
			continue // stays in acking: it may or may not have happened
		}
		w.mu.Lock()
		delete(w.acking, id)
		w.gone[id] = true
		w.mu.Unlock()
	}
}

func (w *relayWorld) problem(format string, args ...any) {
	w.mu.Lock()
	w.errs = append(w.errs, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

// relayCampaign runs a relay on a power-cut disk under submissions and
// acks, takes cuts of it and checks each.
func relayCampaign(t *testing.T, barrier bool, cuts int) result {
	begin := time.Now()
	res := result{name: "relay", barrier: barrier}
	sd := newSeeds(t, fmt.Sprintf("relay barrier=%v", barrier))
	desk, err := relayproc.NewDesk(deskID, "Power-cut desk", 1, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := &relayWorld{rig: newRig(t, barrier), desk: desk, alice: desk.Handlers[0],
		hc:      &http.Client{Transport: &http.Transport{Proxy: nil}},
		present: map[string]string{}, acking: map[string]bool{}, gone: map[string]bool{}}
	defer w.hc.CloseIdleConnections()
	data := filepath.Join(w.rig.Mnt, "data")
	ctx := context.Background()
	if err := relayproc.Init(ctx, filepath.Join(bin, "amana-relay"), data, desk.Admin.Card()); err != nil {
		t.Fatal(err)
	}
	r, err := relayproc.StartRelay(ctx, filepath.Join(bin, "amana-relay"), data, nil)
	if err != nil {
		t.Fatal(err)
	}
	undoRelay := onSignal(r.Kill)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			defer undoRelay()
			if clean, how := r.StopRelay(); !clean {
				t.Errorf("the relay on the power-cut disk: %s\n%s", how, r.Tail())
			}
		}
	}
	t.Cleanup(stop) // before the rig's unmount, which t.Cleanup runs later
	if err := desk.Publish(ctx, r.URL); err != nil {
		t.Fatal(err)
	}
	w.rig.Disk.Drain()

	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 2 {
		c := w.client(t, r.URL, nil)
		wg.Go(func() { w.submitter(wctx, c, i) })
	}
	alice := w.client(t, r.URL, w.alice)
	wg.Go(func() { w.acker(wctx, alice) })
	defer func() { cancel(); wg.Wait() }()

	scratch := t.TempDir()
	for i := 0; i < cuts && !t.Failed(); i++ {
		seed := sd.cut(i)
		n, skip, kind := decide(seed, 6, 1)
		ch := w.rig.Disk.Arm(n, skip, kind, seed, w.snapshot)
		var c *Cut
		select {
		case c = <-ch:
		case <-time.After(20 * time.Second):
			w.rig.Disk.Disarm()
			t.Fatalf("cut %d (seed %d): the cache never held %d writes in 20 s\n%s", i, seed, n, r.Tail())
		}
		res.cuts++
		res.kinds[c.Kind]++
		res.pending += c.Pending
		res.kept += c.Kept
		checkRelayCut(t, scratch, c, &res, w.alice)
	}
	cancel()
	wg.Wait()
	w.mu.Lock()
	for _, e := range w.errs {
		t.Errorf("workload: %s", e)
	}
	w.mu.Unlock()
	stop()
	res.finish(t, w.rig.Disk, begin)
	return res
}

// checkRelayCut checks one cut of the relay's disk.
func checkRelayCut(t *testing.T, scratch string, c *Cut, res *result, alice *crypto.Identity) {
	st := c.Tag.(*ackState)
	res.checked += len(st.present)
	res.gone += len(st.gone)
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	lost, back, damaged := 0, 0, false
	defer func() {
		what := fmt.Sprintf("cut seed %d (%s, at %d cached writes, %d kept): %d acknowledged, %d acks answered; lost %d, resurrected %d, damaged %v",
			c.Seed, c.Kind, c.Pending, c.Kept, len(st.present), len(st.gone), lost, back, damaged)
		res.lost += lost
		res.resurrected += back
		if damaged {
			res.damaged++
		}
		if lost+back > 0 || damaged {
			res.lossCuts++
		}
		if len(problems) == 0 {
			t.Log(what)
			return
		}
		if !res.barrier {
			// The control is expected to lose: say how, briefly.
			t.Logf("%s: %s", what, problems[0])
			return
		}
		keep(t, c, "failing")
		t.Errorf("%s\n  replay: AMANA_POWERCUT_CUT=%d\n  %s", what, c.Seed, joinMax(problems, 10))
	}()

	cm, err := openCut(t, scratch, c)
	if err != nil {
		damaged, lost = true, len(st.present)
		fail("the cut filesystem is damaged: %v", err)
		return
	}
	defer cm.Close(t)
	data := filepath.Join(cm.mnt, "data")
	if _, err := os.Stat(filepath.Join(data, store.FileName)); err != nil && len(st.present) > 0 {
		lost = len(st.present)
		fail("the spool is gone: %v", err)
		return
	}
	if err := verifySpool(data); err != nil {
		damaged = true
		fail("%v", err)
	}

	r, err := relayproc.StartRelay(context.Background(), filepath.Join(bin, "amana-relay"), data, nil)
	if err != nil {
		damaged, lost = true, len(st.present)
		fail("a relay does not start on the cut: %v", err)
		return
	}
	undo := onSignal(r.Kill)
	defer func() {
		if clean, how := r.StopRelay(); !clean {
			fail("the relay on the cut: %s\n%s", how, r.Tail())
		}
		undo()
	}()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	ac, err := client.New(r.URL, hc)
	if err != nil {
		t.Fatal(err)
	}
	ac.Key = alice.SigningKey()
	ctx := context.Background()
	in, err := ac.Inbox(ctx)
	if err != nil {
		lost = len(st.present)
		fail("alice's inbox on the cut: %v\n%s", err, r.Tail())
		return
	}
	listed := map[string]bool{}
	for _, it := range in {
		listed[it.ID] = true
	}
	for id, sum := range st.present {
		if !listed[id] {
			lost++
			fail("LOST: %s was acknowledged (receipt received) before the cut and is not in the inbox", id)
			continue
		}
		h := sha256.New()
		if _, err := ac.Download(ctx, id, 0, h); err != nil {
			lost++
			fail("LOST: %s is listed but does not download: %v", id, err)
			continue
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			lost++
			fail("LOST: %s downloads with SHA-256 %.12s, its receipt says %.12s", id, got, sum)
		}
	}
	for _, id := range st.gone {
		if listed[id] {
			back++
			fail("RESURRECTED: %s is listed again, though alice's ack was answered before the cut", id)
		}
	}
}

func joinMax(s []string, n int) string {
	if len(s) > n {
		s = append(s[:n:n], fmt.Sprintf("… and %d more", len(s)-n))
	}
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "\n  "
		}
		out += x
	}
	return out
}
