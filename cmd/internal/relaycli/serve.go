package relaycli

import (
	"cmp"
	"log"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
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
	diskReserve   string
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
	o.addFlags(cmd)
	return cmd
}

func (o *serveOptions) addFlags(cmd *cobra.Command) {
	dataFlag(cmd, &o.data)
	f := cmd.Flags()
	f.BoolVar(&o.noTor, "no-tor", false, "serve on --listen (loopback) instead of onion services")
	f.StringVar(&o.listen, "listen", daemon.DefaultListen, "with --no-tor: loopback address and port to listen on")
	f.StringVar(&o.torPath, "tor-path", "", "tor binary to start (default: tor on PATH)")
	f.StringVar(&o.torControl, "tor-control", "", "attach to a running tor at this control address (cookie authentication) instead of starting one")
	f.StringVar(&o.torrc, "torrc", "", "file of extra torrc lines for the tor the relay starts (bridges, test networks)")
	f.BoolVar(&o.pow, "pow", true, "turn on tor's proof-of-work defence on the intake onion where tor supports it")
	f.IntVar(&o.powRate, "pow-rate", daemon.DefaultPoWRate, "proof of work: introduction requests per second let through once the queue fills")
	f.IntVar(&o.powBurst, "pow-burst", daemon.DefaultPoWBurst, "proof of work: requests let through at once")
	f.DurationVar(&o.bootstrapWait, "bootstrap-timeout", daemon.DefaultBootstrapTimeout, "how long to wait for tor to connect")
	f.DurationVar(&o.publishWait, "publish-timeout", daemon.DefaultPublishTimeout, "how long to wait for the onion services' descriptors to be published")
	f.StringVar(&o.quota, "quota", ui.SizeFlag(store.DefaultQuota), "most bytes the spool holds: stored submissions and the bytes of unfinished uploads")
	f.StringVar(&o.maxSubmission, "max-submission", ui.SizeFlag(relay.DefaultMaxSubmission), "largest submission accepted, whatever a desk allows")
	f.StringVar(&o.uploadTTL, "upload-ttl", ui.DurationFlag(store.DefaultUploadTTL), "how long an unfinished upload is kept after its last piece")
	f.StringVar(&o.coarse, "time-granularity", ui.DurationFlag(store.DefaultCoarse), "granularity of the times the spool keeps")
	f.DurationVar(&o.sweepEvery, "sweep-every", daemon.DefaultSweepEvery, "how often expired submissions and uploads are deleted")
	f.BoolVar(&o.requireClient, "require-client-encryption", false, "turn off the no-JavaScript form, where the relay encrypts a report in memory; accept only reports encrypted by the submitter's browser or tool")
	f.StringVar(&o.diskReserve, "disk-reserve", ui.SizeFlag(store.DefaultDiskReserve), "free space submissions leave on the spool's disk for acknowledgements, deletions and sweeps (0: none)")
	f.StringVar(&o.maxFile, "max-spool-file", "", "cap the spool file at this size, as a full disk would (default: no cap)")
	f.StringVar(&o.deskQuota, "desk-quota", "", "most bytes one desk may hold (default: 80% of --quota)")
	f.IntVar(&o.maxBodies, "max-concurrent-bodies", relay.DefaultMaxConcurrentBodies, "submission bodies read at once; more wait, then get 503 busy")
	f.StringVar(&o.bodyMemory, "max-body-memory", ui.SizeFlag(relay.DefaultMaxBodyMemory), "memory the intake side's request bodies may hold at once, reserved before a body is read; more wait, then get 503 busy (must hold one --max-form-size post)")
	f.IntVar(&o.circuitCreate, "circuit-create-rate", relay.DefaultCircuitCreateRate, "new submissions and uploads one Tor circuit may start per minute, burst twice that (429 busy past it; needs the relay's own tor; 0: no limit)")
	f.IntVar(&o.circuitLookup, "circuit-lookup-rate", relay.DefaultCircuitLookupRate, "mailbox lookups one Tor circuit may make per minute, burst twice that (0: no limit)")
	f.StringVar(&o.obFrontend, "onionbalance-frontend", "", "publish the intake onion as an Onionbalance instance of this frontend onion address, so that several relays serve one address (see docs/operator.md)")
	f.StringVar(&o.metrics, "metrics", "", "serve /health and Prometheus /metrics on this loopback address, like 127.0.0.1:9464 (figures that move with submissions change once per --time-granularity)")
	f.StringVar(&o.notifyCommand, "notify-command", "", "run this program on a fixed schedule, whether or not anything waits, with the number of submissions waiting in $AMANA_WAITING and on its standard input")
	f.DurationVar(&o.notifyEvery, "notify-every", daemon.DefaultNotifyEvery, "the schedule of --notify-command: at every multiple of this since midnight UTC")
	f.Int64Var(&o.minBodyRate, "min-body-rate", relay.DefaultMinBodyRate, "fewest bytes a second a request body must bring, averaged over each minute; slower ones get 408 timeout (0: no floor)")
	f.IntVar(&o.createRate, "create-rate", relay.DefaultCreateRate, "new submissions and uploads per second across all clients (429 busy past it)")
	f.IntVar(&o.createBurst, "create-burst", relay.DefaultCreateBurst, "burst allowed above --create-rate")
	f.IntVar(&o.maxConns, "max-connections", daemon.DefaultMaxConns, "open connections per listener; at the cap the longest-idle one is closed, or new ones wait to be accepted")
	f.IntVar(&o.maxStreams, "max-streams-per-circuit", daemon.DefaultMaxStreams, "concurrent streams tor lets one client circuit open to the intake onion (tor closes circuits that try more)")
	f.StringVar(&o.maxForm, "max-form-size", ui.SizeFlag(relay.DefaultMaxFormBytes), "largest no-JavaScript form post or self-encrypted file sent from a page (the relay holds it in memory)")
}

