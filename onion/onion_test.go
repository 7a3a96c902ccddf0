package onion

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBootstrap(t *testing.T) {
	for _, tc := range []struct {
		in       string
		progress int
		summary  string
	}{
		{`NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"`, 100, "Done"},
		{`NOTICE BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY="Handshaking with a relay" WARNING="x y"`, 14, "Handshaking with a relay"},
		{``, 0, ""},
	} {
		p, s := parseBootstrap(tc.in)
		if p != tc.progress || s != tc.summary {
			t.Errorf("parseBootstrap(%q) = %d %q", tc.in, p, s)
		}
	}
}

func TestIsOnion(t *testing.T) {
	id := strings.Repeat("a", 52) + "bcid"
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{id + ".onion", true},
		{strings.ToUpper(id) + ".ONION:80", true},
		{"www." + id + ".onion", true},
		{"short.onion", false},
		{"127.0.0.1:8080", false},
		{strings.Repeat("1", 56) + ".onion", false},
	} {
		if _, ok := IsOnion(tc.host); ok != tc.ok {
			t.Errorf("IsOnion(%q) = %v", tc.host, ok)
		}
	}
}

// fakeSocks answers one SOCKS5 CONNECT with code, then echoes.
func fakeSocks(t *testing.T, code byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 300)
				io.ReadFull(c, buf[:3])
				c.Write([]byte{5, 0})
				io.ReadFull(c, buf[:5])
				io.ReadFull(c, buf[:int(buf[4])+2])
				c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
				if code == 0 {
					io.Copy(c, c)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestDialerErrors(t *testing.T) {
	host := strings.Repeat("a", 56) + ".onion:80"
	for _, tc := range []struct {
		code byte
		kind string
	}{
		{0xF4, KindClientAuthMissing},
		{0xF5, KindClientAuthWrong},
		{0xF0, KindUnreachable},
		{0x01, KindUnreachable},
	} {
		d := &Dialer{Socks: fakeSocks(t, tc.code)}
		_, err := d.DialContext(context.Background(), "tcp", host)
		if !IsKind(err, tc.kind) {
			t.Errorf("code %#x: %v, want kind %s", tc.code, err, tc.kind)
		}
		var oe *Error
		if ok := asError(err, &oe); !ok || oe.Hint == "" {
			t.Errorf("code %#x: no hint", tc.code)
		}
	}
	d := &Dialer{Socks: fakeSocks(t, 0)}
	c, err := d.DialContext(context.Background(), "tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	b := make([]byte, 4)
	io.ReadFull(c, b)
	if string(b) != "ping" {
		t.Fatalf("tunnel echoed %q", b)
	}
	c.Close()
	if _, err := (&Dialer{Socks: "127.0.0.1:1"}).DialContext(context.Background(), "tcp", host); !IsKind(err, KindUnreachable) {
		t.Errorf("no SOCKS port: %v", err)
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "onion", "intake.key")
	if _, fresh, err := loadKey(path); err != nil || !fresh {
		t.Fatalf("missing key: fresh %v, %v", fresh, err)
	}
	key := "ED25519-V3:" + strings.Repeat("A", 86) + "=="
	if err := saveKey(path, key); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode %o", fi.Mode().Perm())
	}
	got, fresh, err := loadKey(path)
	if err != nil || fresh || got != key {
		t.Fatalf("loadKey = %q %v %v", got, fresh, err)
	}
	if err := saveKey(path, key); err == nil {
		t.Fatal("an existing key was overwritten")
	}
	os.Chmod(path, 0o644)
	if _, _, err := loadKey(path); !IsKind(err, KindKey) || err.(*Error).Hint != "chmod 600 "+path || strings.Contains(err.Error(), "hint") {
		t.Fatalf("readable key: %v", err)
	}
}

func TestFindTorMissing(t *testing.T) {
	_, err := FindTor(filepath.Join(t.TempDir(), "no-tor-here"))
	if !IsKind(err, KindNotInstalled) || !strings.Contains(err.(*Error).Hint, "apt install tor") {
		t.Fatalf("FindTor: %v", err)
	}
}

func FuzzReadSocksReply(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0xF4, 0, 3, 3, 'a', 'b', 'c', 0, 80})
	f.Add([]byte{5, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		readSocksReply(bytes.NewReader(b))
	})
}

