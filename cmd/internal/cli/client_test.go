package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/relaytest"
)

// TestSubmitAndFollowupSayClientCLI: the report amana submit seals and the
// follow-up amana followup seals both carry "client":"cli" (protocol
// §8.1), which the desk's reports count as the CLI channel.
func TestSubmitAndFollowupSayClientCLI(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	mustRun(t, "keygen", "--home", p("home"), "-o", p("alice.key"), "--name", "alice", "--no-passphrase", "--classic")
	os.WriteFile(p("alice.card"), []byte(mustRun(t, "card", "--home", p("home"), "-i", p("alice.key"))), 0o644)
	b, err := os.ReadFile(p("alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := crypto.ParseIdentityFile(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.New(t, relaytest.Options{})
	adminKey := p("admin.key")
	if err := os.WriteFile(adminKey, r.Admin.MarshalText(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "desk", "create", "--home", p("home"), "--id", "helpdesk", "--title", "Helpdesk", "--handler", p("alice.card"),
		"-i", adminKey, "-o", p("desk.json"))
	mustRun(t, "desk", "publish", "--home", p("home"), p("desk.json"), "--relay", r.URL, "-i", adminKey)
	os.WriteFile(p("msg.txt"), []byte("what happened\n"), 0o600)
	out := mustRun(t, "submit", "--home", p("home-submitter"), "--relay", r.URL, "--desk", "helpdesk", "--message-file", p("msg.txt"),
		"--desk-fingerprint", crypto.KeyFingerprint(r.Admin.Card().SignKey))
	m := wordsLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no receipt words:\n%s", out)
	}
	os.WriteFile(p("receipt.txt"), []byte(m[1]+"\n"), 0o600)
	mustRun(t, "followup", "--home", p("home-submitter"), "--relay", r.URL, "--receipt-file", p("receipt.txt"),
		"--message-file", p("msg.txt"), "--desk", "helpdesk", "--desk-fingerprint", crypto.KeyFingerprint(r.Admin.Card().SignKey))
	subs, err := r.Spool.Submissions(nil)
	if err != nil || len(subs) != 2 {
		t.Fatalf("%d submissions, %v", len(subs), err)
	}
	kinds := map[string]bool{}
	for _, s := range subs {
		rd, err := r.Spool.OpenSubmission(s.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		br, err := crypto.OpenBundle(rd, alice.Age())
		if err != nil {
			t.Fatal(err)
		}
		rep := br.Report()
		if rep.SealedBy != crypto.SealedByClient || rep.Client != crypto.ClientCLI || rep.Kind != "" {
			t.Errorf("%s %s: sealed_by %q, client %q, kind %q", s.Kind, s.ID, rep.SealedBy, rep.Client, rep.Kind)
		}
		kinds[s.Kind] = true
	}
	if !kinds["followup"] {
		t.Errorf("no follow-up among %v", kinds)
	}
}