// runServe checks the flags and serves the relay until e.ctx ends.
func runServe(e *env, o *serveOptions) error {
	cfg, err := o.config()
	if err != nil {
		return err
	}
	cfg.Version = ui.Version()
	cfg.Logf = log.New(e.stderr, "amana-relay: ", 0).Printf
	cfg.Announce = log.New(e.stdout, "amana-relay: ", 0).Printf
	return daemon.Run(e.ctx, *cfg)
}

// config checks the flags and turns them into the daemon's configuration.
// What the daemon itself refuses (a port in use, a spool not initialised)
// comes back from daemon.Run, and classify explains it.
func (o *serveOptions) config() (*daemon.Config, error) {
	if err := needData(o.data); err != nil {
		return nil, err
	}
	if o.noTor && !daemon.IsLoopback(o.listen) {
		return nil, ui.Fail(ui.ExitUsage, "listen on 127.0.0.1 and let Tor (or a reverse proxy you control) forward to it", nil,
			"refusing to listen on %s: the relay listens on loopback only", o.listen)
	}
	opts, maxSub, err := o.storeOptions()
	if err != nil {
		return nil, err
	}
	if o.maxConns < 1 || o.maxBodies < 1 || o.createRate < 1 || o.createBurst < 1 || o.maxStreams < 0 || o.minBodyRate < 0 || o.circuitCreate < 0 || o.circuitLookup < 0 {
		return nil, ui.Fail(ui.ExitUsage, "use positive numbers", nil, "invalid limit")
	}
	maxForm, err := ui.ParseSize(o.maxForm)
	if err != nil || maxForm < 1<<20 {
		return nil, ui.Fail(ui.ExitUsage, "use a size of at least 1MiB, like "+ui.SizeFlag(relay.DefaultMaxFormBytes), err, "invalid --max-form-size")
	}
	bodyMemory, err := ui.ParseSize(o.bodyMemory)
	if err != nil || bodyMemory < 1<<20 {
		return nil, ui.Fail(ui.ExitUsage, "use a size of at least 1MiB, like "+ui.SizeFlag(relay.DefaultMaxBodyMemory), err, "invalid --max-body-memory")
	}
	if o.metrics != "" {
		if err := checkMetricsAddr(o.metrics); err != nil {
			return nil, err
		}
	}
	if o.notifyCommand != "" && o.notifyEvery < time.Minute {
		return nil, ui.Fail(ui.ExitUsage, "use at least 1m; "+ui.DurationFlag(daemon.DefaultNotifyEvery)+" is the default", nil, "invalid --notify-every")
	}
	return &daemon.Config{
		DataDir:              o.data,
		NoTor:                o.noTor,
		Listen:               o.listen,
		TorPath:              o.torPath,
		TorControl:           o.torControl,
		Torrc:                o.torrc,
		BootstrapTimeout:     o.bootstrapWait,
		PublishTimeout:       o.publishWait,
		NoPoW:                !o.pow,
		PoW:                  &onion.PoW{Rate: o.powRate, Burst: o.powBurst},
		MaxStreams:           cmp.Or(o.maxStreams, -1),
		OnionbalanceFrontend: o.obFrontend,
		Store:                *opts,
		Relay: relay.Config{
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
		},
		MaxConns:      o.maxConns,
		SweepEvery:    o.sweepEvery,
		Metrics:       o.metrics,
		NotifyCommand: o.notifyCommand,
		NotifyEvery:   o.notifyEvery,
	}, nil
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
		return nil, 0, ui.Fail(ui.ExitUsage, "use at least 1m; "+ui.DurationFlag(store.DefaultCoarse)+" is the default", err, "invalid --time-granularity")
	}
	if o.maxFile != "" {
		n, err := ui.ParseSize(o.maxFile)
		if err != nil || n < 1<<20 {
			return nil, 0, ui.Fail(ui.ExitUsage, "use at least 1MiB", err, "invalid --max-spool-file")
		}
		opts.MaxFileSize = int(n)
	}
	if n, err := ui.ParseSize(o.diskReserve); err != nil {
		return nil, 0, ui.Fail(ui.ExitUsage, "", err, "invalid --disk-reserve")
	} else if n == 0 {
		opts.DiskReserve = -1
	} else {
		opts.DiskReserve = n
	}
	if o.deskQuota != "" {
		if opts.DeskQuota, err = ui.ParseSize(o.deskQuota); err != nil {
			return nil, 0, ui.Fail(ui.ExitUsage, "", err, "invalid --desk-quota")
		}
	}
	if o.sweepEvery < time.Minute {
		return nil, 0, ui.Fail(ui.ExitUsage, "use at least 1m; "+ui.DurationFlag(daemon.DefaultSweepEvery)+" is the default", nil, "invalid --sweep-every %v", o.sweepEvery)
	}
	return opts, maxSub, nil
}

// checkMetricsAddr refuses a --metrics address that is not a loopback IP
// address.
func checkMetricsAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return ui.Fail(ui.ExitUsage, "give a loopback address like 127.0.0.1:9464, and let Prometheus reach it over SSH or a tunnel", err,
			"refusing to serve metrics on %q: metrics are served on loopback only", addr)
	}
	return nil
}
