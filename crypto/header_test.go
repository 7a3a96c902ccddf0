package crypto

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"filippo.io/age"
)

// withStanzas is an age recipient that wraps the file key for r and adds
// the given stanzas, so the file is valid (its MAC covers them) and opens
// with r's identity.
type withStanzas struct {
	r     age.Recipient
	extra func() []*age.Stanza
}

func (w withStanzas) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, err := w.r.Wrap(fileKey)
	return append(s, w.extra()...), err
}

// rageGrease writes a stanza as rage's grease_the_joint does (age-core
// 0.11): a tag of 1 to 8 characters 33-126 then "-grease", 0 to 4
// arguments of 1 to 8 such characters, and a random body of 0 to 99 bytes.
func rageGrease(rng *mrand.Rand) *age.Stanza {
	str := func() string {
		b := make([]byte, 1+rng.IntN(8))
		for i := range b {
			b[i] = byte(33 + rng.IntN(94))
		}
		return string(b)
	}
	s := &age.Stanza{Type: str() + "-grease", Body: make([]byte, rng.IntN(100))}
	for range rng.IntN(5) {
		s.Args = append(s.Args, str())
	}
	for i := range s.Body {
		s.Body[i] = byte(rng.Uint32())
	}
	return s
}

func TestHeaderGrease(t *testing.T) {
	id, _ := NewIdentity("a", testClassicSecret)
	pq, _ := NewIdentity("pq", testPQSecret)
	rng := mrand.New(mrand.NewPCG(1, 2))
	seal := func(t *testing.T, id *Identity, extra ...*age.Stanza) []byte {
		t.Helper()
		var b bytes.Buffer
		w, err := age.Encrypt(&b, withStanzas{mustRecipient(t, id), func() []*age.Stanza { return extra }})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("report"))
		w.Close()
		return b.Bytes()
	}
	share := func(t *testing.T) *age.Stanza {
		// A genuine second X25519 recipient stanza, for someone else.
		other, _ := NewIdentity("b", testAdminSecret)
		s, err := mustRecipient(t, other).Wrap(make([]byte, 16))
		if err != nil {
			t.Fatal(err)
		}
		return s[0]
	}
	g := func(typ string, body int, args ...string) *age.Stanza {
		return &age.Stanza{Type: typ, Args: args, Body: make([]byte, body)}
	}
	long := strings.Repeat("a", MaxGreaseLine-len("x-grease ")) // line of exactly MaxGreaseLine
	for _, tc := range []struct {
		name   string
		id     *Identity
		extra  []*age.Stanza
		want   error
		grease int
		desk   []string // nil: one handler of the identity's type
	}{
		{"no grease", id, nil, nil, 0, nil},
		{"age's grease", id, []*age.Stanza{g("grease", 0)}, nil, 1, nil},
		{"post-quantum with grease", pq, []*age.Stanza{g("ab-grease", 40, "x")}, nil, 1, nil},
		{"four grease", id, []*age.Stanza{g("grease", 0), g("a-grease", 1), g("b-grease", 99), g("c-grease", 0)}, nil, 4, nil},
		{"five grease", id, []*age.Stanza{g("grease", 0), g("a-grease", 1), g("b-grease", 99), g("c-grease", 0), g("d-grease", 0)}, ErrStanzas, 4, nil},
		{"largest grease body", id, []*age.Stanza{g("x-grease", MaxGreaseBody)}, nil, 1, nil},
		{"grease body too large", id, []*age.Stanza{g("x-grease", MaxGreaseBody+1)}, ErrStanzas, 0, nil},
		{"longest grease line", id, []*age.Stanza{g("x-grease", 0, long)}, nil, 1, nil},
		{"grease line too long", id, []*age.Stanza{g("x-grease", 0, long+"a")}, ErrStanzas, 0, nil},
		// A stanza of a recipient type is never grease: each is one
		// recipient more than the desk's, however it is spelt.
		{"extra X25519 recipient", id, []*age.Stanza{share(t)}, ErrStanzas, 0, nil},
		{"extra recipient spelt x25519", id, []*age.Stanza{g("x25519", 32, "AAAA")}, ErrStanzas, 0, nil},
		{"extra scrypt", id, []*age.Stanza{g("scrypt", 32, "AAAAAAAAAAAAAAAAAAAAAA", "10")}, ErrStanzas, 0, nil},
		{"extra ssh-ed25519", id, []*age.Stanza{g("ssh-ed25519", 32, "AAAA", "AAAA")}, ErrStanzas, 0, nil},
		{"extra plugin recipient", id, []*age.Stanza{g("piv-p256", 32, "AAAA", "AAAA")}, ErrStanzas, 0, nil},
		{"unknown type", id, []*age.Stanza{g("empty", 0)}, ErrStanzas, 0, nil},
		{"bare suffix", id, []*age.Stanza{g("-grease", 0)}, ErrStanzas, 0, nil},
		{"grease as an argument", id, []*age.Stanza{g("other", 0, "grease")}, ErrStanzas, 0, nil},
		{"grease prefix", id, []*age.Stanza{g("grease-x", 0)}, ErrStanzas, 0, nil},
		// A desk of two: grease never stands in for the second recipient.
		{"grease instead of a recipient", id, []*age.Stanza{g("grease", 0)}, ErrStanzas, 1, []string{StanzaX25519, StanzaX25519}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := seal(t, tc.id, tc.extra...)
			desk := tc.desk
			if desk == nil {
				desk = []string{tc.id.Card().StanzaType()}
			}
			h, err := ReadAgeHeader(bufio.NewReader(bytes.NewReader(file)), MaxHeaderLen(MaxHandlers+1))
			if err != nil {
				t.Fatal(err)
			}
			if h.Grease != tc.grease {
				t.Errorf("%d grease stanzas, want %d", h.Grease, tc.grease)
			}
			if err := h.CheckTypes(desk); !errors.Is(err, tc.want) {
				t.Fatalf("CheckTypes: %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				if err := CheckAgePayload(int64(len(file) - h.Len)); err != nil {
					t.Fatal(err)
				}
				r, err := age.Decrypt(bytes.NewReader(file), tc.id.Age())
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
				if err != nil {
					t.Fatalf("the key cannot open an accepted file: %v", err)
				}
			}
		})
	}
	t.Run("only grease", func(t *testing.T) {
		mac := "--- " + rawStd.EncodeToString(make([]byte, 32)) + "\n"
		hdr := ageIntro + "\n-> grease\n\n-> a-grease x\nAAAA\n" + mac
		_, err := ReadAgeHeader(bufio.NewReader(strings.NewReader(hdr)), MaxHeaderLen(1))
		if !errors.Is(err, ErrNotAge) || !strings.Contains(err.Error(), "no recipient stanzas") {
			t.Fatalf("a header of grease only: %v", err)
		}
	})
	t.Run("rage grease", func(t *testing.T) {
		for range 300 {
			s := rageGrease(rng)
			file := seal(t, id, s)
			if got, err := doorCheck(file, []string{StanzaX25519}); got != "accept" {
				t.Fatalf("grease %q %q (%d-byte body): %s, %v", s.Type, s.Args, len(s.Body), got, err)
			}
		}
	})
}

