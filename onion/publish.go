package onion

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cretz/bine/control"
)

// Service is an onion service to publish.
type Service struct {
	// Name is for messages and the key file: "intake", "handler".
	Name string
	// KeyFile holds the service's persistent key (tor's "ED25519-V3:…"
	// form), mode 0600. If it does not exist, tor makes a key and it is
	// written there, so the address stays the same across restarts.
	KeyFile string
	// Target is the local address tor forwards to (127.0.0.1:port).
	Target string
	// ClientAuth lists x25519 public keys allowed to reach the service (v3
	// client authorization). Empty means a public service.
	ClientAuth [][32]byte
	// PoW turns on the proof-of-work defence, where tor supports it.
	PoW *PoW
	// MaxStreams caps the concurrent streams one client circuit may open;
	// tor closes a circuit that tries more. Zero means no cap.
	MaxStreams int
	// OnionbalanceFrontend, when set (a 56-character address, without
	// ".onion"), publishes the service as an Onionbalance instance of that
	// frontend: tor then also accepts clients who reached it through the
	// frontend's descriptor. Only a tor this process launched can do it,
	// and not with client authorization.
	OnionbalanceFrontend string
	// ExportCircuitID makes tor begin every connection to Target with a
	// PROXY protocol line naming the client's circuit
	// (HiddenServiceExportCircuitID haproxy), so that the server can tell
	// circuits apart. Only a tor this process launched can do it.
	ExportCircuitID bool
}

// PoW configures tor's proof-of-work DoS defence of an onion service.
type PoW struct {
	Rate  int // requests tor lets through per second once the queue fills
	Burst int // requests it lets through at once
}

// Published is an onion service that is up.
type Published struct {
	Name    string
	ID      string // the 56-character onion address, without ".onion"
	Clients int    // client-authorization keys configured
	PoW     bool   // whether the proof-of-work defence is on
}

