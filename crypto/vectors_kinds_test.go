package crypto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
)

// Vectors of the members added for status messages, the satisfaction
// survey and the sealing client (docs/protocol.md §6.2, §8.2, §8.10,
// §8.11): bundles that both implementations write byte for byte and read,
// bundles they both refuse, a signed status message, a workflow with
// submitter texts and a satisfaction event.

const testMailbox = "4a7a24e79761f8d1db431cae3bc6f19c"

// testStatusVector is the signed status message of the vectors: the case
// resolved, asking the satisfaction question.
func testStatusVector(t *testing.T) *Report {
	alice, _ := NewIdentity("alice", testClassicSecret)
	base := &Report{Desk: "helpdesk", Category: "sea", Language: "ar", Mailbox: testMailbox}
	r := NewStatusMessage(base, "resolved", "أُغلقت قضيتك. شكراً لك.", true)
	r.Submitted = "2026-12-03T10:00:00Z"
	r.Seq = 3
	r.Recipients = []string{alice.Recipient()}
	if err := SignReplyFiles(r, nil, alice); err != nil {
		t.Fatal(err)
	}
	return r
}

func writeKindVectors(t *testing.T) {
	in := func(r Report) string {
		b, err := json.Marshal(map[string]any{"report": r, "files": []map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	clientIn, _ := json.Marshal(map[string]any{
		"report": Report{Desk: "helpdesk", Category: "sea", Language: "fr", Submitted: "2026-12-03T09:00:00Z", SealedBy: SealedByClient, Client: ClientBrowser,
			Answers: []Answer{{"message", "Cela s’est passé au camp 3."}}},
		"files": []map[string]string{{"name": "note.txt", "type": "text/plain", "content_base64": base64.StdEncoding.EncodeToString([]byte("camp 3\n"))}},
	})
	addBundle(t, "bundle-client.txt", `a report sealed by the browser pages: "client":"browser" after mailbox`, string(clientIn), "1")

	status := testStatusVector(t)
	addBundle(t, "bundle-status.txt", "a signed status message asking the satisfaction question: kind, status and survey between seq and from", in(*status), "0")
	sb, _ := MarshalReport(status)
	sv := &vector{}
	sv.set("kind", "reply")
	sv.set("description", "a signed status message (kind status, status resolved, survey true); the signature covers the new members")
	sv.set("signer-secret", testClassicSecret)
	sv.body = append(sb, '\n')
	writeVector(t, "reply-status.txt", sv)

	survey, err := SurveyAnswers(4, "Thank you <b>all</b> & \"goodbye\"\nشكراً")
	if err != nil {
		t.Fatal(err)
	}
	addBundle(t, "bundle-survey.txt", "a survey follow-up sealed by the browser: score 4 and a comment",
		in(Report{Desk: "helpdesk", Category: "sea", Language: "ar", Submitted: "2026-12-03T11:00:00Z", SealedBy: SealedByClient, Client: ClientBrowser,
			Kind: KindSurvey, Answers: survey, ReplyRecipient: "age1ckcglc8x6u0tu9g846vuu4lhxt0qw9rcmyg36gj7usl9nn4ur3aq5qqwhf", Mailbox: testMailbox, Seq: 4}), "0")
	score, _ := SurveyAnswers(1, "")
	addBundle(t, "bundle-survey-nojs.txt", "a survey follow-up the relay sealed for a page without JavaScript: score 1, no comment, no client",
		in(Report{Desk: "helpdesk", Category: "sea", Language: "ar", Submitted: "2026-12-03T11:00:00Z", SealedBy: SealedByServer,
			Kind: KindSurvey, Answers: score, Mailbox: testMailbox, Seq: 4}), "0")

	raw := func(name, desc, expect, js string) {
		b := entryBytes(reportName, []byte(js))
		b = append(b, make([]byte, 1024)...)
		b = append(b, make([]byte, PaddedSize(int64(len(b)))-int64(len(b)))...)
		v := &vector{}
		v.set("kind", "bundle")
		v.set("description", desc)
		v.set("expect", expect)
		v.body = b
		writeVector(t, "bundle-bad-"+name+".txt", v)
	}
	head := `{"schema":1,"desk":"helpdesk","category":"","language":"","submitted":"2026-12-03T11:00:00Z",`
	tail := `"attachments":[],"reply_recipient":"","mailbox":"` + testMailbox + `","seq":2`
	raw("client-server", `"client":"browser" in an item the relay sealed`, "members",
		head+`"sealed_by":"server","answers":[{"field":"message","value":"hi"}],`+tail+`,"client":"browser"}`)
	raw("client-unknown", `"client":"curl": not a client this version knows`, "members",
		head+`"sealed_by":"client","answers":[{"field":"message","value":"hi"}],`+tail+`,"client":"curl"}`)
	raw("status-unsigned", "kind status in an unsigned item sealed by the client: a status message is a signed reply", "members",
		head+`"sealed_by":"client","answers":[{"field":"message","value":"Your case is resolved."}],`+tail+`,"client":"browser","kind":"status","status":"resolved","survey":true}`)
	for _, s := range []string{"0", "6", "x"} {
		raw("survey-score-"+s, fmt.Sprintf("a survey follow-up whose score is %q: the score is one digit 1 to 5", s), "members",
			head+`"sealed_by":"server","answers":[{"field":"satisfaction","value":"`+s+`"}],`+tail+`,"kind":"survey"}`)
	}
	raw("survey-false", `a status message with an explicit "survey":false, which the canonical form leaves out`, "not_canonical",
		bytes.NewBuffer(bytes.Replace(sb, []byte(`"survey":true`), []byte(`"survey":false`), 1)).String())

	writeSubmitterManifestVectors(t)
	writeSatisfactionEventVectors(t)
}

// entryBytes is a tar entry of content under name, padded to the block.
func entryBytes(name string, content []byte) []byte {
	b := tarHeader(name, int64(len(content)))
	b = append(b, content...)
	return append(b, make([]byte, roundBlock(int64(len(content)))-int64(len(content)))...)
}

func writeSubmitterManifestVectors(t *testing.T) {
	m, admin := testDesk(t)
	m.Serial = 12
	m.Language = "en"
	m.DefaultRoute = "sea"
	m.Workflow = &Workflow{
		Statuses:     []string{"new", "open", "waiting", "resolved", "rejected"},
		Final:        []string{"resolved", "rejected"},
		Severities:   []Severity{{ID: "high", Meaning: "act today"}, {ID: "low", Meaning: "act this week"}},
		CloseReasons: []string{"completed"},
		Paused:       []string{"waiting"},
		SubmitterStatus: map[string]map[string]string{
			"open":     {"en": "We are working on your report.", "ar": "نحن نعمل على بلاغك.", "fr": "Nous traitons votre signalement."},
			"waiting":  {"en": "We are waiting for an answer from you: see the messages below."},
			"resolved": {"en": "Your case is resolved. Thank you for telling us.", "ar": "أُغلقت قضيتك. شكراً لك."},
		},
		Survey: true,
	}
	env, err := SignManifest(m, admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	v := &vector{}
	v.set("kind", "manifest")
	v.set("description", "a workflow that tells the submitter of some statuses (texts by language, status names and codes in byte order) and asks the satisfaction survey")
	v.set("signer-secret", testAdminSecret)
	v.set("fingerprint", KeyFingerprint(admin.Card().SignKey))
	v.set("desk", "helpdesk")
	v.set("serial", "12")
	v.set("expect", "ok")
	v.body = env
	writeVector(t, "manifest-submitter-status.txt", v)

	// A signer with other code can sign a text for a status the workflow
	// lacks; readers refuse it.
	m.Workflow.SubmitterStatus["closed"] = map[string]string{"en": "Closed."}
	payload, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	be := Envelope{Format: DeskFormat, Payload: base64.StdEncoding.EncodeToString(payload), Key: b64.EncodeToString(admin.Card().SignKey),
		Signature: b64.EncodeToString(ed25519.Sign(admin.SigningKey(), deskSigned(payload)))}
	bb, _ := json.MarshalIndent(be, "", "  ")
	bv := &vector{}
	bv.set("kind", "manifest")
	bv.set("description", "validly signed and canonical, but submitter_status has a text for \"closed\", not one of the workflow's statuses")
	bv.set("expect", "submitter_status")
	bv.body = append(bb, '\n')
	writeVector(t, "manifest-bad-submitter-status.txt", bv)
}

func writeSatisfactionEventVectors(t *testing.T) {
	alice, _ := journalIDs(t)
	e := &Event{Desk: "helpdesk", Case: testCase, CaseSHA256: testCaseSum, Category: "sea", Seq: 3, Clock: 7,
		Prev: "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592", Time: "2026-12-03T11:20:00Z",
		Change: Change{Satisfaction: &Satisfaction{Score: 4, Followup: "00112233445566778899aabbccddeeff"}}}
	if err := SignEvent(e, alice); err != nil {
		t.Fatal(err)
	}
	f := FactsOf(e, testReceived)
	if err := SignFacts(f, alice); err != nil {
		t.Fatal(err)
	}
	fb, err := MarshalFacts(f)
	if err != nil {
		t.Fatal(err)
	}
	b := mustMarshalEvent(t, e)
	v := &vector{}
	v.set("kind", "event")
	v.set("description", "the handler opened a survey follow-up: satisfaction score and the follow-up's ID; its facts carry the score only")
	v.set("signer-secret", testClassicSecret)
	v.set("expect", "ok")
	v.set("digest", EventDigest(e))
	v.set("plain-size", fmt.Sprint(EventPlainSize(len(b))))
	v.set("received", testReceived)
	v.set("facts", string(fb))
	v.body = append(b, '\n')
	writeVector(t, "event-satisfaction.txt", v)

	bad := *e
	bad.Change = Change{Satisfaction: &Satisfaction{Score: 6, Followup: e.Change.Satisfaction.Followup}}
	bad.Signature = ""
	unsigned, _ := encodeCanonical(&bad)
	bad.Signature = b64.EncodeToString(ed25519.Sign(alice.SigningKey(), append([]byte(EventDomain+"\n"), unsigned...)))
	bb, _ := encodeCanonical(&bad)
	bv := &vector{}
	bv.set("kind", "event")
	bv.set("description", "validly signed and canonical, but a satisfaction score of 6: scores are 1 to 5")
	bv.set("signer-secret", testClassicSecret)
	bv.set("expect", "malformed")
	bv.body = append(bb, '\n')
	writeVector(t, "event-bad-satisfaction.txt", bv)
}
