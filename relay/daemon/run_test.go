package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/store"
)

// initData makes a data directory whose spool pins an admin card, as
// 'amana-relay init' leaves it.
func initData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	sp, err := store.Open(dir, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	id, err := crypto.GenerateIdentity("admin", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.SetSetting(SettingAdmin, []byte(id.Card().String())); err != nil {
		t.Fatal(err)
	}
	return dir
}

// running is a relay that Run serves in the background.
type running struct {
	announced chan string // the Announce lines
	started   chan struct{}
	ended     chan struct{} // closed when Run has returned err
	err       error
	stop      func() error // ends Run and returns what it returned
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{announced: make(chan string, 16), started: make(chan struct{}), ended: make(chan struct{})}
	cfg.Announce = func(format string, args ...any) { r.announced <- fmt.Sprintf(format, args...) }
	cfg.Logf = func(format string, args ...any) {
		if strings.HasPrefix(format, "started:") {
			close(r.started)
		}
	}
	go func() {
		r.err = Run(ctx, cfg)
		close(r.ended)
	}()
	r.stop = func() error {
		cancel()
		<-r.ended
		return r.err
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// line waits for the next announcement; a minute is a hang, not a timing
// check.
func (r *running) line(t *testing.T) string {
	t.Helper()
	select {
	case l := <-r.announced:
		return l
	case <-r.ended:
		t.Fatalf("Run ended: %v", r.err)
	case <-time.After(time.Minute):
		t.Fatal("no announcement within a minute")
	}
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunLoopback: with NoTor, Run serves the API on its loopback address,
// the monitor on its own, the status file and the control socket in the
// data directory, and removes both when its context ends.
func TestRunLoopback(t *testing.T) {
	dir := initData(t)
	r := start(t, Config{DataDir: dir, NoTor: true, Listen: "127.0.0.1:0", Metrics: "127.0.0.1:0",
		Store: store.Options{NoSync: true}, Version: "v0.0.0-test"})
	api, ok := strings.CutPrefix(r.line(t), "listening on ")
	if !ok {
		t.Fatalf("first announcement is not where the relay listens")
	}
	metrics, ok := strings.CutPrefix(r.line(t), "metrics on ")
	if !ok {
		t.Fatalf("second announcement is not where the metrics are")
	}
	select {
	case <-r.started:
	case <-r.ended:
		t.Fatalf("Run ended: %v", r.err)
	}

	if code, _ := get(t, api+"/api/v1/health"); code != http.StatusOK {
		t.Errorf("/api/v1/health: %d", code)
	}
	if code, body := get(t, strings.TrimSuffix(metrics, "/metrics")+"/health"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/health: %d %q", code, body)
	}
	if _, body := get(t, metrics); !strings.Contains(body, `amana_build_info{version="v0.0.0-test"} 1`) {
		t.Errorf("metrics lack the version:\n%s", body)
	}

	st, err := ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "loopback" || "http://"+st.Listen != api || st.PID != os.Getpid() || st.Quota != store.DefaultQuota || st.Updated == "" {
		t.Errorf("status %+v", st)
	}

	// The control socket gives a consistent copy of the spool, which opens
	// as a spool with the same admin.
	if fi, err := os.Stat(filepath.Join(dir, ControlSocket)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	c, err := DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.Mkdir(copyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	err = c.Snapshot(func(size int64, writeTo func(io.Writer) error) error {
		f, err := os.OpenFile(filepath.Join(copyDir, store.FileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		return writeTo(f)
	})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := store.Open(copyDir, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAdmin(sp, copyDir); err != nil {
		t.Errorf("the copy: %v", err)
	}
	sp.Close()

	if err := r.stop(); err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	for _, name := range []string{StatusFile, ControlSocket} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", name, err)
		}
	}
}

// TestRunRefuses: what Run refuses, and the errors a program explains.
func TestRunRefuses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()

	t.Run("not loopback", func(t *testing.T) {
		for _, cfg := range []Config{
			{NoTor: true, Listen: "0.0.0.0:0"},
			{NoTor: true, Listen: "192.0.2.1:8080"},
			{NoTor: true, Listen: "nonsense"},
			{NoTor: true, Listen: "127.0.0.1:0", Metrics: ":0"},
			{NoTor: true, Listen: "127.0.0.1:0", Metrics: "0.0.0.0:9464"},
		} {
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), "loopback only") {
				t.Errorf("Run(%q, metrics %q) = %v", cfg.Listen, cfg.Metrics, err)
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Run(%q, metrics %q) made the data directory before refusing", cfg.Listen, cfg.Metrics)
			}
		}
	})
	t.Run("no data directory", func(t *testing.T) {
		if err := Run(context.Background(), Config{NoTor: true}); err == nil {
			t.Error("Run without a data directory")
		}
	})
	t.Run("not initialised", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty")
		if err := os.Mkdir(empty, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{filepath.Join(t.TempDir(), "data"), empty} {
			err := Run(context.Background(), Config{DataDir: dir, NoTor: true, Listen: "127.0.0.1:0"})
			var ne *NotInitialisedError
			if !errors.As(err, &ne) || ne.Dir != dir || err.Error() != "relay in "+dir+" is not initialised" {
				t.Errorf("Run in %s, not initialised: %v", dir, err)
			}
			if _, err := os.Stat(filepath.Join(dir, store.FileName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Run in %s, not initialised, left a spool behind", dir)
			}
		}
	})
	t.Run("initialised without an admin", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		sp, err := store.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		sp.Close()
		err = Run(context.Background(), Config{DataDir: dir, NoTor: true, Listen: "127.0.0.1:0"})
		var ne *NotInitialisedError
		if !errors.As(err, &ne) {
			t.Errorf("Run on a spool without an admin: %v", err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		err := Run(context.Background(), Config{DataDir: initData(t), NoTor: true, Listen: taken})
		var le *ListenError
		if !errors.As(err, &le) || le.Addr != taken || le.Metrics || !strings.HasPrefix(err.Error(), "cannot listen on "+taken+": ") {
			t.Errorf("Run on a port in use: %v", err)
		}
	})
	t.Run("metrics port in use", func(t *testing.T) {
		err := Run(context.Background(), Config{DataDir: initData(t), NoTor: true, Listen: "127.0.0.1:0", Metrics: taken})
		var le *ListenError
		if !errors.As(err, &le) || le.Addr != taken || !le.Metrics {
			t.Errorf("Run with the metrics on a port in use: %v", err)
		}
	})
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:1": true, "[::1]:80": true, "localhost:0": true,
		"0.0.0.0:0": false, ":8080": false, "[::]:80": false, "192.0.2.1:80": false, "example.com:80": false, "127.0.0.1": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestFill: the zero Config gets the documented defaults, and a negative
// MaxStreams means no cap.
func TestFill(t *testing.T) {
	var c Config
	c.fill()
	if c.Listen != DefaultListen || c.MaxConns != DefaultMaxConns || c.MaxStreams != DefaultMaxStreams || c.SweepEvery != DefaultSweepEvery ||
		c.BootstrapTimeout != DefaultBootstrapTimeout || c.PublishTimeout != DefaultPublishTimeout || c.NotifyEvery != DefaultNotifyEvery ||
		c.PoW == nil || c.PoW.Rate != DefaultPoWRate || c.PoW.Burst != DefaultPoWBurst || c.Logf == nil || c.Announce == nil {
		t.Errorf("filled %+v", c)
	}
	c = Config{MaxStreams: -1}
	c.fill()
	if c.MaxStreams != 0 {
		t.Errorf("MaxStreams -1 became %d, want 0 (no cap)", c.MaxStreams)
	}
}
