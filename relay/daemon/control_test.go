package daemon

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/amana-relay/amana/store"
)

// TestControlProtocol: the socket answers only "backup", and the client
// reports a refusal in the relay's words.
func TestControlProtocol(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	sp, err := store.Open(dir, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ln, err := listenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveControl(ln, sp, func() int { return 2 }, t.Logf)

	c, err := net.Dial("unix", filepath.Join(dir, ControlSocket))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "restore\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if line != "error unknown command\n" {
		t.Errorf("an unknown command got %q", line)
	}

	ctl, err := DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	var got int64
	err = ctl.Snapshot(func(size int64, writeTo func(io.Writer) error) error {
		got = size
		return writeTo(io.Discard)
	})
	if err != nil || got <= 0 {
		t.Errorf("Snapshot: %d bytes, %v", got, err)
	}
}

func TestControlRefusal(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, ControlSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "error the spool is closing\n")
	}()
	ctl, err := DialControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	err = ctl.Snapshot(func(int64, func(io.Writer) error) error {
		t.Error("put was called on a refusal")
		return nil
	})
	if err == nil || err.Error() != "the relay refused a copy: error the spool is closing" {
		t.Errorf("Snapshot = %v", err)
	}
	if _, err := DialControl(t.TempDir()); err == nil {
		t.Error("DialControl reached a directory no relay serves")
	}
}

// TestControlCounts: "counts" answers with what the spool holds at that
// moment, a submission the instant after it is stored, not at the next
// status file or time granule.
func TestControlCounts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	sp, err := store.Open(dir, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ln, err := listenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if fi, err := os.Stat(filepath.Join(dir, ControlSocket)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the control socket: %v, %v", fi, err)
	}
	desks := 0
	// A request for the counts is not logged.
	go serveControl(ln, sp, func() int { return desks }, func(f string, a ...any) { t.Errorf("logged: "+f, a...) })
	counts := func() *Counts {
		t.Helper()
		ctl, err := DialControl(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ctl.Close()
		n, err := ctl.Counts()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := counts(); n.Desks != 0 || n.Submissions != 0 || n.Uploads != 0 || n.Committed != 0 || n.Quota != store.DefaultQuota || n.FileSize <= 0 {
		t.Fatalf("an empty spool: %+v", n)
	}
	desks = 1
	spec := store.UploadSpec{Desk: "d", Routes: []string{"h"}, Stanzas: []string{"X25519"}, Length: 100,
		DeleteAfterAck: 72 * time.Hour, KeepUnacked: 90 * 24 * time.Hour}
	if _, err := sp.PutSubmission(spec, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	spec.Length = 1000
	if _, err := sp.CreateUpload(spec); err != nil {
		t.Fatal(err)
	}
	if n := counts(); n.Desks != 1 || n.Submissions != 1 || n.Uploads != 1 || n.Committed < 100 {
		t.Errorf("after a submission and an upload: %+v", n)
	}
}
