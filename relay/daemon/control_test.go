package daemon

import (
	"bufio"
	"io"
	"net"
	"path/filepath"
	"testing"

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
	go serveControl(ln, sp, t.Logf)

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
