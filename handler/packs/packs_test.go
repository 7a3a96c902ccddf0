package packs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// pageLangs are the languages every built-in pack speaks.
var pageLangs = []string{"en", "ar", "fr"}

func hasAll(t *testing.T, what string, m map[string]string) {
	t.Helper()
	for _, l := range pageLangs {
		if strings.TrimSpace(m[l]) == "" {
			t.Errorf("%s has no %s text", what, l)
		}
	}
}

// team is a desk of four classic handlers: general and general2 are the
// general team, psea and lead the restricted one; lead coordinates.
func team(t *testing.T) (*crypto.Identity, []*crypto.Identity, *crypto.Manifest) {
	t.Helper()
	admin, err := crypto.GenerateIdentity("admin", true)
	if err != nil {
		t.Fatal(err)
	}
	var ids []*crypto.Identity
	m := &crypto.Manifest{Version: 1, Desk: "desk", Serial: 1}
	for _, n := range []string{"general", "general2", "psea", "lead"} {
		id, err := crypto.GenerateIdentity(n, true)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		m.Handlers = append(m.Handlers, id.Card().String())
	}
	return admin, ids, m
}

func restrictedDesk(p *Pack) Desk {
	d := Desk{Handlers: []string{"general", "general2", "psea", "lead"}, Routes: map[string][]string{},
		Notify: map[string][]string{}}
	for _, c := range p.Categories {
		if c.Sensitive {
			d.Routes[c.ID] = []string{"psea", "lead"}
		}
	}
	for _, r := range p.Roles() {
		d.Notify[r] = []string{"lead"}
	}
	return d
}

