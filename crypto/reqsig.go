package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RequestScheme is the Authorization scheme of signed handler requests.
const RequestScheme = "Amana-Ed25519"

// requestDomain is the first line of the text a signed request signs.
const requestDomain = "amana-request/v1"

// MaxAuthorizationLen bounds the Authorization header of a signed request.
const MaxAuthorizationLen = 512

// BodySHA256Header is the request header that carries the hex SHA-256 of a
// signed request's body: the hash the signature covers, sent ahead of the
// body so that the relay can check the signature before it reads one body
// byte. It is not signed itself; the relay hashes the body as it reads it
// and refuses a body that does not match.
const BodySHA256Header = "Amana-Body-SHA256"

var (
	errAuth       = errors.New("malformed signed-request authorization")
	errBodySHA256 = errors.New("malformed " + BodySHA256Header + " header")
)

// RequestAuth is the parsed Authorization header of a signed request.
type RequestAuth struct {
	KeyID string // base64url Ed25519 public key
	Time  int64  // Unix seconds
	Nonce string // base64url, 16 random bytes
	Sig   []byte
}

// RequestText is the exact text a handler signs: the domain, the method, the
// path with its query, the hex SHA-256 of the body, the time and the nonce,
// one per line.
func RequestText(method, pathQuery string, bodySHA256 [32]byte, unix int64, nonce string) string {
	return strings.Join([]string{requestDomain, method, pathQuery,
		hex.EncodeToString(bodySHA256[:]), strconv.FormatInt(unix, 10), nonce}, "\n")
}

// SignRequest returns the Authorization header value for a request.
func SignRequest(key ed25519.PrivateKey, method, pathQuery string, body []byte, now time.Time) string {
	var n [16]byte
	rand.Read(n[:])
	return signRequest(key, method, pathQuery, sha256.Sum256(body), now.Unix(), b64.EncodeToString(n[:]))
}

func signRequest(key ed25519.PrivateKey, method, pathQuery string, sum [32]byte, unix int64, nonce string) string {
	sig := ed25519.Sign(key, []byte(RequestText(method, pathQuery, sum, unix, nonce)))
	return fmt.Sprintf("%s key=%s,ts=%d,nonce=%s,sig=%s", RequestScheme,
		b64.EncodeToString(key.Public().(ed25519.PublicKey)), unix, nonce, b64.EncodeToString(sig))
}

// ParseRequestAuth parses an Authorization header value. It checks the form
// only; Verify checks the signature.
func ParseRequestAuth(h string) (*RequestAuth, error) {
	if len(h) > MaxAuthorizationLen {
		return nil, errAuth
	}
	rest, ok := strings.CutPrefix(h, RequestScheme+" ")
	if !ok {
		return nil, errAuth
	}
	f := strings.Split(rest, ",")
	keys := []string{"key", "ts", "nonce", "sig"}
	if len(f) != len(keys) {
		return nil, errAuth
	}
	v := make([]string, len(keys))
	for i, k := range keys {
		if v[i], ok = strings.CutPrefix(f[i], k+"="); !ok {
			return nil, errAuth
		}
	}
	a := &RequestAuth{KeyID: v[0], Nonce: v[2]}
	if k, err := b64.DecodeString(a.KeyID); err != nil || len(k) != ed25519.PublicKeySize {
		return nil, errAuth
	}
	ts, err := strconv.ParseInt(v[1], 10, 64)
	if err != nil || ts <= 0 || strconv.FormatInt(ts, 10) != v[1] {
		return nil, errAuth
	}
	a.Time = ts
	if n, err := b64.DecodeString(a.Nonce); err != nil || len(n) != 16 {
		return nil, errAuth
	}
	if a.Sig, err = b64.DecodeString(v[3]); err != nil || len(a.Sig) != ed25519.SignatureSize {
		return nil, errAuth
	}
	return a, nil
}

// BodySHA256 returns the BodySHA256Header value for body: the SHA-256 in 64
// lowercase hex digits.
func BodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// ParseBodySHA256 parses a BodySHA256Header value. It accepts exactly 64
// lowercase hex digits and nothing else: no upper case, no space, no prefix.
func ParseBodySHA256(v string) ([32]byte, error) {
	var sum [32]byte
	if len(v) != hex.EncodedLen(len(sum)) || strings.Trim(v, "0123456789abcdef") != "" {
		return sum, errBodySHA256
	}
	if _, err := hex.Decode(sum[:], []byte(v)); err != nil {
		return sum, errBodySHA256
	}
	return sum, nil
}

// Verify checks the signature over the request. It does not check the time
// window or replays, which need state the caller keeps.
func (a *RequestAuth) Verify(method, pathQuery string, bodySHA256 [32]byte) bool {
	pub, err := b64.DecodeString(a.KeyID)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, []byte(RequestText(method, pathQuery, bodySHA256, a.Time, a.Nonce)), a.Sig)
}
