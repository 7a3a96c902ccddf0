package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestSatisfactionEvent(t *testing.T) {
	alice, _ := journalIDs(t)
	e := &Event{Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Seq: 1, Clock: 1, Time: "2026-12-03T09:15:42Z",
		Change: Change{Satisfaction: &Satisfaction{Score: 4, Followup: testOther}}}
	if err := SignEvent(e, alice); err != nil {
		t.Fatal(err)
	}
	b := mustMarshalEvent(t, e)
	if !bytes.Contains(b, []byte(`"change":{"satisfaction":{"score":4,"followup":"`+testOther+`"}}`)) {
		t.Errorf("event %s", b)
	}
	p, err := ParseEvent(b)
	if err != nil || p.Change.Satisfaction == nil || *p.Change.Satisfaction != *e.Change.Satisfaction {
		t.Fatalf("ParseEvent = %+v, %v", p, err)
	}
	if _, err := VerifyEvent(p, []*Card{alice.Card()}); err != nil {
		t.Fatal(err)
	}
	f := FactsOf(e, "2026-12-01T10:00:00Z")
	if fc := f.Change; fc.Satisfaction != 4 || fc.Status != "" || fc.Replied || fc.Received {
		t.Errorf("facts change %+v", f.Change)
	}
	if err := SignFacts(f, alice); err != nil {
		t.Fatal(err)
	}
	fb, _ := MarshalFacts(f)
	if !bytes.Contains(fb, []byte(`"change":{"satisfaction":4}`)) || bytes.Contains(fb, []byte(testOther)) {
		t.Errorf("facts %s", fb)
	}
	if _, err := ParseFacts(fb); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		s    Satisfaction
	}{
		{"score 0", Satisfaction{0, testOther}}, {"score 6", Satisfaction{6, testOther}}, {"score -1", Satisfaction{-1, testOther}},
		{"no followup", Satisfaction{3, ""}}, {"followup upper case", Satisfaction{3, strings.ToUpper(testOther)}}, {"short followup", Satisfaction{3, testOther[:30]}},
	} {
		c := *e
		c.Change = Change{Satisfaction: &tc.s}
		raw, _ := encodeCanonical(&c)
		if _, err := ParseEvent(raw); !errors.Is(err, ErrEventMalformed) {
			t.Errorf("%s: ParseEvent = %v", tc.name, err)
		}
	}
	for _, in := range []string{
		strings.Replace(string(b), `"score":4`, `"score":4.0`, 1),
		strings.Replace(string(b), `"score":4`, `"score":"4"`, 1),
		strings.Replace(string(b), `"score":4,`, `"score":4,"comment":"x",`, 1),
		strings.Replace(string(b), `{"score":4,"followup":"`+testOther+`"}`, `{"followup":"`+testOther+`","score":4}`, 1),
	} {
		if _, err := ParseEvent([]byte(in)); !errors.Is(err, ErrEventMalformed) {
			t.Errorf("ParseEvent(%s) = %v", in, err)
		}
	}
	for _, in := range []string{
		strings.Replace(string(fb), `"satisfaction":4`, `"satisfaction":6`, 1),
		strings.Replace(string(fb), `"satisfaction":4`, `"satisfaction":-1`, 1),
		strings.Replace(string(fb), `"satisfaction":4`, `"satisfaction":0`, 1),
		strings.Replace(string(fb), `"satisfaction":4`, `"satisfaction":{"score":4}`, 1),
	} {
		if _, err := ParseFacts([]byte(in)); !errors.Is(err, ErrEventMalformed) {
			t.Errorf("ParseFacts(%s) = %v", in, err)
		}
	}
}

func submitterFlow() *Workflow {
	w := DefaultWorkflow()
	w.SubmitterStatus = map[string]map[string]string{
		"acknowledged": {"en": "We have read your report.", "fr": "Nous avons lu votre signalement."},
		"resolved":     {"en": "Your case is resolved."},
	}
	w.Survey = true
	return &w
}

