package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode"
)

// ReceiptWords is the number of words in a receipt: 128 bits of entropy
// and a 4-bit checksum, 11 bits a word.
const ReceiptWords = 12

// ReceiptDigits is the number of digits in a receipt's digit form: 39 for
// the 128 bits, 5 from their SHA-256 and a Damm check digit, written in
// groups of ReceiptDigitGroup.
const (
	ReceiptDigits     = 45
	ReceiptDigitGroup = 5
	receiptValue      = 39
	receiptHash       = 5
)

// HKDF labels for what a receipt derives. The input key material is the
// receipt's 16 entropy bytes, the salt is empty, the output 32 bytes. See
// docs/protocol.md, "Receipts".
const (
	LabelLookupToken = "amana/v1 receipt lookup token"
	LabelReplyKey    = "amana/v1 receipt reply key"
)

// ErrReceipt: the words or digits are not a receipt (a word is unknown,
// one is missing, a digit is missing, or the checksum fails because of a
// typo).
var ErrReceipt = errors.New("not a valid receipt")

//go:embed receipt-words.txt
var wordFile string

// Wordlist is the published list receipts are written in: BIP-39's
// English list, 2048 words, each identified by its first four letters.
var Wordlist = strings.Fields(wordFile)

var wordIndex = func() map[string]int {
	m := map[string]int{}
	for i, w := range Wordlist {
		m[w] = i
		if len(w) > 4 {
			m[w[:4]] = i
		}
	}
	return m
}()

// Receipt is what a submitter keeps: it reaches their mailbox and opens the
// desk's replies. It is never stored anywhere by Amana.
type Receipt struct {
	entropy [16]byte
}

// NewReceipt makes a fresh receipt.
func NewReceipt() *Receipt {
	r := &Receipt{}
	rand.Read(r.entropy[:])
	return r
}

// ReceiptFromEntropy builds the receipt of 16 entropy bytes (for tests and
// test vectors).
func ReceiptFromEntropy(e [16]byte) *Receipt { return &Receipt{entropy: e} }

// Words spells the receipt: 12 words, separated by spaces.
func (r *Receipt) Words() string {
	sum := sha256.Sum256(r.entropy[:])
	bits := append(r.entropy[:], sum[0]&0xf0)
	words := make([]string, ReceiptWords)
	for i := range words {
		idx := 0
		for j := 0; j < 11; j++ {
			bit := i*11 + j
			idx = idx<<1 | int(bits[bit/8]>>(7-uint(bit%8))&1)
		}
		words[i] = Wordlist[idx]
	}
	return strings.Join(words, " ")
}

// ParseReceipt reads a receipt as people type it, in either form: its
// words (parseWords) or its digits (parseDigits). Input with a letter in it
// is read as words, input with digits and no letters as digits.
func ParseReceipt(s string) (*Receipt, error) {
	letters, digits := false, false
	for _, c := range s {
		if _, ok := digitValue(c); ok {
			digits = true
		} else if unicode.IsLetter(c) {
			letters = true
		}
	}
	switch {
	case letters && digits:
		return nil, fmt.Errorf("%w: it mixes letters and digits; give either the %d words or the %d digits", ErrReceipt, ReceiptWords, ReceiptDigits)
	case digits:
		return parseDigits(s)
	}
	return parseWords(s)
}

// parseWords reads a receipt's words: any case, words separated by spaces,
// hyphens, commas or new lines, each word whole or its first four letters.
// A typo anywhere makes the checksum fail.
func parseWords(s string) (*Receipt, error) {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ' ' || r == '-' || r == ',' || r == '.' || r == '\n' || r == '\r' || r == '\t'
	})
	if len(f) != ReceiptWords {
		return nil, fmt.Errorf("%w: it has %d words, not %d", ErrReceipt, len(f), ReceiptWords)
	}
	var bits [17]byte
	for i, w := range f {
		idx, ok := wordIndex[w]
		if !ok && len(w) > 4 {
			idx, ok = wordIndex[w[:4]]
		}
		if !ok {
			return nil, fmt.Errorf("%w: word %d, %q, is not in the list", ErrReceipt, i+1, w)
		}
		for j := 0; j < 11; j++ {
			if idx>>(10-uint(j))&1 == 1 {
				bit := i*11 + j
				bits[bit/8] |= 1 << (7 - uint(bit%8))
			}
		}
	}
	r := &Receipt{}
	copy(r.entropy[:], bits[:16])
	sum := sha256.Sum256(r.entropy[:])
	if sum[0]&0xf0 != bits[16] {
		return nil, fmt.Errorf("%w: check the words; one of them is mistyped", ErrReceipt)
	}
	return r, nil
}

// Digits spells the receipt as 45 digits, 9 groups of 5 separated by
// spaces: the 16 bytes as a 39-digit decimal number, then 6 check digits
// from their SHA-256 (docs/protocol.md, "Receipts").
func (r *Receipt) Digits() string {
	d := r.digitString()
	var b strings.Builder
	for i := 0; i < len(d); i += ReceiptDigitGroup {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(d[i : i+ReceiptDigitGroup])
	}
	return b.String()
}

// digitString is the 45 digits, ungrouped.
func (r *Receipt) digitString() string {
	n := new(big.Int).SetBytes(r.entropy[:])
	d := fmt.Sprintf("%0*s%s", receiptValue, n.String(), hashDigits(r.entropy))
	return d + string('0'+damm(d))
}

