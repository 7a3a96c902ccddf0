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
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// The vectors in testdata/vectors are shared with every other
// implementation (the browser client runs them too). Each file is a few
// "key: value" header lines, a blank line, and a body, like age's testkit.
// "go test ./crypto -run TestVectors -update" rewrites the deterministic
// ones; sealed-* vectors are random and only written when missing.

var update = flag.Bool("update", false, "rewrite test vectors")

// Test-only keys. They are public: never use them for anything else.
const (
	testPQSecret      = "AGE-SECRET-KEY-PQ-1383AQM3TQM9Y85HJK77CMNCD76DPA9EMXG6T0L9UKPGQJV7N5YFQ6NCAVW"
	testClassicSecret = "AGE-SECRET-KEY-1TC97H5XWKNUS38AL2YWX47J6RRDT6Q7Y227FERATU45K67EYR2NS7Q5ST4"
	testAdminSecret   = "AGE-SECRET-KEY-1F44DK6RUGPFMGWUHSHETMRXHV0SQ670XN2SJKAR2ZZQMAYATJQHQH3FF7Q"
)

type vector struct {
	name   string
	header map[string][]string
	order  []string
	body   []byte
}

func (v *vector) get(k string) string {
	if len(v.header[k]) == 0 {
		return ""
	}
	return v.header[k][0]
}

func (v *vector) set(k, val string) {
	if v.header == nil {
		v.header = map[string][]string{}
	}
	if _, ok := v.header[k]; !ok {
		v.order = append(v.order, k)
	}
	v.header[k] = append(v.header[k], val)
}

func (v *vector) marshal() []byte {
	var b bytes.Buffer
	for _, k := range v.order {
		for _, val := range v.header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, val)
		}
	}
	b.WriteByte('\n')
	b.Write(v.body)
	return b.Bytes()
}

func parseVector(name string, data []byte) (*vector, error) {
	v := &vector{name: name}
	r := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("%s: header not terminated", name)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		k, val, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("%s: bad header line %q", name, line)
		}
		v.set(k, val)
	}
	v.body, _ = io.ReadAll(r)
	return v, nil
}

func loadVectors(t *testing.T) []*vector {
	t.Helper()
	files, err := filepath.Glob("testdata/vectors/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors found (run with -update): %v", err)
	}
	var out []*vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVector(filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// errorCode maps bundle and header errors to the implementation-neutral
// codes the vectors use.
func errorCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrUnsafeName, "unsafe_name"}, {ErrNotFirst, "not_first"}, {ErrDigest, "digest"},
		{ErrPadding, "padding"}, {ErrTruncated, "truncated"}, {ErrBadTarHeader, "bad_tar_header"},
		{ErrUnexpectedEnt, "unexpected_entry"}, {ErrBadSignature, "bad_signature"}, {ErrMixedRecipients, "mixed_recipients"}, {ErrNotCanonical, "not_canonical"}, {ErrManifestNotCanonical, "not_canonical"},
		{ErrBundle, "bundle"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "error"
}

type bundleInput struct {
	Report Report `json:"report"`
	Files  []struct {
		Name    string `json:"name"`
		Type    string `json:"type"`
		Content string `json:"content_base64"`
	} `json:"files"`
}

func (in *bundleInput) build() (*Report, []File) {
	r := in.Report
	var files []File
	for _, f := range in.Files {
		c, _ := base64.StdEncoding.DecodeString(f.Content)
		sum := sha256.Sum256(c)
		files = append(files, File{
			Attachment: Attachment{Name: f.Name, Size: int64(len(c)), SHA256: hex.EncodeToString(sum[:]), Type: f.Type},
			Body:       bytes.NewReader(c),
		})
	}
	return &r, files
}

// readAll reads a bundle plaintext completely and returns the report and
// the attachments' contents.
func readAll(r io.Reader) (*Report, [][]byte, error) {
	br, err := NewBundleReader(r)
	if err != nil {
		return nil, nil, err
	}
	var out [][]byte
	for {
		_, rd, err := br.Next()
		if err == io.EOF {
			return br.Report(), out, nil
		}
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, b)
	}
}

