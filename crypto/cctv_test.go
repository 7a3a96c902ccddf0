package crypto

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// The C2SP CCTV age vectors (testdata/cctv, 0BSD) at the relay's door: for
// each one, testdata/cctv/answers.txt says what the relay's header check
// must answer, and which failures only a key can detect.

type cctvVector struct {
	name       string
	expect     string // the vector's own "expect": what a reader with the key sees
	armored    bool
	identities []string
	file       []byte // the age file, decompressed
}

func loadCCTV(t *testing.T) map[string]*cctvVector {
	t.Helper()
	paths, err := filepath.Glob("testdata/cctv/age/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CCTV vectors: %v", err)
	}
	out := map[string]*cctvVector{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		meta, file, ok := bytes.Cut(b, []byte("\n\n"))
		if !ok {
			t.Fatalf("%s: no blank line after the vector's header", p)
		}
		v := &cctvVector{name: filepath.Base(p), file: file}
		for _, l := range strings.Split(string(meta), "\n") {
			k, val, _ := strings.Cut(l, ": ")
			switch k {
			case "expect":
				v.expect = val
			case "identity":
				v.identities = append(v.identities, val)
			case "armored":
				v.armored = val == "yes"
			case "compressed":
				if val != "zlib" {
					t.Fatalf("%s: compressed %q", p, val)
				}
				r, err := zlib.NewReader(bytes.NewReader(file))
				if err != nil {
					t.Fatal(err)
				}
				if v.file, err = io.ReadAll(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if v.expect == "" {
			t.Fatalf("%s: no expect", p)
		}
		out[v.name] = v
	}
	return out
}

// deskTypes is the desk a vector implies: one stanza per identity, of the
// identity's type, or one X25519 handler if it has only a passphrase.
func (v *cctvVector) deskTypes() []string {
	var want []string
	for _, id := range v.identities {
		if strings.HasPrefix(id, "AGE-SECRET-KEY-PQ-1") {
			want = append(want, StanzaHybrid)
		} else {
			want = append(want, StanzaX25519)
		}
	}
	if want == nil {
		want = []string{StanzaX25519}
	}
	return want
}

type cctvAnswer struct {
	vector, answer, detail string
	desk                   []string // nil: the vector's deskTypes
}

func readCCTVAnswers(t *testing.T) []cctvAnswer {
	t.Helper()
	b, err := os.ReadFile("testdata/cctv/answers.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []cctvAnswer
	for i, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, " | ")
		if len(f) != 4 {
			t.Fatalf("answers.txt:%d: %d fields", i+1, len(f))
		}
		a := cctvAnswer{vector: f[0], answer: f[2], detail: f[3]}
		if f[1] != "-" {
			a.desk = strings.Split(f[1], ",")
		}
		out = append(out, a)
	}
	return out
}

// doorCheck is the relay's check at upload (relay/io.go peekHeader), the
// answers named by their API codes (protocol §9.2).
func doorCheck(file []byte, desk []string) (string, error) {
	h, err := ReadAgeHeader(bufio.NewReader(bytes.NewReader(file)), MaxHeaderLen(max(len(desk), MaxHandlers)+1))
	if err != nil {
		return "not_age", err
	}
	if err := h.CheckTypes(desk); err != nil {
		return "wrong_recipients", err
	}
	if err := CheckAgePayload(int64(len(file) - h.Len)); err != nil {
		return "bad_length", err
	}
	return "accept", nil
}

// keyOnly: the vector is bad, and only a reader with the key can tell.
func (a cctvAnswer) keyOnly(v *cctvVector) bool { return a.answer == "accept" && v.expect != "success" }

func TestCCTVHeaderCheck(t *testing.T) {
	vs := loadCCTV(t)
	answers := readCCTVAnswers(t)
	seen := map[string]bool{}
	counts := map[string]int{}
	for _, a := range answers {
		v := vs[a.vector]
		if v == nil {
			t.Fatalf("answers.txt names %q, which is not a vector", a.vector)
		}
		seen[a.vector] = true
		desk := a.desk
		if desk == nil {
			desk = v.deskTypes()
		}
		t.Run(a.vector+"/"+strings.Join(desk, ","), func(t *testing.T) {
			got, err := doorCheck(v.file, desk)
			if got != a.answer {
				t.Fatalf("relay answers %s (%v), want %s", got, err, a.answer)
			}
			switch got {
			case "not_age":
				if !errors.Is(err, ErrNotAge) || !strings.HasSuffix(err.Error(), ": "+a.detail) {
					t.Fatalf("refused for %q, want %q", err, a.detail)
				}
			case "wrong_recipients":
				if !errors.Is(err, ErrStanzas) {
					t.Fatalf("refused with %v", err)
				}
			}
			if a.answer == "accept" && v.armored {
				t.Fatal("the relay must never accept armor")
			}
			if a.keyOnly(v) || (a.answer == "accept" && v.expect == "success") {
				checkWithKey(t, v)
			}
		})
		counts[a.answer]++
	}
	for name := range vs {
		if !seen[name] {
			t.Errorf("vector %s has no answer in answers.txt", name)
		}
	}
	if len(vs) != 143 {
		t.Errorf("%d vectors, want the 143 of CCTV", len(vs))
	}
	t.Logf("answers: %v", counts)
}

// checkWithKey shows what the key sees of a vector the relay accepts: a
// "success" vector decrypts, any other fails, so the relay's accept of the
// latter is a failure only the key detects.
func checkWithKey(t *testing.T, v *cctvVector) {
	t.Helper()
	var ids []age.Identity
	for _, s := range v.identities {
		id, err := NewIdentity("v", s)
		if err != nil {
			t.Fatalf("identity: %v", err)
		}
		ids = append(ids, id.Age())
	}
	r, err := age.Decrypt(bytes.NewReader(v.file), ids...)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	if (err == nil) != (v.expect == "success") {
		t.Fatalf("with the key: %v, but the vector expects %s", err, v.expect)
	}
}

// TestCCTVDocTable keeps docs/age-corpus.md the rendering of answers.txt.
func TestCCTVDocTable(t *testing.T) {
	vs := loadCCTV(t)
	var b strings.Builder
	b.WriteString(`# The age community's test corpus at the relay's door

Generated from crypto/testdata/cctv/answers.txt by ` + "`go test ./crypto -run TestCCTVDocTable -update`" + `;
` + "`TestCCTVHeaderCheck`" + ` checks every row against the relay's header check
(protocol §9.2) and ` + "`relay.TestCCTVAtTheDoor`" + ` against the relay's own code.
The vectors are the C2SP CCTV age vectors (crypto/testdata/cctv, Zero-Clause
BSD licence). "desk" is the stanza types the desk expects: one per identity
of the vector, or one X25519 handler for a passphrase-only vector. "age
says" is the vector's own expectation for a reader with the key; "key only"
marks a bad file the relay accepts because only the key can tell.

`)
	answers := readCCTVAnswers(t)
	counts := map[string]int{}
	keyOnly := 0
	for _, a := range answers {
		counts[a.answer]++
		if a.keyOnly(vs[a.vector]) {
			keyOnly++
		}
	}
	sum := fmt.Sprintf("%d answers for %d vectors: %d accept (%d of them bad files only a key can detect), %d `not_age`, %d `wrong_recipients`, %d `bad_length`.",
		len(answers), len(vs), counts["accept"], keyOnly, counts["not_age"], counts["wrong_recipients"], counts["bad_length"])
	b.WriteString(sum + "\n\n")
	proto, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	if flat := strings.Join(strings.Fields(string(proto)), " "); !strings.Contains(flat, sum) {
		t.Errorf("protocol §9.2 does not sum up the corpus as %q", sum)
	}
	b.WriteString("| vector | desk | age says | relay answers | key only | why |\n|---|---|---|---|---|---|\n")
	for _, a := range answers {
		v := vs[a.vector]
		desk := a.desk
		if desk == nil {
			desk = v.deskTypes()
		}
		mark := ""
		if a.keyOnly(v) {
			mark = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s | %s |\n", a.vector, strings.Join(desk, ", "), v.expect, a.answer, mark,
			strings.ReplaceAll(a.detail, "|", `\|`))
	}
	checkProtocolKeyOnly(t, vs, answers)
	path := filepath.Join("..", "docs", "age-corpus.md")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != b.String() {
		t.Fatalf("docs/age-corpus.md is not the rendering of answers.txt (%v); run go test ./crypto -run TestCCTVDocTable -update", err)
	}
}

// checkProtocolKeyOnly: the table of failures only a key can detect in
// protocol §9.2 names exactly the key-only vectors of answers.txt.
func checkProtocolKeyOnly(t *testing.T, vs map[string]*cctvVector, answers []cctvAnswer) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "**only a key can\ndetect them**")
	_, table, _ = strings.Cut(table, "| failure |")
	table, _, _ = strings.Cut(table, "\n\n")
	if !ok || table == "" {
		t.Fatal("protocol §9.2 has no table of failures only a key can detect")
	}
	named := map[string]bool{}
	for _, l := range strings.Split(table, "\n")[2:] {
		cells := strings.Split(l, "|")
		if len(cells) < 4 {
			continue
		}
		for _, v := range strings.Split(cells[2], ",") {
			named[strings.Trim(strings.TrimSpace(v), "`")] = true
		}
	}
	want := map[string]bool{}
	for _, a := range answers {
		if a.keyOnly(vs[a.vector]) {
			want[a.vector] = true
		}
	}
	for v := range want {
		if !named[v] {
			t.Errorf("protocol §9.2 does not list key-only vector %s", v)
		}
	}
	for v := range named {
		if !want[v] {
			t.Errorf("protocol §9.2 lists %s as key-only, but the relay refuses it or it is valid", v)
		}
	}
}