// hashDigits is the 5 digits of e's SHA-256: its first 8 bytes, as a
// big-endian unsigned integer, modulo 10^5, zero-padded.
func hashDigits(e [16]byte) string {
	sum := sha256.Sum256(e[:])
	var v uint64
	for _, b := range sum[:8] {
		v = v<<8 | uint64(b)
	}
	return fmt.Sprintf("%0*d", receiptHash, v%100_000)
}

// dammTable is H. Michael Damm's totally anti-symmetric quasigroup of
// order 10: with it one check digit catches every single wrong digit and
// every swap of two different neighbouring digits.
var dammTable = [10][10]byte{
	{0, 3, 1, 7, 5, 9, 8, 6, 4, 2},
	{7, 0, 9, 2, 1, 5, 4, 8, 6, 3},
	{4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
	{1, 7, 5, 0, 9, 8, 3, 4, 2, 6},
	{6, 1, 2, 3, 0, 4, 5, 9, 7, 8},
	{3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
	{5, 8, 6, 9, 7, 2, 0, 1, 3, 4},
	{8, 9, 4, 5, 3, 6, 2, 0, 1, 7},
	{9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
	{2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
}

// damm is the Damm check digit of the ASCII digits d; it is 0 for digits
// that end in their own check digit.
func damm(d string) byte {
	var i byte
	for _, c := range []byte(d) {
		i = dammTable[i][c-'0']
	}
	return i
}

// digitValue is the value of an ASCII, Arabic-Indic (U+0660–U+0669) or
// Extended Arabic-Indic (Persian, U+06F0–U+06F9) digit.
func digitValue(c rune) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return byte(c - '0'), true
	case c >= '\u0660' && c <= '\u0669':
		return byte(c - '\u0660'), true
	case c >= '\u06f0' && c <= '\u06f9':
		return byte(c - '\u06f0'), true
	}
	return 0, false
}

// digitSeparator reports whether c may stand between a receipt's digits:
// white space, dashes, invisible format characters (such as the bidi marks
// a right-to-left page or keyboard adds), and . , / _ and the Arabic comma,
// decimal separator, thousands separator and full stop.
func digitSeparator(c rune) bool {
	switch c {
	case '.', ',', '/', '_', '\u060c', '\u066b', '\u066c', '\u06d4':
		return true
	}
	return unicode.In(c, unicode.White_Space, unicode.Pd, unicode.Cf)
}

// parseDigits reads a receipt's digits: ASCII, Arabic-Indic or Persian
// digits, mixed freely, with any separators (digitSeparator) anywhere. The
// Damm digit catches every mistyped digit and every swap of neighbours; the
// 5 hash digits catch what else goes wrong, save one time in 100,000.
func parseDigits(s string) (*Receipt, error) {
	d := make([]byte, 0, ReceiptDigits)
	n := 0
	for _, c := range s {
		if v, ok := digitValue(c); ok {
			n++
			if len(d) < ReceiptDigits {
				d = append(d, '0'+v)
			}
			continue
		}
		if !digitSeparator(c) {
			return nil, fmt.Errorf("%w: %q is not a digit", ErrReceipt, c)
		}
	}
	if n != ReceiptDigits {
		return nil, fmt.Errorf("%w: it has %d digits, not %d", ErrReceipt, n, ReceiptDigits)
	}
	if damm(string(d)) != 0 {
		return nil, fmt.Errorf("%w: check the digits; one of them is mistyped, or two next to each other are swapped", ErrReceipt)
	}
	v, _ := new(big.Int).SetString(string(d[:receiptValue]), 10)
	if v.BitLen() > 128 {
		return nil, fmt.Errorf("%w: check the digits; some of them are mistyped", ErrReceipt)
	}
	r := &Receipt{}
	v.FillBytes(r.entropy[:])
	if string(d[receiptValue:receiptValue+receiptHash]) != hashDigits(r.entropy) {
		return nil, fmt.Errorf("%w: check the digits; some of them are mistyped", ErrReceipt)
	}
	return r, nil
}

// Token is the mailbox lookup token the submitter's client shows the relay.
func (r *Receipt) Token() []byte { return derive(string(r.entropy[:]), LabelLookupToken) }

// MailboxID is the ID of the receipt's mailbox: what the relay files replies
// under and what the submission's report.json names in "mailbox".
func (r *Receipt) MailboxID() string { return MailboxOf(r.Token()) }

// MailboxOf is the mailbox ID of a lookup token: the relay computes it and
// stores nothing else of the token.
func MailboxOf(token []byte) string {
	h := sha256.Sum256(append([]byte("amana mailbox v1\n"), token...))
	return hex.EncodeToString(h[:16])
}

// ReplyIdentity is the age identity that opens the desk's replies: the
// derived seed used as a hybrid ML-KEM-768+X25519 key for a post-quantum
// desk, or as an X25519 key for a classic one.
func (r *Receipt) ReplyIdentity(postQuantum bool) (*Identity, error) {
	seed := derive(string(r.entropy[:]), LabelReplyKey)
	var secret string
	if postQuantum {
		secret = bech32Encode("AGE-SECRET-KEY-PQ-", seed)
	} else {
		secret = bech32Encode("AGE-SECRET-KEY-", seed)
	}
	return NewIdentity("submitter", secret)
}
