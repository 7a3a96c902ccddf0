package cli

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/relay/client"
)

// trustedManifest is desk's manifest from the relay, only if it verifies
// and is signed by the key this machine remembers for that relay and desk
// (known_desks.json); nil otherwise. It never trusts on first contact,
// records nothing and says nothing: it only lets pull name handlers.
func (e *env) trustedManifest(c *client.Client, relay, desk string) *crypto.Manifest {
	_, known, err := e.knownDesks()
	if err != nil {
		return nil
	}
	rec, ok := known[knownDeskKey(relay, desk)]
	if !ok {
		return nil
	}
	raw, err := c.Manifest(e.ctx, desk)
	if err != nil {
		return nil
	}
	m, key, err := crypto.OpenManifest(raw, nil)
	if err != nil || m.Desk != desk || base64.RawURLEncoding.EncodeToString(key) != rec.Key || m.Serial < rec.Serial {
		return nil
	}
	return m
}

// waitingNames names the handlers whose keys the relay says have yet to
// fetch a case: by their name in the trusted manifest m when it lists the
// key, else by the key's fingerprint. A name is the manifest's word; that
// these handlers have not fetched it is only the relay's.
func waitingNames(m *crypto.Manifest, keys []string) []string {
	var out []string
	for _, k := range keys {
		if m != nil {
			if c := m.Handler(k); c != nil {
				out = append(out, clean(c.Name, false))
				continue
			}
		}
		if b, err := base64.RawURLEncoding.DecodeString(k); err == nil && len(b) == ed25519.PublicKeySize {
			out = append(out, "the handler with key "+crypto.KeyFingerprint(ed25519.PublicKey(b)))
		} else {
			out = append(out, "a key the relay names oddly")
		}
	}
	return out
}

// pullWaiting is one pulled case the relay keeps for other handlers.
type pullWaiting struct {
	ID     string   `json:"id"`
	Desk   string   `json:"desk"`
	Others []string `json:"waiting_for"`
	Keys   []string `json:"waiting_keys"`
}

// namePending resolves res.Waiting against the desks' trusted manifests,
// fetching each desk's once.
func (e *env) namePending(c *client.Client, relay string, res *handler.PullResult) []pullWaiting {
	manifests := map[string]*crypto.Manifest{}
	var out []pullWaiting
	for _, w := range res.Waiting {
		m, ok := manifests[w.Desk]
		if !ok {
			m = e.trustedManifest(c, relay, w.Desk)
			manifests[w.Desk] = m
		}
		out = append(out, pullWaiting{ID: w.ID, Desk: w.Desk, Others: waitingNames(m, w.Keys), Keys: w.Keys})
	}
	return out
}

// printPending says, for each pulled case the relay keeps, who else has
// yet to fetch it.
func (e *env) printPending(pending []pullWaiting) {
	for _, p := range pending {
		fmt.Fprintf(e.stderr, "case %s: the relay keeps it for %d other handler(s) who have yet to fetch it: %s\n",
			p.ID[:12], len(p.Others), strings.Join(p.Others, ", "))
	}
	if len(pending) > 0 {
		fmt.Fprintln(e.stderr, "note: who has fetched a case is the relay's word; names come from the desk's manifest as this machine trusts it")
	}
}
