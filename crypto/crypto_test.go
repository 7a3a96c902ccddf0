package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
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
		{"bad desk language", func(m *Manifest) { m.Language = "Arabic" }, "invalid desk language"},
		{"bad title language", func(m *Manifest) { m.Titles = map[string]string{"AR": "x"} }, "invalid language code"},
		{"long translated title", func(m *Manifest) { m.Titles = map[string]string{"ar": strings.Repeat("x", 201)} }, "longer than 200"},
		{"long translated description", func(m *Manifest) { m.Descriptions = map[string]string{"fr": strings.Repeat("x", 4001)} }, "longer than 4000"},
		{"long category translation", func(m *Manifest) {
			m.Categories = []Category{{ID: "sea", Handlers: []string{"alice"}, Labels: map[string]string{"ar": strings.Repeat("x", 201)}}}
		}, "longer than 200"},
		{"default route without categories", func(m *Manifest) { m.DefaultRoute = "sea" }, "default route names no category"},
		{"default route unknown", func(m *Manifest) {
			m.Categories = []Category{{ID: "sea", Handlers: []string{"alice"}}}
			m.DefaultRoute = "fraud"
		}, "default route names no category"},
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

// TestManifestTexts: a desk's title, description and category titles in
// other languages survive signing and verification, and a page picks them
// by its language, then the desk's, then English, then any; an old manifest
// with plain strings only reads as before.
func TestManifestTexts(t *testing.T) {
	admin, _ := NewIdentity("admin", testAdminSecret)
	a, _ := NewIdentity("alice", testClassicSecret)
	m := &Manifest{Version: 1, Desk: "d", Language: "en", Title: "Helpdesk (digital safety).", Serial: 1,
		Description:  "We reply within a day.",
		Titles:       map[string]string{"ar": "مكتب المساعدة", "fr": ""},
		Descriptions: map[string]string{"fr": "Nous répondons en un jour."},
		Handlers:     []string{a.Card().String()},
		Categories: []Category{
			{ID: "sea", Title: "Sexual exploitation and abuse", Handlers: []string{"alice"}, Labels: map[string]string{"ar": "الاستغلال والاعتداء الجنسيان"}},
			{ID: "untitled", Handlers: []string{"alice"}, Labels: map[string]string{"fr": "Autre", "de": "Anderes"}},
			{ID: "bare", Handlers: []string{"alice"}},
		}}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenManifest(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"title ar", got.TitleIn("ar"), "مكتب المساعدة"},
		{"title fr (empty translation)", got.TitleIn("fr"), "Helpdesk (digital safety)."},
		{"title en", got.TitleIn("en"), "Helpdesk (digital safety)."},
		{"description fr", got.DescriptionIn("fr"), "Nous répondons en un jour."},
		{"description ar", got.DescriptionIn("ar"), "We reply within a day."},
		{"category ar", got.CategoryTitle("sea", "ar"), "الاستغلال والاعتداء الجنسيان"},
		{"category fr", got.CategoryTitle("sea", "fr"), "Sexual exploitation and abuse"},
		{"untitled fr", got.CategoryTitle("untitled", "fr"), "Autre"},
		{"untitled ar: first code", got.CategoryTitle("untitled", "ar"), "Anderes"},
		{"bare", got.CategoryTitle("bare", "ar"), "bare"},
		{"unknown", got.CategoryTitle("fraud", "ar"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		m                    map[string]string
		lang, deskLang, want string
	}{
		{map[string]string{"ar": "ع", "en": "e", "fr": "f"}, "ar", "fr", "ع"},
		{map[string]string{"ar": "", "en": "e", "fr": "f"}, "ar", "fr", "f"},
		{map[string]string{"en": "e", "fr": "f"}, "ar", "", "e"},
		{map[string]string{"de": "d", "fr": "f"}, "ar", "", "d"},
		{map[string]string{"de": "", "fr": "f"}, "ar", "", "f"},
		{nil, "ar", "en", ""},
	} {
		if got := Text("", tc.m, tc.lang, tc.deskLang); got != tc.want {
			t.Errorf("Text(%v, %q, %q) = %q, want %q", tc.m, tc.lang, tc.deskLang, got, tc.want)
		}
	}
	// A manifest signed before the text maps existed still verifies and
	// reads the same.
	old := &Manifest{Version: 1, Desk: "d", Title: "T", Serial: 1, Handlers: []string{a.Card().String()}}
	env, err = SignManifest(old, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	var e Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	for _, member := range []string{"language", "titles", "descriptions", "default_route"} {
		if bytes.Contains(payload, []byte(member)) {
			t.Errorf("a desk without %s writes it: %s", member, payload)
		}
	}
	if got, _, err := OpenManifest(env, nil); err != nil || got.TitleIn("ar") != "T" {
		t.Fatalf("old manifest: %v", err)
	}
}

// TestDefaultRoute: a report with no category goes to the category the desk
// names as its default route, and only a category it has.
func TestDefaultRoute(t *testing.T) {
	admin, _ := NewIdentity("admin", testAdminSecret)
	a, _ := NewIdentity("alice", testClassicSecret)
	b, _ := GenerateIdentity("bob", true)
	m := &Manifest{Version: 1, Desk: "d", Title: "T", Serial: 1, Handlers: []string{a.Card().String(), b.Card().String()},
		Categories: []Category{{ID: "sea", Handlers: []string{"bob"}}, {ID: "any", Handlers: []string{"alice", "bob"}}}}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := OpenManifest(env, nil)
	if r, _ := got.Route(""); len(r) != 2 || got.Restricted("") || !got.Restricted("sea") || got.Restricted("any") {
		t.Fatalf("without a default route: Route(\"\") = %d handlers, restricted %v/%v", len(r), got.Restricted(""), got.Restricted("sea"))
	}
	m.DefaultRoute = "sea"
	env, err = SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = OpenManifest(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := got.Route("")
	if err != nil || len(r) != 1 || r[0].Name != "bob" || !got.Restricted("") {
		t.Fatalf("default route sea: Route(\"\") = %v, %v", r, err)
	}
	// A manifest naming a route it lacks is refused when verified, not only
	// when signed: a signer with other code cannot slip one through.
	var e Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	bad := bytes.Replace(payload, []byte(`"default_route":"sea"`), []byte(`"default_route":"sex"`), 1)
	e.Payload = base64.StdEncoding.EncodeToString(bad)
	e.Signature = b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(bad)))
	reenc, _ := json.Marshal(e)
	if _, _, err := OpenManifest(reenc, nil); !errors.Is(err, ErrUnknownDefaultRoute) {
		t.Fatalf("unknown default route: %v, want ErrUnknownDefaultRoute", err)
	}
}

// TestRetentionAfterFirstAck: a manifest says after_first_ack only when
// set, so older manifests keep their bytes; it survives signing and
// opening; and only with it is there a delay after the first ack.
func TestRetentionAfterFirstAck(t *testing.T) {
	admin, _ := NewIdentity("admin", testAdminSecret)
	a, _ := NewIdentity("alice", testClassicSecret)
	for _, first := range []bool{false, true} {
		m := &Manifest{Version: 1, Desk: "d", Title: "D", Serial: 1, Handlers: []string{a.Card().String()}, Retention: Retention{AfterFirstAck: first}}
		env, err := SignManifest(m, admin.SigningKey())
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := OpenManifest(env, admin.SigningKey().Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(got)
		if strings.Contains(string(payload), "after_first_ack") != first || got.Retention.AfterFirstAck != first {
			t.Fatalf("after_first_ack %v: payload %s", first, payload)
		}
		want := time.Duration(0)
		if first {
			want = DefaultDeleteAfterAckHrs * time.Hour
		}
		if d := got.Retention.DeleteAfterAck(); d != want {
			t.Fatalf("after_first_ack %v: DeleteAfterAck %v, want %v", first, d, want)
		}
	}
}
