package relay

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// TestCCTVAtTheDoor feeds every C2SP CCTV age vector (crypto/testdata/cctv)
// to the relay's own upload check, peekHeader, and asserts the answer that
// crypto/testdata/cctv/answers.txt gives it (crypto.TestCCTVHeaderCheck
// checks the reasons and what the key sees; docs/age-corpus.md is the table).
func TestCCTVAtTheDoor(t *testing.T) {
	dir := filepath.Join("..", "crypto", "testdata", "cctv")
	table, err := os.ReadFile(filepath.Join(dir, "answers.txt"))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for _, l := range strings.Split(string(table), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, " | ")
		if len(f) != 4 {
			t.Fatalf("answers.txt: %q", l)
		}
		name, want := f[0], f[2]
		b, err := os.ReadFile(filepath.Join(dir, "age", name))
		if err != nil {
			t.Fatal(err)
		}
		meta, file, _ := bytes.Cut(b, []byte("\n\n"))
		var desk []string
		for _, ml := range strings.Split(string(meta), "\n") {
			k, v, _ := strings.Cut(ml, ": ")
			switch k {
			case "identity":
				if strings.HasPrefix(v, "AGE-SECRET-KEY-PQ-1") {
					desk = append(desk, crypto.StanzaHybrid)
				} else {
					desk = append(desk, crypto.StanzaX25519)
				}
			case "compressed":
				r, err := zlib.NewReader(bytes.NewReader(file))
				if err != nil {
					t.Fatal(err)
				}
				if file, err = io.ReadAll(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if desk == nil {
			desk = []string{crypto.StanzaX25519}
		}
		if f[1] != "-" {
			desk = strings.Split(f[1], ",")
		}
		got := "accept"
		if _, _, aerr := peekHeader(bytes.NewReader(file), desk, int64(len(file))); aerr != nil {
			got = aerr.Body.Code
		}
		if got != want {
			t.Errorf("%s for %v: the relay answers %s, want %s", name, desk, got, want)
		}
		codes[got]++
	}
	if n := codes["accept"] + codes["not_age"] + codes["wrong_recipients"] + codes["bad_length"]; n < 143 {
		t.Errorf("only %d vectors answered as expected codes: %v", n, codes)
	}
	t.Logf("answers: %v", codes)
}

// plusStanzas wraps the file key for r and adds stanzas, so that the file
// is valid: its MAC covers them.
type plusStanzas struct {
	r     age.Recipient
	extra []*age.Stanza
}

func (p plusStanzas) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, err := p.r.Wrap(fileKey)
	return append(s, p.extra...), err
}

// TestSubmitHeaderGreaseAndInvalidPoints: at the submission route, a file
// with a grease stanza as rage writes it is stored and opens with the
// handler's key; one with a stanza for someone else, of a recipient type
// or of an unknown type, is refused; so is one whose X25519 share is a
// low-order point.
func TestSubmitHeaderGreaseAndInvalidPoints(t *testing.T) {
	f := newFixture(t)
	seal := func(extra ...*age.Stanza) []byte {
		r, err := f.alice.Card().AgeRecipient()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		w, err := age.Encrypt(&b, plusStanzas{r, extra})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("a report"))
		w.Close()
		return b.Bytes()
	}
	const path = "/api/v1/desks/helpdesk/submissions?category=sea"
	grease := seal(&age.Stanza{Type: "k;9-grease", Args: []string{"Q~", "x"}, Body: bytes.Repeat([]byte{0xa5}, 99)})
	var rc api.Receipt
	json.NewDecoder(f.do("POST", path, nil, grease, 201).Body).Decode(&rc)
	got, _ := io.ReadAll(f.signed(f.alice, "GET", "/api/v1/submissions/"+rc.ID, nil, 200).Body)
	r, err := age.Decrypt(bytes.NewReader(got), f.alice.Age())
	if err == nil {
		got, err = io.ReadAll(r)
	}
	if err != nil || string(got) != "a report" {
		t.Fatalf("the stored grease file does not open: %v", err)
	}

	bobs, err := f.bob.Card().AgeRecipient()
	if err != nil {
		t.Fatal(err)
	}
	bobStanza, _ := bobs.Wrap(make([]byte, 16))
	for name, file := range map[string][]byte{
		"extra X25519":       seal(bobStanza...),
		"extra plugin type":  seal(&age.Stanza{Type: "piv-p256", Args: []string{"AAAA", "AAAA"}, Body: make([]byte, 32)}),
		"grease over bounds": seal(&age.Stanza{Type: "x-grease", Body: make([]byte, crypto.MaxGreaseBody+1)}),
	} {
		if code := errCode(t, f.do("POST", path, nil, file, 400)); code != "wrong_recipients" {
			t.Errorf("%s: %s, want wrong_recipients", name, code)
		}
	}
	// The identity point as alice's share: no one's key opens it.
	ok := seal()
	i := bytes.Index(ok, []byte("-> X25519 ")) + len("-> X25519 ")
	bad := append(append(bytes.Clone(ok[:i]), strings.Repeat("A", 43)...), ok[i+43:]...)
	if code := errCode(t, f.do("POST", path, nil, bad, 400)); code != "not_age" {
		t.Errorf("identity share: %s, want not_age", code)
	}
}
