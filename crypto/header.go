package crypto

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
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

// AgeHeader is what the relay can see of an age file: the stanza types and
// how long the header is. It never learns the file key.
type AgeHeader struct {
	Types []string // one per recipient stanza, in order
	Len   int      // bytes up to and including the MAC line
}

// MaxHeaderLen is the largest age header ReadAgeHeader accepts for n
// recipient stanzas.
func MaxHeaderLen(n int) int { return 256 + n*2048 }

var rawStd = canonicalB64{base64.RawStdEncoding.Strict()}

// ReadAgeHeader parses an age v1 header from r, reading at most max bytes,
// and checks each stanza the relay knows (X25519, mlkem768x25519) has the
// sizes the age spec gives. It consumes the header from r; the payload
// follows in r.
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
		if err := checkStanza(string(args[0]), args[1:], body); err != nil {
			return nil, err
		}
		h.Types = append(h.Types, string(args[0]))
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

// checkStanza checks the sizes of the stanza types Amana uses; other types
// pass here and are refused by CheckTypes.
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
	if len(body) != 32 {
		return fmt.Errorf("%w: %s stanza body has the wrong size", ErrNotAge, typ)
	}
	return nil
}

// CheckTypes checks the header carries exactly the stanzas expected, in any
// order: one per recipient of the category.
func (h *AgeHeader) CheckTypes(want []string) error {
	got := slices.Clone(h.Types)
	w := slices.Clone(want)
	slices.Sort(got)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		return fmt.Errorf("%w: got %d stanzas, want %d", ErrStanzas, len(got), len(w))
	}
	return nil
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
