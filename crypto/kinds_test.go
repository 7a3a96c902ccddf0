package crypto

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// writeRaw writes a bundle around r without checking its members, as a
// writer with other code would.
func writeRaw(t *testing.T, r *Report) []byte {
	t.Helper()
	r.Schema = BundleSchema
	rep, err := MarshalReport(r)
	if err != nil {
		t.Fatal(err)
	}
	return writeRawJSON(t, rep)
}

func writeRawJSON(t *testing.T, rep []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeEntry(&b, reportName, int64(len(rep)), bytes.NewReader(rep), ""); err != nil {
		t.Fatal(err)
	}
	writeZeros(&b, PaddedSize(TarSize(len(rep), nil))-int64(b.Len()))
	return b.Bytes()
}

func testStatusMessage(t *testing.T, survey bool) (*Report, *Identity) {
	t.Helper()
	h, _ := NewIdentity("alice", testClassicSecret)
	base := &Report{Desk: "helpdesk", Category: "sea", Language: "fr", Mailbox: strings.Repeat("ab", 16), Submitted: "2026-12-01T09:00:00Z",
		SealedBy: SealedByClient, Client: ClientBrowser, Answers: []Answer{{"message", "secret text"}}}
	r := NewStatusMessage(base, "resolved", "Votre signalement est traité.", survey)
	if r.Desk != "helpdesk" || r.Category != "sea" || r.Language != "fr" || r.Mailbox != base.Mailbox || r.Submitted == "" {
		t.Fatalf("status message does not carry the case's members: %+v", r)
	}
	if r.Client != "" || r.ReplyRecipient != "" || len(r.Answers) != 1 || r.Answers[0].Value != "Votre signalement est traité." {
		t.Fatalf("status message %+v", r)
	}
	r.Seq = 2
	r.Recipients = []string{h.Recipient()}
	if err := SignReply(r, h); err != nil {
		t.Fatal(err)
	}
	return r, h
}

func TestStatusMessageRoundTrip(t *testing.T) {
	for _, survey := range []bool{false, true} {
		r, h := testStatusMessage(t, survey)
		rd, _, err := SealBundle([]*Card{h.Card()}, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := io.ReadAll(rd)
		br, err := OpenBundle(bytes.NewReader(ct), h.Age())
		if err != nil {
			t.Fatal(err)
		}
		got := br.Report()
		if got.Kind != KindStatus || got.Status != "resolved" || got.Survey != survey {
			t.Errorf("read %+v", got)
		}
		if _, err := VerifyReply(got, []*Card{h.Card()}); err != nil {
			t.Errorf("status message does not verify: %v", err)
		}
		// The signature covers the new members.
		for _, edit := range []func(*Report){
			func(c *Report) { c.Status = "closed" },
			func(c *Report) { c.Survey = !c.Survey },
			func(c *Report) { c.Kind = "" },
		} {
			c := *got
			edit(&c)
			if _, err := VerifyReply(&c, []*Card{h.Card()}); !errors.Is(err, ErrReplySignature) {
				t.Errorf("an altered status message verifies: %+v", c)
			}
		}
	}
}

func TestSurveyAnswers(t *testing.T) {
	for _, tc := range []struct {
		score   int
		comment string
		ok      bool
	}{
		{1, "", true}, {5, "merci, très bien", true}, {3, strings.Repeat("x", MaxSurveyComment), true},
		{0, "", false}, {6, "", false}, {-1, "", false}, {3, strings.Repeat("x", MaxSurveyComment+1), false}, {3, "\xff", false},
	} {
		a, err := SurveyAnswers(tc.score, tc.comment)
		if tc.ok != (err == nil) {
			t.Fatalf("SurveyAnswers(%d, %q): %v", tc.score, tc.comment, err)
		}
		if !tc.ok {
			if !errors.Is(err, ErrSurvey) {
				t.Errorf("error %v does not wrap ErrSurvey", err)
			}
			continue
		}
		r := &Report{Kind: KindSurvey, SealedBy: SealedByServer, Answers: a}
		score, comment, err := ParseSurvey(r)
		if err != nil || score != tc.score || comment != tc.comment {
			t.Errorf("ParseSurvey = %d %q %v, want %d %q", score, comment, err, tc.score, tc.comment)
		}
	}
}

func TestParseSurveyRefusals(t *testing.T) {
	ok := []Answer{{"satisfaction", "4"}, {"comment", "fine"}}
	for _, tc := range []struct {
		name string
		r    Report
	}{
		{"ordinary follow-up", Report{Answers: ok}},
		{"status kind", Report{Kind: KindStatus, Answers: ok}},
		{"no answers", Report{Kind: KindSurvey}},
		{"score 0", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "0"}}}},
		{"score 6", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "6"}}}},
		{"score x", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "x"}}}},
		{"score 04", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "04"}}}},
		{"score +4", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "+4"}}}},
		{"score empty", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", ""}}}},
		{"comment first", Report{Kind: KindSurvey, Answers: []Answer{{"comment", "fine"}, {"satisfaction", "4"}}}},
		{"empty comment", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "4"}, {"comment", ""}}}},
		{"long comment", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "4"}, {"comment", strings.Repeat("é", MaxSurveyComment/2+1)}}}},
		{"other field", Report{Kind: KindSurvey, Answers: []Answer{{"satisfaction", "4"}, {"message", "hi"}}}},
		{"three answers", Report{Kind: KindSurvey, Answers: append(ok, Answer{"comment", "again"})}},
		{"attachment", Report{Kind: KindSurvey, Answers: ok, Attachments: []Attachment{{Name: "a", SHA256: strings.Repeat("0", 64)}}}},
	} {
		if _, _, err := ParseSurvey(&tc.r); !errors.Is(err, ErrSurvey) {
			t.Errorf("%s: ParseSurvey = %v, want ErrSurvey", tc.name, err)
		}
	}
}

