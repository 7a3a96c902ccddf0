package tornet

import (
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// readyFlags are the flags every relay must carry before the network is
// ready: HSDir to store onion descriptors, Stable to serve as a
// vanguards-lite layer-2 node.
var readyFlags = []string{"HSDir", "Stable"}

// waitReady polls the authorities until their consensus lists every one of
// them with readyFlags and each has logged "Bootstrapped 100%".
func (n *Network) waitReady(ctx context.Context) error {
	began := time.Now()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	status := "no consensus yet"
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		for _, a := range n.auths {
			if a.d.exited() {
				return a.d.exitError()
			}
		}
		a := n.auths[i%len(n.auths)]
		relays, flagged, err := fetchConsensus(ctx, hc, a.dirPort)
		switch {
		case err != nil:
			status = fmt.Sprintf("no consensus yet (%s: %v)", a.name, err)
		case flagged < len(n.auths):
			status = fmt.Sprintf("consensus lists %d relays, %d with %s, of %d",
				relays, flagged, strings.Join(readyFlags, " and "), len(n.auths))
		default:
			var waiting []string
			for _, a := range n.auths {
				if !a.bootstrapped {
					a.bootstrapped = logContains(a.d.logPath, "Bootstrapped 100%")
				}
				if !a.bootstrapped {
					waiting = append(waiting, a.name)
				}
			}
			if len(waiting) == 0 {
				return nil
			}
			status = "consensus complete; not yet bootstrapped: " + strings.Join(waiting, ", ")
		}
		select {
		case <-ctx.Done():
			return n.notReady(ctx, time.Since(began), status)
		case <-tick.C:
		}
	}
}

func (n *Network) notReady(ctx context.Context, waited time.Duration, status string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tornet: network not ready %v after launch (%v): %s", waited.Round(time.Second), context.Cause(ctx), status)
	for _, a := range n.auths {
		fmt.Fprintf(&b, "\n--- end of %s:\n%s", a.d.logPath, tailFile(a.d.logPath, 10))
	}
	return errors.New(b.String())
}

// fetchConsensus fetches the microdescriptor consensus from the authority
// at dirPort and counts its relays and those with every one of readyFlags.
func fetchConsensus(ctx context.Context, hc *http.Client, dirPort int) (relays, flagged int, err error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/tor/status-vote/current/consensus-microdesc", dirPort)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	// Tor ignores Go's default "Accept-Encoding: gzip" and answers with
	// deflate (zlib), which net/http does not undo. Ask for identity, and
	// undo deflate anyway should a tor still send it.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	var r io.Reader = resp.Body
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "deflate":
		zr, err := zlib.NewReader(resp.Body)
		if err != nil {
			return 0, 0, fmt.Errorf("consensus: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return 0, 0, fmt.Errorf("consensus in unexpected Content-Encoding %q", enc)
	}
	body, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return 0, 0, fmt.Errorf("consensus: %w", err)
	}
	relays, flagged = countFlagged(string(body), readyFlags)
	return relays, flagged, nil
}

// countFlagged counts the router entries ("r" lines) of a consensus and
// those whose flags ("s" line) include every one of flags.
func countFlagged(consensus string, flags []string) (relays, flagged int) {
	for line := range strings.Lines(consensus) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "r":
			relays++
		case "s":
			if !slices.ContainsFunc(flags, func(want string) bool { return !slices.Contains(f[1:], want) }) {
				flagged++
			}
		}
	}
	return relays, flagged
}
