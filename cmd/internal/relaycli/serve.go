package relaycli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
)

// StatusFile is written by a serving relay into its data directory, so
// 'amana-relay status' can report on it while the spool is locked.
const StatusFile = "status.json"

// Files in the data directory that belong to Tor.
const (
	torDir       = "tor"   // the launched tor's data directory
	onionDir     = "onion" // onion service keys and their addresses
	intakeName   = "intake"
	handlersName = "handler"
)

type serveOptions struct {
	data          string
	listen        string
	noTor         bool
	torPath       string
	torControl    string
	torrc         string
	pow           bool
	powRate       int
	powBurst      int
	publishWait   time.Duration
	bootstrapWait time.Duration
	quota         string
	maxSubmission string
	uploadTTL     string
	coarse        string
	sweepEvery    time.Duration
	requireClient bool
	maxForm       string
	deskQuota     string
	maxFile       string
	maxBodies     int
	bodyMemory    string
	minBodyRate   int64
	metrics       string
	obFrontend    string
	circuitCreate int
	circuitLookup int
	notifyCommand string
	notifyEvery   time.Duration
	createRate    int
	createBurst   int
	maxConns      int
	maxStreams    int
}

func newServe(e *env) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve --data DIR",
		Short: "serve the relay on two Tor onion services",
		Long: `Serve the relay on Tor. By default it starts the system tor with its own data
directory inside DIR (or attaches to a running tor with --tor-control) and publishes
two onion services with persistent keys, kept in DIR/onion:

  the intake onion   public: desk manifests, submissions, uploads, the browser pages;
                     with tor's proof-of-work defence where the tor in use supports it
  the handler onion  inbox, download, ack and manifest publication, reachable only by
                     tors holding a client-authorization key of a handler in a served
                     desk, or of the admin; it follows every newly published manifest

Start-up waits until both descriptors are published. No port is opened to anything
but 127.0.0.1. With --no-tor the relay serves the whole API on --listen instead,
for local use and tests.

The relay stores only ciphertext: every submission must be an age file encrypted to
the recipients its desk and category imply, except on the no-JavaScript form, where
the relay encrypts the report itself, in memory, as it arrives (turn that path off
with --require-client-encryption). It never logs a body, a token or an
address, and keeps times only to --time-granularity (an hour by default).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !o.noTor && cmd.Flags().Changed("listen") {
				return ui.Fail(ui.ExitUsage, "add --no-tor to serve on a loopback address, or leave --listen out to serve on onion services", nil,
					"--listen is used only with --no-tor")
			}
			return runServe(e, &o)
		},
	}
	dataFlag(cmd, &o.data)
	f := cmd.Flags()
	f.BoolVar(&o.noTor, "no-tor", false, "serve on --listen (loopback) instead of onion services")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "with --no-tor: loopback address and port to listen on")
	f.StringVar(&o.torPath, "tor-path", "", "tor binary to start (default: tor on PATH)")
	f.StringVar(&o.torControl, "tor-control", "", "attach to a running tor at this control address (cookie authentication) instead of starting one")
	f.StringVar(&o.torrc, "torrc", "", "file of extra torrc lines for the tor the relay starts (bridges, test networks)")
	f.BoolVar(&o.pow, "pow", true, "turn on tor's proof-of-work defence on the intake onion where tor supports it")
	f.IntVar(&o.powRate, "pow-rate", 250, "proof of work: introduction requests per second let through once the queue fills")
	f.IntVar(&o.powBurst, "pow-burst", 2500, "proof of work: requests let through at once")
	f.DurationVar(&o.bootstrapWait, "bootstrap-timeout", 3*time.Minute, "how long to wait for tor to connect")
	f.DurationVar(&o.publishWait, "publish-timeout", 3*time.Minute, "how long to wait for the onion services' descriptors to be published")
	f.StringVar(&o.quota, "quota", "10GiB", "most bytes the spool holds: stored submissions and the bytes of unfinished uploads")
	f.StringVar(&o.maxSubmission, "max-submission", "2GiB", "largest submission accepted, whatever a desk allows")
	f.StringVar(&o.uploadTTL, "upload-ttl", "24h", "how long an unfinished upload is kept after its last piece")
	f.StringVar(&o.coarse, "time-granularity", "1h", "granularity of the times the spool keeps")
	f.DurationVar(&o.sweepEvery, "sweep-every", 10*time.Minute, "how often expired submissions and uploads are deleted")
	f.BoolVar(&o.requireClient, "require-client-encryption", false, "turn off the no-JavaScript form, where the relay encrypts a report in memory; accept only reports encrypted by the submitter's browser or tool")
	f.StringVar(&o.maxFile, "max-spool-file", "", "cap the spool file at this size, as a full disk would (default: no cap)")
	f.StringVar(&o.deskQuota, "desk-quota", "", "most bytes one desk may hold (default: 80% of --quota)")
	f.IntVar(&o.maxBodies, "max-concurrent-bodies", 32, "submission bodies read at once; more wait, then get 503 busy")
	f.StringVar(&o.bodyMemory, "max-body-memory", "128MiB", "memory the intake side's request bodies may hold at once, reserved before a body is read; more wait, then get 503 busy (must hold one --max-form-size post)")
	f.IntVar(&o.circuitCreate, "circuit-create-rate", 10, "new submissions and uploads one Tor circuit may start per minute, burst twice that (429 busy past it; needs the relay's own tor; 0: no limit)")
	f.IntVar(&o.circuitLookup, "circuit-lookup-rate", 30, "mailbox lookups one Tor circuit may make per minute, burst twice that (0: no limit)")
	f.StringVar(&o.obFrontend, "onionbalance-frontend", "", "publish the intake onion as an Onionbalance instance of this frontend onion address, so that several relays serve one address (see docs/operator.md)")
	f.StringVar(&o.metrics, "metrics", "", "serve /health and Prometheus /metrics on this loopback address, like 127.0.0.1:9464 (figures that move with submissions change once per --time-granularity)")
	f.StringVar(&o.notifyCommand, "notify-command", "", "run this program on a fixed schedule, whether or not anything waits, with the number of submissions waiting in $AMANA_WAITING and on its standard input")
	f.DurationVar(&o.notifyEvery, "notify-every", 6*time.Hour, "the schedule of --notify-command: at every multiple of this since midnight UTC")
	f.Int64Var(&o.minBodyRate, "min-body-rate", 256, "fewest bytes a second a request body must bring, averaged over each minute; slower ones get 408 timeout (0: no floor)")
	f.IntVar(&o.createRate, "create-rate", 50, "new submissions and uploads per second across all clients (429 busy past it)")
	f.IntVar(&o.createBurst, "create-burst", 200, "burst allowed above --create-rate")
	f.IntVar(&o.maxConns, "max-connections", 512, "open connections per listener; at the cap the longest-idle one is closed, or new ones wait to be accepted")
	f.IntVar(&o.maxStreams, "max-streams-per-circuit", 16, "concurrent streams tor lets one client circuit open to the intake onion (tor closes circuits that try more)")
	f.StringVar(&o.maxForm, "max-form-size", "64MiB", "largest no-JavaScript form post or self-encrypted file sent from a page (the relay holds it in memory)")
	return cmd
}

func isLoopback(addr string) bool {
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

func (o *serveOptions) storeOptions() (*store.Options, int64, error) {
	opts := &store.Options{}
	var err error
	if opts.Quota, err = ui.ParseSize(o.quota); err != nil {
		return nil, 0, ui.Fail(ui.ExitUsage, "", err, "invalid --quota")
	}
	maxSub, err := ui.ParseSize(o.maxSubmission)
	if err != nil {
		return nil, 0, ui.Fail(ui.ExitUsage, "", err, "invalid --max-submission")
	}
	if opts.UploadTTL, err = ui.ParseDuration(o.uploadTTL); err != nil {
		return nil, 0, ui.Fail(ui.ExitUsage, "", err, "invalid --upload-ttl")
	}
	if opts.Coarse, err = ui.ParseDuration(o.coarse); err != nil || opts.Coarse < time.Minute {
		return nil, 0, ui.Fail(ui.ExitUsage, "use at least 1m; 1h is the default", err, "invalid --time-granularity")
	}
	if o.maxFile != "" {
		n, err := ui.ParseSize(o.maxFile)
		if err != nil || n < 1<<20 {
			return nil, 0, ui.Fail(ui.ExitUsage, "use at least 1MiB", err, "invalid --max-spool-file")
		}
		opts.MaxFileSize = int(n)
	}
	if o.deskQuota != "" {
		if opts.DeskQuota, err = ui.ParseSize(o.deskQuota); err != nil {
			return nil, 0, ui.Fail(ui.ExitUsage, "", err, "invalid --desk-quota")
		}
	}
	if o.sweepEvery < time.Minute {
		return nil, 0, ui.Fail(ui.ExitUsage, "use at least 1m; 10m is the default", nil, "invalid --sweep-every %v", o.sweepEvery)
	}
	return opts, maxSub, nil
}

// server is one API half on one loopback listener.
type server struct {
	hs *http.Server
	ln net.Listener
}

// exportsCircuits says whether tor tells the relay each intake
// connection's circuit: with the relay's own tor, always.
func exportsCircuits(o *serveOptions) bool { return !o.noTor && o.torControl == "" }

// capped caps the open connections of a listener (--max-connections).
func capped(hs *http.Server, ln net.Listener, max int) server {
	return server{hs, relay.CapConns(hs, ln, max)}
}

func listenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, ui.Fail(ui.ExitError, "choose another port, or stop what is using it", err, "cannot listen on %s", addr)
	}
	return ln, nil
}

func runServe(e *env, o *serveOptions) error {
	if err := needData(o.data); err != nil {
		return err
	}
	if o.noTor && !isLoopback(o.listen) {
		return ui.Fail(ui.ExitUsage, "listen on 127.0.0.1 and let Tor (or a reverse proxy you control) forward to it", nil,
			"refusing to listen on %s: the relay listens on loopback only", o.listen)
	}
	opts, maxSub, err := o.storeOptions()
	if err != nil {
		return err
	}
	if o.maxConns < 1 || o.maxBodies < 1 || o.createRate < 1 || o.createBurst < 1 || o.maxStreams < 0 || o.minBodyRate < 0 || o.circuitCreate < 0 || o.circuitLookup < 0 {
		return ui.Fail(ui.ExitUsage, "use positive numbers", nil, "invalid limit")
	}
	sp, err := store.Open(o.data, opts)
	if err != nil {
		return err
	}
	defer sp.Close()
	admin, err := loadAdmin(sp, o.data)
	if err != nil {
		return err
	}
	logger := log.New(e.stderr, "amana-relay: ", 0)
	st := &statusInfo{PID: os.Getpid(), CircuitIDs: exportsCircuits(o)}
	var onions *onionSet
	maxForm, err := ui.ParseSize(o.maxForm)
	if err != nil || maxForm < 1<<20 {
		return ui.Fail(ui.ExitUsage, "use a size of at least 1MiB, like 64MiB", err, "invalid --max-form-size")
	}
	bodyMemory, err := ui.ParseSize(o.bodyMemory)
	if err != nil || bodyMemory < 1<<20 {
		return ui.Fail(ui.ExitUsage, "use a size of at least 1MiB, like 128MiB", err, "invalid --max-body-memory")
	}
	listeners := 2 // the intake and handler onions
	if o.noTor {
		listeners = 1
	}
	var srv *relay.Server
	srv, err = relay.New(sp, relay.Config{
		Admin:                   admin.SignKey,
		MaxSubmission:           maxSub,
		RequireClientEncryption: o.requireClient,
		MaxFormBytes:            maxForm,
		MaxConcurrentBodies:     o.maxBodies,
		MaxBodyMemory:           bodyMemory,
		MinBodyRate:             cmp.Or(o.minBodyRate, -1),
		CreateRate:              o.createRate,
		CreateBurst:             o.createBurst,
		CircuitCreateRate:       cmp.Or(o.circuitCreate, -1),
		CircuitLookupRate:       cmp.Or(o.circuitLookup, -1),
		Eventf:                  logger.Printf,
		OnPublish: func() {
			limitMemory(srv, o.maxConns*listeners)
			if onions != nil {
				go onions.follow()
			}
		},
	})
	if err != nil {
		return err
	}
	limitMemory(srv, o.maxConns*listeners)

	var servers []server
	defer func() {
		for _, s := range servers {
			s.hs.Close()
		}
	}()
	if o.noTor {
		ln, err := listenLoopback(o.listen)
		if err != nil {
			return err
		}
		servers = append(servers, capped(srv.HTTPServer(srv.Combined()), ln, o.maxConns))
		st.Mode, st.Listen = "loopback", ln.Addr().String()
		fmt.Fprintf(e.stdout, "amana-relay: listening on http://%s\n", ln.Addr())
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
		if exportsCircuits(o) {
			inLn = relay.CircuitListener(in)
		}
		servers = append(servers, capped(srv.HTTPServer(srv.Intake()), inLn, o.maxConns), capped(srv.HTTPServer(srv.Handlers()), hd, o.maxConns))
		onions, err = startOnions(e.ctx, o, logger, srv, admin, in.Addr().String(), hd.Addr().String())
		if err != nil {
			return err
		}
		defer onions.close()
		st.Mode = "tor"
		onions.describe(st)
		fmt.Fprintf(e.stdout, "amana-relay: intake onion %s\n", onions.intake.URL())
		if o.obFrontend != "" {
			fmt.Fprintf(e.stdout, "amana-relay: an Onionbalance instance of %s\n", o.obFrontend)
		}
		fmt.Fprintf(e.stdout, "amana-relay: handler onion %s (client authorization: %d key(s))\n", onions.handler().URL(), onions.handler().Clients)
		if onions.intake.PoW {
			fmt.Fprintf(e.stdout, "amana-relay: proof-of-work defence on the intake onion: on (rate %d/s, burst %d)\n", o.powRate, o.powBurst)
		} else {
			fmt.Fprintf(e.stdout, "amana-relay: proof-of-work defence on the intake onion: off (%s)\n", onions.powWhy)
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
		st.Desks, st.Submissions, st.Uploads = srv.DeskCount(), sst.Submissions, sst.Uploads
		st.Committed, st.Quota, st.FileSize = sst.Committed, sst.Quota, sst.FileSize
		st.Circuits = srv.Circuits()
		if onions != nil {
			onions.describe(st)
		}
		st.Updated = time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339)
		saveStatus(o.data, st)
		if mon != nil {
			mon.setLive(st)
		}
	}
	writeStatus()
	defer os.Remove(filepath.Join(o.data, StatusFile))
	mon = newMonitor(sp, srv, o.data, opts.Coarse)
	mon.setLive(st)
	if o.metrics != "" {
		ln, err := listenMetrics(o.metrics)
		if err != nil {
			return err
		}
		ms := &http.Server{Handler: mon, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 4 << 10}
		go ms.Serve(ln)
		defer ms.Close()
		fmt.Fprintf(e.stdout, "amana-relay: metrics on http://%s/metrics\n", ln.Addr())
	}
	var notify func(int)
	if o.notifyCommand != "" {
		if o.notifyEvery < time.Minute {
			return ui.Fail(ui.ExitUsage, "use at least 1m; 6h is the default", nil, "invalid --notify-every")
		}
		notify = notifier(o.notifyCommand, logger.Printf)
	}
	monCtx, stopMon := context.WithCancel(e.ctx)
	defer stopMon()
	go mon.run(monCtx, notify, o.notifyEvery)
	ctl, err := listenControl(o.data)
	if err != nil {
		return err
	}
	defer os.Remove(filepath.Join(o.data, ControlSocket))
	defer ctl.Close()
	go serveControl(ctl, sp, logger.Printf)
	logger.Printf("started: %d desk(s) served", srv.DeskCount())

	// Sweep once now: a relay that was down past a submission's or an
	// upload's expiry deletes it at once, not one interval later.
	sweepOnce := func() {
		res, err := sp.Sweep()
		if err != nil {
			logger.Printf("sweep failed: %v", err)
		} else if res.Submissions+res.Uploads+res.Mailboxes > 0 {
			logger.Printf("sweep: deleted %d expired submission(s), %d abandoned upload(s), %d expired mailbox(es)", res.Submissions, res.Uploads, res.Mailboxes)
		}
	}
	sweepOnce()

	// Without its tor the relay is unreachable: if tor stops answering for
	// a minute, stop with an error, so a supervisor restarts both.
	torLost := make(chan error, 1)
	if onions != nil {
		go onions.watch(e.ctx, torLost)
	}
	sweep := time.NewTicker(o.sweepEvery)
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
			logger.Printf("stopping: %v", err)
			return err
		case <-e.ctx.Done():
			logger.Printf("shutting down")
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

// onionSet is the relay's two onion services and the tor behind them.
type onionSet struct {
	tor       *onion.Tor
	o         *serveOptions
	logf      func(string, ...any)
	srv       *relay.Server
	admin     *crypto.Card
	target    string
	intake    *onion.Published
	powWhy    string
	following sync.Mutex // serialises re-publication
	mu        sync.Mutex // guards hd, keys and down
	hd        *onion.Published
	keys      [][32]byte
	down      bool // the handler onion was removed and is not back yet
	dataDir   string
}

func startOnions(ctx context.Context, o *serveOptions, logger *log.Logger, srv *relay.Server, admin *crypto.Card, intakeAddr, handlerAddr string) (*onionSet, error) {
	t, err := onion.Start(ctx, onion.Options{
		TorPath:          o.torPath,
		DataDir:          filepath.Join(o.data, torDir),
		Control:          o.torControl,
		Torrc:            o.torrc,
		BootstrapTimeout: o.bootstrapWait,
		Logf:             logger.Printf,
	})
	if err != nil {
		return nil, err
	}
	s := &onionSet{tor: t, o: o, logf: logger.Printf, srv: srv, admin: admin, target: handlerAddr, dataDir: o.data}
	s.keys = s.clientKeys()
	intake := onion.Service{Name: intakeName, KeyFile: s.keyFile(intakeName), Target: intakeAddr, MaxStreams: o.maxStreams,
		OnionbalanceFrontend: o.obFrontend, ExportCircuitID: exportsCircuits(o)}
	if o.pow {
		intake.PoW = &onion.PoW{Rate: o.powRate, Burst: o.powBurst}
	}
	logger.Printf("publishing the intake and handler onion services (tor %s)", t.Version())
	pub, err := t.Publish(ctx, o.publishWait, intake, s.handlerService(s.keys))
	if err != nil {
		t.Close()
		return nil, err
	}
	s.intake, s.hd = pub[0], pub[1]
	switch {
	case !o.pow:
		s.powWhy = "turned off with --pow=false"
	case !s.intake.PoW:
		s.powWhy = "tor " + t.Version() + " does not support it; tor 0.4.8 or newer with the pow module does"
	}
	for _, p := range pub {
		if err := os.WriteFile(filepath.Join(o.data, onionDir, p.Name+".hostname"), []byte(p.ID+".onion\n"), 0o600); err != nil {
			logger.Printf("cannot record the %s onion address: %v", p.Name, err)
		}
	}
	logger.Printf("both onion services are published")
	return s, nil
}

func (s *onionSet) keyFile(name string) string {
	return filepath.Join(s.dataDir, onionDir, name+".key")
}

func (s *onionSet) handler() *onion.Published {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hd
}

func (s *onionSet) handlerService(keys [][32]byte) onion.Service {
	return onion.Service{Name: handlersName, KeyFile: s.keyFile(handlersName), Target: s.target, ClientAuth: keys}
}

// clientKeys are the client-authorization keys of the admin and of every
// handler of a served desk.
func (s *onionSet) clientKeys() [][32]byte {
	keys := [][32]byte{s.admin.OnionAuth}
	for _, c := range s.srv.Cards() {
		if c.OnionAuth != s.admin.OnionAuth {
			keys = append(keys, c.OnionAuth)
		}
	}
	return keys
}

// follow re-publishes the handler onion, with the same key and address,
// when the set of client-authorization keys changed. It tries again every
// 30 seconds until tor has published it.
func (s *onionSet) follow() {
	s.following.Lock()
	defer s.following.Unlock()
	keys := s.clientKeys()
	s.mu.Lock()
	same, down, id := sameKeys(keys, s.keys), s.down, s.hd.ID
	s.mu.Unlock()
	if same && !down {
		return
	}
	s.logf("the handlers changed: publishing the handler onion again with %d client-authorization key(s)", len(keys))
	if !down {
		if err := s.tor.Unpublish(id); err != nil {
			s.logf("%v", err)
		}
		s.mu.Lock()
		s.down = true
		s.mu.Unlock()
	}
	for {
		pub, err := s.tor.Publish(context.Background(), s.o.publishWait, s.handlerService(keys))
		if err == nil {
			s.mu.Lock()
			s.hd, s.keys, s.down = pub[0], keys, false
			s.mu.Unlock()
			s.logf("the handler onion is published again")
			return
		}
		s.logf("the handler onion could not be published again (trying again in 30s): %v", err)
		time.Sleep(30 * time.Second)
		keys = s.clientKeys()
	}
}

// watch checks every 15 seconds that tor answers, and reports on lost when
// it has not for a minute.
func (s *onionSet) watch(ctx context.Context, lost chan<- error) {
	failures := 0
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, _, err := s.tor.Bootstrap(); err != nil {
			failures++
			s.logf("tor is not answering (%d): %v", failures, err)
			if failures >= 4 {
				lost <- &onion.Error{Kind: onion.KindControl, Msg: "lost the connection to tor; the onion services are down",
					Hint: "restart amana-relay (a service manager does so by itself); if tor was upgraded or restarted, that is expected", Err: err}
				return
			}
			continue
		}
		failures = 0
	}
}

func sameKeys(a, b [][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[[32]byte]bool{}
	for _, k := range a {
		seen[k] = true
	}
	for _, k := range b {
		if !seen[k] {
			return false
		}
	}
	return true
}

func (s *onionSet) describe(st *statusInfo) {
	st.Intake = s.intake.URL()
	st.Handler = s.handler().URL()
	st.HandlerClients = s.handler().Clients
	s.mu.Lock()
	st.HandlerDown = s.down
	s.mu.Unlock()
	st.PoW = s.intake.PoW
	st.TorVersion = s.tor.Version()
	if p, sum, err := s.tor.Bootstrap(); err == nil {
		st.TorState = fmt.Sprintf("%d%% %s", p, sum)
	} else {
		st.TorState = "not answering: " + err.Error()
	}
}

func (s *onionSet) close() { s.tor.Close() }

type statusInfo struct {
	PID            int    `json:"pid"`
	Mode           string `json:"mode"` // "tor" or "loopback"
	Listen         string `json:"listen,omitempty"`
	Intake         string `json:"intake_onion,omitempty"`
	Handler        string `json:"handler_onion,omitempty"`
	HandlerClients int    `json:"handler_clients,omitempty"`
	HandlerDown    bool   `json:"handler_down,omitempty"` // being published again
	PoW            bool   `json:"pow"`
	TorVersion     string `json:"tor_version,omitempty"`
	TorState       string `json:"tor_state,omitempty"`
	Desks          int    `json:"desks"`
	Submissions    int    `json:"submissions"`
	Uploads        int    `json:"uploads"`
	Committed      int64  `json:"committed"`
	Quota          int64  `json:"quota"`
	FileSize       int64  `json:"file_size"`
	CircuitIDs     bool   `json:"circuit_ids,omitempty"` // tor tells the intake onion's circuits apart
	Circuits       int64  `json:"circuits,omitempty"`    // circuits the per-circuit limits have seen`
	Updated        string `json:"updated"`
}

func saveStatus(dir string, s *statusInfo) {
	b, _ := json.MarshalIndent(s, "", "  ")
	p := filepath.Join(dir, StatusFile)
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, p)
	}
}

// onionAddresses reads the recorded onion addresses, for a relay that is
// not running.
func onionAddresses(dir string) (intake, handler string) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, onionDir, name+".hostname"))
		if err != nil {
			return ""
		}
		return "http://" + string(bytes.TrimSpace(b))
	}
	return read(intakeName), read(handlersName)
}

// limitMemory gives the Go runtime the relay's memory bound (§10.9 of
// protocol.md) as its soft limit, so garbage is collected before the
// process grows past it, unless GOMEMLIMIT says otherwise.
func limitMemory(srv *relay.Server, conns int) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(srv.MemoryBound(conns))
	}
}
