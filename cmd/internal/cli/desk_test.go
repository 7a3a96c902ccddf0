package cli

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/relaytest"
	"github.com/amana-relay/amana/relay/web"
)

// TestPageLanguagesMatchCatalogues: desk create offers --title-LANG and
// --description-LANG for exactly the languages the relay's pages come in,
// so a catalogue added to the relay gets its flags.
func TestPageLanguagesMatchCatalogues(t *testing.T) {
	_, langs, err := web.Catalogs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(langs, pageLanguages) {
		t.Fatalf("page catalogues %v, desk create flags for %v", langs, pageLanguages)
	}
	cmd := newDeskCreate(&env{})
	for _, lang := range langs {
		for _, name := range []string{"title-" + lang, "description-" + lang} {
			if cmd.Flags().Lookup(name) == nil {
				t.Errorf("desk create has no --%s", name)
			}
		}
	}
}

// TestSubmitWithoutCategoryFollowsDefaultRoute: amana submit with no
// --category seals the report to the handlers of the desk's default route,
// as the verified manifest names it, and to nobody else.
func TestSubmitWithoutCategoryFollowsDefaultRoute(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	ids := map[string]*crypto.Identity{}
	for _, n := range []string{"alice", "carol"} {
		mustRun(t, "keygen", "--home", p("home"), "-o", p(n+".key"), "--name", n, "--no-passphrase", "--classic")
		os.WriteFile(p(n+".card"), []byte(mustRun(t, "card", "--home", p("home"), "-i", p(n+".key"))), 0o644)
		b, err := os.ReadFile(p(n + ".key"))
		if err != nil {
			t.Fatal(err)
		}
		if ids[n], err = crypto.ParseIdentityFile(b, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := relaytest.New(t, relaytest.Options{})
	adminKey := p("admin.key")
	if err := os.WriteFile(adminKey, r.Admin.MarshalText(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "desk", "create", "--home", p("home"), "--id", "helpdesk", "--title", "Helpdesk",
		"--handler", p("alice.card"), "--handler", p("carol.card"),
		"--category", "incident=alice,carol", "--category", "sea=carol", "--default-route", "sea",
		"-i", adminKey, "-o", p("desk.json"))
	mustRun(t, "desk", "publish", "--home", p("home"), p("desk.json"), "--relay", r.URL, "-i", adminKey)
	os.WriteFile(p("msg.txt"), []byte("what happened\n"), 0o600)
	mustRun(t, "submit", "--home", p("home-submitter"), "--relay", r.URL, "--desk", "helpdesk", "--message-file", p("msg.txt"),
		"--desk-fingerprint", crypto.KeyFingerprint(r.Admin.Card().SignKey))
	subs, err := r.Spool.Submissions(nil)
	if err != nil || len(subs) != 1 {
		t.Fatalf("%d submissions, %v", len(subs), err)
	}
	open := func(id *crypto.Identity) error {
		rd, err := r.Spool.OpenSubmission(subs[0].ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = crypto.OpenBundle(rd, id.Age())
		return err
	}
	if err := open(ids["carol"]); err != nil {
		t.Fatalf("carol, the default route, cannot open it: %v", err)
	}
	if open(ids["alice"]) == nil {
		t.Fatal("alice, outside the default route, opens a report without a category")
	}
}
