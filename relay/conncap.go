package relay

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Idle connections make room for new ones: at the cap, the one that has
// waited longest without a request in flight goes, once it has waited this
// long. A client over Tor sends its request within a round trip of the
// connection opening; one that has sent nothing for this long is gone or
// hostile.
const (
	evictNewAfter  = 5 * time.Second // a connection that has not yet sent a byte
	evictIdleAfter = time.Second     // a kept-alive connection between requests
)

// CapConns wraps ln so that at most max connections are open at once, and
// sets hs.ConnState to track them. At the cap, the connection that has gone
// longest without a request in flight (one that has not sent a byte, or one
// kept alive between requests) is closed to make room for the next, so
// idle connections cannot keep new clients out; while every connection is
// busy with a request, new ones wait in the kernel's queue. Requests are
// bounded by the header timeout, the idle timeout and the body rate floor,
// so a busy connection frees its place.
func CapConns(hs *http.Server, ln net.Listener, max int) net.Listener {
	l := &capListener{Listener: ln, max: max, conns: map[net.Conn]*connInfo{}, freed: make(chan struct{}, 1),
		done: make(chan struct{}), now: time.Now, newAfter: evictNewAfter, idleAfter: evictIdleAfter}
	prev := hs.ConnState
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		l.track(c, st)
		if prev != nil {
			prev(c, st)
		}
	}
	return l
}

type connInfo struct {
	idle  bool      // no request in flight
	fresh bool      // has not sent a byte yet
	since time.Time // when it became idle
}

type capListener struct {
	net.Listener
	max int
	now func() time.Time

	newAfter, idleAfter time.Duration
	freed               chan struct{} // a place was freed
	done                chan struct{} // closed by Close
	once                sync.Once

	mu      sync.Mutex
	conns   map[net.Conn]*connInfo
	evicted int
}

type cappedConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

// NetConn is the connection underneath.
func (c *cappedConn) NetConn() net.Conn { return c.Conn }

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

func (l *capListener) release(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

func (l *capListener) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ci := l.conns[c]
	if ci == nil {
		return // closed already, or not one of ours
	}
	switch st {
	case http.StateActive:
		ci.idle, ci.fresh = false, false
	case http.StateIdle:
		ci.idle, ci.since = true, l.now()
	}
}

// victim returns the connection idle the longest past its grace, or nil.
func (l *capListener) victim() net.Conn {
	now := l.now()
	var (
		oldest net.Conn
		at     time.Time
	)
	for c, ci := range l.conns {
		if !ci.idle {
			continue
		}
		grace := l.idleAfter
		if ci.fresh {
			grace = l.newAfter
		}
		if now.Sub(ci.since) < grace {
			continue
		}
		if oldest == nil || ci.since.Before(at) {
			oldest, at = c, ci.since
		}
	}
	return oldest
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if len(l.conns) < l.max {
			l.mu.Unlock()
			break
		}
		v := l.victim()
		if v != nil {
			l.evicted++
		}
		l.mu.Unlock()
		if v != nil {
			v.Close()
			continue
		}
		select {
		case <-l.freed:
		case <-time.After(l.idleAfter / 2):
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &cappedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[cc] = &connInfo{idle: true, fresh: true, since: l.now()}
	l.mu.Unlock()
	return cc, nil
}

func (l *capListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Evicted is how many idle connections the cap has closed to make room.
func (l *capListener) Evicted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evicted
}