// smallOrder is the independent oracle: X25519 (RFC 7748) ignores the top
// bit and reduces mod p; the points of small order on the curve and its
// twist have u = 0, 1, p-1 and the two points of order 8.
func smallOrder(share []byte) bool {
	le := make([]byte, 32)
	for i := range le {
		le[i] = share[31-i]
	}
	le[0] &= 0x7f
	u := new(big.Int).SetBytes(le)
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	u.Mod(u, p)
	for _, s := range []string{
		"0", "1", "57896044618658097711785492504343953926634992332820282019728792003956564819948", // p-1
		"325606250916557431795983626356110631294008115727848805560023387167927233504",
		"39382357235489614581723060781553021112529911719440698176882885853963445705823",
	} {
		v, _ := new(big.Int).SetString(s, 10)
		if u.Cmp(v) == 0 {
			return true
		}
	}
	return false
}

func TestLowOrderX25519(t *testing.T) {
	// The encodings libsodium refuses, each also with the top bit set.
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	} {
		b, _ := hex.DecodeString(h)
		for _, top := range []byte{0, 0x80} {
			p := bytes.Clone(b)
			p[31] |= top
			if !LowOrderX25519(p) || !smallOrder(p) {
				t.Errorf("%x: not refused", p)
			}
		}
	}
	for range 100 {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if p := k.PublicKey().Bytes(); LowOrderX25519(p) || smallOrder(p) {
			t.Errorf("%x refused", p)
		}
	}
	nine := make([]byte, 32)
	nine[0] = 9 // the base point
	if LowOrderX25519(nine) {
		t.Error("base point refused")
	}
	// In a header, for both stanza types.
	for _, tc := range []struct{ typ, arg string }{
		{StanzaX25519, rawStd.EncodeToString(make([]byte, 32))},
		{StanzaHybrid, rawStd.EncodeToString(append(bytes.Repeat([]byte{7}, 1088), make([]byte, 32)...))},
	} {
		hdr := ageIntro + "\n-> " + tc.typ + " " + tc.arg + "\n" + rawStd.EncodeToString(make([]byte, 32)) + "\n--- " + rawStd.EncodeToString(make([]byte, 32)) + "\n"
		_, err := ReadAgeHeader(bufio.NewReader(strings.NewReader(hdr)), MaxHeaderLen(1))
		if !errors.Is(err, ErrNotAge) || !strings.Contains(err.Error(), "low-order") {
			t.Errorf("%s: %v", tc.typ, err)
		}
	}
}

