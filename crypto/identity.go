package crypto

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/curve25519"
)

// HKDF labels for keys derived from a handler's age secret key. The input key
// material is the canonical (upper-case Bech32) age identity string, the salt
// is empty, and the output is 32 bytes. See docs/protocol.md, "Identities".
const (
	LabelSigningKey = "amana/v1 ed25519 signing key"
	LabelOnionAuth  = "amana/v1 tor client authorization x25519 key"
)

// ErrPassphrase is returned when a protected identity file cannot be opened
// with the passphrase given.
var ErrPassphrase = errors.New("incorrect passphrase")

// ErrNeedPassphrase is returned by ParseIdentityFile when the file is
// passphrase-protected and no passphrase source was given.
var ErrNeedPassphrase = errors.New("identity file is passphrase-protected")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// ValidName reports whether s can name a handler or a desk: 1 to 32 characters
// from a-z, 0-9, '.', '_' and '-', starting with a letter or digit.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Identity is a handler's secret: one age identity from which every other key
// of the handler is derived.
type Identity struct {
	name      string
	secret    string // canonical age identity string
	ageID     age.Identity
	recipient string
	sign      ed25519.PrivateKey
	onionAuth [32]byte
}

// GenerateIdentity makes a new identity. By default it is the post-quantum
// hybrid ML-KEM-768+X25519 age identity; classic selects X25519.
func GenerateIdentity(name string, classic bool) (*Identity, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("invalid name %q: use 1 to 32 characters from a-z, 0-9, '.', '_', '-'", name)
	}
	var secret string
	if classic {
		k, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, fmt.Errorf("generating X25519 identity: %w", err)
		}
		secret = k.String()
	} else {
		k, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, fmt.Errorf("generating hybrid identity: %w", err)
		}
		secret = k.String()
	}
	return NewIdentity(name, secret)
}

// NewIdentity builds an identity from a name and an age secret key string
// (AGE-SECRET-KEY-PQ-1… or AGE-SECRET-KEY-1…).
func NewIdentity(name, secret string) (*Identity, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("invalid name %q: use 1 to 32 characters from a-z, 0-9, '.', '_', '-'", name)
	}
	id := &Identity{name: name}
	switch {
	case strings.HasPrefix(secret, "AGE-SECRET-KEY-PQ-1"):
		k, err := age.ParseHybridIdentity(secret)
		if err != nil {
			return nil, errors.New("malformed post-quantum age secret key")
		}
		id.ageID, id.recipient, id.secret = k, k.Recipient().String(), k.String()
	case strings.HasPrefix(secret, "AGE-SECRET-KEY-1"):
		k, err := age.ParseX25519Identity(secret)
		if err != nil {
			return nil, errors.New("malformed X25519 age secret key")
		}
		id.ageID, id.recipient, id.secret = k, k.Recipient().String(), k.String()
	default:
		return nil, errors.New("not an age secret key: expected AGE-SECRET-KEY-PQ-1… or AGE-SECRET-KEY-1…")
	}
	id.sign = ed25519.NewKeyFromSeed(derive(id.secret, LabelSigningKey))
	copy(id.onionAuth[:], clampX25519(derive(id.secret, LabelOnionAuth)))
	return id, nil
}

func derive(secret, label string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, label, 32)
	if err != nil {
		panic("hkdf: " + err.Error()) // only fails for absurd lengths
	}
	return k
}

func clampX25519(k []byte) []byte {
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
	return k
}

// Name is the handler's name as written in the identity file.
func (id *Identity) Name() string { return id.name }

// Age returns the age identity that opens submissions encrypted to the handler.
func (id *Identity) Age() age.Identity { return id.ageID }

// Recipient is the handler's age recipient (age1pq1… or age1…).
func (id *Identity) Recipient() string { return id.recipient }

// SigningKey is the handler's derived Ed25519 key.
func (id *Identity) SigningKey() ed25519.PrivateKey { return id.sign }

