package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ReceiptWords is the number of words in a receipt: 128 bits of entropy
// and a 4-bit checksum, 11 bits a word.
const ReceiptWords = 12

// HKDF labels for what a receipt derives. The input key material is the
// receipt's 16 entropy bytes, the salt is empty, the output 32 bytes. See
// docs/protocol.md, "Receipts".
const (
	LabelLookupToken = "amana/v1 receipt lookup token"
	LabelReplyKey    = "amana/v1 receipt reply key"
)

// ErrReceipt: the words are not a receipt (a word is unknown, one is
// missing, or the checksum fails because of a typo).
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

// ParseReceipt reads a receipt as people type it: any case, words separated
// by spaces, hyphens, commas or new lines, each word whole or its first
// four letters. A typo anywhere makes the checksum fail.
func ParseReceipt(s string) (*Receipt, error) {
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
