package crash

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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amana-relay/amana/handler/cases"
)

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

	// Pulls killed at random moments. A pull downloads every new case
	// without syncing, then syncs the case store once, then acks them all
	// in one signed request that the relay commits in one transaction:
	// the early kills land in the downloads, the later ones, with less left
	// to download, in the sync or the ack. A kill after which more cases
	// are acked than before it landed at or after the ack's commit; since
	// one request acks every case the pull listed, that batch is all or
	// nothing: the count of acked cases never stops between the count
	// before the pull and every case the pull found complete. Killing goes
	// on until kills pulls were killed and one of them at its ack, or until
	// everything is acked (or 4×kills pulls were started).
	var ackedAfter []int // after each kill
	killed, finished, inAcks := 0, 0, 0
	ackedBefore := 0
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
			if acked > ackedBefore {
				inAcks++
				// The batch covered every case complete locally when the
				// pull acked: all of them or none.
				if acked < local {
					t.Errorf("pull %d: %d acked after a kill at the ack, %d complete locally: a batch acknowledgement was applied in part", attempt, acked, local)
				}
			}
		}
		ackedBefore = acked
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
