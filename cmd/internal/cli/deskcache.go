package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// A handler's machine keeps the last manifest of each desk it verified
// (against the key remembered in known_desks.json, or on first contact),
// in <home>/desks/, so that 'amana show' can name the handler who signed a
// reply without reaching the relay. The copy has the same standing as
// known_desks.json beside it: what this machine verified, kept 0600.

func (e *env) deskFile(relay, desk string) string {
	sum := sha256.Sum256([]byte(strings.TrimRight(relay, "/") + " " + desk))
	return filepath.Join(e.home, "desks", hex.EncodeToString(sum[:16])+".json")
}

// keepDesk saves a verified manifest of desk on relay.
func (e *env) keepDesk(relay string, m *crypto.Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := e.deskFile(relay, m.Desk)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return cases.WriteFileSync(path, b)
}

// keptDesk is the manifest of desk on relay this machine last verified,
// or nil.
func (e *env) keptDesk(relay, desk string) *crypto.Manifest {
	b, err := os.ReadFile(e.deskFile(relay, desk))
	if err != nil {
		return nil
	}
	var m crypto.Manifest
	if json.Unmarshal(b, &m) != nil || m.Normalize() != nil || m.Desk != desk {
		return nil
	}
	return &m
}

// keepDesks fetches and verifies, as reply does, the manifest of each desk
// whose replies were pulled now, and keeps it for 'amana show'. A desk
// that does not verify is said, and the pull goes on.
func (e *env) keepDesks(c *client.Client, st *cases.Store, relay string, pulled []string) {
	seen := map[string]bool{}
	for _, id := range pulled {
		m, err := st.Meta(id)
		if err != nil || m.Kind != api.KindReply || seen[m.Desk] || !crypto.ValidName(m.Desk) {
			continue
		}
		seen[m.Desk] = true
		man, remember, err := e.fetchDesk(c, relay, m.Desk, "", allowFirstContact, recordUnpinned)
		if err == nil {
			err = remember()
		}
		if err == nil {
			err = e.keepDesk(relay, man)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "amana: note: the manifest of desk %q was not kept (%s): 'amana show' names the handlers of its replies by key only\n",
				clean(m.Desk, false), clean(err.Error(), false))
		}
	}
}
