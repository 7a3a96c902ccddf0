package onion

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SOCKS5 reply codes, with tor's extended codes for onion services
// (tor's SocksPort ExtendedErrors flag; proposal 304).
const (
	socksOK                = 0x00
	socksGeneralFailure    = 0x01
	socksHostUnreachable   = 0x04
	socksTTLExpired        = 0x06
	socksOnionNotFound     = 0xF0
	socksOnionInvalid      = 0xF1
	socksOnionIntroFailed  = 0xF2
	socksOnionRendFailed   = 0xF3
	socksOnionMissingAuth  = 0xF4
	socksOnionWrongAuth    = 0xF5
	socksOnionBadAddress   = 0xF6
	socksOnionIntroTimeout = 0xF7
)

// SocksError is a SOCKS5 CONNECT refusal, with tor's reason.
type SocksError struct{ Code byte }

func (e *SocksError) Error() string {
	switch e.Code {
	case socksOnionNotFound:
		return "onion service descriptor not found"
	case socksOnionInvalid:
		return "onion service descriptor is invalid"
	case socksOnionIntroFailed, socksOnionIntroTimeout:
		return "onion service introduction failed"
	case socksOnionRendFailed:
		return "onion service rendezvous failed"
	case socksOnionMissingAuth:
		return "onion service needs client authorization"
	case socksOnionWrongAuth:
		return "onion service client authorization is wrong"
	case socksOnionBadAddress:
		return "invalid onion address"
	case socksHostUnreachable:
		return "host unreachable"
	case socksTTLExpired:
		return "timed out"
	}
	return fmt.Sprintf("SOCKS failure %#02x", e.Code)
}

// socksConnect asks the SOCKS5 server on conn to connect to host:port
// (no authentication, domain-name address) and reads its answer.
func socksConnect(conn io.ReadWriter, host string, port int) error {
	if len(host) > 255 {
		return errors.New("host name too long")
	}
	if _, err := conn.Write([]byte{5, 1, 0}); err != nil {
		return err
	}
	var m [2]byte
	if _, err := io.ReadFull(conn, m[:]); err != nil {
		return err
	}
	if m[0] != 5 || m[1] != 0 {
		return errors.New("the SOCKS server wants authentication or is not SOCKS5")
	}
	req := []byte{5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := conn.Write(req); err != nil {
		return err
	}
	return readSocksReply(conn)
}

// readSocksReply reads a SOCKS5 reply and its bound address.
func readSocksReply(r io.Reader) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if h[0] != 5 {
		return errors.New("not a SOCKS5 reply")
	}
	var skip int
	switch h[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return err
		}
		skip = int(l[0])
	default:
		return errors.New("bad SOCKS5 address type")
	}
	if _, err := io.CopyN(io.Discard, r, int64(skip+2)); err != nil {
		return err
	}
	if h[1] != socksOK {
		return &SocksError{Code: h[1]}
	}
	return nil
}

// Dialer reaches hosts through a tor SOCKS port.
type Dialer struct {
	Socks string // host:port of the SOCKS port
}

// DialContext connects to addr (host:port) through tor, turning tor's
// refusals into Errors that say what to do.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", d.Socks)
	if err != nil {
		return nil, fail(KindUnreachable, "start tor (systemctl start tor)", err,
			"no tor SOCKS port at %s", d.Socks).about(SettingSocks)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	if err := socksConnect(conn, host, port); err != nil {
		conn.Close()
		return nil, classify(host, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

func classify(host string, err error) error {
	var se *SocksError
	if !errors.As(err, &se) {
		return fail(KindUnreachable, "check that tor is running and connected", err, "tor could not connect to %s", host)
	}
	switch se.Code {
	case socksOnionMissingAuth:
		return fail(KindClientAuthMissing, "this is a handler onion: the tor in use needs your client-authorization key",
			se, "cannot reach %s", host).about(SettingClientKey)
	case socksOnionWrongAuth:
		return fail(KindClientAuthWrong, "ask the desk admin to add your card to the desk manifest and publish it again", se, "cannot reach %s", host)
	case socksGeneralFailure:
		return fail(KindUnreachable,
			"check the address and try again in a minute; if this is a handler onion, your tor may lack your client-authorization key",
			se, "cannot reach %s", host).about(SettingClientKey)
	}
	return fail(KindUnreachable, "check the address, that the relay is running, and try again in a minute", se, "cannot reach %s", host)
}

// HTTPClient returns an HTTP client whose connections go through tor's
// SOCKS port at socks.
func HTTPClient(socks string) *http.Client {
	d := &Dialer{Socks: socks}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ResponseHeaderTimeout: 3 * time.Minute,
		IdleConnTimeout:       time.Minute,
		MaxIdleConnsPerHost:   4,
	}}
}

// IsOnion reports whether host (with or without a port) is a v3 onion
// address, and returns its 56-character service ID.
func IsOnion(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	id, ok := strings.CutSuffix(strings.ToLower(host), ".onion")
	if !ok {
		return "", false
	}
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		id = id[i+1:] // subdomains of an onion address
	}
	if len(id) != 56 {
		return "", false
	}
	if _, err := b32.DecodeString(strings.ToUpper(id)); err != nil {
		return "", false
	}
	return id, true
}

// FindSocks returns the first address in candidates where something
// accepts connections, or an error saying how to get a tor.
func FindSocks(candidates ...string) (string, error) {
	for _, c := range candidates {
		conn, err := net.DialTimeout("tcp", c, 2*time.Second)
		if err == nil {
			conn.Close()
			return c, nil
		}
	}
	return "", fail(KindUnreachable, "start tor (systemctl start tor) or Tor Browser",
		nil, "no tor SOCKS port found at %s", strings.Join(candidates, " or ")).about(SettingSocks)
}

// AddClientAuth gives this tor a client-authorization key for an onion
// service, so it can reach it.
func (t *Tor) AddClientAuth(onionID string, private [32]byte) error {
	_, err := t.request("ONION_CLIENT_AUTH_ADD %s x25519:%s", onionID, base64.StdEncoding.EncodeToString(private[:]))
	if err != nil {
		return fail(KindControl, "", err, "giving tor the client-authorization key")
	}
	return nil
}

// AuthPrivateLine is the line of a tor ClientOnionAuthDir file
// (NAME.auth_private) that lets a tor reach onionID with private.
func AuthPrivateLine(onionID string, private [32]byte) string {
	return onionID + ":descriptor:x25519:" + b32.EncodeToString(private[:])
}
