package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

// TestFileKeyCache: a sealed file key opens only for the case and the
// ciphertext SHA-256 it was sealed for, under the identity whose cache key
// sealed it, unaltered; a key of the earlier format (fk1:, bound to the
// case ID alone) is refused, under either prefix; the
// sealed text holds nothing of the key in the clear; and only the kinds of
// a handler's identity get a cache key.
func TestFileKeyCache(t *testing.T) {
	pq, _ := GenerateIdentity("pq", false)
	cl, _ := GenerateIdentity("cl", true)
	other, _ := GenerateIdentity("other", false)
	key := bytes.Repeat([]byte{0xa5}, 16)
	const a, b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	shaA, shaB := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	for _, id := range []*Identity{pq, cl} {
		c, ok := NewFileKeyCache(id.Age())
		if !ok {
			t.Fatalf("%s: no cache key", id.Name())
		}
		s := c.Seal(a, shaA, key)
		if s2 := c.Seal(a, shaA, key); s2 == s {
			t.Fatalf("%s: two seals of one key are the same text (no fresh nonce)", id.Name())
		}
		if !strings.HasPrefix(s, "fk2:") {
			t.Fatalf("%s: sealed key %q does not start with fk2:", id.Name(), s)
		}
		if _, err := c.Identity(a, shaA, s); err != nil {
			t.Fatalf("%s: %v", id.Name(), err)
		}
		if _, err := c.Identity(b, shaA, s); !errors.Is(err, ErrCachedKey) {
			t.Fatalf("%s: a key sealed for another case opened: %v", id.Name(), err)
		}
		if _, err := c.Identity(a, shaB, s); !errors.Is(err, ErrCachedKey) {
			t.Fatalf("%s: a key sealed for another ciphertext of the case opened: %v", id.Name(), err)
		}
		if _, err := c.Identity(a, "", s); !errors.Is(err, ErrCachedKey) {
			t.Fatalf("%s: a key opened with no ciphertext SHA-256: %v", id.Name(), err)
		}
		// The earlier format: the case ID alone as associated data.
		nonce := bytes.Repeat([]byte{3}, c.aead.NonceSize())
		old := base64.RawURLEncoding.EncodeToString(c.aead.Seal(bytes.Clone(nonce), nonce, key, []byte(LabelFileKeyCache+"\x00"+a)))
		for _, p := range []string{"fk1:", "fk2:"} {
			if _, err := c.Identity(a, shaA, p+old); !errors.Is(err, ErrCachedKey) {
				t.Fatalf("%s: a key of the earlier format opened as %s: %v", id.Name(), p, err)
			}
		}
		oc, _ := NewFileKeyCache(other.Age())
		if _, err := oc.Identity(a, shaA, s); !errors.Is(err, ErrCachedKey) {
			t.Fatalf("%s: another identity opened the key: %v", id.Name(), err)
		}
		for i := range len(s) {
			bad := []byte(s)
			bad[i] ^= 0x01
			if _, err := c.Identity(a, shaA, string(bad)); !errors.Is(err, ErrCachedKey) {
				t.Fatalf("%s: altered at %d it opened: %v", id.Name(), i, err)
			}
		}
		for _, bad := range []string{"", "fk2:", "fk1:", "fk1:" + strings.TrimPrefix(s, "fk2:"), "fk3:" + strings.TrimPrefix(s, "fk2:"), s[:len(s)-1], s + "A"} {
			if _, err := c.Identity(a, shaA, bad); !errors.Is(err, ErrCachedKey) {
				t.Fatalf("%s: %q opened: %v", id.Name(), bad, err)
			}
		}
	}
	sc, err := age.NewScryptIdentity("pass")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := NewFileKeyCache(sc); ok {
		t.Fatal("a passphrase identity got a cache key")
	}
}

// TestCaptureKeepsTheFileKey: the file key a capturing identity keeps is
// the one that decrypts the file, as a cached identity.
func TestCaptureKeepsTheFileKey(t *testing.T) {
	id, _ := GenerateIdentity("pq", false)
	r, err := age.ParseHybridRecipient(id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))
	w.Close()
	ci := Capture(id.Age())
	if _, err := age.Decrypt(bytes.NewReader(buf.Bytes()), ci); err != nil || len(ci.Key()) != 16 {
		t.Fatalf("capture: %v %x", err, ci.Key())
	}
	c, _ := NewFileKeyCache(id.Age())
	const cid = "0123456789abcdef0123456789abcdef"
	sha := strings.Repeat("c3", 32)
	cached, err := c.Identity(cid, sha, c.Seal(cid, sha, ci.Key()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := age.Decrypt(bytes.NewReader(buf.Bytes()), cached); err != nil {
		t.Fatalf("the cached key does not decrypt: %v", err)
	}
	wrong, _ := c.Identity(cid, sha, c.Seal(cid, sha, make([]byte, 16)))
	if _, err := age.Decrypt(bytes.NewReader(buf.Bytes()), wrong); err == nil {
		t.Fatal("a wrong file key passed the header MAC")
	}
}

// FuzzFileKeyCache: any sealed text, case ID and SHA-256 is refused or
// opened without a panic, and only text sealed for that case and
// ciphertext opens.
func FuzzFileKeyCache(f *testing.F) {
	id, _ := GenerateIdentity("pq", true)
	c, _ := NewFileKeyCache(id.Age())
	const cid = "0123456789abcdef0123456789abcdef"
	sha := strings.Repeat("d4", 32)
	f.Add(cid, sha, c.Seal(cid, sha, make([]byte, 16)))
	f.Add("x", "", "fk2:AAAA")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, caseID, sum, sealed string) {
		if _, err := c.Identity(caseID, sum, sealed); err == nil && (caseID != cid || sum != sha) {
			t.Fatalf("%q opened for case %q, SHA-256 %q", sealed, caseID, sum)
		}
	})
}
