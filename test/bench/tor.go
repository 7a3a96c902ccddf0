package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
	"github.com/amana-relay/amana/test/internal/tornet"
)

// torAim: a submission through the relay's intake onion should take at most
// this many times as long as the same bytes posted to a bare onion service
// in the same network.
const torAim = 1.2

type torResult struct {
	Requests  int     `json:"requests"`
	BodyBytes int     `json:"body_bytes"`
	RelayMs   float64 `json:"relay_p50_ms"`
	BareMs    float64 `json:"bare_onion_p50_ms"`
	RelayP90  float64 `json:"relay_p90_ms"`
	BareP90   float64 `json:"bare_onion_p90_ms"`
	Ratio     float64 `json:"ratio"`
	Aim       float64 `json:"aim_ratio"`
	Skipped   string  `json:"skipped,omitempty"`
}

func (r *torResult) print(out io.Writer) {
	label := fmt.Sprintf("submission over Tor (%d x %d KiB)", r.Requests, r.BodyBytes>>10)
	if r.Skipped != "" {
		printLine(out, "submission over Tor", "skipped: "+r.Skipped)
		return
	}
	printLine(out, label, fmt.Sprintf("relay p50 %.0f ms (p90 %.0f)  bare onion p50 %.0f ms (p90 %.0f)  ratio %.2fx (aim <= %.1fx)",
		r.RelayMs, r.RelayP90, r.BareMs, r.BareP90, r.Ratio, r.Aim))
}

// benchTor starts a private Tor network, publishes the relay's intake
// onion and a bare onion service that only reads the body and answers with a
// receipt-sized body, both on the same tor, and times submissions of the
// same ciphertext to each from one client tor, alternating between them.
func benchTor(ctx context.Context, cfg *config, dir string) (*torResult, error) {
	res := &torResult{Requests: cfg.torRequests, Aim: torAim}
	if _, err := onion.FindTor(""); err != nil {
		res.Skipped = "tor is not installed (apt install tor)"
		return res, nil
	}
	n, err := tornet.Start(ctx, tornet.Options{Dir: filepath.Join(dir, "net")})
	if err != nil {
		return nil, fmt.Errorf("starting the private Tor network: %w", err)
	}
	defer n.Close()
	torrc, err := n.WriteTorrc(filepath.Join(dir, "network.torrc"))
	if err != nil {
		return nil, err
	}

	d, err := newDesk(1, cfg.classic, 0)
	if err != nil {
		return nil, err
	}
	sp, err := store.Open(filepath.Join(dir, "spool"), nil)
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	if err := sp.PutDesk(deskID, 1, d.Envelope); err != nil {
		return nil, err
	}
	srv, err := relay.New(sp, relay.Config{Admin: d.AdminKey()})
	if err != nil {
		return nil, err
	}
	relayLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rs := srv.HTTPServer(srv.Intake())
	go rs.Serve(relayLn)
	defer rs.Close()
	bodies, err := sealSmall(d.Cards(), 1, 4096)
	if err != nil {
		return nil, err
	}
	body := bodies[0]
	res.BodyBytes = len(body)
	receipt := bytes.Repeat([]byte("r"), 190)
	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(201)
		w.Write(receipt)
	})}
	go bare.Serve(bareLn)
	defer bare.Close()

	t, err := onion.Start(ctx, onion.Options{DataDir: filepath.Join(dir, "relay-tor"), Torrc: torrc})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	pub, err := t.Publish(ctx, 3*time.Minute,
		onion.Service{Name: "intake", KeyFile: filepath.Join(dir, "keys", "intake.key"), Target: relayLn.Addr().String()},
		onion.Service{Name: "bare", KeyFile: filepath.Join(dir, "keys", "bare.key"), Target: bareLn.Addr().String()})
	if err != nil {
		return nil, err
	}
	cl, err := n.StartClient(ctx, "bench-client")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	hc := onion.HTTPClient(cl.SocksAddr)
	post := func(url string) (time.Duration, error) {
		start := time.Now()
		resp, err := hc.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			return 0, fmt.Errorf("%s answered %d", url, resp.StatusCode)
		}
		return time.Since(start), nil
	}
	relayURL := pub[0].URL() + "/api/v1/desks/" + deskID + "/submissions"
	bareURL := pub[1].URL() + "/"
	// Warm up: descriptors, circuits, connections.
	for _, u := range []string{relayURL, bareURL} {
		var err error
		for i := 0; i < 10; i++ {
			if _, err = post(u); err == nil {
				break
			}
			time.Sleep(2 * time.Second)
		}
		if err != nil {
			return nil, fmt.Errorf("warming up %s: %w", u, err)
		}
	}
	var rl, bl []time.Duration
	for i := 0; i < cfg.torRequests; i++ {
		r, err := post(relayURL)
		if err != nil {
			return nil, err
		}
		b, err := post(bareURL)
		if err != nil {
			return nil, err
		}
		rl, bl = append(rl, r), append(bl, b)
	}
	res.RelayMs, res.RelayP90 = quantileMs(rl, 0.5), quantileMs(rl, 0.9)
	res.BareMs, res.BareP90 = quantileMs(bl, 0.5), quantileMs(bl, 0.9)
	res.Ratio = ratio(res.RelayMs, res.BareMs)
	return res, nil
}

func quantileMs(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))]) / float64(time.Millisecond)
}
