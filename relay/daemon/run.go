package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
)

// Run serves the relay in cfg.DataDir until ctx ends, then shuts down and
// returns nil. It returns an error when it cannot start, when serving
// fails, or when the relay's tor stops answering for a minute (an
// *onion.Error), so that a supervisor restarts both.
func Run(ctx context.Context, cfg Config) error {
	cfg.fill()
	if err := cfg.check(); err != nil {
		return err
	}
	// Only init makes a spool: one that is not there is not made here, so
	// that a mistyped --data leaves nothing behind.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, store.FileName)); errors.Is(err, fs.ErrNotExist) {
		return &NotInitialisedError{Dir: cfg.DataDir}
	}
	sp, err := store.Open(cfg.DataDir, &cfg.Store)
	if err != nil {
		return err
	}
	defer sp.Close()
	admin, err := LoadAdmin(sp, cfg.DataDir)
	if err != nil {
		return err
	}
	logf, announce := cfg.Logf, cfg.Announce
	st := &Status{PID: os.Getpid(), CircuitIDs: cfg.exportsCircuits()}
	var onions *onionSet
	listeners := 2 // the intake and handler onions
	if cfg.NoTor {
		listeners = 1
	}
	var srv *relay.Server
	rc := cfg.Relay
	rc.Admin = admin.SignKey
	rc.Eventf = logf
	rc.MailboxTTL = cmp.Or(rc.MailboxTTL, cfg.Store.MailboxTTL)
	rc.OnPublish = func() {
		limitMemory(srv, cfg.MaxConns*listeners)
		if onions != nil {
			go onions.follow()
		}
	}
	srv, err = relay.New(sp, rc)
	if err != nil {
		return err
	}
	limitMemory(srv, cfg.MaxConns*listeners)

	var servers []server
	defer func() {
		for _, s := range servers {
			s.hs.Close()
		}
	}()
	if cfg.NoTor {
		ln, err := listenLoopback(cfg.Listen)
		if err != nil {
			return err
		}
		servers = append(servers, capped(srv.HTTPServer(srv.Combined()), ln, cfg.MaxConns))
		st.Mode, st.Listen = "loopback", ln.Addr().String()
		announce("listening on http://%s", ln.Addr())
	} else {
		in, err := listenLoopback("127.0.0.1:0")
		if err != nil {
			return err
		}
		hd, err := listenLoopback("127.0.0.1:0")
		if err != nil {
			in.Close()
			return err
		}
		inLn := in
		if cfg.exportsCircuits() {
			inLn = relay.CircuitListener(in)
		}
		servers = append(servers, capped(srv.HTTPServer(srv.Intake()), inLn, cfg.MaxConns), capped(srv.HTTPServer(srv.Handlers()), hd, cfg.MaxConns))
		onions, err = startOnions(ctx, &cfg, srv, admin, in.Addr().String(), hd.Addr().String())
		if err != nil {
			return err
		}
		defer onions.close()
		st.Mode = "tor"
		onions.describe(st)
		announce("intake onion %s", onions.intake.URL())
		if cfg.OnionbalanceFrontend != "" {
			announce("an Onionbalance instance of %s", cfg.OnionbalanceFrontend)
		}
		announce("handler onion %s (client authorization: %d key(s))", onions.handler().URL(), onions.handler().Clients)
		if onions.intake.PoW {
			announce("proof-of-work defence on the intake onion: on (rate %d/s, burst %d)", cfg.PoW.Rate, cfg.PoW.Burst)
		} else {
			announce("proof-of-work defence on the intake onion: off (%s)", onions.powWhy)
		}
	}
	done := make(chan error, len(servers))
	for _, s := range servers {
		go func(s server) { done <- s.hs.Serve(s.ln) }(s)
	}

	var mon *monitor
	writeStatus := func() {
		sst, err := sp.Stats()
		if err != nil {
			return
		}
		st.Desks, st.Submissions, st.Uploads, st.Events = srv.DeskCount(), sst.Submissions, sst.Uploads, sst.Events
		st.Committed, st.Quota, st.FileSize = sst.Committed, sst.Quota, sst.FileSize
		st.Circuits = srv.Circuits()
		if onions != nil {
			onions.describe(st)
		}
		st.Updated = time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339)
		saveStatus(cfg.DataDir, st)
		if mon != nil {
			mon.setLive(st)
		}
	}
	writeStatus()
	defer os.Remove(filepath.Join(cfg.DataDir, StatusFile))
	mon = newMonitor(sp, srv, cfg.DataDir, cmp.Or(cfg.Store.Coarse, store.DefaultCoarse), cfg.Version)
	mon.setLive(st)
	if cfg.Metrics != "" {
		ln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			return &ListenError{Addr: cfg.Metrics, Metrics: true, Err: err}
		}
		ms := &http.Server{Handler: mon, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 4 << 10}
		go ms.Serve(ln)
		defer ms.Close()
		announce("metrics on http://%s/metrics", ln.Addr())
	}
	var notify func(int)
	if cfg.NotifyCommand != "" {
		notify = notifier(cfg.NotifyCommand, logf)
	}
	monCtx, stopMon := context.WithCancel(ctx)
	defer stopMon()
	go mon.run(monCtx, notify, cfg.NotifyEvery)
	ctl, err := listenControl(cfg.DataDir)
	if err != nil {
		return err
	}
	defer os.Remove(filepath.Join(cfg.DataDir, ControlSocket))
	defer ctl.Close()
	go serveControl(ctl, sp, srv.DeskCount, logf)
	logf("started: %d desk(s) served", srv.DeskCount())

	// Sweep once now: a relay that was down past a submission's or an
	// upload's expiry deletes it at once, not one interval later.
	sweepOnce := func() {
		res, err := sp.Sweep()
		if err != nil {
			logf("sweep failed: %v", err)
		} else if res.Submissions+res.Uploads+res.Mailboxes+res.Events > 0 {
			logf("sweep: deleted %d expired submission(s), %d abandoned upload(s), %d expired mailbox(es), %d expired event(s)", res.Submissions, res.Uploads, res.Mailboxes, res.Events)
		}
	}
	sweepOnce()

	// Without its tor the relay is unreachable: if tor stops answering for
	// a minute, stop with an error, so a supervisor restarts both.
	torLost := make(chan error, 1)
	if onions != nil {
		go onions.watch(ctx, torLost)
	}
	sweep := time.NewTicker(cfg.SweepEvery)
	defer sweep.Stop()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serving: %w", err)
		case err := <-torLost:
			logf("stopping: %v", err)
			return err
		case <-ctx.Done():
			logf("shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, s := range servers {
				s.hs.Shutdown(ctx)
			}
			return nil
		case <-sweep.C:
			sweepOnce()
		case <-tick.C:
			writeStatus()
		}
	}
}

