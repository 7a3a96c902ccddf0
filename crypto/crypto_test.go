package crypto

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func TestIdentityRoundTrip(t *testing.T) {
	for _, classic := range []bool{false, true} {
		id, err := GenerateIdentity("alice", classic)
		if err != nil {
			t.Fatal(err)
		}
		plain := id.MarshalText(time.Unix(0, 0))
		back, err := ParseIdentityFile(plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		if back.Card().String() != id.Card().String() {
			t.Fatal("card changed after a round trip")
		}
		// The file is a plain age identity file: age's own parser reads it.
		ids, err := age.ParseIdentities(bytes.NewReader(plain))
		if err != nil || len(ids) != 1 {
			t.Fatalf("age.ParseIdentities: %v", err)
		}
	}
}

func TestProtectedIdentity(t *testing.T) {
	id, _ := NewIdentity("alice", testClassicSecret)
	prot, err := ProtectIdentityFile(id.MarshalText(time.Now()), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !IsProtected(prot) || bytes.Contains(prot, []byte("AGE-SECRET-KEY")) {
		t.Fatal("protected file is not encrypted")
	}
	if _, err := ParseIdentityFile(prot, nil); !errors.Is(err, ErrNeedPassphrase) {
		t.Fatalf("no passphrase source: %v, want ErrNeedPassphrase", err)
	}
	if _, err := ParseIdentityFile(prot, func() (string, error) { return "wrong", nil }); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v, want ErrPassphrase", err)
	}
	back, err := ParseIdentityFile(prot, func() (string, error) { return "correct horse battery", nil })
	if err != nil || back.Recipient() != id.Recipient() {
		t.Fatalf("right passphrase: %v", err)
	}
}

func TestIdentityFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "", "no age secret key"},
		{"no name", testClassicSecret + "\n", `no "# name:" line`},
		{"two keys", "# name: a\n" + testClassicSecret + "\n" + testAdminSecret + "\n", "more than one key"},
		{"not a key", "# name: a\nhello\n", "not an age secret key"},
		{"bad name", "# name: Alice Smith\n" + testClassicSecret + "\n", "invalid name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIdentityFile([]byte(tc.file), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCardTamper(t *testing.T) {
	id, _ := NewIdentity("alice", testPQSecret)
	good := id.Card().String()
	other, _ := NewIdentity("mallory", testAdminSecret)
	for _, tc := range []struct{ name, card, want string }{
		{"renamed", strings.Replace(good, "name=alice", "name=alicf", 1), "signature does not verify"},
		{"recipient swapped", strings.Replace(good, "age="+id.Recipient(), "age="+other.Recipient(), 1), "signature does not verify"},
		{"missing field", strings.Replace(good, " onion-auth=", " onion=", 1), "is not onion-auth="},
		{"wrong prefix", "amana-card/v2" + strings.TrimPrefix(good, CardPrefix), "expected"},
		{"too long", good + strings.Repeat("A", MaxCardLen), "longer than"},
		{"extra field", good + " x=y", "fields"},
		{"line break in base64", strings.Replace(good, " sig=", " sig=\r\n", 1), "invalid signature encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCard(tc.card)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseCard(good + "\n"); err != nil {
		t.Fatalf("trailing newline refused: %v", err)
	}
}

func TestManifestRules(t *testing.T) {
	admin, _ := NewIdentity("admin", testAdminSecret)
	a, _ := NewIdentity("alice", testClassicSecret)
	pq, _ := NewIdentity("pq", testPQSecret)
	base := func() *Manifest {
		return &Manifest{Version: 1, Desk: "d", Title: "D", Serial: 1, Handlers: []string{a.Card().String()}}
	}
	for _, tc := range []struct {
		name string
		edit func(*Manifest)
		want string
	}{
		{"zero serial", func(m *Manifest) { m.Serial = 0 }, "serial must be positive"},
		{"bad desk id", func(m *Manifest) { m.Desk = "Bad Desk" }, "invalid desk id"},
		{"no handlers", func(m *Manifest) { m.Handlers = nil }, "1 to 64 handlers"},
		{"duplicate handler", func(m *Manifest) { m.Handlers = append(m.Handlers, m.Handlers[0]) }, "appears twice"},
		{"mixed", func(m *Manifest) { m.Handlers = append(m.Handlers, pq.Card().String()) }, "post-quantum or all classic"},
		{"unknown handler in category", func(m *Manifest) { m.Categories = []Category{{ID: "sea", Handlers: []string{"bob"}}} }, "unknown handler"},
		{"empty category", func(m *Manifest) { m.Categories = []Category{{ID: "sea"}} }, "has no handlers"},
		{"version", func(m *Manifest) { m.Version = 2 }, "unsupported manifest version"},
		{"same key twice", func(m *Manifest) {
			twin, _ := NewIdentity("twin", testClassicSecret)
			m.Handlers = append(m.Handlers, twin.Card().String())
		}, "same key as another handler"},
		{"serial beyond 2^53", func(m *Manifest) { m.Serial = 1 << 60 }, "below 2^53"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			_, err := SignManifest(m, admin.SigningKey())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	m := base()
	m.Categories = []Category{{ID: "sea", Title: "SEA", Handlers: []string{"alice"}}}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenManifest(env, a.Card().SignKey); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("pinned to another key: %v, want ErrWrongSigner", err)
	}
	// A payload re-encoded with the same meaning but other bytes is refused,
	// so a signature covers one reading only.
	var e Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	loose := bytes.Replace(payload, []byte(`"desk":`), []byte(`"Desk" :`), 1)
	e.Payload = base64.StdEncoding.EncodeToString(loose)
	e.Signature = b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(loose)))
	reenc, _ := json.Marshal(e)
	if _, _, err := OpenManifest(reenc, nil); err == nil || !strings.Contains(err.Error(), "canonical") {
		t.Fatalf("non-canonical payload: %v", err)
	}
	got, _, err := OpenManifest(env, admin.Card().SignKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.Limits.MaxSubmissionBytes != DefaultMaxSubmissionBytes || got.Retention.KeepUnackedDays != DefaultKeepUnackedDays {
		t.Error("defaults not filled")
	}
	if r, err := got.Route("sea"); err != nil || len(r) != 1 || r[0].Name != "alice" {
		t.Errorf("Route(sea) = %v, %v", r, err)
	}
	if _, err := got.Route("fraud"); err == nil {
		t.Error("unknown category routed")
	}
	if got.Handler(a.Card().KeyID()) == nil || got.Handler(admin.Card().KeyID()) != nil {
		t.Error("Handler lookup wrong")
	}
}

func TestRequestAuthParse(t *testing.T) {
	id, _ := NewIdentity("alice", testClassicSecret)
	now := time.Unix(1795600000, 0)
	good := SignRequest(id.SigningKey(), "GET", "/api/v1/inbox", nil, now)
	a, err := ParseRequestAuth(good)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Verify("GET", "/api/v1/inbox", sha256.Sum256(nil)) {
		t.Fatal("good signature does not verify")
	}
	for _, tc := range []struct{ method, path string }{{"POST", "/api/v1/inbox"}, {"GET", "/api/v1/inbox?x=1"}} {
		if a.Verify(tc.method, tc.path, sha256.Sum256(nil)) {
			t.Errorf("signature verifies for %s %s", tc.method, tc.path)
		}
	}
	if a.Verify("GET", "/api/v1/inbox", sha256.Sum256([]byte("x"))) {
		t.Error("signature verifies for another body")
	}
	for _, bad := range []string{
		"", "Bearer x", strings.Replace(good, "ts=", "ts=+", 1), strings.Replace(good, "ts=", "ts=0", 1),
		strings.Replace(good, ",nonce=", ",n=", 1), good + ",x=1", strings.Replace(good, "sig=", "sig=AA", 1),
		strings.Repeat("A", MaxAuthorizationLen+1),
	} {
		if _, err := ParseRequestAuth(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestParseBodySHA256(t *testing.T) {
	empty := sha256.Sum256(nil)
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"empty body", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true},
		{"all digits", strings.Repeat("0123456789", 6) + "0123", true},
		{"empty", "", false},
		{"upper case", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false},
		{"one upper-case digit", "E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
		{"63 digits", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", false},
		{"65 digits", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", false},
		{"leading space", " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", false},
		{"trailing newline", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\n", false},
		{"prefix", "0xb0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
		{"not hex", "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false},
		{"base64", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", false},
		{"non-ASCII", "é3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum, err := ParseBodySHA256(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseBodySHA256(%q): %v, want ok %v", tc.in, err, tc.ok)
			}
			if tc.ok && hex.EncodeToString(sum[:]) != tc.in {
				t.Fatalf("ParseBodySHA256(%q) = %x", tc.in, sum)
			}
		})
	}
	if got, _ := ParseBodySHA256(BodySHA256(nil)); got != empty {
		t.Errorf("BodySHA256(nil) does not parse back to the empty hash")
	}
	if got, _ := ParseBodySHA256(BodySHA256([]byte("x"))); got != sha256.Sum256([]byte("x")) {
		t.Errorf("BodySHA256(x) does not parse back to its hash")
	}
}

func TestPadme(t *testing.T) {
	for n := int64(1); n < 1<<22; n = n*3/2 + 1 {
		p := Padme(n)
		if p < n || float64(p-n) > 0.12*float64(n)+1 {
			t.Fatalf("Padme(%d) = %d: overhead too large", n, p)
		}
		if PaddedSize(n)%512 != 0 {
			t.Fatalf("PaddedSize(%d) not a block multiple", n)
		}
	}
}

func encryptTo(t testing.TB, plain []byte, cards ...*Card) []byte {
	rs, err := Recipients(cards)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, rs...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	return b.Bytes()
}

func TestAgeHeader(t *testing.T) {
	a, _ := NewIdentity("a", testClassicSecret)
	b, _ := NewIdentity("b", testAdminSecret)
	pq, _ := NewIdentity("pq", testPQSecret)
	two := encryptTo(t, []byte("hello"), a.Card(), b.Card())
	one := encryptTo(t, []byte("hello"), pq.Card())
	var scrypt bytes.Buffer
	sr, _ := age.NewScryptRecipient("x")
	sr.SetWorkFactor(10)
	w, _ := age.Encrypt(&scrypt, sr)
	w.Write([]byte("x"))
	w.Close()
	for _, tc := range []struct {
		name  string
		data  []byte
		types []string
		want  error
	}{
		{"two X25519", two, []string{"X25519", "X25519"}, nil},
		{"one hybrid", one, []string{"mlkem768x25519"}, nil},
		{"too few stanzas", two, []string{"X25519"}, ErrStanzas},
		{"too many stanzas", one, []string{"mlkem768x25519", "mlkem768x25519"}, ErrStanzas},
		{"wrong type", one, []string{"X25519"}, ErrStanzas},
		{"scrypt", scrypt.Bytes(), []string{"X25519"}, ErrStanzas},
		{"not age", []byte("hello world\n"), []string{"X25519"}, ErrNotAge},
		{"truncated header", two[:60], []string{"X25519", "X25519"}, ErrNotAge},
		{"armored", []byte("-----BEGIN AGE ENCRYPTED FILE-----\n"), []string{"X25519"}, ErrNotAge},
		{"bad mac", bytes.Replace(two, []byte("\n--- "), []byte("\n--- !"), 1), []string{"X25519", "X25519"}, ErrNotAge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadAgeHeader(bufio.NewReader(bytes.NewReader(tc.data)), MaxHeaderLen(len(tc.types)))
			if err == nil {
				err = h.CheckTypes(tc.types)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil {
				if err := CheckAgePayload(int64(len(tc.data) - h.Len)); err != nil {
					t.Fatalf("payload: %v", err)
				}
			}
		})
	}
}

func TestCheckAgePayload(t *testing.T) {
	full := int64(64<<10 + 16)
	for _, tc := range []struct {
		n  int64
		ok bool
	}{
		{32, true}, {33, true}, {31, false}, {16 + full, true}, {16 + full + 16, false}, {16 + full + 17, true},
		{16 + 2*full, true}, {16 + full + 1, false}, {0, false},
	} {
		if err := CheckAgePayload(tc.n); (err == nil) != tc.ok {
			t.Errorf("CheckAgePayload(%d) = %v, want ok=%v", tc.n, err, tc.ok)
		}
	}
}

func TestSealBundle(t *testing.T) {
	a, _ := NewIdentity("a", testClassicSecret)
	b, _ := NewIdentity("b", testAdminSecret)
	content := bytes.Repeat([]byte("0123456789abcdef"), 10000) // crosses STREAM chunks
	sum := sha256.Sum256(content)
	for _, n := range []int{0, 1, 3} {
		var files []File
		for i := 0; i < n; i++ {
			files = append(files, File{Attachment: Attachment{Name: "f.bin", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]), Type: "application/octet-stream"},
				Body: bytes.NewReader(content)})
		}
		r := &Report{Desk: "d", Submitted: SubmittedAt(time.Now()), SealedBy: SealedByClient, Answers: []Answer{{"message", "hi"}}}
		rd, size, err := SealBundle([]*Card{a.Card(), b.Card()}, r, files)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(ct)) != size {
			t.Fatalf("%d files: sealed %d bytes, announced %d", n, len(ct), size)
		}
		for _, id := range []*Identity{a, b} {
			br, err := OpenBundle(bytes.NewReader(ct), id.Age())
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			for {
				_, rd, err := br.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(rd)
				if err != nil || !bytes.Equal(body, content) {
					t.Fatalf("attachment differs: %v", err)
				}
				count++
			}
			if count != n {
				t.Fatalf("read %d attachments, want %d", count, n)
			}
		}
	}
}

func TestSealBundleChangedFile(t *testing.T) {
	a, _ := NewIdentity("a", testClassicSecret)
	f := File{Attachment: Attachment{Name: "x", Size: 5, SHA256: hex.EncodeToString(make([]byte, 32))}, Body: strings.NewReader("hello")}
	rd, _, err := SealBundle([]*Card{a.Card()}, &Report{Desk: "d"}, []File{f})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rd); err == nil || !strings.Contains(err.Error(), "changed while reading") {
		t.Fatalf("got %v, want a changed-file error", err)
	}
}

func TestEntryName(t *testing.T) {
	for _, tc := range []struct {
		i          int
		name, want string
	}{
		{1, "photo.jpg", "files/001-photo.jpg"},
		{2, "../../etc/passwd", "files/002-_._.._etc_passwd"},
		{3, ".hidden", "files/003-_hidden"},
		{4, "صورة.png", "files/004-_.png"},
		{5, "", "files/005-file"},
		{6, "a  b\x00c", "files/006-a_b_c"},
		{100, strings.Repeat("x", 300), "files/100-" + strings.Repeat("x", 80)},
	} {
		if got := EntryName(tc.i, tc.name); got != tc.want {
			t.Errorf("EntryName(%d, %q) = %q, want %q", tc.i, tc.name, got, tc.want)
		}
		if !safeEntryName(EntryName(tc.i, tc.name)) || len(EntryName(tc.i, tc.name)) >= 100 {
			t.Errorf("EntryName(%d, %q) is not a safe short name", tc.i, tc.name)
		}
	}
}

func TestInvalidUTF8StillOpens(t *testing.T) {
	r := &Report{Desk: "d", Answers: []Answer{{"message", "caf\xe9 \xff"}}}
	f := File{Attachment: Attachment{Name: "bad\xffname.txt", Size: 2, SHA256: hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("hi")); return s[:] }())},
		Body: strings.NewReader("hi")}
	var b bytes.Buffer
	if _, err := WriteBundle(&b, r, []File{f}); err != nil {
		t.Fatal(err)
	}
	got, files, err := readAll(&b)
	if err != nil {
		t.Fatalf("a report with invalid UTF-8 does not open: %v", err)
	}
	if got.Answers[0].Value != "caf\uFFFD \uFFFD" || len(files) != 1 {
		t.Fatalf("got %q", got.Answers[0].Value)
	}
}