func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			switch v.get("kind") {
			case "identity":
				checkIdentityVector(t, v)
			case "padding":
				checkPaddingVector(t, v)
			case "manifest":
				checkManifestVector(t, v)
			case "request":
				checkRequestVector(t, v)
			case "bundle":
				checkBundleVector(t, v)
			case "sealed":
				checkSealedVector(t, v)
			case "receipt":
				checkReceiptVector(t, v)
			case "reply":
				checkReplyVector(t, v)
			default:
				t.Fatalf("unknown kind %q", v.get("kind"))
			}
		})
	}
}

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

func checkPaddingVector(t *testing.T, v *vector) {
	for _, line := range strings.Split(strings.TrimSpace(string(v.body)), "\n") {
		f := strings.Fields(line)
		n, _ := strconv.ParseInt(f[0], 10, 64)
		padme, _ := strconv.ParseInt(f[1], 10, 64)
		padded, _ := strconv.ParseInt(f[2], 10, 64)
		if got := Padme(n); got != padme {
			t.Errorf("Padme(%d) = %d, want %d", n, got, padme)
		}
		if got := PaddedSize(n); got != padded {
			t.Errorf("PaddedSize(%d) = %d, want %d", n, got, padded)
		}
	}
}

func checkManifestVector(t *testing.T, v *vector) {
	m, key, err := OpenManifest(v.body, nil)
	if want := v.get("expect"); want != "ok" {
		if err == nil {
			t.Fatalf("manifest opened, want %s", want)
		}
		if got := errorCode(err); got != want {
			t.Fatalf("error %v (%s), want %s", err, got, want)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := KeyFingerprint(key); got != v.get("fingerprint") {
		t.Errorf("fingerprint %s, want %s", got, v.get("fingerprint"))
	}
	if m.Desk != v.get("desk") || strconv.FormatUint(m.Serial, 10) != v.get("serial") {
		t.Errorf("desk %q serial %d", m.Desk, m.Serial)
	}
	// Signing is deterministic: the same manifest signs to the same bytes.
	admin, _ := NewIdentity("admin", v.get("signer-secret"))
	again, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, v.body) {
		t.Errorf("re-signed manifest differs:\n%s\n%s", again, v.body)
	}
}

func checkRequestVector(t *testing.T, v *vector) {
	id, _ := NewIdentity("h", v.get("secret"))
	sum, err := ParseBodySHA256(v.get("body-sha256")) // as sent in BodySHA256Header
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := strconv.ParseInt(v.get("time"), 10, 64)
	text := RequestText(v.get("method"), v.get("path"), sum, ts, v.get("nonce"))
	if text != string(v.body) {
		t.Errorf("signed text:\n%q\nwant\n%q", text, v.body)
	}
	auth := signRequest(id.SigningKey(), v.get("method"), v.get("path"), sum, ts, v.get("nonce"))
	if auth != v.get("authorization") {
		t.Errorf("authorization:\n got %s\nwant %s", auth, v.get("authorization"))
	}
	a, err := ParseRequestAuth(v.get("authorization"))
	if err != nil || !a.Verify(v.get("method"), v.get("path"), sum) {
		t.Errorf("authorization does not verify: %v", err)
	}
}

func checkBundleVector(t *testing.T, v *vector) {
	want := v.get("expect")
	if in := v.get("input"); in != "" {
		var bi bundleInput
		if err := json.Unmarshal([]byte(in), &bi); err != nil {
			t.Fatal(err)
		}
		r, files := bi.build()
		var buf bytes.Buffer
		if _, err := WriteBundle(&buf, r, files); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), v.body) {
			t.Fatalf("WriteBundle output differs from the vector (%d vs %d bytes)", buf.Len(), len(v.body))
		}
	}
	r, files, err := readAll(bytes.NewReader(v.body))
	if want != "ok" {
		if got := errorCode(err); got != want {
			t.Fatalf("error %v (%s), want %s", err, got, want)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(len(files)); got != v.get("attachments") {
		t.Errorf("%s attachments, want %s", got, v.get("attachments"))
	}
	if r.Desk != v.get("desk") {
		t.Errorf("desk %q, want %q", r.Desk, v.get("desk"))
	}
}

func checkReceiptVector(t *testing.T, v *vector) {
	e, _ := hex.DecodeString(v.get("entropy"))
	r := ReceiptFromEntropy([16]byte(e))
	classic, _ := r.ReplyIdentity(false)
	pq, _ := r.ReplyIdentity(true)
	for k, got := range map[string]string{
		"words":             r.Words(),
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

func checkReplyVector(t *testing.T, v *vector) {
	var rep Report
	if err := json.Unmarshal(v.body, &rep); err != nil {
		t.Fatal(err)
	}
	canon, _ := MarshalReport(&rep)
	if !bytes.Equal(canon, bytes.TrimSuffix(v.body, []byte("\n"))) {
		t.Errorf("reply report.json is not canonical")
	}
	h, _ := NewIdentity("alice", v.get("signer-secret"))
	other, _ := NewIdentity("bob", testAdminSecret)
	if _, err := VerifyReply(&rep, []*Card{other.Card(), h.Card()}); err != nil {
		t.Errorf("reply does not verify: %v", err)
	}
	if _, err := VerifyReply(&rep, []*Card{other.Card()}); !errors.Is(err, ErrReplySignature) {
		t.Errorf("reply verifies without its signer among the handlers")
	}
	rep.Answers[0].Value += "!"
	if _, err := VerifyReply(&rep, []*Card{h.Card()}); !errors.Is(err, ErrReplySignature) {
		t.Errorf("an altered reply verifies")
	}
}

func checkSealedVector(t *testing.T, v *vector) {
	id, err := NewIdentity("h", v.get("identity"))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := age.Decrypt(bytes.NewReader(v.body), id.Age())
	var plain []byte
	if err == nil {
		plain, err = io.ReadAll(dr)
	}
	if want := v.get("expect"); want != "ok" {
		// "corrupt": age itself must refuse the file; no plaintext is trusted.
		if err == nil {
			t.Fatalf("corrupted file decrypted, want an age error")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plain)
	if got := hex.EncodeToString(sum[:]); got != v.get("plaintext-sha256") {
		t.Errorf("plaintext sha256 %s, want %s", got, v.get("plaintext-sha256"))
	}
	if _, _, err := readAll(bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
}

// --- generation ---

func writeVector(t *testing.T, name string, v *vector) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("testdata/vectors", name), v.marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testDesk(t *testing.T) (*Manifest, *Identity) {
	admin, _ := NewIdentity("admin", testAdminSecret)
	h, _ := NewIdentity("alice", testClassicSecret)
	m := &Manifest{Version: 1, Desk: "helpdesk", Title: "مكتب المساعدة / Helpdesk", Serial: 7,
		Handlers:   []string{h.Card().String()},
		Categories: []Category{{ID: "sea", Title: "Sexual exploitation and abuse", Handlers: []string{"alice"}}}}
	return m, admin
}

const basicInput = `{"report":{"desk":"helpdesk","category":"sea","language":"ar","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[{"field":"message","value":"وصف ما حدث <b>&amp;</b>\nline two"},{"field":"contact","value":""}],"reply_recipient":"","mailbox":""},"files":[{"name":"صورة 1.jpg","type":"image/jpeg","content_base64":"/9j/4AAQSkZJRgABAQ=="},{"name":"../../etc/passwd","type":"text/plain","content_base64":"aGVsbG8K"}]}`

func writeVectors(t *testing.T) {
	for _, k := range []struct{ file, name, secret string }{
		{"identity-pq.txt", "alice", testPQSecret},
		{"identity-classic.txt", "bob", testClassicSecret},
	} {
		id, err := NewIdentity(k.name, k.secret)
		if err != nil {
			t.Fatal(err)
		}
		oa := id.OnionAuthPrivate()
		c := id.Card()
		v := &vector{}
		v.set("kind", "identity")
		v.set("name", k.name)
		v.set("secret", k.secret)
		v.set("recipient", id.Recipient())
		v.set("ed25519-public", b64.EncodeToString(c.SignKey))
		v.set("onion-auth-private", b32.EncodeToString(oa[:]))
		v.set("onion-auth-public", b32.EncodeToString(c.OnionAuth[:]))
		v.set("card", c.String())
		v.set("card-fingerprint", c.Fingerprint())
		v.set("key-fingerprint", KeyFingerprint(c.SignKey))
		writeVector(t, k.file, v)
	}

	pv := &vector{}
	pv.set("kind", "padding")
	pv.set("columns", "n padme(n) padded-size(n)")
	var lines []string
	for _, n := range []int64{0, 1, 2, 3, 9, 100, 1023, 1024, 1536, 2048, 2049, 4096, 9999, 65536, 100000, 1 << 20, 1<<20 + 1, 123456789, 1 << 30, 1<<33 + 5} {
		lines = append(lines, fmt.Sprintf("%d %d %d", n, Padme(n), PaddedSize(n)))
	}
	pv.body = []byte(strings.Join(lines, "\n") + "\n")
	writeVector(t, "padding.txt", pv)

	m, admin := testDesk(t)
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	mv := &vector{}
	mv.set("kind", "manifest")
	mv.set("signer-secret", testAdminSecret)
	mv.set("fingerprint", KeyFingerprint(admin.Card().SignKey))
	mv.set("desk", "helpdesk")
	mv.set("serial", "7")
	mv.set("expect", "ok")
	mv.body = env
	writeVector(t, "manifest-valid.txt", mv)

	fm, _ := testDesk(t)
	fm.Serial = 8
	fm.Categories[0].Labels = map[string]string{"fr": "Exploitation et abus sexuels", "ar": "الاستغلال والانتهاك الجنسيان"}
	fm.Form = &Form{Fields: []Field{
		{ID: "what", Type: FieldLongText, Required: true, Label: map[string]string{"en": "What happened?", "ar": "ماذا حدث؟"}, Help: map[string]string{"en": "Any language."}},
		{ID: "place", Type: FieldChoice, Label: map[string]string{"en": "Where?"}, Options: []Option{{ID: "camp", Label: map[string]string{"en": "Camp", "fr": "Camp"}}, {ID: "office", Label: map[string]string{"en": "Office"}}}},
		{ID: "when", Type: FieldDate, Label: map[string]string{"en": "When?"}},
		{ID: "kind", Type: FieldCategory, Label: map[string]string{"en": "About"}},
		{ID: "files", Type: FieldFile, Label: map[string]string{"en": "Files"}},
	}}
	fenv, err := SignManifest(fm, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	fv := &vector{}
	fv.set("kind", "manifest")
	fv.set("description", "a desk with its own form and category labels: maps are encoded with sorted keys")
	fv.set("signer-secret", testAdminSecret)
	fv.set("fingerprint", KeyFingerprint(admin.Card().SignKey))
	fv.set("desk", "helpdesk")
	fv.set("serial", "8")
	fv.set("expect", "ok")
	fv.body = fenv
	writeVector(t, "manifest-form.txt", fv)

	var e Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	e.Payload = base64.StdEncoding.EncodeToString(bytes.Replace(payload, []byte(`"serial":7`), []byte(`"serial":8`), 1))
	tampered, _ := json.MarshalIndent(e, "", "  ")
	tv := &vector{}
	tv.set("kind", "manifest")
	tv.set("description", "the payload's serial was changed after signing")
	tv.set("expect", "bad_signature")
	tv.body = append(tampered, '\n')
	writeVector(t, "manifest-tampered.txt", tv)

	loose := bytes.Replace(payload, []byte(`"serial":7`), []byte(`"serial": 7`), 1)
	le := Envelope{Format: DeskFormat, Payload: base64.StdEncoding.EncodeToString(loose), Key: e.Key,
		Signature: b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(loose)))}
	lb, _ := json.MarshalIndent(le, "", "  ")
	lv := &vector{}
	lv.set("kind", "manifest")
	lv.set("description", "validly signed, but the payload has a space after a colon: not canonical JSON")
	lv.set("expect", "not_canonical")
	lv.body = append(lb, '\n')
	writeVector(t, "manifest-noncanonical.txt", lv)

	pq, _ := NewIdentity("alice", testPQSecret)
	mixed := &Manifest{Version: 1, Desk: "mixed", Title: "Mixed", Serial: 1,
		Handlers: []string{pq.Card().String(), admin.Card().String()}}
	mp, _ := json.Marshal(mixed)
	me := Envelope{Format: DeskFormat, Payload: base64.StdEncoding.EncodeToString(mp), Key: b64.EncodeToString(admin.Card().SignKey),
		Signature: b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(mp)))}
	mb, _ := json.MarshalIndent(me, "", "  ")
	xv := &vector{}
	xv.set("kind", "manifest")
	xv.set("description", "validly signed, but mixes post-quantum and classic handlers, which age cannot encrypt to together")
	xv.set("expect", "mixed_recipients")
	xv.body = append(mb, '\n')
	writeVector(t, "manifest-mixed.txt", xv)

	for _, rq := range []struct {
		file, method, path string
		body               []byte
	}{
		{"request-inbox.txt", "GET", "/api/v1/inbox", nil},
		{"request-publish.txt", "PUT", "/api/v1/admin/desks/helpdesk", env},
	} {
		sum := sha256.Sum256(rq.body)
		nonce := b64.EncodeToString(bytes.Repeat([]byte{7}, 16))
		ts := time.Date(2026, 11, 25, 11, 30, 0, 0, time.UTC).Unix()
		rv := &vector{}
		rv.set("kind", "request")
		rv.set("secret", testPQSecret)
		rv.set("method", rq.method)
		rv.set("path", rq.path)
		rv.set("body-sha256", hex.EncodeToString(sum[:]))
		rv.set("time", fmt.Sprint(ts))
		rv.set("nonce", nonce)
		rv.set("authorization", signRequest(pq.SigningKey(), rq.method, rq.path, sum, ts, nonce))
		rv.body = []byte(RequestText(rq.method, rq.path, sum, ts, nonce))
		writeVector(t, rq.file, rv)
	}

	var bi bundleInput
	if err := json.Unmarshal([]byte(basicInput), &bi); err != nil {
		t.Fatal(err)
	}
	var basic bytes.Buffer
	r, files := bi.build()
	if _, err := WriteBundle(&basic, r, files); err != nil {
		t.Fatal(err)
	}
	bv := &vector{}
	bv.set("kind", "bundle")
	bv.set("description", "Arabic text and file name, HTML characters, an attachment named like a path")
	bv.set("input", basicInput)
	bv.set("expect", "ok")
	bv.set("desk", "helpdesk")
	bv.set("attachments", "2")
	bv.body = basic.Bytes()
	writeVector(t, "bundle-basic.txt", bv)

	emptyIn := `{"report":{"desk":"helpdesk","category":"","language":"en","submitted":"2026-11-25T11:00:00Z","sealed_by":"server","answers":[{"field":"message","value":"hi"}],"reply_recipient":"","mailbox":""},"files":[]}`
	json.Unmarshal([]byte(emptyIn), &bi)
	var empty bytes.Buffer
	r, files = bi.build()
	WriteBundle(&empty, r, files)
	ev := &vector{}
	ev.set("kind", "bundle")
	ev.set("description", "no attachments")
	ev.set("input", emptyIn)
	ev.set("expect", "ok")
	ev.set("desk", "helpdesk")
	ev.set("attachments", "0")
	ev.body = empty.Bytes()
	writeVector(t, "bundle-empty.txt", ev)

	// A bundle large enough that Padmé pads beyond the 512-byte block, with
	// an empty and an exactly-512-byte attachment and an empty media type.
	mid := make([]byte, 50000)
	for i := range mid {
		mid[i] = byte(i * 31)
	}
	paddedIn, _ := json.Marshal(map[string]any{
		"report": Report{Desk: "helpdesk", Language: "fr", Submitted: "2026-11-25T11:00:00Z", SealedBy: SealedByClient,
			Answers: []Answer{{"message", "voir les pièces jointes"}}},
		"files": []map[string]string{
			{"name": "mesure.bin", "type": "", "content_base64": base64.StdEncoding.EncodeToString(mid)},
			{"name": "vide.txt", "type": "text/plain", "content_base64": ""},
			{"name": "bloc.bin", "type": "application/octet-stream", "content_base64": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 512))},
		}})
	addBundle(t, "bundle-padded.txt", "Padmé padding beyond the block; empty, 512-byte and untyped attachments", string(paddedIn), "3")

	// Every string escape rule of the canonical encoding, in every field.
	var ctl strings.Builder
	for c := 0; c < 0x20; c++ {
		ctl.WriteByte(byte(c))
	}
	tricky := ctl.String() + "\x7f<>&\"/\\ \u2028\u2029\u0085\ufeff é 😀 مرحبا"
	stringsIn, _ := json.Marshal(map[string]any{
		"report": Report{Desk: "helpdesk", Category: "sea", Language: "ar", Submitted: "2026-11-25T11:00:00Z", SealedBy: SealedByServer,
			Answers: []Answer{{"what", tricky}, {"when", "\t\n"}}},
		"files": []map[string]string{{"name": tricky, "type": "text/plain; charset=utf-8", "content_base64": base64.StdEncoding.EncodeToString([]byte(tricky))}},
	})
	addBundle(t, "bundle-strings.txt", "control characters, U+2028/U+2029, DEL, HTML characters, quotes, emoji and Arabic in answers and a file name", string(stringsIn), "1")

	for _, bad := range badBundles(basic.Bytes()) {
		v := &vector{}
		v.set("kind", "bundle")
		v.set("description", bad.desc)
		v.set("expect", bad.expect)
		v.body = bad.body
		writeVector(t, "bundle-bad-"+bad.name+".txt", v)
	}

	ent := [16]byte{0x8a, 0x3f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb, 0xc, 0xfe}
	rcpt := ReceiptFromEntropy(ent)
	classic, _ := rcpt.ReplyIdentity(false)
	pqr, _ := rcpt.ReplyIdentity(true)
	rv := &vector{}
	rv.set("kind", "receipt")
	rv.set("entropy", hex.EncodeToString(ent[:]))
	rv.set("words", rcpt.Words())
	rv.set("lookup-token", b64.EncodeToString(rcpt.Token()))
	rv.set("mailbox", rcpt.MailboxID())
	rv.set("reply-classic", classic.MarshalSecret())
	rv.set("reply-classic-pub", classic.Recipient())
	rv.set("reply-pq", pqr.MarshalSecret())
	rv.set("reply-pq-pub", pqr.Recipient())
	ws := strings.Fields(rcpt.Words())
	abbrev := make([]string, len(ws))
	for i, x := range ws {
		abbrev[i] = x[:min(4, len(x))]
	}
	swapped := slices.Clone(ws)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	typo := slices.Clone(ws)
	typo[5] = "zzzz"
	rv.body = []byte(strings.Join([]string{
		rcpt.Words() + "\t" + rcpt.Words(),
		strings.ToUpper(strings.Join(ws, "-")) + "\t" + rcpt.Words(),
		"  " + strings.Join(abbrev, " ") + " \t" + rcpt.Words(),
		strings.Join(ws[:11], " ") + "\tinvalid",
		strings.Join(swapped, " ") + "\tinvalid",
		strings.Join(typo, " ") + "\tinvalid",
	}, "\n") + "\n")
	writeVector(t, "receipt.txt", rv)

	alice, _ := NewIdentity("alice", testClassicSecret)
	reply := &Report{Desk: "helpdesk", Category: "sea", Language: "ar", Submitted: "2026-11-25T12:00:00Z", Mailbox: rcpt.MailboxID(),
		Answers: []Answer{{Field: "message", Value: "وصلنا بلاغك. هل أنت بأمان؟"}}, Recipients: []string{alice.Recipient()}}
	if err := SignReplyFiles(reply, nil, alice); err != nil {
		t.Fatal(err)
	}
	rb, _ := MarshalReport(reply)
	rpv := &vector{}
	rpv.set("kind", "reply")
	rpv.set("description", "a handler's signed reply report.json; the signature covers it with signature empty, after the line amana-reply/v1")
	rpv.set("signer-secret", testClassicSecret)
	rpv.body = append(rb, '\n')
	writeVector(t, "reply-signed.txt", rpv)

	h, _ := NewIdentity("bob", testClassicSecret)
	sealedVector(t, "sealed-classic.txt", h, testClassicSecret, basic.Bytes(), "ok")
	sealedVector(t, "sealed-pq.txt", pq, testPQSecret, basic.Bytes(), "ok")
}

