package crypto

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// LabelFileKeyCache is the HKDF label of the local key that seals the file
// keys a handler's case store keeps (see FileKeyCache).
const LabelFileKeyCache = "amana/v1 case file key cache"

// fileKeyCacheVersion starts every sealed file key; anything else (the
// earlier "fk1:", bound to the case ID alone, among others) is not one, and
// opening falls back to the identity.
const fileKeyCacheVersion = "fk2:"

// fileKeySize is the size of an age file key.
const fileKeySize = 16

// ErrCachedKey: a sealed file key does not open for this case under this
// identity (another identity's, another case's, altered, or malformed).
var ErrCachedKey = errors.New("cached file key does not open")

// FileKeyCache seals and opens the age file keys of a handler's cases under
// a local symmetric key, so that a case the pull already decrypted is opened
// again without a second public-key decryption. The key is HKDF-SHA256 of
// the identity's canonical age secret key string (as the signing key is)
// with the label LabelFileKeyCache; each file key is sealed with
// XChaCha20-Poly1305 (a random 24-byte nonce) with the case ID and the
// SHA-256 of its ciphertext (as the case's metadata records it) as
// associated data, so a sealed key moved to another case, or kept for a
// case whose recorded file changed, does not open. An opened key
// is only given to age as an identity: age checks the header's MAC with it,
// so a wrong key cannot decrypt anything. It never writes anything itself.
type FileKeyCache struct {
	aead cipher.AEAD
}

// NewFileKeyCache derives the cache key of an age identity: a post-quantum
// hybrid or X25519 one, the kinds a handler's identity has. For any other
// kind (ok false) nothing is cached and cases are opened with the identity.
func NewFileKeyCache(id age.Identity) (c *FileKeyCache, ok bool) {
	var secret string
	switch k := id.(type) {
	case *age.HybridIdentity:
		secret = k.String()
	case *age.X25519Identity:
		secret = k.String()
	default:
		return nil, false
	}
	aead, err := chacha20poly1305.NewX(derive(secret, LabelFileKeyCache))
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	return &FileKeyCache{aead: aead}, true
}

// fileKeyAD binds a sealed file key to one case and one ciphertext. Both
// parts are NUL-free text (a hex ID and a hex SHA-256 in a case store), and
// the NULs keep any two pairs apart.
func fileKeyAD(caseID, sha256 string) []byte {
	return []byte(LabelFileKeyCache + "\x00" + caseID + "\x00" + sha256)
}

// Seal returns fileKey sealed for case caseID whose ciphertext has SHA-256
// sha256 (hex, as the case's metadata records it), as text for the case's
// metadata.
func (c *FileKeyCache) Seal(caseID, sha256 string, fileKey []byte) string {
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(fileKey)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return fileKeyCacheVersion + base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, fileKey, fileKeyAD(caseID, sha256)))
}

// Identity opens a file key sealed for case caseID with ciphertext SHA-256
// sha256 and returns an age identity that gives it for any header; age then
// checks the header's MAC with it.
func (c *FileKeyCache) Identity(caseID, sha256, sealed string) (age.Identity, error) {
	rest, ok := strings.CutPrefix(sealed, fileKeyCacheVersion)
	if !ok {
		return nil, ErrCachedKey
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != c.aead.NonceSize()+fileKeySize+c.aead.Overhead() {
		return nil, ErrCachedKey
	}
	key, err := c.aead.Open(nil, b[:c.aead.NonceSize()], b[c.aead.NonceSize():], fileKeyAD(caseID, sha256))
	if err != nil {
		return nil, ErrCachedKey
	}
	return age.NewInjectedFileKeyIdentity(key), nil
}

// Capture wraps id so that the file key it unwraps is kept: after a
// decryption with it succeeds (age has checked the header's MAC), Key
// returns that file key.
func Capture(id age.Identity) *CapturingIdentity { return &CapturingIdentity{id: id} }

// CapturingIdentity is an age identity that keeps the file key its inner
// identity unwrapped. Use one per file.
type CapturingIdentity struct {
	id  age.Identity
	key []byte
}

// Unwrap implements age.Identity.
func (c *CapturingIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	k, err := c.id.Unwrap(stanzas)
	if err != nil {
		return nil, err
	}
	if len(k) != fileKeySize {
		return nil, fmt.Errorf("unwrapped file key has %d bytes", len(k))
	}
	c.key = k
	return k, nil
}

// Key is the file key unwrapped last, nil if none. Trust it only after the
// decryption it came from succeeded.
func (c *CapturingIdentity) Key() []byte { return c.key }
