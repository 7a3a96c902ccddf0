package crypto

import (
	"bytes"
	"crypto/ed25519"
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
		{"paused unknown", func(w *Workflow) { w.Paused = []string{"on-hold"} }, "paused status \"on-hold\" is not one of the statuses"},
		{"paused repeated", func(w *Workflow) { w.Paused = []string{"waiting", "waiting"} }, "paused statuses: invalid or repeated"},
		{"paused final", func(w *Workflow) { w.Paused = []string{"closed"} }, "is final"},
		{"paused first", func(w *Workflow) { w.Paused = []string{"new"} }, "is the first status"},
		{"empty targets", func(w *Workflow) { w.Severities[0].Targets = &Targets{} }, "targets sets none"},
		{"negative target", func(w *Workflow) { w.Severities[0].Targets = &Targets{Acknowledge: 60, Update: -1} }, "a target is 0 to 525600 minutes"},
		{"target over a year", func(w *Workflow) { w.Severities[1].Targets = &Targets{Resolve: MaxTargetMinutes + 1} }, "severity \"high\": a target is 0 to"},
		{"escalation no delay", func(w *Workflow) { w.Escalation = []Escalation{{Unless: "acknowledged", Notify: []string{"alice"}}} }, "step 1: after_minutes is 1 to 525600"},
		{"escalation too late", func(w *Workflow) {
			w.Escalation = []Escalation{{AfterMinutes: MaxTargetMinutes + 1, Unless: "resolved", Notify: []string{"alice"}}}
		}, "after_minutes is 1 to"},
		{"escalation unless", func(w *Workflow) {
			w.Escalation = []Escalation{{AfterMinutes: 60, Unless: "acknowledged", Notify: []string{"alice"}}, {AfterMinutes: 90, Unless: "closed", Notify: []string{"alice"}}}
		}, "step 2: unless \"closed\" is not"},
		{"escalation no unless", func(w *Workflow) { w.Escalation = []Escalation{{AfterMinutes: 60, Notify: []string{"alice"}}} }, "unless \"\" is not"},
		{"escalation severity", func(w *Workflow) {
			w.Escalation = []Escalation{{AfterMinutes: 60, Unless: "acknowledged", Severities: []string{"p1"}, Notify: []string{"alice"}}}
		}, "severity \"p1\" is not one of the workflow's"},
		{"escalation severity repeated", func(w *Workflow) {
			w.Escalation = []Escalation{{AfterMinutes: 60, Unless: "acknowledged", Severities: []string{"high", "high"}, Notify: []string{"alice"}}}
		}, "severities: invalid or repeated"},
		{"escalation nobody", func(w *Workflow) { w.Escalation = []Escalation{{AfterMinutes: 60, Unless: "acknowledged"}} }, "notify: none given"},
		{"escalation notify repeated", func(w *Workflow) {
			w.Escalation = []Escalation{{AfterMinutes: 60, Unless: "acknowledged", Notify: []string{"alice", "alice"}}}
		}, "notify: invalid or repeated"},
		{"escalation label", func(w *Workflow) {
			w.Escalation = []Escalation{{AfterMinutes: 60, Unless: "acknowledged", Notify: []string{"alice"}, Label: "shift\nleads"}}
		}, "label: one line"},
		{"too many steps", func(w *Workflow) {
			for range MaxWorkflowList + 1 {
				w.Escalation = append(w.Escalation, Escalation{AfterMinutes: 60, Unless: "acknowledged", Notify: []string{"alice"}})
			}
		}, "escalation: more than 32 steps"},
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

func TestWorkflowTargets(t *testing.T) {
	m, admin, _ := coordDesk(t)
	w := DefaultWorkflow()
	if !slices.Equal(w.Paused, []string{"waiting"}) || !w.IsPaused("waiting") || w.IsPaused("open") {
		t.Fatalf("DefaultWorkflow paused %v", w.Paused)
	}
	w.Severities[0].Targets = &Targets{Acknowledge: 120, FirstResponse: 240, Update: 1440, Resolve: 10080}
	w.Severities[2].Targets = &Targets{Resolve: 43200}
	w.Escalation = []Escalation{
		{AfterMinutes: 60, Unless: UnlessAcknowledged, Notify: []string{"alice", "bob"}, Label: "shift leads"},
		{AfterMinutes: 90, Unless: UnlessAcknowledged, Severities: []string{"critical", "high"}, Notify: []string{"carol"}, Label: "coordinator"},
	}
	m.Workflow = &w
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenManifest(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := got.Flow()
	for _, tc := range []struct {
		severity string
		want     Targets
	}{
		{"critical", Targets{Acknowledge: 120, FirstResponse: 240, Update: 1440, Resolve: 10080}},
		{"high", Targets{}},
		{"medium", Targets{Resolve: 43200}},
		{"low", Targets{}},
		{"", Targets{}},
		{"p1", Targets{}},
	} {
		if g := f.TargetsFor(tc.severity); g != tc.want {
			t.Errorf("TargetsFor(%q) = %+v, want %+v", tc.severity, g, tc.want)
		}
	}
	if !f.Escalation[0].AppliesTo("low") || !f.Escalation[1].AppliesTo("high") || f.Escalation[1].AppliesTo("low") {
		t.Errorf("AppliesTo wrong: %+v", f.Escalation)
	}
	// Flow is a copy: editing it leaves the manifest as signed.
	f.Severities[0].Targets.Acknowledge = 1
	f.Escalation[0].Notify[0] = "mallory"
	f.Paused[0] = "open"
	if g := got.Flow(); g.TargetsFor("critical").Acknowledge != 120 || g.Escalation[0].Notify[0] != "alice" || g.Paused[0] != "waiting" {
		t.Errorf("Flow shares the manifest's memory: %+v", g)
	}
	var e Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	for _, want := range []string{
		`{"id":"critical","meaning":"someone's life, safety or liberty is at risk now: act at once","targets":{"acknowledge":120,"first_response":240,"update":1440,"resolve":10080}}`,
		`{"id":"high","meaning":"serious harm, abuse or exploitation: act within a day"}`,
		`"targets":{"resolve":43200}`,
		`"paused":["waiting"],"escalation":[{"after_minutes":60,"unless":"acknowledged","notify":["alice","bob"],"label":"shift leads"},{"after_minutes":90,"unless":"acknowledged","severities":["critical","high"],"notify":["carol"],"label":"coordinator"}]}`,
	} {
		if !bytes.Contains(payload, []byte(want)) {
			t.Errorf("payload lacks %s:\n%s", want, payload)
		}
	}

	// Other spellings of the same members, signed by other code: refused.
	for _, tc := range []struct{ name, from, to, want string }{
		{"zero target written", `"targets":{"resolve":43200}`, `"targets":{"update":0,"resolve":43200}`, "not canonical"},
		{"empty targets", `"targets":{"resolve":43200}`, `"targets":{}`, "targets sets none"},
		{"empty label written", `,"label":"coordinator"`, `,"label":""`, "not canonical"},
		{"empty severities written", `"unless":"acknowledged","notify":["alice","bob"]`, `"unless":"acknowledged","severities":[],"notify":["alice","bob"]`, "not canonical"},
		{"members reordered", `"after_minutes":60,"unless":"acknowledged"`, `"unless":"acknowledged","after_minutes":60`, "not canonical"},
		{"unknown notify", `"notify":["carol"]`, `"notify":["dave"]`, `notifies "dave"`},
		{"unknown member", `"label":"shift leads"`, `"label":"shift leads","channel":"sms"`, "not canonical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(payload, []byte(tc.from)) {
				t.Fatalf("payload lacks %s", tc.from)
			}
			bad := bytes.Replace(payload, []byte(tc.from), []byte(tc.to), 1)
			be := Envelope{Format: DeskFormat, Payload: base64.StdEncoding.EncodeToString(bad), Key: b64.EncodeToString(admin.Card().SignKey),
				Signature: b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(bad)))}
			bb, _ := json.Marshal(be)
			if _, _, err := OpenManifest(bb, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenManifest = %v, want %q", err, tc.want)
			}
		})
	}

	// Escalation notifies handlers of the desk only.
	w.Escalation[1].Notify = []string{"carol", "dave"}
	if _, err := SignManifest(m, admin.SigningKey()); err == nil || !strings.Contains(err.Error(), `workflow: escalation step 2 notifies "dave", not a handler of the desk`) {
		t.Errorf("SignManifest with an unknown handler to notify = %v", err)
	}
}