// server is one API half on one loopback listener.
type server struct {
	hs *http.Server
	ln net.Listener
}

// capped caps the open connections of a listener (Config.MaxConns).
func capped(hs *http.Server, ln net.Listener, max int) server {
	return server{hs, relay.CapConns(hs, ln, max)}
}

// IsLoopback says whether addr (host:port) is on loopback: "localhost" or
// a loopback IP address.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listenLoopback listens on addr, which check or Run made sure is on
// loopback.
func listenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: err}
	}
	return ln, nil
}

// limitMemory gives the Go runtime the relay's memory bound (§10.9 of
// protocol.md) as its soft limit, so garbage is collected before the
// process grows past it, unless GOMEMLIMIT says otherwise.
//
// It also collects garbage at a quarter's growth of the heap instead of
// Go's default doubling, unless GOGC says otherwise: the relay's garbage is
// mostly large byte slices (bbolt's page buffers, about 8 MiB per upload
// commit), cheap to collect, and at the default a large upload alone grew
// the process to 77-107 MiB resident; at 25 it stays under 64 MiB
// (docs/reliability.md, the upload section).
func limitMemory(srv *relay.Server, conns int) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(srv.MemoryBound(conns))
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(relayGCPercent)
	}
}

// relayGCPercent is the relay's GOGC unless the environment sets one.
const relayGCPercent = 25
