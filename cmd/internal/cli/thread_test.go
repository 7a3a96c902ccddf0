package cli

import (
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
)

// TestReplyAuthor: show names a reply's author by the name the desk's kept
// manifest gives the signing key; a reply signed by a key the manifest
// does not list says so; without a manifest, the key's fingerprint; a
// signature that does not verify, never a name.
func TestReplyAuthor(t *testing.T) {
	mk := func(name string) *crypto.Identity {
		id, err := crypto.GenerateIdentity(name, false)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	alice, carol, mallory := mk("alice"), mk("carol"), mk("mallory")
	desk := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Help desk", Serial: 1,
		Handlers: []string{alice.Card().String(), carol.Card().String()}}
	if err := desk.Normalize(); err != nil {
		t.Fatal(err)
	}
	signed := func(by *crypto.Identity) *crypto.Report {
		r := &crypto.Report{Desk: "helpdesk", Mailbox: strings.Repeat("ab", 16), Answers: []crypto.Answer{{Field: "message", Value: "hi"}}}
		if err := crypto.SignReplyFiles(r, nil, by); err != nil {
			t.Fatal(err)
		}
		return r
	}
	forged := signed(carol)
	forged.Answers[0].Value = "changed"
	for _, c := range []struct {
		name string
		r    *crypto.Report
		desk *crypto.Manifest
		want string
	}{
		{"teammate", signed(carol), desk, "handler carol"},
		{"oneself", signed(alice), desk, "handler alice (you)"},
		{"not on the desk", signed(mallory), desk, "key " + crypto.KeyFingerprint(mallory.Card().SignKey) + ", which is NOT a handler in the desk's manifest"},
		{"no manifest", signed(carol), nil, "handler key " + crypto.KeyFingerprint(carol.Card().SignKey) + " (no manifest of the desk here"},
		{"altered", forged, desk, "the desk: signature does NOT verify"},
	} {
		if got := replyAuthor(c.r, c.desk, alice); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