func TestReportMembers(t *testing.T) {
	status, _ := testStatusMessage(t, true)
	survey, _ := SurveyAnswers(2, "slow")
	for _, tc := range []struct {
		name string
		r    Report
		ok   bool
	}{
		{"cli report", Report{SealedBy: SealedByClient, Client: ClientCLI}, true},
		{"browser follow-up", Report{SealedBy: SealedByClient, Client: ClientBrowser, Seq: 2}, true},
		{"older client report", Report{SealedBy: SealedByClient}, true},
		{"no-js report", Report{SealedBy: SealedByServer}, true},
		{"status message", *status, true},
		{"client survey", Report{SealedBy: SealedByClient, Client: ClientBrowser, Kind: KindSurvey, Answers: survey}, true},
		{"no-js survey", Report{SealedBy: SealedByServer, Kind: KindSurvey, Answers: survey}, true},

		{"unknown client", Report{SealedBy: SealedByClient, Client: "curl"}, false},
		{"client in upper case", Report{SealedBy: SealedByClient, Client: "CLI"}, false},
		{"client sealed by server", Report{SealedBy: SealedByServer, Client: ClientBrowser}, false},
		{"client in a reply", Report{SealedBy: SealedByHandler, Client: ClientCLI}, false},
		{"client without sealed_by", Report{Client: ClientCLI}, false},
		{"unknown kind", Report{SealedBy: SealedByClient, Kind: "note"}, false},
		{"status sealed by client", Report{SealedBy: SealedByClient, Kind: KindStatus, Status: "resolved", Answers: []Answer{{"message", "done"}}}, false},
		{"status unsigned", Report{SealedBy: SealedByHandler, Kind: KindStatus, Status: "resolved", Answers: []Answer{{"message", "done"}}}, false},
		{"status without status", func() Report { c := *status; c.Status = ""; return c }(), false},
		{"status not a name", func() Report { c := *status; c.Status = "Re solved"; return c }(), false},
		{"status two answers", func() Report { c := *status; c.Answers = []Answer{{"message", "a"}, {"message", "b"}}; return c }(), false},
		{"status other field", func() Report { c := *status; c.Answers = []Answer{{"text", "a"}}; return c }(), false},
		{"status two lines", func() Report { c := *status; c.Answers = []Answer{{"message", "a\nb"}}; return c }(), false},
		{"status empty text", func() Report { c := *status; c.Answers = []Answer{{"message", ""}}; return c }(), false},
		{"status long text", func() Report {
			c := *status
			c.Answers = []Answer{{"message", strings.Repeat("x", MaxStatusText+1)}}
			return c
		}(), false},
		{"status attachment", func() Report {
			c := *status
			c.Attachments = []Attachment{{Name: "a", SHA256: strings.Repeat("0", 64)}}
			return c
		}(), false},
		{"survey by handler", Report{SealedBy: SealedByHandler, From: "x", Signature: "y", Kind: KindSurvey, Answers: survey}, false},
		{"survey bad score", Report{SealedBy: SealedByServer, Kind: KindSurvey, Answers: []Answer{{"satisfaction", "0"}}}, false},
		{"status member alone", Report{SealedBy: SealedByClient, Status: "resolved"}, false},
		{"survey member alone", Report{SealedBy: SealedByClient, Survey: true}, false},
		{"survey member in survey follow-up", Report{SealedBy: SealedByServer, Kind: KindSurvey, Survey: true, Answers: survey}, false},
		{"status member in reply", Report{SealedBy: SealedByHandler, From: "x", Signature: "y", Status: "resolved"}, false},
	} {
		r := tc.r
		err := r.CheckMembers()
		if tc.ok != (err == nil) {
			t.Errorf("%s: CheckMembers = %v", tc.name, err)
			continue
		}
		if !tc.ok && !errors.Is(err, ErrReportMembers) {
			t.Errorf("%s: %v does not wrap ErrReportMembers", tc.name, err)
		}
		// The reader applies the same rules to what other code wrote.
		_, _, err = readAll(bytes.NewReader(writeRaw(t, &r)))
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrReportMembers) {
			t.Errorf("%s: reader: %v", tc.name, err)
		}
		// And the writer refuses to write it.
		if !tc.ok && !strings.Contains(tc.name, "attachment") { // the writers list the files they are given
			if _, err := WriteBundle(io.Discard, &r, nil); !errors.Is(err, ErrReportMembers) {
				t.Errorf("%s: WriteBundle = %v", tc.name, err)
			}
			a, _ := NewIdentity("a", testClassicSecret)
			if _, _, err := SealBundle([]*Card{a.Card()}, &r, nil); !errors.Is(err, ErrReportMembers) {
				t.Errorf("%s: SealBundle = %v", tc.name, err)
			}
		}
	}
}

