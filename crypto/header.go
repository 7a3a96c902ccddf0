package crypto

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Header check errors. Each wraps ErrNotAge.
var (
	// ErrNotAge: the body is not an age v1 file.
	ErrNotAge = errors.New("body is not an age file")
	// ErrStanzas: the age header's recipients are not those the category implies.
	ErrStanzas = fmt.Errorf("%w for this category: wrong recipient stanzas", ErrNotAge)
)

const (
	ageIntro       = "age-encryption.org/v1"
	maxStanzaArgs  = 4
	maxHeaderLine  = 2048
	stanzaBodyLine = 64
)

// Grease bounds (protocol §9.2): a header may carry at most MaxGrease grease
// stanzas, each with a first line (type and arguments, after "-> ") of at
// most MaxGreaseLine bytes and a body of at most MaxGreaseBody bytes once
// decoded. rage writes one with a line of at most 51 bytes and a body of at
// most 99. A grease-named stanza past these bounds counts as a foreign
// stanza, which CheckTypes refuses.
const (
	MaxGrease     = 4
	MaxGreaseLine = 128
	MaxGreaseBody = 128
)

// AgeHeader is what the relay can see of an age file: the stanza types and
// how long the header is. It never learns the file key.
type AgeHeader struct {
	Types  []string // one per stanza that is not grease, in order
	Grease int      // grease stanzas skipped, at most MaxGrease
	Len    int      // bytes up to and including the MAC line
}

// MaxHeaderLen is the largest age header ReadAgeHeader accepts for n
// recipient stanzas.
func MaxHeaderLen(n int) int { return 256 + n*2048 }

var rawStd = canonicalB64{base64.RawStdEncoding.Strict()}

// ReadAgeHeader parses an age v1 header from r, reading at most max bytes,
// and checks each stanza the relay knows (X25519, mlkem768x25519) has the
// sizes the age spec gives and an X25519 share that is not a low-order
// point. Grease stanzas (IsGrease) within the bounds are counted, not
// listed in Types. It consumes the header from r; the payload follows in r.
func ReadAgeHeader(r *bufio.Reader, max int) (*AgeHeader, error) {
	h := &AgeHeader{}
	line := func() ([]byte, error) {
		var l []byte
		for {
			frag, err := r.ReadSlice('\n')
			l = append(l, frag...)
			if h.Len+len(l) > max || len(l) > maxHeaderLine {
				return nil, fmt.Errorf("%w: header too long", ErrNotAge)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%w: header truncated", ErrNotAge)
			}
			h.Len += len(l)
			return l[:len(l)-1], nil
		}
	}
	l, err := line()
	if err != nil {
		return nil, err
	}
	if string(l) != ageIntro {
		return nil, fmt.Errorf("%w: missing %q line", ErrNotAge, ageIntro)
	}
	l, err = line()
	for err == nil {
		if mac, ok := bytes.CutPrefix(l, []byte("--- ")); ok {
			if b, err := rawStd.DecodeString(string(mac)); err != nil || len(b) != 32 {
				return nil, fmt.Errorf("%w: bad header MAC", ErrNotAge)
			}
			if len(h.Types) == 0 {
				return nil, fmt.Errorf("%w: no recipient stanzas", ErrNotAge)
			}
			return h, nil
		}
		s, ok := bytes.CutPrefix(l, []byte("-> "))
		if !ok {
			return nil, fmt.Errorf("%w: malformed stanza", ErrNotAge)
		}
		args := bytes.Split(s, []byte(" "))
		if len(args) > maxStanzaArgs+1 {
			return nil, fmt.Errorf("%w: too many stanza arguments", ErrNotAge)
		}
		for _, a := range args {
			if !validArg(a) {
				return nil, fmt.Errorf("%w: malformed stanza argument", ErrNotAge)
			}
		}
		var body []byte
		for {
			bl, err := line()
			if err != nil {
				return nil, err
			}
			if len(bl) > stanzaBodyLine {
				return nil, fmt.Errorf("%w: stanza body line too long", ErrNotAge)
			}
			b, err := rawStd.DecodeString(string(bl))
			if err != nil {
				return nil, fmt.Errorf("%w: stanza body is not base64", ErrNotAge)
			}
			body = append(body, b...)
			if len(bl) < stanzaBodyLine {
				break
			}
		}
		typ := string(args[0])
		if err := checkStanza(typ, args[1:], body); err != nil {
			return nil, err
		}
		if IsGrease(typ) && h.Grease < MaxGrease && len(s) <= MaxGreaseLine && len(body) <= MaxGreaseBody {
			h.Grease++
		} else {
			h.Types = append(h.Types, typ)
		}
		l, err = line()
	}
	return nil, err
}

