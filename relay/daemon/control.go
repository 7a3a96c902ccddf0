package daemon

import (
	"bufio"
	"encoding/json"
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

// The control socket's protocol: one command a connection.
//
//   - "backup\n": the answer is "ok SIZE\n" and SIZE bytes of a consistent
//     copy of the spool, or "error MESSAGE\n".
//   - "counts\n": the answer is "ok JSON\n", the spool's counts now (Counts),
//     or "error MESSAGE\n". These are what the spool holds at this moment,
//     which whoever can reach the socket (the relay's user) could count in
//     the spool file anyway; unlike the metrics, they are not held to the
//     time granule.

// Counts are the live figures of a serving relay, for 'amana-relay status'.
type Counts struct {
	Desks       int   `json:"desks"`
	Submissions int   `json:"submissions"`
	Uploads     int   `json:"uploads"`
	Events      int   `json:"events"` // case journal events waiting
	Committed   int64 `json:"committed"`
	Quota       int64 `json:"quota"`
	FileSize    int64 `json:"file_size"`
}

// serveControl answers on ln until ln is closed. desks counts the desks
// served.
func serveControl(ln net.Listener, sp *store.Spool, desks func() int, logf func(string, ...any)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
			if err == nil && line == "counts\n" {
				st, err := sp.Stats()
				if err != nil {
					fmt.Fprintf(c, "error the spool cannot be read\n")
					return
				}
				b, _ := json.Marshal(Counts{Desks: desks(), Submissions: st.Submissions, Uploads: st.Uploads, Events: st.Events,
					Committed: st.Committed, Quota: st.Quota, FileSize: st.FileSize})
				fmt.Fprintf(c, "ok %s\n", b)
				return
			}
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

// Counts asks the relay for the spool's counts now.
func (c *Control) Counts() (*Counts, error) {
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, "counts\n"); err != nil {
		return nil, fmt.Errorf("asking the relay for its counts: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(c.c, 4<<10)).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("asking the relay for its counts: %w", err)
	}
	js, ok := strings.CutPrefix(strings.TrimSpace(line), "ok ")
	var n Counts
	if !ok || json.Unmarshal([]byte(js), &n) != nil {
		return nil, fmt.Errorf("the relay gave no counts: %s", strings.TrimSpace(line))
	}
	return &n, nil
}

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
