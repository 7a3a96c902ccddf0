package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/amana-relay/amana/relay/client"
)

// Sizes of honest reports' attachments: most are small and go in one
// request; a share are large and go through the resumable upload.
const (
	smallMin = 1 << 10
	smallMax = 60 << 10 // the ciphertext stays under 64 KiB
	largeMin = client.SingleMax
	largeMax = 8 << 20
)

// honestStats is what the honest submitters saw.
type honestStats struct {
	mu        sync.Mutex
	attempts  int
	accepted  int
	bytes     int64
	single    []time.Duration // the Submit call that was accepted
	resumable []time.Duration
	singleE2E []time.Duration // from the first attempt, busy waits included
	resumeE2E []time.Duration
	gaveUp    int             // reports still waiting out busy answers when the run ended
	receipts  map[string]bool // IDs of accepted submissions
	answers   tally           // every attempt not accepted, by outcome
	failures  tally           // those that were not busy answers
}

func newHonestStats() *honestStats { return &honestStats{receipts: map[string]bool{}} }

// honestResult is honestStats for the output.
type honestResult struct {
	Submitters     int            `json:"submitters"`
	Attempts       int            `json:"attempts"`
	Accepted       int            `json:"accepted"`
	AcceptedPerSec float64        `json:"accepted_per_sec"`
	MiBPerSec      float64        `json:"accepted_mib_per_sec"`
	Single         latency        `json:"single_latency"`
	Resumable      latency        `json:"resumable_latency"`
	SingleE2E      latency        `json:"single_latency_with_busy_waits"`
	ResumableE2E   latency        `json:"resumable_latency_with_busy_waits"`
	GaveUpAtEnd    int            `json:"gave_up_at_end_while_busy"`
	Answers        map[string]int `json:"not_accepted_by_answer"`
	Failures       map[string]int `json:"failures_not_busy"`
}

func (st *honestStats) result(submitters int, took time.Duration) *honestResult {
	st.mu.Lock()
	defer st.mu.Unlock()
	secs := took.Seconds()
	return &honestResult{
		Submitters: submitters, Attempts: st.attempts, Accepted: st.accepted,
		AcceptedPerSec: float64(st.accepted) / secs, MiBPerSec: toMiB(st.bytes) / secs,
		Single: summarise(st.single), Resumable: summarise(st.resumable),
		SingleE2E: summarise(st.singleE2E), ResumableE2E: summarise(st.resumeE2E),
		GaveUpAtEnd: st.gaveUp, Answers: st.answers.snapshot(), Failures: st.failures.snapshot(),
	}
}

// newTransport is a submitter's own HTTP transport, as client.New makes
// one, so that each submitter has its own connection.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       time.Minute,
		MaxIdleConnsPerHost:   2,
	}
}

// honest is one honest submitter: until deadline it seals a report, sends
// it, and waits out busy answers with a growing, jittered pause, sending the
// same report again.
func honest(ctx context.Context, t *target, cfg *config, deadline time.Time, st *honestStats, tr *http.Transport, seed uint64) {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	src := rand.NewChaCha8(s)
	rng := rand.New(src)
	c, _ := client.New(t.url, &http.Client{Transport: tr})
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil && time.Now().Before(deadline) {
		size := smallMin + rng.IntN(smallMax-smallMin)
		if rng.Float64() < cfg.largeShare {
			size = largeMin + rng.IntN(largeMax-largeMin)
		}
		// Encryption is the submitter's work: it happens before the clock
		// starts.
		rep, err := sealReport(t.desk.Cards(), src, size)
		if err != nil {
			st.mu.Lock()
			st.failures.add("error: "+clip(err.Error(), 80), 1)
			st.mu.Unlock()
			return
		}
		n := int64(len(rep.data))
		resumable := n > client.SingleMax
		first := time.Now()
		for {
			actx, cancel := context.WithTimeout(ctx, cfg.requestTimeout)
			start := time.Now()
			rc, err := c.Submit(actx, deskID, "", bytes.NewReader(rep.data), n, nil)
			took := time.Since(start)
			cancel()
			if ctx.Err() != nil {
				return // interrupted: nothing to count
			}
			st.mu.Lock()
			st.attempts++
			if err == nil && (rc.Size != n || rc.SHA256 != hex.EncodeToString(rep.sum[:])) {
				err = fmt.Errorf("receipt %s does not match what was sent", rc.ID)
			}
			if err == nil {
				st.accepted++
				st.bytes += n
				st.receipts[rc.ID] = true
				if resumable {
					st.resumable = append(st.resumable, took)
					st.resumeE2E = append(st.resumeE2E, time.Since(first))
				} else {
					st.single = append(st.single, took)
					st.singleE2E = append(st.singleE2E, time.Since(first))
				}
				st.mu.Unlock()
				backoff = 500 * time.Millisecond
				break
			}
			name, busy := outcome(err)
			if resumable {
				name += " (resumable)"
			}
			st.answers.add(name, 1)
			if !busy {
				st.failures.add(name, 1)
				st.mu.Unlock()
				break
			}
			// Wait out the busy answer, then send the same report again.
			wait := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, 8*time.Second)
			if time.Now().Add(wait).After(deadline) {
				st.gaveUp++
				st.mu.Unlock()
				return
			}
			st.mu.Unlock()
			if sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
