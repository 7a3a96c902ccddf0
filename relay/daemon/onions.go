package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay"
)

// onionSet is the relay's two onion services and the tor behind them.
type onionSet struct {
	tor       *onion.Tor
	cfg       *Config
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
}

// startOnions starts or attaches to tor and publishes the intake onion,
// forwarding to intakeAddr, and the handler onion, forwarding to
// handlerAddr, and records their addresses in OnionDir.
func startOnions(ctx context.Context, cfg *Config, srv *relay.Server, admin *crypto.Card, intakeAddr, handlerAddr string) (*onionSet, error) {
	t, err := onion.Start(ctx, onion.Options{
		TorPath:          cfg.TorPath,
		DataDir:          filepath.Join(cfg.DataDir, TorDir),
		Control:          cfg.TorControl,
		Torrc:            cfg.Torrc,
		BootstrapTimeout: cfg.BootstrapTimeout,
		Logf:             cfg.Logf,
	})
	if err != nil {
		return nil, err
	}
	s := &onionSet{tor: t, cfg: cfg, logf: cfg.Logf, srv: srv, admin: admin, target: handlerAddr}
	s.keys = s.clientKeys()
	intake := onion.Service{Name: IntakeOnion, KeyFile: s.keyFile(IntakeOnion), Target: intakeAddr, MaxStreams: cfg.MaxStreams,
		OnionbalanceFrontend: cfg.OnionbalanceFrontend, ExportCircuitID: cfg.exportsCircuits()}
	if !cfg.NoPoW {
		intake.PoW = cfg.PoW
	}
	s.logf("publishing the intake and handler onion services (tor %s)", t.Version())
	pub, err := t.Publish(ctx, cfg.PublishTimeout, intake, s.handlerService(s.keys))
	if err != nil {
		t.Close()
		return nil, err
	}
	s.intake, s.hd = pub[0], pub[1]
	switch {
	case cfg.NoPoW:
		s.powWhy = "turned off with --pow=false"
	case !s.intake.PoW:
		s.powWhy = "tor " + t.Version() + " does not support it; tor 0.4.8 or newer with the pow module does"
	}
	for _, p := range pub {
		if err := os.WriteFile(filepath.Join(cfg.DataDir, HostnameFile(p.Name)), []byte(p.ID+".onion\n"), 0o600); err != nil {
			s.logf("cannot record the %s onion address: %v", p.Name, err)
		}
	}
	s.logf("both onion services are published")
	return s, nil
}

func (s *onionSet) keyFile(name string) string {
	return filepath.Join(s.cfg.DataDir, KeyFile(name))
}

func (s *onionSet) handler() *onion.Published {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hd
}

func (s *onionSet) handlerService(keys [][32]byte) onion.Service {
	return onion.Service{Name: HandlerOnion, KeyFile: s.keyFile(HandlerOnion), Target: s.target, ClientAuth: keys}
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
		pub, err := s.tor.Publish(context.Background(), s.cfg.PublishTimeout, s.handlerService(keys))
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

// describe puts the onions' and tor's state in st.
func (s *onionSet) describe(st *Status) {
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
