package relaycli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/store"
)

// StatusFile is written by a serving relay into its data directory, so
// 'amana-relay status' can report on it while the spool is locked.
const StatusFile = "status.json"

type serveOptions struct {
	data          string
	listen        string
	quota         string
	maxSubmission string
	uploadTTL     string
	coarse        string
	sweepEvery    time.Duration
}

func newServe(e *env) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--listen 127.0.0.1:PORT]",
		Short: "serve the relay API",
		Long: `Serve the relay API on a loopback address. The relay accepts only ciphertext: every
submission must be an age file encrypted to the recipients its desk and category
imply. It never logs a body, a token or an address, and keeps times only to
--time-granularity (an hour by default).

It sweeps the spool regularly: submissions every handler acknowledged are already
gone; others go after their desk's retention; abandoned uploads after --upload-ttl.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runServe(e, &o) },
	}
	dataFlag(cmd, &o.data)
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "loopback address and port to listen on")
	f.StringVar(&o.quota, "quota", "10GiB", "most bytes the spool holds: stored submissions and the bytes of unfinished uploads")
	f.StringVar(&o.maxSubmission, "max-submission", "2GiB", "largest submission accepted, whatever a desk allows")
	f.StringVar(&o.uploadTTL, "upload-ttl", "24h", "how long an unfinished upload is kept after its last piece")
	f.StringVar(&o.coarse, "time-granularity", "1h", "granularity of the times the spool keeps")
	f.DurationVar(&o.sweepEvery, "sweep-every", 10*time.Minute, "how often expired submissions and uploads are deleted")
	return cmd
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(e *env, o *serveOptions) error {
	if err := needData(o.data); err != nil {
		return err
	}
	if o.sweepEvery < time.Minute {
		return ui.Fail(ui.ExitUsage, "use at least 1m; 10m is the default", nil, "invalid --sweep-every %v", o.sweepEvery)
	}
	if !isLoopback(o.listen) {
		return ui.Fail(ui.ExitUsage, "listen on 127.0.0.1 and let Tor (or a reverse proxy you control) forward to it", nil,
			"refusing to listen on %s: the relay listens on loopback only", o.listen)
	}
	opts := &store.Options{}
	var err error
	if opts.Quota, err = ui.ParseSize(o.quota); err != nil {
		return ui.Fail(ui.ExitUsage, "", err, "invalid --quota")
	}
	maxSub, err := ui.ParseSize(o.maxSubmission)
	if err != nil {
		return ui.Fail(ui.ExitUsage, "", err, "invalid --max-submission")
	}
	if opts.UploadTTL, err = ui.ParseDuration(o.uploadTTL); err != nil {
		return ui.Fail(ui.ExitUsage, "", err, "invalid --upload-ttl")
	}
	if opts.Coarse, err = ui.ParseDuration(o.coarse); err != nil || opts.Coarse < time.Minute {
		return ui.Fail(ui.ExitUsage, "use at least 1m; 1h is the default", err, "invalid --time-granularity")
	}
	sp, err := store.Open(o.data, opts)
	if err != nil {
		return err
	}
	defer sp.Close()
	admin, err := loadAdmin(sp, o.data)
	if err != nil {
		return err
	}
	logger := log.New(e.stderr, "amana-relay: ", 0)
	srv, err := relay.New(sp, relay.Config{
		Admin:         admin.SignKey,
		MaxSubmission: maxSub,
		Logf:          func(string, ...any) {},
		Eventf:        logger.Printf,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return ui.Fail(ui.ExitError, "choose another --listen port, or stop what is using it", err, "cannot listen on %s", o.listen)
	}
	hs := srv.HTTPServer(srv.Combined())
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()

	status := func() {
		st, err := sp.Stats()
		if err != nil {
			return
		}
		writeStatus(o.data, &statusInfo{
			PID: os.Getpid(), Listen: ln.Addr().String(), Desks: srv.DeskCount(),
			Submissions: st.Submissions, Uploads: st.Uploads, Committed: st.Committed, Quota: st.Quota, FileSize: st.FileSize,
			Updated: time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339),
		})
	}
	status()
	defer os.Remove(filepath.Join(o.data, StatusFile))
	logger.Printf("started: %d desk(s) served", srv.DeskCount())
	fmt.Fprintf(e.stdout, "amana-relay: listening on http://%s\n", ln.Addr())

	sweep := time.NewTicker(o.sweepEvery)
	defer sweep.Stop()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serving: %w", err)
		case <-e.ctx.Done():
			logger.Printf("shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hs.Shutdown(ctx)
			return nil
		case <-sweep.C:
			res, err := sp.Sweep()
			if err != nil {
				logger.Printf("sweep failed: %v", err)
			} else if res.Submissions+res.Uploads > 0 {
				logger.Printf("sweep: deleted %d expired submission(s) and %d abandoned upload(s)", res.Submissions, res.Uploads)
			}
		case <-tick.C:
			status()
		}
	}
}

type statusInfo struct {
	PID         int    `json:"pid"`
	Listen      string `json:"listen"`
	Desks       int    `json:"desks"`
	Submissions int    `json:"submissions"`
	Uploads     int    `json:"uploads"`
	Committed   int64  `json:"committed"`
	Quota       int64  `json:"quota"`
	FileSize    int64  `json:"file_size"`
	Updated     string `json:"updated"`
}

func writeStatus(dir string, s *statusInfo) {
	b, _ := json.MarshalIndent(s, "", "  ")
	p := filepath.Join(dir, StatusFile)
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, p)
	}
}