func addBundle(t *testing.T, file, desc, input, attachments string) {
	var bi bundleInput
	if err := json.Unmarshal([]byte(input), &bi); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r, files := bi.build()
	if _, err := WriteBundle(&b, r, files); err != nil {
		t.Fatal(err)
	}
	v := &vector{}
	v.set("kind", "bundle")
	v.set("description", desc)
	v.set("input", input)
	v.set("expect", "ok")
	v.set("desk", "helpdesk")
	v.set("attachments", attachments)
	v.body = b.Bytes()
	writeVector(t, file, v)
}

func sealedVector(t *testing.T, file string, id *Identity, secret string, plain []byte, expect string) {
	path := filepath.Join("testdata/vectors", file)
	if _, err := os.Stat(path); err == nil {
		return // random: keep the committed one
	}
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, mustRecipient(t, id))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	sum := sha256.Sum256(plain)
	v := &vector{}
	v.set("kind", "sealed")
	v.set("identity", secret)
	v.set("expect", expect)
	v.set("plaintext-sha256", hex.EncodeToString(sum[:]))
	v.body = ct.Bytes()
	writeVector(t, file, v)
	// A corrupted copy: one payload byte flipped near the end.
	bad := bytes.Clone(ct.Bytes())
	bad[len(bad)-20] ^= 1
	cv := &vector{}
	cv.set("kind", "sealed")
	cv.set("description", "one ciphertext byte flipped")
	cv.set("identity", secret)
	cv.set("expect", "corrupt")
	cv.body = bad
	writeVector(t, strings.Replace(file, "sealed-", "sealed-corrupt-", 1), cv)
}

