package onion

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tor's file format for an onion service's secret key: a 32-byte header,
// then the 64-byte expanded Ed25519 key (the same bytes as "ED25519-V3:").
var secretKeyHeader = []byte("== ed25519v1-secret: type0 ==\x00\x00\x00")

// addConfigured publishes a public service with SETCONF rather than
// ADD_ONION, which cannot set HiddenServiceOnionbalanceInstance nor
// HiddenServiceExportCircuitID. The service lives in a directory of the
// launched tor's own: its key (converted from s.KeyFile, or made by tor and
// saved there) and, for an Onionbalance instance, an ob_config naming the
// frontend. SETCONF replaces every HiddenService* line, so one such
// service per tor.
func (t *Tor) addConfigured(s Service) (*Published, error) {
	if t.bt == nil || t.opts.DataDir == "" {
		return nil, fail(KindPublish, "publish it from a tor that this process starts, not from an attached one", nil,
			"the %s onion's settings (Onionbalance, circuit IDs) need the relay's own tor", s.Name).about(SettingOwnTor)
	}
	if len(s.ClientAuth) > 0 {
		return nil, fail(KindPublish, "", nil, "the %s onion has client authorization; only public onions are published this way", s.Name)
	}
	front := strings.TrimSuffix(strings.TrimPrefix(s.OnionbalanceFrontend, "http://"), ".onion")
	if s.OnionbalanceFrontend != "" && len(front) != 56 {
		return nil, fail(KindPublish, "give the frontend's 56-character onion address", nil, "invalid Onionbalance frontend %q", s.OnionbalanceFrontend)
	}
	key, fresh, err := loadKey(s.KeyFile)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(t.opts.DataDir, "onion-"+s.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("onion service directory: %w", err)
	}
	os.Remove(filepath.Join(dir, "hostname"))
	secret := filepath.Join(dir, "hs_ed25519_secret_key")
	if fresh {
		os.Remove(secret)
	} else {
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "ED25519-V3:"))
		if err := os.WriteFile(secret, append(append([]byte{}, secretKeyHeader...), raw...), 0o600); err != nil {
			return nil, fmt.Errorf("onion service key: %w", err)
		}
	}
	base := fmt.Sprintf("SETCONF HiddenServiceDir=%q HiddenServicePort=%q", dir, "80 "+s.Target)
	os.Remove(filepath.Join(dir, "ob_config"))
	if front != "" {
		if err := os.WriteFile(filepath.Join(dir, "ob_config"), []byte("MasterOnionAddress "+front+".onion\n"), 0o600); err != nil {
			return nil, fmt.Errorf("onionbalance config: %w", err)
		}
		base += " HiddenServiceOnionbalanceInstance=1"
	}
	if s.ExportCircuitID {
		base += " HiddenServiceExportCircuitID=haproxy"
	}
	if s.MaxStreams > 0 {
		base += fmt.Sprintf(" HiddenServiceMaxStreams=%d HiddenServiceMaxStreamsCloseCircuit=1", s.MaxStreams)
	}
	p := &Published{Name: s.Name}
	if s.PoW != nil {
		_, err = t.request("%s HiddenServicePoWDefensesEnabled=1 HiddenServicePoWQueueRate=%d HiddenServicePoWQueueBurst=%d", base, s.PoW.Rate, s.PoW.Burst)
		if err == nil {
			p.PoW = true
		} else {
			t.opts.Logf("tor refused proof of work for the %s onion (%v); publishing without it", s.Name, err)
		}
	}
	if !p.PoW {
		if _, err = t.request("%s", base); err != nil {
			return nil, fail(KindPublish, "check that the tor in use is 0.4.8 or newer", err, "tor refused the %s onion service", s.Name)
		}
	}
	// tor writes the address, and a key it made, as it takes the setting.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "hostname"))
		if err == nil {
			p.ID = strings.TrimSuffix(strings.TrimSpace(string(b)), ".onion")
			break
		}
		if time.Now().After(deadline) {
			return nil, fail(KindPublish, "", err, "tor wrote no address for the %s onion service", s.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fresh {
		b, err := os.ReadFile(secret)
		if err != nil || len(b) != len(secretKeyHeader)+64 || !bytes.HasPrefix(b, secretKeyHeader) {
			return nil, errors.Join(fmt.Errorf("reading the key tor made for the %s onion", s.Name), err)
		}
		if err := saveKey(s.KeyFile, "ED25519-V3:"+base64.StdEncoding.EncodeToString(b[len(secretKeyHeader):])); err != nil {
			return nil, err
		}
	}
	if len(p.ID) != 56 {
		return nil, fail(KindPublish, "", nil, "tor wrote an invalid address for the %s onion service", s.Name)
	}
	return p, nil
}
