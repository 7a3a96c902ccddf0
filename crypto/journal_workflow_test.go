package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// coordDesk is a desk of three handlers: alice and bob handle the
// restricted category sea, carol the general one, and carol coordinates.
func coordDesk(t *testing.T) (*Manifest, *Identity, []*Identity) {
	t.Helper()
	admin, _ := NewIdentity("admin", testAdminSecret)
	alice, _ := NewIdentity("alice", testClassicSecret)
	var ids []*Identity
	ids = append(ids, alice)
	for _, n := range []string{"bob", "carol"} {
		id, err := GenerateIdentity(n, true)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	m := &Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 3,
		Handlers: []string{ids[0].Card().String(), ids[1].Card().String(), ids[2].Card().String()},
		Categories: []Category{
			{ID: "general", Title: "General", Handlers: []string{"carol", "alice"}},
			{ID: "sea", Title: "SEA", Handlers: []string{"alice", "bob"}},
		},
		DefaultRoute: "general",
		Coordinators: []string{"carol"},
	}
	return m, admin, ids
}

func TestManifestCoordinators(t *testing.T) {
	m, admin, ids := coordDesk(t)
	m.Coordinators = []string{"carol", "alice"}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenManifest(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc := got.CoordinatorCards()
	if len(cc) != 2 || cc[0].Name != "alice" || cc[1].Name != "carol" {
		t.Errorf("CoordinatorCards in handler order: %v", cc)
	}
	if !got.IsCoordinator(ids[2].Card().KeyID()) || got.IsCoordinator(ids[1].Card().KeyID()) || got.IsCoordinator("") {
		t.Errorf("IsCoordinator wrong")
	}
	if f := got.Flow(); !slices.Equal(f.Statuses, DefaultWorkflow().Statuses) {
		t.Errorf("Flow of a desk without workflow: %v", f.Statuses)
	}
	// Normalizing again (a manifest edited and signed anew) recomputes them.
	got.Coordinators = nil
	if err := got.Normalize(); err != nil || got.CoordinatorCards() != nil || got.IsCoordinator(ids[2].Card().KeyID()) {
		t.Errorf("coordinators left after removing them: %v", got.CoordinatorCards())
	}

	for _, tc := range []struct {
		name string
		edit func(*Manifest)
		want string
		is   error
	}{
		{"not a handler", func(m *Manifest) { m.Coordinators = []string{"dave"} }, "not a handler of the desk", nil},
		{"repeated", func(m *Manifest) { m.Coordinators = []string{"carol", "carol"} }, "appears twice", nil},
		{"no default route", func(m *Manifest) { m.DefaultRoute = "" }, "needs a default_route", ErrCoordinatorsNeedRoute},
		{"no categories", func(m *Manifest) { m.Categories, m.DefaultRoute = nil, "" }, "needs a default_route", ErrCoordinatorsNeedRoute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, admin, _ := coordDesk(t)
			tc.edit(m)
			_, err := SignManifest(m, admin.SigningKey())
			if err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWorkflowRules(t *testing.T) {
	long := strings.Repeat("x", MaxMeaningLen+1)
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "s" + strings.Repeat("a", i%30) + string(rune('a'+i/30))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		edit func(*Workflow)
		want string
	}{
		{"no statuses", func(w *Workflow) { w.Statuses = nil }, "statuses: none given"},
		{"bad status", func(w *Workflow) { w.Statuses[1] = "Open" }, "invalid or repeated id"},
		{"repeated status", func(w *Workflow) { w.Statuses[1] = w.Statuses[0] }, "invalid or repeated id"},
		{"too many statuses", func(w *Workflow) { w.Statuses = ids(MaxWorkflowList + 1); w.Final = w.Statuses[1:2] }, "more than 32"},
		{"no final", func(w *Workflow) { w.Final = nil }, "final statuses: none given"},
		{"final not a status", func(w *Workflow) { w.Final = append(w.Final, "archived") }, "is not one of the statuses"},
		{"repeated final", func(w *Workflow) { w.Final = []string{"closed", "closed"} }, "invalid or repeated id"},
		{"first status final", func(w *Workflow) { w.Final = []string{"new"} }, "cannot be final"},
		{"no severities", func(w *Workflow) { w.Severities = nil }, "severities: 1 to 32"},
		{"too many severities", func(w *Workflow) {
			for _, id := range ids(MaxWorkflowList + 1) {
				w.Severities = append(w.Severities, Severity{ID: id})
			}
		}, "severities: 1 to 32"},
		{"bad severity", func(w *Workflow) { w.Severities[0].ID = "P1 critical" }, "invalid or repeated id"},
		{"repeated severity", func(w *Workflow) { w.Severities[1].ID = "critical" }, "invalid or repeated id"},
		{"long meaning", func(w *Workflow) { w.Severities[0].Meaning = long }, "one line of at most 200"},
		{"two-line meaning", func(w *Workflow) { w.Severities[0].Meaning = "a\nb" }, "one line"},
		{"bad meaning language", func(w *Workflow) { w.Severities[0].Meanings = map[string]string{"French": "x"} }, "invalid language code"},
		{"long translated meaning", func(w *Workflow) { w.Severities[0].Meanings = map[string]string{"fr": long} }, "in \"fr\": one line"},
		{"no close reasons", func(w *Workflow) { w.CloseReasons = []string{} }, "close reasons: none given"},
		{"repeated close reason", func(w *Workflow) { w.CloseReasons = []string{"spam", "spam"} }, "invalid or repeated id"},
		{"bad tag", func(w *Workflow) { w.Tags = []string{"Camp 3"} }, "tags: invalid"},
		{"too many tags", func(w *Workflow) { w.Tags = ids(MaxWorkflowTags + 1) }, "tags: more than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := DefaultWorkflow()
			tc.edit(&w)
			if err := w.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			m, admin := testDesk(t)
			m.Workflow = &w
			if _, err := SignManifest(m, admin.SigningKey()); err == nil || !strings.Contains(err.Error(), "workflow: ") {
				t.Fatalf("SignManifest = %v", err)
			}
		})
	}
	w := DefaultWorkflow()
	if err := w.Validate(); err != nil {
		t.Fatalf("DefaultWorkflow: %v", err)
	}
	if len(w.Severities) != 4 || w.SeverityRank("critical") != 0 || w.SeverityRank("low") != 3 || w.SeverityRank("x") != -1 {
		t.Errorf("severities %v", w.Severities)
	}
	for _, c := range []struct {
		ch Change
		ok bool
	}{
		{Change{Status: "closed", CloseReason: "duplicate"}, true},
		{Change{Status: "open", Severity: "low"}, true},
		{Change{Note: "x"}, true},
		{Change{Status: "open", CloseReason: "duplicate"}, false},
		{Change{Status: "archived"}, false},
		{Change{Severity: "p1"}, false},
		{Change{Status: "closed", CloseReason: "bored"}, false},
	} {
		if err := w.CheckChange(&c.ch); (err == nil) != c.ok || err != nil && !errors.Is(err, ErrChangeWorkflow) {
			t.Errorf("CheckChange(%+v) = %v", c.ch, err)
		}
	}
}

func TestManifestWorkflow(t *testing.T) {
	m, admin, _ := coordDesk(t)
	m.Workflow = &Workflow{
		Statuses:     []string{"received", "in-progress", "done"},
		Final:        []string{"done"},
		Severities:   []Severity{{ID: "p1", Meaning: "life at risk", Meanings: map[string]string{"fr": "vie en danger"}}, {ID: "p2", Meaning: ""}},
		CloseReasons: []string{"answered"},
		Tags:         []string{"camp-3"},
	}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenManifest(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := got.Flow(); f.Statuses[0] != "received" || !f.IsFinal("done") || f.Severities[0].Meanings["fr"] != "vie en danger" {
		t.Errorf("Flow = %+v", f)
	}
	var e Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	if !bytes.Contains(payload, []byte(`,"coordinators":["carol"],"workflow":{"statuses":["received",`)) {
		t.Errorf("payload %s", payload)
	}
	// A manifest without coordinators or workflow has neither member.
	plain, admin := testDesk(t)
	penv, _ := SignManifest(plain, admin.SigningKey())
	json.Unmarshal(penv, &e)
	payload, _ = base64.StdEncoding.DecodeString(e.Payload)
	if bytes.Contains(payload, []byte("coordinators")) || bytes.Contains(payload, []byte("workflow")) {
		t.Errorf("payload %s", payload)
	}
}