func TestBuiltinPacks(t *testing.T) {
	all, err := List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range all {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, []string{"digital-safety-helpdesk", "humanitarian-complaints"}) {
		t.Fatalf("built-in packs %v", ids)
	}
	for _, p := range all {
		t.Run(p.ID, func(t *testing.T) {
			hasAll(t, "title", p.Title)
			hasAll(t, "description", p.Description)
			sensitive := 0
			for _, c := range p.Categories {
				hasAll(t, "category "+c.ID, c.Label)
				if c.Sensitive {
					sensitive++
				}
			}
			if sensitive == 0 {
				t.Errorf("no sensitive category")
			}
			for _, f := range p.Form.Fields {
				hasAll(t, "field "+f.ID, f.Label)
				if f.Help != nil {
					hasAll(t, "help of "+f.ID, f.Help)
				}
				for _, o := range f.Options {
					hasAll(t, "option "+f.ID+"/"+o.ID, o.Label)
				}
			}
			for _, s := range p.Workflow.Severities {
				hasAll(t, "severity "+s.ID, map[string]string{"en": s.Meaning, "ar": s.Meanings["ar"], "fr": s.Meanings["fr"]})
				if s.Targets == nil {
					t.Errorf("severity %s has no default targets", s.ID)
				}
			}
			if len(p.Workflow.Paused) == 0 || len(p.Workflow.Escalation) == 0 {
				t.Errorf("no paused status or no escalation")
			}

			// A desk made from it signs, verifies, and keeps the
			// sensitive categories to the restricted team.
			admin, _, m := team(t)
			if _, err := p.Apply(m, restrictedDesk(p)); err != nil {
				t.Fatal(err)
			}
			env, err := crypto.SignManifest(m, admin.SigningKey())
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := crypto.OpenManifest(env, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Categories {
				if got.Restricted(c.ID) != c.Sensitive {
					t.Errorf("category %s: restricted %v, sensitive %v", c.ID, got.Restricted(c.ID), c.Sensitive)
				}
			}
			if got.Restricted("") {
				t.Errorf("a report without a category goes to a restricted team")
			}
			for _, e := range got.Flow().Escalation {
				if !slices.Equal(e.Notify, []string{"lead"}) {
					t.Errorf("escalation %q notifies %v", e.Label, e.Notify)
				}
			}
			if d := got.Flow(); d.TargetsFor(d.Severities[0].ID).Acknowledge == 0 {
				t.Errorf("the most severe level has no acknowledge target")
			}
			// Status texts for the submitter: a few statuses, in every
			// language, a final one among them, and the survey asked;
			// the signed desk carries them.
			wf := p.Workflow
			if n := len(wf.SubmitterStatus); n == 0 || 2*n > len(wf.Statuses) {
				t.Errorf("%d of %d statuses have a submitter text; want a few, most none", n, len(wf.Statuses))
			}
			for st, texts := range wf.SubmitterStatus {
				hasAll(t, "submitter text of "+st, texts)
			}
			d := got.Flow()
			if !d.Survey || !wf.Survey {
				t.Error("the desk does not ask the satisfaction question")
			}
			final := 0
			for _, f := range d.Final {
				if d.SubmitterText(f, "ar", got.Language) != "" && d.SubmitterText(f, "ar", got.Language) == wf.SubmitterStatus[f]["ar"] {
					final++
				}
			}
			if final == 0 {
				t.Error("no final status tells the submitter, in Arabic, that the case closed")
			}
			if d.SubmitterText(wf.Statuses[0], "en", got.Language) != "" {
				t.Errorf("the initial status %q sends a status message", wf.Statuses[0])
			}
		})
	}
}

// TestSensitiveNotOpenedByGeneralTeam seals a report in each sensitive
// category of the complaints pack as a submitter's client does, to the
// route the signed manifest gives, and checks that the general team's keys
// cannot open it while the restricted team's can.
func TestSensitiveNotOpenedByGeneralTeam(t *testing.T) {
	p, err := Get("humanitarian-complaints")
	if err != nil {
		t.Fatal(err)
	}
	admin, ids, m := team(t)
	if _, err := p.Apply(m, restrictedDesk(p)); err != nil {
		t.Fatal(err)
	}
	env, err := crypto.SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	desk, _, err := crypto.OpenManifest(env, admin.Card().SignKey)
	if err != nil {
		t.Fatal(err)
	}
	marker := "MARKER-sea-7f3a"
	for _, c := range p.Categories {
		route, err := desk.Route(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := &crypto.Report{Desk: desk.Desk, Category: c.ID, Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
			Answers: []crypto.Answer{{Field: "what", Value: marker}}}
		rd, _, err := crypto.SealBundle(route, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			_, err := crypto.OpenBundle(bytes.NewReader(ct), id.Age())
			restricted := id.Name() == "psea" || id.Name() == "lead"
			if c.Sensitive && !restricted && err == nil {
				t.Errorf("%s opened a report in sensitive category %s", id.Name(), c.ID)
			}
			if (restricted || !c.Sensitive) && err != nil {
				t.Errorf("%s cannot open a report in %s: %v", id.Name(), c.ID, err)
			}
		}
	}
}

func TestApplyRoutes(t *testing.T) {
	p, err := Get("digital-safety-helpdesk")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(*Desk)
		wide   []string // refused, or allowed when allow
		allow  bool
		routes map[string][]string
	}{
		{"restricted", func(d *Desk) {}, nil, false,
			map[string][]string{"device-seized": {"psea", "lead"}, "other": {"general", "general2", "psea", "lead"}}},
		{"no route for a sensitive one", func(d *Desk) { delete(d.Routes, "device-seized") }, []string{"device-seized"}, false, nil},
		{"routed to everyone by name", func(d *Desk) { d.Routes["harassment-doxxing"] = []string{"lead", "general", "psea", "general2"} },
			[]string{"harassment-doxxing"}, false, nil},
		{"everyone, names repeated", func(d *Desk) { d.Routes["device-seized"] = []string{"lead", "lead", "general", "psea", "general2"} },
			[]string{"device-seized"}, false, nil},
		{"none routed", func(d *Desk) { d.Routes = nil }, []string{"device-seized", "harassment-doxxing"}, false, nil},
		{"allowed wide", func(d *Desk) { d.Routes = nil; d.AllowWideSensitive = true }, []string{"device-seized", "harassment-doxxing"}, true,
			map[string][]string{"device-seized": {"general", "general2", "psea", "lead"}}},
		{"a general one narrowed", func(d *Desk) { d.Routes["phishing"] = []string{"general"} }, nil, false,
			map[string][]string{"phishing": {"general"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, m := team(t)
			d := restrictedDesk(p)
			tc.edit(&d)
			a, err := p.Apply(m, d)
			if len(tc.wide) > 0 && !tc.allow {
				if !errors.Is(err, ErrWideSensitive) || !strings.HasSuffix(err.Error(), ": "+strings.Join(tc.wide, ", ")) {
					t.Fatalf("Apply = %v, want wide %v", err, tc.wide)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Wide, tc.wide) {
				t.Errorf("Wide %v, want %v", a.Wide, tc.wide)
			}
			for id, want := range tc.routes {
				i := slices.IndexFunc(m.Categories, func(c crypto.Category) bool { return c.ID == id })
				if i < 0 || !slices.Equal(m.Categories[i].Handlers, want) {
					t.Errorf("route of %s: %v, want %v", id, m.Categories, want)
				}
			}
		})
	}
}

func TestApplyLanguageAndRoles(t *testing.T) {
	p, err := Get("digital-safety-helpdesk")
	if err != nil {
		t.Fatal(err)
	}
	_, _, m := team(t)
	m.Titles = map[string]string{"fr": "Notre helpdesk"}
	d := restrictedDesk(p)
	d.Language = "ar"
	d.Notify = map[string][]string{"shift-leads": {"general", "general2"}}
	a, err := p.Apply(m, d)
	if err != nil {
		t.Fatal(err)
	}
	if m.Language != "ar" || m.Title != p.Title["ar"] || m.Titles["en"] != p.Title["en"] || m.Titles["fr"] != "Notre helpdesk" || m.Titles["ar"] != "" {
		t.Errorf("titles %q %v", m.Title, m.Titles)
	}
	if c := m.Categories[0]; c.Title != "اختراق حساب" || c.Labels["en"] != "Account compromise" || c.Labels["ar"] != "" {
		t.Errorf("category %+v", c)
	}
	w := m.Workflow
	if s := w.Severities[0]; s.Meaning != p.Workflow.Severities[0].Meanings["ar"] || s.Meanings["en"] != p.Workflow.Severities[0].Meaning || s.Meanings["ar"] != "" {
		t.Errorf("severity %+v", s)
	}
	if p.Workflow.Severities[0].Meanings["ar"] == "" || p.Workflow.Severities[0].Meanings["en"] != "" {
		t.Errorf("Apply changed the pack: %+v", p.Workflow.Severities[0])
	}
	if len(w.Escalation) != 1 || !slices.Equal(w.Escalation[0].Notify, []string{"general", "general2"}) || w.Escalation[0].AfterMinutes != 60 {
		t.Errorf("escalation %+v", w.Escalation)
	}
	if m.Description != p.Description["ar"] || m.Descriptions["fr"] != p.Description["fr"] {
		t.Errorf("descriptions %q %v", m.Description, m.Descriptions)
	}
	// A title of the desk's own gets none of the pack's translations.
	_, _, own := team(t)
	own.Title = "Acme helpdesk"
	if _, err := p.Apply(own, d); err != nil || own.Titles != nil || own.Description != p.Description["ar"] {
		t.Errorf("own title: %v %v", own.Titles, err)
	}
	if len(a.Dropped) != 1 || a.Dropped[0].Label != "coordinator" {
		t.Errorf("dropped %+v", a.Dropped)
	}
	if m.DefaultRoute != "other" || m.Form == nil || len(m.Form.Fields) != len(p.Form.Fields) {
		t.Errorf("default route %q, form %v", m.DefaultRoute, m.Form)
	}
	// No role given: no escalation member at all.
	_, _, m2 := team(t)
	d.Notify = nil
	if _, err := p.Apply(m2, d); err != nil || m2.Workflow.Escalation != nil {
		t.Errorf("escalation without roles %v %v", m2.Workflow.Escalation, err)
	}
}

func TestPackRules(t *testing.T) {
	base, err := os.ReadFile("data/humanitarian-complaints.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Pack)
		want string
	}{
		{"format", func(p *Pack) { p.Format = "amana-pack/v2" }, "pack format"},
		{"id", func(p *Pack) { p.ID = "Complaints" }, "invalid pack id"},
		{"version", func(p *Pack) { p.Version = 0 }, "version must be at least 1"},
		{"language", func(p *Pack) { p.Language = "English" }, "invalid language"},
		{"title", func(p *Pack) { delete(p.Title, "en") }, "pack title has no text in the pack's language"},
		{"title language", func(p *Pack) { p.Title["Arabic"] = "x" }, "pack title: text in \"Arabic\""},
		{"description", func(p *Pack) { p.Description["en"] = strings.Repeat("x", 4001) }, "at most 4000 bytes"},
		{"no categories", func(p *Pack) { p.Categories = nil }, "1 to 64 categories"},
		{"repeated category", func(p *Pack) { p.Categories[1].ID = p.Categories[0].ID }, "invalid or repeated category id"},
		{"bad category", func(p *Pack) { p.Categories[1].ID = "Fraud" }, "invalid or repeated category id"},
		{"category label", func(p *Pack) { p.Categories[2].Label = map[string]string{"ar": "اقتراح"} }, "category suggestion has no text"},
		{"empty label", func(p *Pack) { p.Categories[2].Label["fr"] = "" }, "text in \"fr\" must be 1 to 200 bytes"},
		{"default route unknown", func(p *Pack) { p.DefaultRoute = "general" }, "names no category"},
		{"default route sensitive", func(p *Pack) { p.DefaultRoute = "sexual-exploitation-abuse" }, "is sensitive"},
		{"form", func(p *Pack) { p.Form.Fields[1].Type = "essay" }, "unknown type"},
		{"no category field", func(p *Pack) { p.Form.Fields = p.Form.Fields[1:] }, "no category field"},
		{"workflow", func(p *Pack) { p.Workflow.Paused = []string{"closed"} }, "workflow: paused status \"closed\" is final"},
		{"escalation", func(p *Pack) { p.Workflow.Escalation[0].Unless = "closed" }, "workflow: escalation step 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(p)
			if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unknown member", strings.Replace(string(base), `"version": 1,`, `"version": 1, "colour": "red",`, 1), "unknown field \"colour\""},
		{"trailing data", string(base) + "{}", "data after the pack"},
		{"trailing brace", string(base) + "}", "data after the pack"},
		{"not json", "categories: []", "decoding pack"},
		{"too large", strings.Repeat(" ", MaxPackLen+1), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Get("helpdesk"); !errors.Is(err, ErrUnknownPack) {
		t.Errorf("Get(unknown) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"digital-safety-helpdesk", "humanitarian-complaints"} {
		b, err := os.ReadFile("data/" + n + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"amana-pack/v1","id":"x","version":1,"language":"en","title":{"en":"x"},"categories":[{"id":"a","label":{"en":"A"},"sensitive":true}],"form":{"fields":[{"id":"c","type":"category","label":{"en":"c"}}]},"workflow":{"statuses":["new","done"],"final":["done"],"severities":[{"id":"p1","meaning":""}],"close_reasons":["done"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		// A valid pack applies to a desk whose sensitive categories go to
		// part of the handlers, and never opens one to everybody.
		d := Desk{Handlers: []string{"a", "b"}, Routes: map[string][]string{}}
		for _, c := range p.Categories {
			if c.Sensitive {
				d.Routes[c.ID] = []string{"a"}
			}
		}
		m := &crypto.Manifest{}
		if _, err := p.Apply(m, d); err != nil {
			t.Fatalf("Apply of a valid pack: %v", err)
		}
		for _, c := range m.Categories {
			if p.Sensitive(c.ID) && len(c.Handlers) != 1 {
				t.Fatalf("sensitive %s routed to %v", c.ID, c.Handlers)
			}
		}
	})
}
