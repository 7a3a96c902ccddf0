package daemon

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/amana-relay/amana/store"
)

// The control socket's protocol: one command, "backup\n"; the answer is
// "ok SIZE\n" and SIZE bytes of a consistent copy of the spool, or
// "error MESSAGE\n".

// serveControl answers on ln until ln is closed.
func serveControl(ln net.Listener, sp *store.Spool, logf func(string, ...any)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
			if err != nil || line != "backup\n" {
				fmt.Fprintf(c, "error unknown command\n")
				return
			}
			c.SetReadDeadline(time.Time{})
			err = sp.Snapshot(func(size int64, writeTo func(io.Writer) error) error {
				if _, err := fmt.Fprintf(c, "ok %d\n", size); err != nil {
					return err
				}
				return writeTo(c)
			})
			if err != nil {
				logf("backup: %v", err)
				return
			}
			logf("backup: a copy of the spool was taken")
		}()
	}
}

// listenControl makes the control socket in dir, replacing a stale one:
// the caller holds the spool's lock, so no other relay uses it.
func listenControl(dir string) (net.Listener, error) {
	p := filepath.Join(dir, ControlSocket)
	os.Remove(p)
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Control is a connection to the control socket of the relay serving a
// data directory.
type Control struct {
	c net.Conn
}

// DialControl connects to the control socket of the relay serving the data
// directory dir. It fails as net.Dial does: no relay serves dir, or this
// user may not reach its socket.
func DialControl(dir string) (*Control, error) {
	c, err := net.Dial("unix", filepath.Join(dir, ControlSocket))
	if err != nil {
		return nil, err
	}
	return &Control{c: c}, nil
}

// Close ends the connection.
func (c *Control) Close() error { return c.c.Close() }

// Snapshot asks the relay for a consistent copy of its spool and gives it
// to put, the way store.Spool.Snapshot does: its size, and a function that
// writes exactly that many bytes. The relay's refusal, quoted in the
// error, is its own text: print it only as untrusted text.
func (c *Control) Snapshot(put func(size int64, writeTo func(io.Writer) error) error) error {
	if _, err := io.WriteString(c.c, "backup\n"); err != nil {
		return fmt.Errorf("asking the relay for a copy: %w", err)
	}
	r := bufio.NewReader(c.c)
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("asking the relay for a copy: %w", err)
	}
	sizeText, ok := strings.CutPrefix(strings.TrimSpace(line), "ok ")
	size, perr := strconv.ParseInt(sizeText, 10, 64)
	if !ok || perr != nil || size <= 0 {
		return fmt.Errorf("the relay refused a copy: %s", strings.TrimSpace(line))
	}
	return put(size, func(w io.Writer) error {
		got, err := io.Copy(w, io.LimitReader(r, size))
		if err == nil && got != size {
			err = fmt.Errorf("the relay sent %d of %d bytes", got, size)
		}
		return err
	})
}
