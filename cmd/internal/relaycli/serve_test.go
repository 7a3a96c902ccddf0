package relaycli

import (
	"errors"
	"testing"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

// serveConfig parses serve's flags and returns the daemon's configuration.
func serveConfig(t *testing.T, args ...string) (*daemon.Config, error) {
	t.Helper()
	var o serveOptions
	cmd := &cobra.Command{}
	o.addFlags(cmd)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	return o.config()
}

// TestServeDefaults: serve's flags left alone give the relay, the spool
// and the daemon their own defaults.
func TestServeDefaults(t *testing.T) {
	cfg, err := serveConfig(t, "--data", "rd")
	if err != nil {
		t.Fatal(err)
	}
	r, s := cfg.Relay, cfg.Store
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"quota", s.Quota, int64(store.DefaultQuota)},
		{"upload TTL", s.UploadTTL, store.DefaultUploadTTL},
		{"granularity", s.Coarse, store.DefaultCoarse},
		{"max submission", r.MaxSubmission, int64(relay.DefaultMaxSubmission)},
		{"max form", r.MaxFormBytes, int64(relay.DefaultMaxFormBytes)},
		{"body memory", r.MaxBodyMemory, int64(relay.DefaultMaxBodyMemory)},
		{"bodies", r.MaxConcurrentBodies, relay.DefaultMaxConcurrentBodies},
		{"min body rate", r.MinBodyRate, int64(relay.DefaultMinBodyRate)},
		{"create rate", r.CreateRate, relay.DefaultCreateRate},
		{"create burst", r.CreateBurst, relay.DefaultCreateBurst},
		{"circuit create rate", r.CircuitCreateRate, relay.DefaultCircuitCreateRate},
		{"circuit lookup rate", r.CircuitLookupRate, relay.DefaultCircuitLookupRate},
		{"listen", cfg.Listen, daemon.DefaultListen},
		{"max connections", cfg.MaxConns, daemon.DefaultMaxConns},
		{"max streams", cfg.MaxStreams, daemon.DefaultMaxStreams},
		{"sweep", cfg.SweepEvery, daemon.DefaultSweepEvery},
		{"pow rate", cfg.PoW.Rate, daemon.DefaultPoWRate},
		{"pow burst", cfg.PoW.Burst, daemon.DefaultPoWBurst},
		{"pow off", cfg.NoPoW, false},
		{"bootstrap", cfg.BootstrapTimeout, daemon.DefaultBootstrapTimeout},
		{"publish", cfg.PublishTimeout, daemon.DefaultPublishTimeout},
		{"notify every", cfg.NotifyEvery, daemon.DefaultNotifyEvery},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v (%T), want %v (%T)", c.name, c.got, c.got, c.want, c.want)
		}
	}
}

// TestServeZeroLimits: a limit of 0 that means "none" on the command line
// reaches the relay and the daemon as "none", not as "the default".
func TestServeZeroLimits(t *testing.T) {
	cfg, err := serveConfig(t, "--data", "rd", "--min-body-rate", "0", "--circuit-create-rate", "0", "--circuit-lookup-rate", "0",
		"--max-streams-per-circuit", "0", "--pow=false", "--pow-rate", "0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Relay.MinBodyRate >= 0 || cfg.Relay.CircuitCreateRate >= 0 || cfg.Relay.CircuitLookupRate >= 0 || cfg.MaxStreams >= 0 {
		t.Errorf("zero limits became %+v, max streams %d", cfg.Relay, cfg.MaxStreams)
	}
	if !cfg.NoPoW || cfg.PoW.Rate != 0 {
		t.Errorf("--pow=false --pow-rate 0 became NoPoW %v, %+v", cfg.NoPoW, cfg.PoW)
	}
}

func TestServeRefusesMetricsAddr(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:9464", "localhost:0", "nonsense"} {
		_, err := serveConfig(t, "--data", "rd", "--metrics", addr)
		var ue *ui.Error
		if !errors.As(err, &ue) || ue.Code != ui.ExitUsage {
			t.Errorf("--metrics %q: %v", addr, err)
		}
	}
	if _, err := serveConfig(t, "--data", "rd", "--metrics", "127.0.0.1:0"); err != nil {
		t.Errorf("--metrics 127.0.0.1:0: %v", err)
	}
}
