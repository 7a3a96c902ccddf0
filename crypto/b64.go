package crypto

import (
	"encoding/base64"
	"errors"
	"strings"
)

// canonicalB64 decodes base64 in exactly one spelling. Go's decoder skips
// '\r' and '\n' anywhere in its input even in Strict mode, so without this
// check "AB\rCD" and "ABCD" decode to the same bytes: two spellings of one
// key, nonce, signature or token. The age reference implementation refuses
// them for the same reason.
type canonicalB64 struct{ enc *base64.Encoding }

var errB64LineBreak = errors.New("base64 contains a line break")

func (c canonicalB64) EncodeToString(b []byte) string { return c.enc.EncodeToString(b) }

func (c canonicalB64) DecodeString(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errB64LineBreak
	}
	return c.enc.DecodeString(s)
}

// LookupTokenLen is the length of a receipt's lookup token as the relay
// sees it: 32 bytes in unpadded base64url.
const LookupTokenLen = 43

// DecodeLookupToken reads a mailbox lookup token in its one canonical
// spelling, 43 characters of unpadded base64url.
func DecodeLookupToken(s string) ([]byte, bool) {
	if len(s) != LookupTokenLen {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	return b, err == nil && len(b) == 32
}
