//go:build linux

package powercut

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

// pullState is what the relay had been told at a cut's instant: the cases
// it no longer lists for alice, which her pull acknowledged.
type pullState struct {
	acked []string
	err   error
}

// pullCampaign runs 'amana pull' into a case store on a power-cut disk,
// round after round, against a relay on an ordinary disk, takes a cut
// during each pull and checks that every case the relay no longer listed
// at the cut is complete on it.
func pullCampaign(t *testing.T, barrier bool, cuts int) result {
	begin := time.Now()
	res := result{name: "pull", barrier: barrier}
	sd := newSeeds(t, fmt.Sprintf("pull barrier=%v", barrier))
	desk, err := relayproc.NewDesk(deskID, "Power-cut desk", 1, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	alice := desk.Handlers[0]
	rg := newRig(t, barrier)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ctx := context.Background()
	if err := relayproc.Init(ctx, filepath.Join(bin, "amana-relay"), data, desk.Admin.Card()); err != nil {
		t.Fatal(err)
	}
	r, err := relayproc.StartRelay(ctx, filepath.Join(bin, "amana-relay"), data, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.StopRelay() })
	if err := desk.Publish(ctx, r.URL); err != nil {
		t.Fatal(err)
	}
	w := &relayWorld{desk: desk, hc: &http.Client{Transport: &http.Transport{Proxy: nil}}}
	defer w.hc.CloseIdleConnections()
	sub := w.client(t, r.URL, nil)
	ac := w.client(t, r.URL, alice)

	key := filepath.Join(dir, "alice.key")
	if err := os.WriteFile(key, alice.MarshalText(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(rg.Mnt, "home")
	known := map[string]string{} // every submission: ID -> SHA-256
	fresh := map[string]bool{}   // submitted in this round
	submit := func(k int) {
		clear(fresh)
		for range k {
			ct, err := seal(desk.Cards(), fmt.Sprintf("pull-%d-%x", len(known), rand.Uint32()), 1<<10+rand.IntN(127<<10))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := sub.Submit(ctx, deskID, "", bytes.NewReader(ct), int64(len(ct)), nil)
			if err != nil {
				t.Fatalf("submission: %v\n%s", err, r.Tail())
			}
			known[rc.ID] = hexSum(ct)
			fresh[rc.ID] = true
		}
	}
	pull := func() {
		p, err := relayproc.Start(filepath.Join(bin, "amana"), []string{"AMANA_HOME=" + home}, nil, nil,
			"pull", "--quiet", "--relay", r.URL, "-i", key)
		if err != nil {
			t.Fatal(err)
		}
		defer onSignal(p.Kill)()
		select {
		case <-p.Exited():
		case <-time.After(60 * time.Second):
			p.Kill()
			t.Fatalf("amana pull did not finish within 60 s\n%s", p.Tail())
		}
		if p.Err() != nil {
			t.Fatalf("amana pull: %v\n%s\n%s", p.Err(), p.Tail(), r.Tail())
		}
	}
	// The hook asks the relay, at the cut's instant, what alice's pulls had
	// acknowledged. The relay is not on the disk, so this cannot wait on it.
	hook := func() any {
		in, err := ac.Inbox(ctx)
		if err != nil {
			return &pullState{err: err}
		}
		listed := map[string]bool{}
		for _, it := range in {
			listed[it.ID] = true
		}
		st := &pullState{}
		for id := range known {
			if !listed[id] {
				st.acked = append(st.acked, id)
			}
		}
		return st
	}

	// Setup: a first pull makes the case store; then the disk writes its
	// cache out once.
	submit(3)
	pull()
	rg.Disk.Drain()

	scratch := t.TempDir()
	missed := 0
	for i := 0; res.cuts < cuts && !t.Failed(); i++ {
		if missed > 3*cuts {
			t.Fatalf("%d pulls finished before their cut; %d cuts taken", missed, res.cuts)
		}
		submit(3 + rand.IntN(4))
		seed := sd.cut(i)
		// A pull of a few cases makes 20 to 40 writes, nearly each
		// followed by a flush, the acks last: a cut after up to 40 of
		// them lands in the downloads or in the acks (or, if the pull
		// ends first, is not taken).
		n, skip, kind := decide(seed, 2, 40)
		ch := rg.Disk.Arm(n, skip, kind, seed, hook)
		pull()
		var c *Cut
		select {
		case c = <-ch:
		default:
			if rg.Disk.Disarm() {
				missed++
				continue
			}
			c = <-ch
		}
		st := c.Tag.(*pullState)
		if st.err != nil {
			t.Fatalf("cut seed %d: asking the relay what was acknowledged: %v", c.Seed, st.err)
		}
		res.cuts++
		for _, id := range st.acked {
			if fresh[id] {
				res.inAcks++
				break
			}
		}
		res.kinds[c.Kind]++
		res.pending += c.Pending
		res.kept += c.Kept
		checkPullCut(t, scratch, c, st, known, &res)
	}
	t.Logf("pull: %d pulls finished before their cut was reached (not counted)", missed)
	res.finish(t, rg.Disk, begin)
	return res
}

// checkPullCut checks one cut of the handler's disk.
func checkPullCut(t *testing.T, scratch string, c *Cut, st *pullState, known map[string]string, res *result) {
	res.checked += len(st.acked)
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	lost, damaged := 0, false
	defer func() {
		what := fmt.Sprintf("cut seed %d (%s, at %d cached writes, %d kept): %d cases acknowledged; missing %d, damaged %v",
			c.Seed, c.Kind, c.Pending, c.Kept, len(st.acked), lost, damaged)
		res.lost += lost
		if damaged {
			res.damaged++
		}
		if lost > 0 || damaged {
			res.lossCuts++
		}
		switch {
		case len(problems) == 0:
			t.Log(what)
		case !res.barrier:
			t.Logf("%s: %s", what, problems[0])
		default:
			keep(t, c, "failing")
			t.Errorf("%s\n  replay: AMANA_POWERCUT_CUT=%d\n  %s", what, c.Seed, joinMax(problems, 10))
		}
	}()
	cm, err := openCut(t, scratch, c)
	if err != nil {
		damaged, lost = true, len(st.acked)
		fail("the cut filesystem is damaged: %v", err)
		return
	}
	defer cm.Close(t)
	dir := filepath.Join(cm.mnt, "home", "cases")
	if _, err := os.Stat(dir); err != nil {
		lost = len(st.acked)
		fail("the case store is gone: %v", err)
		return
	}
	cs, err := cases.Open(dir)
	if err != nil {
		damaged, lost = true, len(st.acked)
		fail("opening the case store: %v", err)
		return
	}
	for _, id := range st.acked {
		b, err := os.ReadFile(cs.BundlePath(id))
		switch {
		case err != nil:
			lost++
			fail("MISSING AFTER ACK: case %s: %v", id, err)
		case hexSum(b) != known[id]:
			lost++
			fail("MISSING AFTER ACK: case %s is %d bytes with SHA-256 %.12s, not what was submitted", id, len(b), hexSum(b))
		default:
			if _, err := cs.Meta(id); err != nil {
				lost++
				fail("MISSING AFTER ACK: case %s has no metadata: %v", id, err)
			}
		}
	}
}
