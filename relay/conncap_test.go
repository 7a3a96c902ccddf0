package relay

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// capServer serves a handler on a listener capped at max connections, with
// short eviction graces.
func capServer(t *testing.T, max int, h http.Handler) (string, *capListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	l := CapConns(hs, ln, max).(*capListener)
	l.newAfter, l.idleAfter = 300*time.Millisecond, 100*time.Millisecond
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String(), l
}

// get sends one request on a fresh connection and returns the status line,
// or the error, within 5 seconds.
func get(addr, path string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(line)
}

func TestCapConnsEvictsIdle(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tests := []struct {
		name string
		hold func(t *testing.T, addr string) net.Conn
	}{
		{"connections that send nothing", func(t *testing.T, addr string) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"kept alive after a request", func(t *testing.T, addr string) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, l := capServer(t, 4, ok)
			for range 4 {
				c := tt.hold(t, addr)
				defer c.Close()
			}
			start := time.Now()
			for i := range 3 {
				if got := get(addr, "/"); got != "HTTP/1.1 200 OK" {
					t.Fatalf("request %d with every place held idle: %q", i, got)
				}
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Fatalf("new requests waited %v", d)
			}
			if l.Evicted() < 1 {
				t.Fatalf("evicted %d idle connections, want at least one", l.Evicted())
			}
		})
	}
}

func TestCapConnsWaitsForBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
	addr, l := capServer(t, 2, h)
	done := make(chan string, 2)
	for range 2 {
		go func() { done <- get(addr, "/slow") }()
	}
	<-entered
	<-entered
	// Both places hold a request in flight: a new one is not served, and
	// neither busy connection is closed, however long they take.
	third := make(chan string, 1)
	go func() { third <- get(addr, "/") }()
	select {
	case got := <-third:
		t.Fatalf("a request was served while every place was busy: %q", got)
	case <-time.After(time.Second):
	}
	close(release)
	for range 2 {
		if got := <-done; got != "HTTP/1.1 200 OK" {
			t.Fatalf("a busy request got %q", got)
		}
	}
	if got := <-third; got != "HTTP/1.1 200 OK" {
		t.Fatalf("the waiting request got %q", got)
	}
	if l.Evicted() != 0 {
		t.Fatalf("evicted %d busy connections", l.Evicted())
	}
}

func TestCapConnsClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{}
	l := CapConns(hs, ln, 1)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The place is held by a connection the server never tracked as idle
	// (not yet served): Accept waits, and Close ends the wait.
	l.(*capListener).mu.Lock()
	l.(*capListener).conns[first].idle = false
	l.(*capListener).mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	l.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Accept after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	first.Close()
}