// URL is the service's http:// URL.
func (p *Published) URL() string { return "http://" + p.ID + ".onion" }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Publish adds the services to tor, all at once, and waits until tor has
// uploaded each one's descriptor. A service whose proof-of-work option tor
// refuses is added again without it, and says so in Published.PoW.
func (t *Tor) Publish(ctx context.Context, timeout time.Duration, svcs ...Service) ([]*Published, error) {
	// A second control connection listens for HS_DESC events, so waiting
	// never competes with the commands sent on the first.
	events, err := t.listen("HS_DESC")
	if err != nil {
		return nil, err
	}
	defer events.Close()
	var out []*Published
	for _, s := range svcs {
		p, err := t.add(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	want := map[string]bool{}
	for _, p := range out {
		want[p.ID] = true
	}
	deadline := time.Now().Add(timeout)
	for len(want) > 0 {
		events.SetReadDeadline(deadline)
		line, err := events.ReadLine()
		if err != nil {
			var names []string
			for _, p := range out {
				if want[p.ID] {
					names = append(names, p.Name)
				}
			}
			return nil, fail(KindPublish, "tor may not be connected well: check its log and the network, then start again", err,
				"tor did not publish the %s onion service(s) within %v", strings.Join(names, " and "), timeout)
		}
		// 650 HS_DESC UPLOADED <address> <auth> <hsdir> ...
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "650" && f[1] == "HS_DESC" && f[2] == "UPLOADED" && want[f[3]] {
			delete(want, f[3])
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// Unpublish removes a service this connection added.
func (t *Tor) Unpublish(id string) error {
	_, err := t.request("DEL_ONION %s", id)
	if err != nil {
		return fail(KindControl, "", err, "removing onion service")
	}
	return nil
}

func (t *Tor) add(s Service) (*Published, error) {
	if s.OnionbalanceFrontend != "" || s.ExportCircuitID {
		return t.addConfigured(s)
	}
	key, fresh, err := loadKey(s.KeyFile)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("ADD_ONION ")
	if fresh {
		b.WriteString("NEW:ED25519-V3")
	} else {
		b.WriteString(key)
	}
	switch {
	case len(s.ClientAuth) > 0 && s.MaxStreams > 0:
		b.WriteString(" Flags=V3Auth,MaxStreamsCloseCircuit")
	case len(s.ClientAuth) > 0:
		b.WriteString(" Flags=V3Auth")
	case s.MaxStreams > 0:
		b.WriteString(" Flags=MaxStreamsCloseCircuit")
	}
	if s.MaxStreams > 0 {
		fmt.Fprintf(&b, " MaxStreams=%d", s.MaxStreams)
	}
	base := b.String()
	ports := fmt.Sprintf(" Port=80,%s", s.Target)
	var auth strings.Builder
	for _, k := range s.ClientAuth {
		fmt.Fprintf(&auth, " ClientAuthV3=%s", b32.EncodeToString(k[:]))
	}
	p := &Published{Name: s.Name, Clients: len(s.ClientAuth)}
	cmd := base + ports + auth.String()
	var resp *control.Response
	if s.PoW != nil {
		pow := fmt.Sprintf(" PoWDefensesEnabled=1 PoWQueueRate=%d PoWQueueBurst=%d", s.PoW.Rate, s.PoW.Burst)
		resp, err = t.request("%s", base+pow+ports+auth.String())
		if err == nil {
			p.PoW = true
		} else {
			t.opts.Logf("tor refused proof of work for the %s onion (%v); publishing without it", s.Name, err)
		}
	}
	if !p.PoW {
		resp, err = t.request("%s", cmd)
	}
	if err != nil {
		return nil, fail(KindPublish, "check that the tor in use is 0.4.6 or newer", err, "tor refused the %s onion service", s.Name)
	}
	for _, l := range resp.DataWithReply() {
		if v, ok := strings.CutPrefix(l, "ServiceID="); ok {
			p.ID = v
		}
		if v, ok := strings.CutPrefix(l, "PrivateKey="); ok && fresh {
			if err := saveKey(s.KeyFile, v); err != nil {
				t.Unpublish(p.ID)
				return nil, err
			}
		}
	}
	if len(p.ID) != 56 {
		return nil, fail(KindPublish, "", nil, "tor did not return an onion address for the %s service", s.Name)
	}
	return p, nil
}

// loadKey reads a service key file, or reports that there is none yet.
func loadKey(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading onion key: %w", err)
	}
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		return "", false, fail(KindKey, "chmod 600 "+path, nil, "onion key %s is readable by others (mode %04o)", path, fi.Mode().Perm())
	}
	key := strings.TrimSpace(string(b))
	raw, ok := strings.CutPrefix(key, "ED25519-V3:")
	if d, err := base64.StdEncoding.DecodeString(raw); !ok || err != nil || len(d) != 64 {
		return "", false, fmt.Errorf("onion key %s is not a tor ED25519-V3 key", path)
	}
	return key, false, nil
}

func saveKey(path, key string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving onion key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("saving onion key: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("saving onion key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving onion key: %w", err)
	}
	return f.Close()
}

// eventConn is a control connection that only receives events.
type eventConn struct {
	conn *textproto.Conn
	raw  interface{ SetReadDeadline(time.Time) error }
}

func (e *eventConn) ReadLine() (string, error)   { return e.conn.ReadLine() }
func (e *eventConn) SetReadDeadline(t time.Time) { e.raw.SetReadDeadline(t) }
func (e *eventConn) Close() error                { return e.conn.Close() }

func (t *Tor) listen(events ...string) (*eventConn, error) {
	nc, err := dialControl(t.ctlAddr)
	if err != nil {
		return nil, fail(KindControl, "", err, "opening a second control connection")
	}
	tc := textproto.NewConn(nc)
	c := control.NewConn(tc)
	if err := c.Authenticate(""); err != nil {
		tc.Close()
		return nil, fail(KindControl, "", err, "authenticating the second control connection")
	}
	if _, err := c.SendRequest("SETEVENTS %s", strings.Join(events, " ")); err != nil {
		tc.Close()
		return nil, fail(KindControl, "", err, "subscribing to tor events")
	}
	return &eventConn{conn: tc, raw: nc}, nil
}