func validArg(a []byte) bool {
	if len(a) == 0 {
		return false
	}
	for _, c := range a {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// IsGrease reports whether a stanza type declares itself grease: "grease"
// (as the age test vectors write it) or a name ending in "-grease" (as rage
// writes it: up to 8 random characters, then "-grease"). No age recipient
// type has such a name, so a recipient stanza (X25519, mlkem768x25519,
// scrypt, an SSH or plugin type, in any letter case) is never grease: it
// stays in Types for CheckTypes. What a grease stanza's bytes mean is not
// checked: a sender can hide a key for a reader of their own in one (an age
// plugin sees every stanza), within MaxGrease, MaxGreaseLine and
// MaxGreaseBody; protocol.md §9.2 says so.
func IsGrease(typ string) bool {
	return typ == "grease" || (strings.HasSuffix(typ, "-grease") && len(typ) > len("-grease"))
}

// checkStanza checks the sizes of the stanza types Amana uses, and that
// their X25519 share is not a low-order point; other types pass here and
// are refused by CheckTypes unless they are grease.
func checkStanza(typ string, args [][]byte, body []byte) error {
	var argLen int
	switch typ {
	case StanzaX25519:
		argLen = 32
	case StanzaHybrid:
		argLen = 1088 + 32 // ML-KEM-768 ciphertext and X25519 share
	default:
		return nil
	}
	if len(args) != 1 {
		return fmt.Errorf("%w: %s stanza needs one argument", ErrNotAge, typ)
	}
	a, err := rawStd.DecodeString(string(args[0]))
	if err != nil || len(a) != argLen {
		return fmt.Errorf("%w: %s stanza argument has the wrong size", ErrNotAge, typ)
	}
	if LowOrderX25519(a[argLen-32:]) {
		return fmt.Errorf("%w: %s stanza share is a low-order point", ErrNotAge, typ)
	}
	if len(body) != 32 {
		return fmt.Errorf("%w: %s stanza body has the wrong size", ErrNotAge, typ)
	}
	return nil
}

// x25519Probe is a fixed X25519 scalar. It is public: it only tests
// points, and every clamped scalar is a multiple of the cofactor 8, so it
// maps a point to zero exactly when the point has small order.
var x25519Probe = func() *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		panic(err)
	}
	return k
}()

// LowOrderX25519 reports whether a 32-byte X25519 share is a point of small
// order (on the curve or its twist, in any encoding, the top bit ignored as
// X25519 does): with it every recipient's shared secret is all zeros, which
// age refuses, so such a stanza can open for no one. The share is public;
// this need not run in constant time.
func LowOrderX25519(share []byte) bool {
	p, err := ecdh.X25519().NewPublicKey(share)
	if err != nil {
		return true
	}
	_, err = x25519Probe.ECDH(p)
	return err != nil
}

// CheckTypes checks the header carries exactly the stanzas expected, in any
// order: one per recipient of the category.
func (h *AgeHeader) CheckTypes(want []string) error {
	got := slices.Clone(h.Types)
	w := slices.Clone(want)
	slices.Sort(got)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		return fmt.Errorf("%w: got %d stanzas, %d of them expected, want %d", ErrStanzas, len(got), matched(got, w), len(w))
	}
	return nil
}

// matched counts the stanzas of got that pair with one of want, both sorted.
func matched(got, want []string) int {
	n := 0
	for i, j := 0, 0; i < len(got) && j < len(want); {
		switch {
		case got[i] == want[j]:
			n, i, j = n+1, i+1, j+1
		case got[i] < want[j]:
			i++
		default:
			j++
		}
	}
	return n
}

// CheckAgePayload checks an age payload of n bytes (everything after the
// header) could be a complete STREAM: a 16-byte nonce and chunks of 64 KiB
// plus tag, the last one non-empty unless it is the only one. A truncated or
// padded upload fails.
func CheckAgePayload(n int64) error {
	const full = 64<<10 + 16
	body := n - 16
	if body < 16 {
		return fmt.Errorf("%w: payload truncated", ErrNotAge)
	}
	last := body % full
	if last == 0 || last > 16 || body == 16 {
		return nil
	}
	return fmt.Errorf("%w: payload length is not a whole STREAM", ErrNotAge)
}
