package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/onion"
	"github.com/amana-relay/amana/relay/client"
)

// torOptions choose how amana reaches .onion relays.
type torOptions struct {
	socks  string
	launch bool
	torrc  string
	path   string
}

func (o *torOptions) addFlags(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.socks, "tor-socks", "", "reach .onion relays through the tor SOCKS port at HOST:PORT (default: 127.0.0.1:9050, then Tor Browser's 127.0.0.1:9150)")
	pf.BoolVar(&o.launch, "tor-launch", false, "start a tor of amana's own (in --home) to reach .onion relays, with your client-authorization key")
	pf.StringVar(&o.torrc, "torrc", "", "with --tor-launch: a file of extra torrc lines (bridges, test networks)")
	pf.StringVar(&o.path, "tor-path", "", "with --tor-launch: the tor binary (default: tor on PATH)")
}

// relayClient returns a client for the relay at rawURL. For an onion
// address it goes through tor: amana's own (--tor-launch), given id's
// client-authorization key when id is not nil, or a running tor's SOCKS
// port. close releases what it started.
func (e *env) relayClient(rawURL string, id *crypto.Identity) (c *client.Client, close func(), err error) {
	close = func() {}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, close, fail(ExitUsage, "give --relay http://ADDRESS.onion (or http://127.0.0.1:PORT for a local relay)", err, "invalid relay URL %q", rawURL)
	}
	onionID, isOnion := onion.IsOnion(u.Host)
	viaTor := isOnion || (e.tor.launch || e.tor.socks != "") && !isLocal(u.Hostname())
	var hc *http.Client
	switch {
	case !viaTor:
	case e.tor.launch:
		if !e.quiet {
			fmt.Fprintln(e.stderr, "starting tor…")
		}
		t, err := onion.Start(e.ctx, onion.Options{
			TorPath: e.tor.path,
			DataDir: filepath.Join(e.home, "tor"),
			Torrc:   e.tor.torrc,
			Socks:   true,
		})
		if err != nil {
			return nil, close, err
		}
		close = func() { t.Close() }
		if id != nil && isOnion {
			if err := t.AddClientAuth(onionID, id.OnionAuthPrivate()); err != nil {
				close()
				return nil, func() {}, err
			}
		}
		socks, err := t.SocksAddr()
		if err != nil {
			close()
			return nil, func() {}, err
		}
		hc = onion.HTTPClient(socks)
	default:
		socks := e.tor.socks
		if socks == "" {
			if socks, err = onion.FindSocks("127.0.0.1:9050", "127.0.0.1:9150"); err != nil {
				return nil, close, err
			}
		}
		hc = onion.HTTPClient(socks)
	}
	c, err = client.New(rawURL, hc)
	if err != nil {
		close()
		return nil, func() {}, fail(ExitUsage, "give --relay http://ADDRESS.onion", err, "invalid relay URL")
	}
	if !viaTor && !isLocal(u.Hostname()) {
		fmt.Fprintf(e.stderr, "amana: warning: %s is not an onion address: the relay and the network can see this machine's address\n", clean(u.Host, false))
		fmt.Fprintf(e.stderr, "hint: pass --tor-socks or --tor-launch to go through Tor\n")
	}
	return c, close, nil
}

func isLocal(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

type onionAuthOptions struct {
	identity string
	relay    string
}

func newOnionAuth(e *env) *cobra.Command {
	var o onionAuthOptions
	cmd := &cobra.Command{
		Use:   "onion-auth -i KEY --relay http://HANDLER-ONION",
		Short: "print the client-authorization line that lets your own tor reach a handler onion",
		Long: `A relay's handler onion answers only tors that hold the client-authorization key of a
handler (or the admin) of one of its desks. 'amana pull --tor-launch' gives amana's
own tor your key by itself. To use a tor you run (or Tor Browser) instead, put the
line this prints into a file NAME.auth_private in that tor's ClientOnionAuthDir
(torrc: ClientOnionAuthDir /var/lib/tor/onion-auth), mode 0600, and reload tor.
The line is a secret: anyone holding it can reach the handler onion as you.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(o.relay)
			if err != nil {
				return fail(ExitUsage, "give --relay http://ADDRESS.onion", err, "invalid relay URL")
			}
			onionID, ok := onion.IsOnion(u.Host)
			if !ok {
				return fail(ExitUsage, "give the relay's handler onion, http://ADDRESS.onion", nil, "%q is not an onion address", u.Host)
			}
			id, err := e.loadIdentity(o.identity)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, onion.AuthPrivateLine(onionID, id.OnionAuthPrivate()))
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().StringVar(&o.relay, "relay", "", "the relay's handler onion URL (required)")
	cmd.MarkFlagRequired("identity")
	cmd.MarkFlagRequired("relay")
	return cmd
}
