package tornet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// makeKeys creates a's data directory, its v3 authority keys with
// tor-gencert, and its relay keys, and records both fingerprints.
func (n *Network) makeKeys(ctx context.Context, gencert string, a *authority) error {
	keys := filepath.Join(a.dataDir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return fmt.Errorf("tornet: %w", err)
	}
	cert := filepath.Join(keys, "authority_certificate")
	gen := exec.CommandContext(ctx, gencert, "--create-identity-key", "--passphrase-fd", "0", "-m", "12",
		"-a", fmt.Sprintf("127.0.0.1:%d", a.dirPort),
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", cert)
	gen.Stdin = strings.NewReader("\n") // an empty passphrase
	gen.SysProcAttr = sysProcAttr()
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("tornet: tor-gencert for %s: %w\n%s", a.name, err, out)
	}
	v3, err := certFingerprint(cert)
	if err != nil {
		return fmt.Errorf("tornet: %s: %w", a.name, err)
	}
	a.v3ident = v3

	list := exec.CommandContext(ctx, n.torPath, "--ignore-missing-torrc", "-f", filepath.Join(a.dataDir, "none"),
		"--defaults-torrc", n.empty, "--DataDirectory", a.dataDir, "--GeoIPFile", n.empty, "--GeoIPv6File", n.empty,
		"--Nickname", a.name, "--ORPort", "1", "--list-fingerprint", "--quiet")
	list.SysProcAttr = sysProcAttr()
	var stderr strings.Builder
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		return fmt.Errorf("tornet: tor --list-fingerprint for %s: %w\n%s%s", a.name, err, out, stderr.String())
	}
	fp, err := listedFingerprint(string(out))
	if err != nil {
		return fmt.Errorf("tornet: tor --list-fingerprint for %s: %w", a.name, err)
	}
	a.fingerprint = fp
	return nil
}

var hexFingerprint = regexp.MustCompile(`^[0-9A-F]{40}$`)

// certFingerprint returns the fingerprint line of the authority certificate
// at path: the authority's v3ident.
func certFingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fp, ok := strings.CutPrefix(sc.Text(), "fingerprint "); ok {
			fp = strings.TrimSpace(fp)
			if !hexFingerprint.MatchString(fp) {
				return "", fmt.Errorf("authority certificate has a malformed fingerprint %q", fp)
			}
			return fp, nil
		}
	}
	return "", errors.New("authority certificate has no fingerprint line")
}

// listedFingerprint parses the output of tor --list-fingerprint: its last
// line is the nickname followed by the fingerprint in groups of four.
func listedFingerprint(out string) (string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) < 2 {
		return "", fmt.Errorf("unexpected output %q", out)
	}
	fp := strings.Join(fields[1:], "")
	if !hexFingerprint.MatchString(fp) {
		return "", fmt.Errorf("unexpected output %q", out)
	}
	return fp, nil
}
