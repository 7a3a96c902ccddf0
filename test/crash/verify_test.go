package crash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

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

// checkSpool opens the stopped relay's spool and, if sweep is set, sweeps
// it with a clock two days ahead (which removes the uploads the crashes
// abandoned, and nothing else here); then store's own Spool.Verify checks
// bbolt's consistency, that the byte counters equal the bytes the spool
// holds, and that every stored submission, upload and reply has exactly
// its chunks.
func checkSpool(data string, sweep bool) (spoolFacts, error) {
	var f spoolFacts
	opts := &store.Options{LockTimeout: 5 * time.Second, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }}
	sp, err := store.Open(data, opts)
	if err != nil {
		return f, fmt.Errorf("opening the spool after the relay stopped: %w", err)
	}
	if sweep {
		if _, err := sp.Sweep(); err != nil {
			sp.Close()
			return f, fmt.Errorf("sweep: %w", err)
		}
	}
	facts, verr := sp.Verify()
	st, serr := sp.Stats()
	if err := sp.Close(); err != nil {
		return f, err
	}
	if verr != nil {
		return f, verr
	}
	if serr != nil {
		return f, serr
	}
	f.subs, f.uploads, f.uploadBytes, f.file = facts.Submissions, facts.Uploads, facts.UploadBytes, st.FileSize
	if sweep && f.uploads != 0 {
		return f, fmt.Errorf("%d uploads left after a sweep two days ahead", f.uploads)
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
