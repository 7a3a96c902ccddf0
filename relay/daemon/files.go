package daemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/store"
)

// Files of the data directory besides the spool (store.FileName).
const (
	// StatusFile is written by a serving relay every 5 seconds, so that
	// 'amana-relay status' can report on it while the spool is locked.
	StatusFile = "status.json"
	// ControlSocket is the Unix socket (mode 0600) a serving relay answers
	// backups on: see DialControl.
	ControlSocket = "control.sock"
	// TorDir is the launched tor's data directory.
	TorDir = "tor"
	// OnionDir holds the onion services' keys and their addresses.
	OnionDir = "onion"
)

// The relay's two onion services, as their files in OnionDir are named.
const (
	IntakeOnion  = "intake"
	HandlerOnion = "handler"
)

// KeyFile is the path, relative to the data directory and slash-separated,
// of an onion service's persistent key.
func KeyFile(service string) string { return OnionDir + "/" + service + ".key" }

// HostnameFile is the path, relative to the data directory and
// slash-separated, of the file that records an onion service's address.
func HostnameFile(service string) string { return OnionDir + "/" + service + ".hostname" }

// OnionAddresses reads the recorded onion addresses (http://….onion) in the
// data directory dir, for a relay that is not running. A missing one is "".
func OnionAddresses(dir string) (intake, handler string) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, HostnameFile(name)))
		if err != nil {
			return ""
		}
		return "http://" + string(bytes.TrimSpace(b))
	}
	return read(IntakeOnion), read(HandlerOnion)
}

// SettingAdmin is the spool setting that pins the desk admin's card.
const SettingAdmin = "admin_card"

// LoadAdmin reads the pinned admin card from the open spool of the data
// directory dir. It fails with a *NotInitialisedError when none is pinned.
func LoadAdmin(sp *store.Spool, dir string) (*crypto.Card, error) {
	raw, err := sp.Setting(SettingAdmin)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, &NotInitialisedError{Dir: dir}
	}
	c, err := crypto.ParseCard(string(raw))
	if err != nil {
		return nil, fmt.Errorf("stored admin card: %w", err)
	}
	return c, nil
}
