package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

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

	tm, _ := testDesk(t)
	tm.Serial = 9
	tm.Language = "en"
	tm.Titles = map[string]string{"ar": "مكتب المساعدة", "fr": "Bureau d’aide"}
	tm.Descriptions = map[string]string{"fr": "Nous répondons en un jour."}
	tm.Categories[0].Labels = map[string]string{"ar": "الاستغلال والانتهاك الجنسيان"}
	tm.DefaultRoute = tm.Categories[0].ID
	tenv, err := SignManifest(tm, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	txv := &vector{}
	txv.set("kind", "manifest")
	txv.set("description", "a desk with its language, its title and description in other languages, and a default route for reports without a category")
	txv.set("signer-secret", testAdminSecret)
	txv.set("fingerprint", KeyFingerprint(admin.Card().SignKey))
	txv.set("desk", "helpdesk")
	txv.set("serial", "9")
	txv.set("expect", "ok")
	txv.body = tenv
	writeVector(t, "manifest-texts.txt", txv)

	// A signer with other code can sign a default route the desk lacks;
	// readers refuse it.
	var te Envelope
	json.Unmarshal(tenv, &te)
	tp, _ := base64.StdEncoding.DecodeString(te.Payload)
	badRoute := bytes.Replace(tp, []byte(`"default_route":"sea"`), []byte(`"default_route":"fraud"`), 1)
	be := Envelope{Format: DeskFormat, Payload: base64.StdEncoding.EncodeToString(badRoute), Key: te.Key,
		Signature: b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(badRoute)))}
	bb, _ := json.MarshalIndent(be, "", "  ")
	brv := &vector{}
	brv.set("kind", "manifest")
	brv.set("description", "validly signed and canonical, but its default_route names no category of the desk")
	brv.set("expect", "unknown_default_route")
	brv.body = append(bb, '\n')
	writeVector(t, "manifest-bad-default-route.txt", brv)

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

	// A follow-up: its receipt's mailbox and reply key, and its place in
	// the thread (seq), after the member mailbox.
	followupIn, _ := json.Marshal(map[string]any{
		"report": Report{Desk: "helpdesk", Category: "sea", Language: "ar", Submitted: "2026-11-25T13:00:00Z", SealedBy: SealedByClient,
			Answers: []Answer{{"message", "حدث ذلك مرة أخرى أمس."}}, ReplyRecipient: "age1ckcglc8x6u0tu9g846vuu4lhxt0qw9rcmyg36gj7usl9nn4ur3aq5qqwhf",
			Mailbox: "4a7a24e79761f8d1db431cae3bc6f19c", Seq: 2},
		"files": []map[string]string{},
	})
	addBundle(t, "bundle-followup-seq.txt", "a follow-up written after reading a reply of seq 1: seq 2, between mailbox and the reply members", string(followupIn), "0")

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
	rv.set("digits", rcpt.Digits())
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
	rv.body = []byte(strings.Join(append([]string{
		rcpt.Words() + "\t" + rcpt.Words(),
		strings.ToUpper(strings.Join(ws, "-")) + "\t" + rcpt.Words(),
		"  " + strings.Join(abbrev, " ") + " \t" + rcpt.Words(),
		strings.Join(ws[:11], " ") + "\tinvalid",
		strings.Join(swapped, " ") + "\tinvalid",
		strings.Join(typo, " ") + "\tinvalid",
	}, receiptDigitLines(rcpt)...), "\n") + "\n")
	writeVector(t, "receipt.txt", rv)

	alice, _ := NewIdentity("alice", testClassicSecret)
	reply := &Report{Desk: "helpdesk", Category: "sea", Language: "ar", Submitted: "2026-11-25T12:00:00Z", Mailbox: rcpt.MailboxID(),
		Answers: []Answer{{Field: "message", Value: "وصلنا بلاغك. هل أنت بأمان؟"}}, Recipients: []string{alice.Recipient()}}
	if err := SignReplyFiles(reply, nil, alice); err != nil {
		t.Fatal(err)
	}
	seqReply := *reply
	seqReply.Seq = 3
	seqReply.Answers = []Answer{{Field: "message", Value: "شكرا. سنتصل بك."}}
	if err := SignReplyFiles(&seqReply, nil, alice); err != nil {
		t.Fatal(err)
	}
	sb, _ := MarshalReport(&seqReply)
	spv := &vector{}
	spv.set("kind", "reply")
	spv.set("description", "a signed reply with its place in the thread: seq 3, which the signature covers")
	spv.set("signer-secret", testClassicSecret)
	spv.body = append(sb, '\n')
	writeVector(t, "reply-signed-seq.txt", spv)

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
	writeEventVectors(t)
	writeKindVectors(t)
	writeUnhashedVectors(t)
}

// receiptDigitLines are the parse lines of a receipt's digit form: ASCII,
// Arabic-Indic and Persian digits, separators, the smallest and largest
// receipts, and the mistakes the check digits catch.
func receiptDigitLines(rcpt *Receipt) []string {
	d := rcpt.Digits()
	w := rcpt.Words()
	script := func(s string, zero rune) string {
		return strings.Map(func(c rune) rune {
			if c >= '0' && c <= '9' {
				return zero + c - '0'
			}
			return c
		}, s)
	}
	flat := strings.ReplaceAll(d, " ", "")
	at := func(s string, i int, c byte) string { return s[:i] + string(c) + s[i+1:] }
	bump := func(c byte) byte { return '0' + (c-'0'+1)%10 }
	zero, top := ReceiptFromEntropy([16]byte{}), [16]byte{}
	for i := range top {
		top[i] = 0xff
	}
	max := ReceiptFromEntropy(top)
	// 2^128, the first 39-digit number past the largest receipt, with
	// the hash digits of the largest and a Damm digit that passes.
	over := "340282366920938463463374607431768211456" + max.digitString()[39:44]
	over += string('0' + damm(over))
	// The first digit wrong and the Damm digit made to pass: the hash
	// digits catch it.
	rehashed := at(flat, 0, bump(flat[0]))[:44]
	rehashed += string('0' + damm(rehashed))
	// Two different neighbouring digits to swap.
	sw := 10
	for flat[sw] == flat[sw+1] {
		sw++
	}
	lines := []string{
		d + "\t" + w,
		flat + "\t" + w,
		strings.ReplaceAll(d, " ", "-") + "\t" + w,
		script(d, '\u0660') + "\t" + w,
		script(d, '\u06f0') + "\t" + w,
		"\u200f" + script(strings.ReplaceAll(d, " ", "\u060c "), '\u0660') + "\u200e\t" + w,
		script(d[:23], '\u06f0') + " " + d[23:] + "\t" + w,
		" " + strings.ReplaceAll(d, " ", " / ") + ". \t" + w,
		zero.Digits() + "\t" + zero.Words(),
		max.Digits() + "\t" + max.Words(),
		over + "\tinvalid",
		rehashed + "\tinvalid",
		d[:len(d)-1] + "\tinvalid",
		d + "1\tinvalid",
		at(flat, 0, bump(flat[0])) + "\tinvalid",
		at(flat, 20, bump(flat[20])) + "\tinvalid",
		at(flat, 44, bump(flat[44])) + "\tinvalid",
		flat[:sw] + flat[sw+1:sw+2] + flat[sw:sw+1] + flat[sw+2:] + "\tinvalid",
		d + " x\tinvalid",
		d + " +\tinvalid",
	}
	return lines
}
