package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
)

// The defaults of Config's zero values. The relay's own limits default in
// package relay, the spool's in package store.
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultMaxConns         = 512
	DefaultMaxStreams       = 16
	DefaultSweepEvery       = 10 * time.Minute
	DefaultPoWRate          = 250
	DefaultPoWBurst         = 2500
	DefaultBootstrapTimeout = 3 * time.Minute
	DefaultPublishTimeout   = 3 * time.Minute
	DefaultNotifyEvery      = 6 * time.Hour
)

// Config configures Run. Every zero value means the documented default.
type Config struct {
	// DataDir is the relay's data directory: the spool, whose pinned admin
	// card Run needs (SettingAdmin), the status file, the control socket,
	// tor's data and the onion keys. Required.
	DataDir string

	// NoTor serves the whole API on Listen instead of on onion services.
	// Zero (false) means the intake and handler onions.
	NoTor bool
	// Listen is the loopback address to serve on with NoTor. Empty means
	// DefaultListen. Run refuses an address that is not loopback.
	Listen string

	// TorPath is the tor binary to launch. Empty means tor on PATH.
	TorPath string
	// TorControl attaches to a running tor at this control address, with
	// cookie authentication, instead of launching one. Empty means launch
	// one, with its data directory in DataDir/TorDir.
	TorControl string
	// Torrc is a file of extra torrc lines for a launched tor. Empty means
	// none.
	Torrc string
	// BootstrapTimeout bounds waiting for tor to connect. Zero means
	// DefaultBootstrapTimeout.
	BootstrapTimeout time.Duration
	// PublishTimeout bounds waiting for an onion service's descriptor to
	// be published. Zero means DefaultPublishTimeout.
	PublishTimeout time.Duration
	// NoPoW turns off tor's proof-of-work defence on the intake onion.
	// Zero (false) means it is on where the tor in use supports it.
	NoPoW bool
	// PoW is the defence's queue rate and burst. Nil means DefaultPoWRate
	// and DefaultPoWBurst.
	PoW *onion.PoW
	// MaxStreams caps the concurrent streams one client circuit may open to
	// the intake onion. Zero means DefaultMaxStreams; negative means no cap.
	MaxStreams int
	// OnionbalanceFrontend publishes the intake onion as an Onionbalance
	// instance of this frontend address. Empty means a standalone onion.
	OnionbalanceFrontend string

	// Store configures the spool, as store.Open documents.
	Store store.Options
	// Relay holds the relay's limits, as relay.New documents. Run sets its
	// Admin, Eventf and OnPublish itself, and ignores what they hold; a
	// zero MailboxTTL follows Store.MailboxTTL.
	Relay relay.Config
	// MaxConns caps the open connections of each listener. Zero means
	// DefaultMaxConns.
	MaxConns int
	// SweepEvery is how often expired submissions, uploads and mailboxes
	// are deleted. Zero means DefaultSweepEvery.
	SweepEvery time.Duration

	// Metrics serves /health and Prometheus /metrics on this loopback
	// address. Empty means no monitor listens.
	Metrics string
	// Version is the build's version, as amana_build_info gives it. Empty
	// gives an empty version.
	Version string
	// NotifyCommand is run at every multiple of NotifyEvery since midnight
	// UTC, with the number of submissions waiting. Empty means none.
	NotifyCommand string
	// NotifyEvery is NotifyCommand's schedule. Zero means
	// DefaultNotifyEvery.
	NotifyEvery time.Duration

	// Logf receives the relay's log: progress and operational events,
	// never a body, key, token or address. Nil discards it.
	Logf func(format string, args ...any)
	// Announce receives the lines that say where the relay can be reached
	// ("listening on http://127.0.0.1:8080", the onion addresses, the
	// metrics address), one call a line. Nil discards them.
	Announce func(format string, args ...any)
}

func (c *Config) fill() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.BootstrapTimeout == 0 {
		c.BootstrapTimeout = DefaultBootstrapTimeout
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.PoW == nil {
		c.PoW = &onion.PoW{Rate: DefaultPoWRate, Burst: DefaultPoWBurst}
	}
	switch {
	case c.MaxStreams == 0:
		c.MaxStreams = DefaultMaxStreams
	case c.MaxStreams < 0:
		c.MaxStreams = 0 // onion.Service's "no cap"
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = DefaultSweepEvery
	}
	if c.NotifyEvery == 0 {
		c.NotifyEvery = DefaultNotifyEvery
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Announce == nil {
		c.Announce = func(string, ...any) {}
	}
}

// check refuses what Run must never do, once fill has run. A program
// checks its flags first, with its own words; these are the last line.
func (c *Config) check() error {
	switch {
	case c.DataDir == "":
		return errors.New("no data directory given")
	case c.NoTor && !IsLoopback(c.Listen):
		return fmt.Errorf("refusing to listen on %s: the relay listens on loopback only", c.Listen)
	case c.Metrics != "" && !IsLoopback(c.Metrics):
		return fmt.Errorf("refusing to serve metrics on %q: metrics are served on loopback only", c.Metrics)
	case c.MaxConns < 1:
		return fmt.Errorf("invalid limit: %d connections per listener", c.MaxConns)
	case c.SweepEvery < 0:
		return fmt.Errorf("invalid sweep interval %v", c.SweepEvery)
	case c.NotifyCommand != "" && c.NotifyEvery < 0:
		return fmt.Errorf("invalid notification interval %v", c.NotifyEvery)
	}
	return nil
}

// exportsCircuits says whether tor tells the relay each intake
// connection's circuit: with the relay's own tor, always.
func (c *Config) exportsCircuits() bool { return !c.NoTor && c.TorControl == "" }

// ListenError is a loopback listener Run could not open, most often
// because the port is in use.
type ListenError struct {
	Addr    string
	Metrics bool // the monitor's listener (Config.Metrics), not the relay's
	Err     error
}

func (e *ListenError) Error() string { return fmt.Sprintf("cannot listen on %s: %v", e.Addr, e.Err) }

func (e *ListenError) Unwrap() error { return e.Err }

// NotInitialisedError is returned by Run and LoadAdmin when the spool in
// Dir pins no admin card: 'amana-relay init' has not run on it.
type NotInitialisedError struct {
	Dir string
}

func (e *NotInitialisedError) Error() string {
	return fmt.Sprintf("relay in %s is not initialised", e.Dir)
}