// OnionAuthPrivate is the derived, clamped x25519 private key the handler's
// tor uses for v3 onion client authorization.
func (id *Identity) OnionAuthPrivate() [32]byte { return id.onionAuth }

// Card returns the handler's public card, self-signed.
func (id *Identity) Card() *Card {
	c := &Card{
		Name:      id.name,
		Recipient: id.recipient,
		SignKey:   id.sign.Public().(ed25519.PublicKey),
	}
	pub, err := curve25519.X25519(id.onionAuth[:], curve25519.Basepoint)
	if err != nil {
		panic("x25519: " + err.Error())
	}
	copy(c.OnionAuth[:], pub)
	c.Sig = ed25519.Sign(id.sign, []byte(c.signedText()))
	return c
}

// MarshalSecret is the age secret key string (AGE-SECRET-KEY-…). It is the
// whole secret: never log it, never write it unprotected.
func (id *Identity) MarshalSecret() string { return id.secret }

// MarshalText returns the identity as a standard age identity file: comments
// that age ignores, then the secret key line. It is the plaintext of a key
// file; write it only encrypted or with mode 0600.
func (id *Identity) MarshalText(now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# amana handler identity: keep this file secret and backed up\n")
	fmt.Fprintf(&b, "# created: %s\n", now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# name: %s\n", id.name)
	fmt.Fprintf(&b, "# public key: %s\n", id.recipient)
	fmt.Fprintf(&b, "%s\n", id.secret)
	return b.Bytes()
}

// ProtectIdentityFile encrypts an identity file with a passphrase (age scrypt,
// ASCII-armored), in the form the reference age CLI accepts for -i.
func ProtectIdentityFile(plain []byte, passphrase string) ([]byte, error) {
	if passphrase == "" {
		return nil, errors.New("empty passphrase")
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, fmt.Errorf("preparing passphrase encryption: %w", err)
	}
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, fmt.Errorf("encrypting identity: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("encrypting identity: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypting identity: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("encrypting identity: %w", err)
	}
	return out.Bytes(), nil
}

// IsProtected reports whether an identity file is passphrase-encrypted.
func IsProtected(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return bytes.HasPrefix(t, []byte(armor.Header)) || bytes.HasPrefix(t, []byte("age-encryption.org/"))
}

// ParseIdentityFile reads an identity file, decrypting it first when it is
// passphrase-protected. passphrase is called only then; it may be nil.
func ParseIdentityFile(data []byte, passphrase func() (string, error)) (*Identity, error) {
	if IsProtected(data) {
		if passphrase == nil {
			return nil, ErrNeedPassphrase
		}
		p, err := passphrase()
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		plain, err := unprotect(data, p)
		if err != nil {
			return nil, err
		}
		data = plain
	}
	var name, secret string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "# name: "):
			name = strings.TrimPrefix(line, "# name: ")
		case line == "" || strings.HasPrefix(line, "#"):
		case secret != "":
			return nil, errors.New("identity file holds more than one key")
		default:
			secret = line
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading identity file: %w", err)
	}
	if secret == "" {
		return nil, errors.New("no age secret key found in identity file")
	}
	if name == "" {
		return nil, errors.New(`identity file has no "# name:" line`)
	}
	return NewIdentity(name, secret)
}

func unprotect(data []byte, passphrase string) ([]byte, error) {
	var r io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header)) {
		r = armor.NewReader(bytes.NewReader(bytes.TrimLeft(data, " \t\r\n")))
	}
	si, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("preparing passphrase: %w", err)
	}
	// ProtectIdentityFile uses age's default work factor, 18; refuse files
	// that would make us spend gigabytes of memory.
	si.SetMaxWorkFactor(20)
	dr, err := age.Decrypt(r, si)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) || errors.Is(err, age.ErrIncorrectIdentity) {
			return nil, ErrPassphrase
		}
		return nil, fmt.Errorf("decrypting identity file: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(dr, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("decrypting identity file: %w", err)
	}
	return plain, nil
}
