package crypto

import (
	"encoding/hex"
	"strings"
	"testing"
)

func checkIdentityVector(t *testing.T, v *vector) {
	id, err := NewIdentity(v.get("name"), v.get("secret"))
	if err != nil {
		t.Fatal(err)
	}
	oa := id.OnionAuthPrivate()
	c := id.Card()
	for k, got := range map[string]string{
		"recipient":          id.Recipient(),
		"ed25519-public":     b64.EncodeToString(c.SignKey),
		"onion-auth-private": b32.EncodeToString(oa[:]),
		"onion-auth-public":  b32.EncodeToString(c.OnionAuth[:]),
		"card":               c.String(),
		"card-fingerprint":   c.Fingerprint(),
		"key-fingerprint":    KeyFingerprint(c.SignKey),
	} {
		if want := v.get(k); got != want {
			t.Errorf("%s:\n got %s\nwant %s", k, got, want)
		}
	}
	if _, err := ParseCard(v.get("card")); err != nil {
		t.Errorf("card does not parse: %v", err)
	}
}

func checkReceiptVector(t *testing.T, v *vector) {
	e, _ := hex.DecodeString(v.get("entropy"))
	r := ReceiptFromEntropy([16]byte(e))
	classic, _ := r.ReplyIdentity(false)
	pq, _ := r.ReplyIdentity(true)
	for k, got := range map[string]string{
		"words":             r.Words(),
		"digits":            r.Digits(),
		"lookup-token":      b64.EncodeToString(r.Token()),
		"mailbox":           r.MailboxID(),
		"reply-classic":     classic.MarshalSecret(),
		"reply-classic-pub": classic.Recipient(),
		"reply-pq":          pq.MarshalSecret(),
		"reply-pq-pub":      pq.Recipient(),
	} {
		if want := v.get(k); got != want {
			t.Errorf("%s:\n got %s\nwant %s", k, got, want)
		}
	}
	// Each "parse" line: input TAB expected (the canonical words, or "invalid").
	for _, line := range strings.Split(strings.TrimSpace(string(v.body)), "\n") {
		in, want, _ := strings.Cut(line, "\t")
		p, err := ParseReceipt(in)
		got := "invalid"
		if err == nil {
			got = p.Words()
		}
		if got != want {
			t.Errorf("ParseReceipt(%q) = %q, want %q", in, got, want)
		}
	}
}
