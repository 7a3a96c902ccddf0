package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// loadResult is what one phase of load measured.
type loadResult struct {
	Seconds        float64         `json:"seconds"`
	HostileClients int             `json:"hostile_clients"`
	Honest         *honestResult   `json:"honest"`
	Hostile        []hostileAnswer `json:"hostile"`
	// Probe is GET /api/v1/health on a fresh connection every second
	// during the load: what a new client waits for the relay to accept and
	// answer it.
	Probe         latency        `json:"fresh_connection_health"`
	ProbeFailures map[string]int `json:"fresh_connection_health_failures"`

	receipts map[string]bool
}

// honestFailures is how many honest submissions failed with anything but a
// busy answer.
func (r *loadResult) honestFailures() int { return sum(r.Honest.Failures) }

// runLoad runs cfg.submitters honest submitters and a tenth as many hostile
// clients against t for dur. Honest submitters start nothing new after dur
// and finish what they sent; hostile clients stop at once. status, if not
// nil, adds to the progress line printed to log every ten seconds.
func runLoad(ctx context.Context, t *target, cfg *config, dur time.Duration, log io.Writer, status func() string) *loadResult {
	start := time.Now()
	deadline := start.Add(dur)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	st, hs := newHonestStats(), newHostileStats()
	var transports []*http.Transport
	var wg sync.WaitGroup
	for range cfg.submitters {
		tr := newTransport()
		transports = append(transports, tr)
		seed := rand.Uint64()
		wg.Go(func() { honest(ctx, t, cfg, deadline, st, tr, seed) })
	}
	for i := range cfg.hostile {
		h := newHostileClient(t, cfg, hs, rand.Uint64())
		h.id = i
		transports = append(transports, h.tr)
		// Spread the clients over the mix, so that every action runs from
		// the start even with few clients.
		wg.Go(func() { h.loop(hctx, i*len(hostileActions)/cfg.hostile) })
	}

	var probes []time.Duration
	var probeFailures tally
	wg.Go(func() {
		tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
		hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			req, _ := http.NewRequestWithContext(hctx, "GET", t.url+"/api/v1/health", nil)
			resp, err := hc.Do(req)
			switch {
			case hctx.Err() != nil:
				probeFailures.add(fmt.Sprintf("still waiting when the run ended (%.0f s or more)", time.Since(start).Seconds()), 1)
				return
			case err != nil:
				probeFailures.add(failed(hctx, err), 1)
			default:
				if a := answer(resp); a != "200" {
					probeFailures.add(a, 1)
					continue
				}
				probes = append(probes, time.Since(start))
			}
		}
	})

	done := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			st.mu.Lock()
			line := fmt.Sprintf("soak: [%s] %3.0fs  accepted %d of %d attempts, %d busy, %d failed",
				t.name, time.Since(start).Seconds(), st.accepted, st.attempts, sum(st.answers.snapshot())-sum(st.failures.snapshot()), sum(st.failures.snapshot()))
			st.mu.Unlock()
			if status != nil {
				line += "  " + status()
			}
			if time.Now().After(deadline) {
				line += "  (finishing what was sent)"
			}
			fmt.Fprintln(log, line)
		}
	})
	wg.Wait()
	took := time.Since(start)
	close(done)
	pwg.Wait()
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	st.mu.Lock()
	receipts := st.receipts
	st.mu.Unlock()
	return &loadResult{
		Seconds:        took.Round(100 * time.Millisecond).Seconds(),
		HostileClients: cfg.hostile,
		Honest:         st.result(cfg.submitters, took),
		Hostile:        hs.result(),
		Probe:          summarise(probes),
		ProbeFailures:  probeFailures.snapshot(),
		receipts:       receipts,
	}
}