func mustRecipient(t *testing.T, id *Identity) age.Recipient {
	r, err := id.Card().AgeRecipient()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type badBundle struct {
	name, desc, expect string
	body               []byte
}

// badBundles crafts hostile plaintexts by hand.
func badBundles(good []byte) []badBundle {
	rep := []byte(`{"schema":1,"desk":"helpdesk","category":"","language":"","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[],"attachments":[{"name":"x","size":5,"sha256":"` +
		hex.EncodeToString(sha256.New().Sum(nil)) + `","type":"text/plain"}],"reply_recipient":"","mailbox":""}`)
	entry := func(name string, content []byte) []byte {
		b := tarHeader(name, int64(len(content)))
		b = append(b, content...)
		return append(b, make([]byte, roundBlock(int64(len(content)))-int64(len(content)))...)
	}
	finish := func(b []byte) []byte {
		b = append(b, make([]byte, 1024)...)
		return append(b, make([]byte, PaddedSize(int64(len(b)))-int64(len(b)))...)
	}
	okReport := []byte(`{"schema":1,"desk":"helpdesk","category":"","language":"","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[],"attachments":[],"reply_recipient":"","mailbox":""}`)
	nonzero := bytes.Clone(good)
	nonzero[len(nonzero)-1] = 1
	badSum := bytes.Clone(good)
	// Flip a byte of the first attachment's content (after two headers and the report).
	idx := bytes.Index(badSum, []byte{0xff, 0xd8, 0xff})
	badSum[idx+5] ^= 0x01
	return []badBundle{
		{"dotdot", "an entry named ../evil", "unsafe_name", finish(append(entry(reportName, okReport), entry("../evil", []byte("x"))...))},
		{"absolute", "the first entry is /etc/passwd", "unsafe_name", finish(entry("/etc/passwd", []byte("root")))},
		{"not-first", "an attachment before report.json", "not_first", finish(entry("files/001-x", []byte("hello")))},
		{"extra", "an entry report.json does not list", "unexpected_entry", finish(append(entry(reportName, okReport), entry("files/001-x", []byte("x"))...))},
		{"digest", "an attachment whose bytes do not match its SHA-256", "digest", badSum},
		{"digest-listed", "report.json lists a size-5 file of SHA-256(empty) and it holds 5 other bytes", "digest", finish(append(entry(reportName, rep), entry("files/001-x", []byte("hello"))...))},
		{"padding", "a non-zero byte in the padding", "padding", nonzero},
		{"noncanonical", "report.json with a space after a colon and keys in another order", "not_canonical",
			finish(entry(reportName, []byte(`{"desk": "helpdesk","schema":1,"category":"","language":"","submitted":"2026-11-25T11:00:00Z","sealed_by":"client","answers":[],"attachments":[],"reply_recipient":"","mailbox":""}`)))},
		{"long-padding", "512 more zero bytes than the padded size", "padding", append(bytes.Clone(good), make([]byte, 512)...)},
		{"truncated", "the archive ends inside an attachment", "truncated", good[:1536+10]},
		{"checksum", "report.json's tar header checksum is wrong", "bad_tar_header", func() []byte {
			b := bytes.Clone(good)
			b[0] = 'R' // the name changes, the checksum field does not
			return b
		}()},
	}
}
