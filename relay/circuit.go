package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tor's HiddenServiceExportCircuitID haproxy makes tor begin every
// connection it forwards to an onion service's target with a PROXY protocol
// (version 1) line whose source address carries the client circuit's
// global identifier:
//
//	PROXY TCP6 fc00:dead:beef:4dad::HIGH:LOW ::1 SRCPORT 80\r\n
//
// Tor writes the line itself, before any byte of the client's, so it
// cannot be forged by a client. The identifier tells circuits apart (never
// who is behind one); the relay uses it only to limit what one circuit may
// ask, and neither logs nor stores it.

// circuitPrefix is the network tor puts circuit identifiers in.
var circuitPrefix = net.IP{0xfc, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x4d, 0xad, 0, 0, 0, 0, 0, 0, 0, 0}

// maxProxyLine is the longest PROXY v1 line, CRLF included.
const maxProxyLine = 107

// parseProxyLine reads tor's PROXY line (without its CRLF) and returns the
// circuit identifier.
func parseProxyLine(line string) (uint32, bool) {
	f := strings.Split(line, " ")
	if len(f) != 6 || f[0] != "PROXY" || f[1] != "TCP6" {
		return 0, false
	}
	src := net.ParseIP(f[2])
	if src == nil || src.To4() != nil || !src[:8].Equal(circuitPrefix[:8]) || src[8] != 0 || src[9] != 0 || src[10] != 0 || src[11] != 0 {
		return 0, false
	}
	if dst := net.ParseIP(f[3]); dst == nil {
		return 0, false
	}
	for _, p := range f[4:] {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || strconv.FormatUint(n, 10) != p {
			return 0, false
		}
	}
	return binary.BigEndian.Uint32(src[12:16]), true
}

// CircuitListener wraps the listener of an onion service that tor
// publishes with HiddenServiceExportCircuitID haproxy: every connection
// must begin with tor's PROXY line, which is consumed before the HTTP
// server reads, and gives the connection its circuit. A connection without
// a valid line is closed.
func CircuitListener(ln net.Listener) net.Listener { return &circuitListener{ln} }

type circuitListener struct{ net.Listener }

func (l *circuitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &circuitConn{Conn: c}, nil
}

var errNoProxyLine = errors.New("connection without tor's PROXY line")

type circuitConn struct {
	net.Conn
	once sync.Once
	id   uint32
	err  error
}

// header reads the PROXY line, a byte at a time so that nothing after it
// is consumed. It runs inside the HTTP server's first Read, under the read
// deadline the server set for the request headers (tor writes the line as
// it connects), and leaves that deadline alone.
func (c *circuitConn) header() {
	var line []byte
	b := make([]byte, 1)
	for len(line) < maxProxyLine {
		if _, err := c.Conn.Read(b); err != nil {
			c.err = errNoProxyLine
			return
		}
		line = append(line, b[0])
		if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
			id, ok := parseProxyLine(string(line[:n-2]))
			if !ok {
				c.err = errNoProxyLine
			}
			c.id = id
			return
		}
	}
	c.err = errNoProxyLine
}

func (c *circuitConn) Read(b []byte) (int, error) {
	c.once.Do(c.header)
	if c.err != nil {
		c.Conn.Close()
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// circuit returns the connection's circuit, once its line has been read.
func (c *circuitConn) circuit() (uint32, bool) {
	c.once.Do(c.header)
	return c.id, c.err == nil
}

type circuitCtxKey struct{}

// circuitContext is the http.Server's ConnContext: it remembers the
// connection, so that handlers can ask for its circuit.
func circuitContext(ctx context.Context, c net.Conn) context.Context {
	for {
		if cc, ok := c.(*circuitConn); ok {
			return context.WithValue(ctx, circuitCtxKey{}, cc)
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return ctx
		}
		c = u.NetConn()
	}
}

// circuitOf returns the circuit a request came on, if tor said.
func circuitOf(ctx context.Context) (uint32, bool) {
	cc, ok := ctx.Value(circuitCtxKey{}).(*circuitConn)
	if !ok {
		return 0, false
	}
	return cc.circuit()
}

// keyLimits is a token bucket per key: a Tor circuit, or a handler's
// signing key.
type keyLimits[K comparable] struct {
	rate, burst float64 // per second, and at once
	mu          sync.Mutex
	buckets     map[K]*limiter
	seen        int64 // keys given a bucket so far
}

// circuitLimits is a token bucket per circuit.
type circuitLimits = keyLimits[uint32]

// maxCircuits bounds the buckets kept; past it, full ones are dropped.
const maxCircuits = 1 << 16

func newCircuitLimits(rate, burst float64) *circuitLimits { return newKeyLimits[uint32](rate, burst) }

func newKeyLimits[K comparable](rate, burst float64) *keyLimits[K] {
	return &keyLimits[K]{rate: rate, burst: burst, buckets: map[K]*limiter{}}
}

// allow takes a token from the key's bucket.
func (c *keyLimits[K]) allow(id K, now time.Time) bool {
	c.mu.Lock()
	l := c.buckets[id]
	if l == nil {
		if len(c.buckets) >= maxCircuits {
			// A bucket that has refilled says nothing a new one would not.
			full := time.Duration(c.burst / c.rate * float64(time.Second))
			for k, b := range c.buckets {
				if b.idleSince(now) >= full {
					delete(c.buckets, k)
				}
			}
			if len(c.buckets) >= maxCircuits {
				c.mu.Unlock()
				return true // the global limits still apply
			}
		}
		l = &limiter{rate: c.rate, burst: c.burst}
		c.buckets[id] = l
		c.seen++
	}
	c.mu.Unlock()
	return l.allow(now)
}

// Seen is how many circuits (keys) have been limited (given a bucket) so far.
func (c *keyLimits[K]) Seen() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen
}
