package relay

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// TestPublishFlagsRemovedKeys: a manifest that removes a handler's key
// tells the admin what waits encrypted to it.
func TestPublishFlagsRemovedKeys(t *testing.T) {
	f := newFixture(t)
	both := encrypt(t, []byte("to both"), f.alice, f.bob)
	f.do("POST", "/api/v1/desks/helpdesk/submissions?category=incident", nil, both, 201)
	onlyAlice := encrypt(t, []byte("to alice"), f.alice)
	f.do("POST", "/api/v1/desks/helpdesk/submissions?category=sea", nil, onlyAlice, 201)
	f.do("POST", "/api/v1/desks/helpdesk/submissions?category=sea", nil, encrypt(t, []byte("again"), f.alice), 201)

	publish := func(m *crypto.Manifest) *api.DeskInfo {
		env, err := crypto.SignManifest(m, f.admin.SigningKey())
		if err != nil {
			t.Fatal(err)
		}
		var info api.DeskInfo
		json.NewDecoder(f.publish(env, 200).Body).Decode(&info)
		return &info
	}
	// The same handlers under a new serial: nothing removed.
	if info := publish(&crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 2,
		Handlers:   []string{f.alice.Card().String(), f.bob.Card().String()},
		Categories: []crypto.Category{{ID: "incident", Title: "Incident", Handlers: []string{"alice", "bob"}}, {ID: "sea", Title: "SEA", Handlers: []string{"alice"}}},
	}); info.Exposure != nil {
		t.Fatalf("nothing removed, yet %+v", info.Exposure)
	}
	// A conversation in which follow-ups go to alice.
	if _, err := f.spool.EnsureMailbox("00112233445566778899aabbccddeeff", "helpdesk", "sea", []string{f.alice.Card().KeyID()}, []string{"mlkem768x25519"}); err != nil {
		t.Fatal(err)
	}
	// Alice's laptop is lost: her key goes, bob takes SEA.
	info := publish(&crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 3,
		Handlers:   []string{f.bob.Card().String()},
		Categories: []crypto.Category{{ID: "incident", Title: "Incident", Handlers: []string{"bob"}}, {ID: "sea", Title: "SEA", Handlers: []string{"bob"}}},
	})
	want := api.Exposure{RemovedKeys: 1, Submissions: 3, Orphaned: 2, Mailboxes: 1}
	if info.Exposure == nil || *info.Exposure != want {
		t.Fatalf("exposure %+v, want %+v", info.Exposure, want)
	}
	// The relay's log says so, without naming a submission.
	found := false
	for _, l := range f.logs {
		if strings.Contains(l, "1 handler key(s) removed; 3 waiting submission(s) encrypted to them (2 to nobody else)") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no exposure line in the log: %q", f.logs)
	}
}
