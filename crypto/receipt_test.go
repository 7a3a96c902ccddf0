package crypto

import (
	"errors"
	"strings"
	"testing"
)

// TestReceiptDigits: the digit form of fresh receipts parses back to the
// same secret as the words, in every script the parser takes, and each
// mistake is refused with an error that says what to check.
func TestReceiptDigits(t *testing.T) {
	for i := 0; i < 200; i++ {
		r := NewReceipt()
		d := r.Digits()
		if len(d) != ReceiptDigits+ReceiptDigits/ReceiptDigitGroup-1 || strings.Count(d, " ") != ReceiptDigits/ReceiptDigitGroup-1 {
			t.Fatalf("digits %q: not 9 groups of 5", d)
		}
		for _, in := range []string{d, toScript(d, '\u0660'), toScript(d, '\u06f0'), "\u2067" + strings.ReplaceAll(d, " ", "\n") + "\u2069"} {
			p, err := ParseReceipt(in)
			if err != nil {
				t.Fatalf("ParseReceipt(%q): %v", in, err)
			}
			if p.Words() != r.Words() || p.Digits() != d {
				t.Fatalf("ParseReceipt(%q) gives %q, want %q", in, p.Words(), r.Words())
			}
		}
	}
	r := ReceiptFromEntropy([16]byte{0x8a, 0x3f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb, 0xc, 0xfe})
	d := r.Digits()
	for _, c := range []struct {
		name, in, msg string
	}{
		{"too few", d[:len(d)-1], "it has 44 digits, not 45"},
		{"too many", d + " 0", "it has 46 digits, not 45"},
		{"a wrong digit", "2" + d[1:], "one of them is mistyped"},
		{"a wrong check digit", d[:len(d)-1] + "0", "one of them is mistyped"},
		{"letters and digits", d + " wool", "mixes letters and digits"},
		{"a symbol", d + " #", `'#' is not a digit`},
		{"empty", "", "it has 0 words"},
		{"out of range", "99999 99999 99999 99999 99999 99999 99999 99999 99999", "some of them are mistyped"},
		{"two swapped", d[:1] + d[2:3] + d[1:2] + d[3:], "two next to each other are swapped"},
		{"passes Damm, not the hash", rehash("2" + d[1:]), "some of them are mistyped"},
	} {
		_, err := ParseReceipt(c.in)
		if !errors.Is(err, ErrReceipt) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: ParseReceipt(%q) = %v, want ErrReceipt saying %q", c.name, c.in, err, c.msg)
		}
	}
}

// TestReceiptDigitChecksum: every single-digit change and every swap of two
// different neighbouring digits is refused, as the Damm digit guarantees.
func TestReceiptDigitChecksum(t *testing.T) {
	for i := 0; i < 50; i++ {
		flat := strings.ReplaceAll(NewReceipt().Digits(), " ", "")
		for j := 0; j < len(flat); j++ {
			for k := byte(1); k < 10; k++ {
				b := []byte(flat)
				b[j] = '0' + (b[j]-'0'+k)%10
				if _, err := ParseReceipt(string(b)); err == nil {
					t.Fatalf("%s: digit %d changed to %c is accepted", flat, j+1, b[j])
				}
			}
			if j+1 < len(flat) && flat[j] != flat[j+1] {
				b := []byte(flat)
				b[j], b[j+1] = b[j+1], b[j]
				if _, err := ParseReceipt(string(b)); err == nil {
					t.Fatalf("%s: digits %d and %d swapped are accepted", flat, j+1, j+2)
				}
			}
		}
	}
}

func toScript(s string, zero rune) string {
	return strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return zero + c - '0'
		}
		return c
	}, s)
}

// rehash gives the digits d (with spaces) a Damm digit that passes.
func rehash(d string) string {
	flat := strings.ReplaceAll(d, " ", "")[:ReceiptDigits-1]
	return flat + string('0'+damm(flat))
}