func TestSubmitterStatus(t *testing.T) {
	w := submitterFlow()
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ status, lang, desk, want string }{
		{"acknowledged", "fr", "en", "Nous avons lu votre signalement."},
		{"acknowledged", "ar", "en", "We have read your report."},
		{"acknowledged", "", "en", "We have read your report."},
		{"acknowledged", "ar", "", ""},
		{"acknowledged", "ar", "ar", ""},
		{"resolved", "fr", "fr", ""},
		{"open", "en", "en", ""},
		{"nonesuch", "en", "en", ""},
	} {
		if got := w.SubmitterText(tc.status, tc.lang, tc.desk); got != tc.want {
			t.Errorf("SubmitterText(%q, %q, %q) = %q, want %q", tc.status, tc.lang, tc.desk, got, tc.want)
		}
	}
	var none Workflow
	if none.SubmitterText("resolved", "en", "en") != "" {
		t.Error("text without submitter_status")
	}
	for _, tc := range []struct {
		name string
		edit func(*Workflow)
	}{
		{"unknown status", func(w *Workflow) { w.SubmitterStatus["paused"] = map[string]string{"en": "x"} }},
		{"no texts", func(w *Workflow) { w.SubmitterStatus["open"] = map[string]string{} }},
		{"empty text", func(w *Workflow) { w.SubmitterStatus["open"] = map[string]string{"en": ""} }},
		{"two lines", func(w *Workflow) { w.SubmitterStatus["open"] = map[string]string{"en": "a\nb"} }},
		{"carriage return", func(w *Workflow) { w.SubmitterStatus["open"] = map[string]string{"en": "a\rb"} }},
		{"too long", func(w *Workflow) {
			w.SubmitterStatus["open"] = map[string]string{"en": strings.Repeat("x", MaxStatusText+1)}
		}},
		{"bad language", func(w *Workflow) { w.SubmitterStatus["open"] = map[string]string{"EN_gb": "x"} }},
		{"invalid utf-8", func(w *Workflow) { w.SubmitterStatus["open"] = map[string]string{"en": "\xff"} }},
		{"survey without final text", func(w *Workflow) { delete(w.SubmitterStatus, "resolved") }},
		{"survey without texts", func(w *Workflow) { w.SubmitterStatus = nil }},
	} {
		w := submitterFlow()
		tc.edit(w)
		if err := w.Validate(); err == nil {
			t.Errorf("%s: validates", tc.name)
		}
	}
	ok := DefaultWorkflow()
	ok.SubmitterStatus = map[string]map[string]string{"open": {"en": strings.Repeat("é", MaxStatusText/2)}}
	if err := ok.Validate(); err != nil {
		t.Errorf("200 bytes: %v", err)
	}
	many := DefaultWorkflow()
	many.SubmitterStatus = map[string]map[string]string{}
	for _, s := range many.Statuses {
		many.SubmitterStatus[s] = map[string]string{"en": s}
	}
	if err := many.Validate(); err != nil {
		t.Errorf("every status: %v", err)
	}
	if len(DefaultWorkflow().SubmitterStatus) != 0 || DefaultWorkflow().Survey {
		t.Error("the default workflow sends status messages")
	}
}

func TestManifestSubmitterStatus(t *testing.T) {
	m, admin, _ := coordDesk(t)
	m.Workflow = submitterFlow()
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenManifest(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := got.Flow()
	if f.SubmitterText("acknowledged", "fr", "") != "Nous avons lu votre signalement." || !f.Survey {
		t.Errorf("Flow = %+v", f)
	}
	f.SubmitterStatus["acknowledged"]["fr"] = "changed"
	if got.Flow().SubmitterStatus["acknowledged"]["fr"] != "Nous avons lu votre signalement." {
		t.Error("Flow shares the submitter texts")
	}
	var e Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	want := `"paused":["waiting"],"submitter_status":{"acknowledged":{"en":"We have read your report.","fr":"Nous avons lu votre signalement."},"resolved":{"en":"Your case is resolved."}},"survey":true}`
	if !bytes.Contains(payload, []byte(want)) {
		t.Errorf("payload %s", payload)
	}
}
