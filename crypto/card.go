package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
)

// CardPrefix starts every handler card line.
const CardPrefix = "amana-card/v1"

// MaxCardLen bounds a card line; a post-quantum recipient is about 2 KB.
const MaxCardLen = 4096

var (
	b64  = canonicalB64{base64.RawURLEncoding.Strict()}
	b32  = base32.StdEncoding.WithPadding(base32.NoPadding)
	errC = errors.New("malformed handler card")
)

// Card is a handler's public card: everything a desk needs to route
// submissions to the handler and to check the handler's requests. It is
// self-signed with the handler's Ed25519 key, so it cannot be altered.
type Card struct {
	Name      string
	Recipient string            // age recipient: age1pq1… or age1…
	SignKey   ed25519.PublicKey // verifies the handler's requests
	OnionAuth [32]byte          // x25519 public key for onion client authorization
	Sig       []byte
}

func (c *Card) signedText() string {
	return fmt.Sprintf("%s name=%s age=%s ed25519=%s onion-auth=%s",
		CardPrefix, c.Name, c.Recipient, b64.EncodeToString(c.SignKey), b32.EncodeToString(c.OnionAuth[:]))
}

// String is the card's single-line text form.
func (c *Card) String() string {
	return c.signedText() + " sig=" + b64.EncodeToString(c.Sig)
}

// The age stanza types a desk's recipients produce.
const (
	StanzaHybrid = "mlkem768x25519" // post-quantum ML-KEM-768 + X25519
	StanzaX25519 = "X25519"
)

// PostQuantumRecipient reports whether an age recipient string is the
// hybrid ML-KEM one: the one place Amana decides that from a recipient.
func PostQuantumRecipient(r string) bool { return strings.HasPrefix(r, "age1pq1") }

// ParseRecipient parses an age recipient of either kind a desk may use.
func ParseRecipient(r string) (age.Recipient, error) {
	if PostQuantumRecipient(r) {
		return age.ParseHybridRecipient(r)
	}
	return age.ParseX25519Recipient(r)
}

// StanzaType is the age stanza type that encrypting to this card produces.
func (c *Card) StanzaType() string {
	if PostQuantumRecipient(c.Recipient) {
		return StanzaHybrid
	}
	return StanzaX25519
}

// PostQuantum reports whether the card's recipient is the hybrid ML-KEM one.
func (c *Card) PostQuantum() bool { return PostQuantumRecipient(c.Recipient) }

// AgeRecipient parses the card's age recipient.
func (c *Card) AgeRecipient() (age.Recipient, error) { return ParseRecipient(c.Recipient) }

// KeyID is the handler's key identifier in requests and routes: the
// base64url Ed25519 public key.
func (c *Card) KeyID() string { return b64.EncodeToString(c.SignKey) }

// Fingerprint is a short, speakable digest of the card, for comparing aloud.
func (c *Card) Fingerprint() string {
	return digits(sha256.Sum256([]byte("amana card fingerprint v1\n" + c.signedText())))
}

// KeyFingerprint is the speakable digest of an Ed25519 public key. A desk's
// fingerprint is the KeyFingerprint of the key that signs its manifests.
func KeyFingerprint(pub ed25519.PublicKey) string {
	return digits(sha256.Sum256(append([]byte("amana key fingerprint v1\n"), pub...)))
}

// digits renders the first 30 bytes of a digest as six groups of five
// decimal digits, each group from five bytes taken modulo 100000.
func digits(sum [32]byte) string {
	var groups []string
	for i := 0; i < 6; i++ {
		var b [8]byte
		copy(b[3:], sum[i*5:i*5+5])
		groups = append(groups, fmt.Sprintf("%05d", binary.BigEndian.Uint64(b[:])%100000))
	}
	return strings.Join(groups, " ")
}

// ParseCard parses and verifies a card line.
func ParseCard(s string) (*Card, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxCardLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", errC, MaxCardLen)
	}
	f := strings.Split(s, " ")
	keys := []string{"name", "age", "ed25519", "onion-auth", "sig"}
	if len(f) != len(keys)+1 || f[0] != CardPrefix {
		return nil, fmt.Errorf("%w: expected %q and %d fields", errC, CardPrefix, len(keys))
	}
	v := make([]string, len(keys))
	for i, k := range keys {
		val, ok := strings.CutPrefix(f[i+1], k+"=")
		if !ok {
			return nil, fmt.Errorf("%w: field %d is not %s=", errC, i+1, k)
		}
		v[i] = val
	}
	c := &Card{Name: v[0], Recipient: v[1]}
	if !ValidName(c.Name) {
		return nil, fmt.Errorf("%w: invalid name", errC)
	}
	if _, err := c.AgeRecipient(); err != nil || !strings.HasPrefix(c.Recipient, "age1") {
		return nil, fmt.Errorf("%w: invalid age recipient", errC)
	}
	pub, err := b64.DecodeString(v[2])
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: invalid ed25519 key", errC)
	}
	c.SignKey = pub
	oa, err := b32.DecodeString(v[3])
	if err != nil || len(oa) != 32 {
		return nil, fmt.Errorf("%w: invalid onion-auth key", errC)
	}
	copy(c.OnionAuth[:], oa)
	c.Sig, err = b64.DecodeString(v[4])
	if err != nil || len(c.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: invalid signature encoding", errC)
	}
	if !ed25519.Verify(c.SignKey, []byte(c.signedText()), c.Sig) {
		return nil, fmt.Errorf("%w: signature does not verify", errC)
	}
	// Decoders tolerate some variants (base32 trailing bits);
	// only the one canonical spelling of a card is accepted.
	if c.String() != s {
		return nil, fmt.Errorf("%w: not in canonical form", errC)
	}
	return c, nil
}