func TestReportMemberOrder(t *testing.T) {
	r, _ := testStatusMessage(t, true)
	b, err := MarshalReport(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"seq":2,"kind":"status","status":"resolved","survey":true,"from":`)) {
		t.Errorf("members out of order: %s", b)
	}
	c := &Report{SealedBy: SealedByClient, Client: ClientBrowser, Kind: KindSurvey, Seq: 3, Answers: []Answer{{"satisfaction", "5"}}}
	b, _ = MarshalReport(c)
	if !bytes.Contains(b, []byte(`"seq":3,"client":"browser","kind":"survey"}`)) {
		t.Errorf("members out of order: %s", b)
	}
	// Absent members are not written: older items encode as before.
	o := &Report{SealedBy: SealedByServer}
	b, _ = MarshalReport(o)
	for _, m := range []string{"client", "kind", "status", "survey"} {
		if bytes.Contains(b, []byte(`"`+m+`"`)) {
			t.Errorf("%s written when empty: %s", m, b)
		}
	}
	// "survey":false is not canonical.
	j, _ := MarshalReport(&Report{Schema: BundleSchema, SealedBy: SealedByHandler, From: "x", Signature: "y", Kind: KindStatus, Status: "open", Answers: []Answer{{"message", "m"}}})
	if _, err := NewBundleReader(bytes.NewReader(writeRawJSON(t, j))); err != nil {
		t.Fatal(err)
	}
	raw := writeRawJSON(t, bytes.Replace(j, []byte(`"status":"open",`), []byte(`"status":"open","survey":false,`), 1))
	if _, err := NewBundleReader(bytes.NewReader(raw)); !errors.Is(err, ErrNotCanonical) {
		t.Errorf(`"survey":false read: %v`, err)
	}
}