func TestFormRules(t *testing.T) {
	label := map[string]string{"en": "Label"}
	for _, tc := range []struct {
		name string
		form Form
		cats bool
		want string
	}{
		{"ok", Form{Fields: []Field{{ID: "what", Type: FieldLongText, Label: label, Required: true},
			{ID: "kind", Type: FieldChoice, Label: label, Options: []Option{{ID: "a", Label: label}}},
			{ID: "cat", Type: FieldCategory, Label: label}, {ID: "files", Type: FieldFile, Label: label}}}, true, ""},
		{"no fields", Form{}, false, "1 to 50 fields"},
		{"bad type", Form{Fields: []Field{{ID: "x", Type: "password", Label: label}}}, false, "unknown type"},
		{"no label", Form{Fields: []Field{{ID: "x", Type: FieldText}}}, false, "needs a label"},
		{"bad language", Form{Fields: []Field{{ID: "x", Type: FieldText, Label: map[string]string{"English": "x"}}}}, false, "invalid language code"},
		{"choice without options", Form{Fields: []Field{{ID: "x", Type: FieldChoice, Label: label}}}, false, "1 to 100 options"},
		{"options on text", Form{Fields: []Field{{ID: "x", Type: FieldText, Label: label, Options: []Option{{ID: "a", Label: label}}}}}, false, "only choices"},
		{"repeated id", Form{Fields: []Field{{ID: "x", Type: FieldText, Label: label}, {ID: "x", Type: FieldDate, Label: label}}}, false, "repeated id"},
		{"two file fields", Form{Fields: []Field{{ID: "a", Type: FieldFile, Label: label}, {ID: "b", Type: FieldFile, Label: label}}}, false, "at most one file field"},
		{"category without categories", Form{Fields: []Field{{ID: "c", Type: FieldCategory, Label: label}}}, false, "no categories"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.form.Validate(tc.cats)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSealReport: sealing names the receipt's mailbox and the reply
// recipient derived from it, post-quantum exactly when the recipients are
// (age seals to one kind at a time), and refuses a recipient that does not
// parse.
func TestSealReport(t *testing.T) {
	classic, _ := GenerateIdentity("classic", true)
	classic2, _ := GenerateIdentity("classic2", true)
	pq, _ := GenerateIdentity("pq", false)
	pq2, _ := GenerateIdentity("pq2", false)
	rc := NewReceipt()
	for _, tc := range []struct {
		name   string
		to     []*Identity
		wantPQ bool
	}{
		{"post-quantum", []*Identity{pq, pq2}, true},
		{"classic", []*Identity{classic, classic2}, false},
		{"one classic", []*Identity{classic}, false},
	} {
		var cards []*Card
		for _, id := range tc.to {
			cards = append(cards, id.Card())
		}
		r := &Report{Desk: "d", Submitted: SubmittedAt(time.Now()), SealedBy: SealedByClient, Answers: []Answer{{"message", "hi"}}}
		rd, _, err := SealReport(RecipientsOf(cards), rc, r, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ct, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := rc.ReplyIdentity(tc.wantPQ)
		for _, id := range tc.to {
			br, err := OpenBundle(bytes.NewReader(ct), id.Age())
			if err != nil {
				t.Fatalf("%s: %s cannot open it: %v", tc.name, id.Name(), err)
			}
			got := br.Report()
			if got.Mailbox != rc.MailboxID() || got.ReplyRecipient != want.Recipient() {
				t.Errorf("%s: mailbox %q reply %q, want %q %q", tc.name, got.Mailbox, got.ReplyRecipient, rc.MailboxID(), want.Recipient())
			}
			if PostQuantumRecipient(got.ReplyRecipient) != tc.wantPQ {
				t.Errorf("%s: reply recipient post-quantum %v, want %v", tc.name, !tc.wantPQ, tc.wantPQ)
			}
		}
	}
	if _, _, err := SealReport([]string{"age1notarecipient"}, rc, &Report{Desk: "d"}, nil); !errors.Is(err, ErrRecipient) {
		t.Errorf("an invalid recipient: %v, want ErrRecipient", err)
	}
	if _, _, err := SealReport(nil, rc, &Report{Desk: "d"}, nil); err == nil {
		t.Error("sealed to no one")
	}
}
