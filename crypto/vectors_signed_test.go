package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

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
	if rep.Seq != 0 {
		moved := rep
		moved.Seq++
		if _, err := VerifyReply(&moved, []*Card{h.Card()}); !errors.Is(err, ErrReplySignature) {
			t.Errorf("a reply moved in its thread (seq changed) verifies")
		}
	}
	rep.Answers[0].Value += "!"
	if _, err := VerifyReply(&rep, []*Card{h.Card()}); !errors.Is(err, ErrReplySignature) {
		t.Errorf("an altered reply verifies")
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