func FuzzParseBootstrap(f *testing.F) {
	f.Add(`NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"`)
	f.Fuzz(func(t *testing.T, s string) {
		p, _ := parseBootstrap(s)
		_ = p
	})
}

// needTor returns the tor binary, or skips loudly (fails where CI is set).
func needTor(t *testing.T) string {
	t.Helper()
	p, err := FindTor("")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tor is not installed and CI is set: .ci/run must apt-get install tor")
		}
		fmt.Fprintf(os.Stderr, "\n*** SKIPPED %s: tor is not installed (apt install tor) ***\n", t.Name())
		t.Skip("tor is not installed")
	}
	return p
}

func TestBootstrapStuck(t *testing.T) {
	needTor(t)
	dir := t.TempDir()
	torrc := filepath.Join(dir, "torrc")
	// A network whose only directory authority does not exist.
	os.WriteFile(torrc, []byte("TestingTorNetwork 1\nUseDefaultFallbackDirs 0\n"+
		"DirAuthority nowhere orport=1 no-v2 v3ident=0000000000000000000000000000000000000000 127.0.0.1:1 0000000000000000000000000000000000000000\n"), 0o600)
	start := time.Now()
	_, err := Start(context.Background(), Options{DataDir: filepath.Join(dir, "tor"), Torrc: torrc, BootstrapTimeout: 4 * time.Second})
	if !IsKind(err, KindBootstrap) || !strings.Contains(err.Error(), "did not connect") || !strings.Contains(err.(*Error).Hint, "bridges") {
		t.Fatalf("stuck bootstrap: %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("gave up only after %v", time.Since(start))
	}
}

func TestAttachRefused(t *testing.T) {
	_, err := Start(context.Background(), Options{Control: "127.0.0.1:1"})
	if !IsKind(err, KindControl) || !strings.Contains(err.Error(), "control port") {
		t.Fatalf("attach to nothing: %v", err)
	}
}

// TestErrorsNameNoFlags: the package's errors say what to do in terms of
// tor, and point at the caller's setting instead of naming a program's
// flags, which each program adds itself.
func TestErrorsNameNoFlags(t *testing.T) {
	_, missing := FindTor(filepath.Join(t.TempDir(), "no-tor-here"))
	_, noSocks := FindSocks("127.0.0.1:1")
	_, dialed := (&Dialer{Socks: "127.0.0.1:1"}).DialContext(context.Background(), "tcp", "example.onion:80")
	_, attached := Start(context.Background(), Options{Control: "127.0.0.1:1"})
	for _, tc := range []struct {
		name    string
		err     error
		setting Setting
	}{
		{"tor not found", missing, SettingTorPath},
		{"no socks port found", noSocks, SettingSocks},
		{"no socks port", dialed, SettingSocks},
		{"no control port", attached, SettingControl},
		{"client key missing", classify("x.onion", &SocksError{Code: socksOnionMissingAuth}), SettingClientKey},
		{"general failure", classify("x.onion", &SocksError{Code: socksGeneralFailure}), SettingClientKey},
		{"client key refused", classify("x.onion", &SocksError{Code: socksOnionWrongAuth}), SettingNone},
	} {
		var e *Error
		if !errors.As(tc.err, &e) {
			t.Errorf("%s: %v is not an *Error", tc.name, tc.err)
			continue
		}
		if e.Setting != tc.setting {
			t.Errorf("%s: setting %q, want %q", tc.name, e.Setting, tc.setting)
		}
		for _, s := range []string{e.Hint, e.Error()} {
			if strings.Contains(s, "--") || strings.Contains(s, "amana") || strings.Contains(s, "hint") {
				t.Errorf("%s: %q speaks a program's language", tc.name, s)
			}
		}
	}
}
