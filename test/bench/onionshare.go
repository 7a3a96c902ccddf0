package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/amana-relay/amana/test/internal/relayproc"
)

// onionShareResult is the same file through OnionShare's receive mode
// (onionshare-cli --local-only --receive, uploaded with curl, as a
// browser's form would), beside 'amana submit' of it. OnionShare stores
// the plaintext and never syncs; "with sync" adds an fsync of the received
// file and its directory, which Amana's relay does for every commit.
type onionShareResult struct {
	Seconds     float64 `json:"seconds"`      // median upload time, no sync
	SyncSeconds float64 `json:"sync_seconds"` // median upload time plus fsync
	// Ratios are amana submit's time over OnionShare's (lower is better
	// for Amana); aim: at most 1.0 against OnionShare with sync.
	Ratio     float64 `json:"amana_time_ratio"`
	SyncRatio float64 `json:"amana_time_ratio_with_sync"`
	Aim       float64 `json:"aim_ratio_with_sync"`
	// PeakRSSMiB is onionshare-cli's VmHWM at the end (zero without /proc).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// onionShareAim: amana submit should take no longer than OnionShare with sync.
const onionShareAim = 1.0

// onionShareMissing says why OnionShare is not measured, "" when it is.
func onionShareMissing() string {
	for _, tool := range []string{"onionshare-cli", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed"
		}
	}
	return ""
}

type onionShare struct {
	cmd  *exec.Cmd
	url  string
	recv string
	done chan struct{}
}

var onionShareURL = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+`)

// startOnionShare starts onionshare-cli in receive mode, local only, with
// its home and received files under dir.
func startOnionShare(ctx context.Context, dir string) (*onionShare, error) {
	home, recv := filepath.Join(dir, "onionshare-home"), filepath.Join(dir, "onionshare-received")
	for _, d := range []string{home, recv} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, "onionshare-cli", "--local-only", "--receive", "--data-dir", recv)
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting onionshare-cli: %w", err)
	}
	o := &onionShare{cmd: cmd, recv: recv, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(o.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u := onionShareURL.FindString(sc.Text()); u != "" {
				select {
				case found <- u:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case o.url = <-found:
	case <-time.After(60 * time.Second):
		o.stop()
		return nil, errors.New("onionshare-cli printed no address within 60s")
	case <-o.done:
		o.stop()
		return nil, errors.New("onionshare-cli exited before printing its address")
	}
	// It prints the address before it listens; wait until it answers.
	for i := 0; ; i++ {
		if exec.CommandContext(ctx, "curl", "-sf", "-o", os.DevNull, o.url+"/").Run() == nil {
			return o, nil
		}
		if i == 100 {
			o.stop()
			return nil, errors.New("onionshare-cli does not answer")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// upload sends file through the receive form with curl and, with sync,
// fsyncs what OnionShare stored and its directory; it returns the time
// taken and removes the received copy.
func (o *onionShare) upload(ctx context.Context, file string, sync bool) (time.Duration, error) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, "curl", "-sS", "-o", os.DevNull, "-w", "%{http_code}", "-F", "file[]=@"+file, o.url+"/upload").Output()
	if err != nil {
		return 0, fmt.Errorf("curl to onionshare: %w", err)
	}
	if code := strings.TrimSpace(string(out)); code != "200" && code != "302" {
		return 0, fmt.Errorf("onionshare answered HTTP %s", code)
	}
	var got []string
	filepath.WalkDir(o.recv, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, p)
		}
		return nil
	})
	if len(got) != 1 {
		return 0, fmt.Errorf("onionshare stored %d files, want 1", len(got))
	}
	if sync {
		for _, p := range []string{got[0], filepath.Dir(got[0])} {
			f, err := os.Open(p)
			if err != nil {
				return 0, err
			}
			err = f.Sync()
			f.Close()
			if err != nil {
				return 0, err
			}
		}
	}
	took := time.Since(start)
	fi, err := os.Stat(got[0])
	if err != nil {
		return 0, err
	}
	if want, err := os.Stat(file); err != nil || fi.Size() != want.Size() {
		return 0, fmt.Errorf("onionshare stored %d bytes, want the file's", fi.Size())
	}
	entries, _ := os.ReadDir(o.recv)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(o.recv, e.Name()))
	}
	return took, nil
}

// peakMiB is onionshare-cli's peak resident memory, zero where unknown.
func (o *onionShare) peakMiB() float64 {
	st, err := relayproc.ReadStatus(o.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return toMiB(st.Peak)
}

func (o *onionShare) stop() {
	if o.cmd.Process != nil {
		syscall.Kill(-o.cmd.Process.Pid, syscall.SIGTERM)
	}
	select {
	case <-o.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-o.cmd.Process.Pid, syscall.SIGKILL)
		<-o.done
	}
	o.cmd.Wait()
}
