package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

// TestFileKeyCache: a sealed file key opens only for the case it was
// sealed for, under the identity whose cache key sealed it, unaltered; the
// sealed text holds nothing of the key in the clear; and only the kinds of
// a handler's identity get a cache key.
func TestFileKeyCache(t *testing.T) {
	pq, _ := GenerateIdentity("pq", false)
	cl, _ := GenerateIdentity("cl", true)
	other, _ := GenerateIdentity("other", false)
	key := bytes.Repeat([]byte{0xa5}, 16)
	const a, b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	for _, id := range []*Identity{pq, cl} {
		c, ok := NewFileKeyCache(id.Age())
		if !ok {
			t.Fatalf("%s: no cache key", id.Name())
		}
		s := c.Seal(a, key)
		if s2 := c.Seal(a, key); s2 == s {
			t.Fatalf("%s: two seals of one key are the same text (no fresh nonce)", id.Name())
		}
		if _, err := c.Identity(a, s); err != nil {
			t.Fatalf("%s: %v", id.Name(), err)
		}
		if _, err := c.Identity(b, s); !errors.Is(err, ErrCachedKey) {
			t.Fatalf("%s: a key sealed for another case opened: %v", id.Name(), err)
		}
		oc, _ := NewFileKeyCache(other.Age())
		if _, err := oc.Identity(a, s); !errors.Is(err, ErrCachedKey) {
			t.Fatalf("%s: another identity opened the key: %v", id.Name(), err)
		}
		for i := range len(s) {
			bad := []byte(s)
			bad[i] ^= 0x01
			if _, err := c.Identity(a, string(bad)); !errors.Is(err, ErrCachedKey) {
				t.Fatalf("%s: altered at %d it opened: %v", id.Name(), i, err)
			}
		}
		for _, bad := range []string{"", "fk1:", "fk2:" + strings.TrimPrefix(s, "fk1:"), s[:len(s)-1], s + "A"} {
			if _, err := c.Identity(a, bad); !errors.Is(err, ErrCachedKey) {
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
	cached, err := c.Identity(cid, c.Seal(cid, ci.Key()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := age.Decrypt(bytes.NewReader(buf.Bytes()), cached); err != nil {
		t.Fatalf("the cached key does not decrypt: %v", err)
	}
	wrong, _ := c.Identity(cid, c.Seal(cid, make([]byte, 16)))
	if _, err := age.Decrypt(bytes.NewReader(buf.Bytes()), wrong); err == nil {
		t.Fatal("a wrong file key passed the header MAC")
	}
}

// FuzzFileKeyCache: any sealed text and case ID is refused or opened
// without a panic, and only text sealed for that case opens.
func FuzzFileKeyCache(f *testing.F) {
	id, _ := GenerateIdentity("pq", true)
	c, _ := NewFileKeyCache(id.Age())
	const cid = "0123456789abcdef0123456789abcdef"
	f.Add(cid, c.Seal(cid, make([]byte, 16)))
	f.Add("x", "fk1:AAAA")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, caseID, sealed string) {
		if _, err := c.Identity(caseID, sealed); err == nil && caseID != cid {
			t.Fatalf("%q opened for case %q", sealed, caseID)
		}
	})
}