func FuzzLowOrderX25519(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	b, _ := hex.DecodeString("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) != 32 {
			if !LowOrderX25519(p) {
				t.Fatal("a share of the wrong length passes")
			}
			return
		}
		if LowOrderX25519(p) != smallOrder(p) {
			t.Fatalf("%x: LowOrderX25519 %v, oracle %v", p, LowOrderX25519(p), smallOrder(p))
		}
	})
}

// keyWrapAsGrease wraps the file key for other, as an X25519 stanza would,
// and renames the stanza grease: the channel protocol.md §9.2 says the
// relay cannot close.
type keyWrapAsGrease struct {
	desk, other age.Recipient
}

func (k keyWrapAsGrease) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, err := k.desk.Wrap(fileKey)
	if err != nil {
		return nil, err
	}
	o, err := k.other.Wrap(fileKey)
	if err != nil {
		return nil, err
	}
	o[0].Type = "k-grease"
	return append(s, o[0]), nil
}

// TestHeaderGreaseCarriesNothingTheRelayCounts: a grease stanza can carry
// the file key for a reader of the sender's choosing, and the relay
// accepts the file (it cannot know what grease means), but only as grease:
// the desk's recipient stanzas are exactly the desk's, and the third
// party's key opens the file only through a reader that unwraps that
// grease on purpose. If the relay ever counted such a stanza as a recipient,
// or refused it, this test says which.
func TestHeaderGreaseCarriesNothingTheRelayCounts(t *testing.T) {
	id, _ := NewIdentity("a", testClassicSecret)
	other, _ := NewIdentity("b", testAdminSecret)
	var b bytes.Buffer
	w, err := age.Encrypt(&b, keyWrapAsGrease{mustRecipient(t, id), mustRecipient(t, other)})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("report"))
	w.Close()
	h, err := ReadAgeHeader(bufio.NewReader(bytes.NewReader(b.Bytes())), MaxHeaderLen(MaxHandlers+1))
	if err != nil {
		t.Fatal(err)
	}
	if h.Grease != 1 || len(h.Types) != 1 || h.Types[0] != StanzaX25519 {
		t.Fatalf("grease %d, types %v: want one grease stanza and the desk's one X25519", h.Grease, h.Types)
	}
	if err := h.CheckTypes([]string{StanzaX25519}); err != nil {
		t.Fatalf("the relay refuses a key wrap spelt grease: %v (protocol.md §9.2 says it accepts it)", err)
	}
	// A standard reader does not take the grease for a recipient: the
	// third party's key does not open the file.
	if _, err := age.Decrypt(bytes.NewReader(b.Bytes()), other.Age()); err == nil {
		t.Fatal("age unwrapped a grease stanza as a recipient")
	}
	if _, err := age.Decrypt(bytes.NewReader(b.Bytes()), id.Age()); err != nil {
		t.Fatalf("the desk's key cannot open the file: %v", err)
	}
}
