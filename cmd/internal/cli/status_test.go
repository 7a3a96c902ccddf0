package cli

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// statusReply is a status message as a handler's machine seals it, signed
// by name (a handler of helpdesk), edited by edit before signing.
func (w *followupWorld) statusReply(t *testing.T, name string, edit func(*crypto.Report)) []byte {
	t.Helper()
	return w.handlerReply(t, name, func(r *crypto.Report) {
		r.Kind, r.Status, r.Survey = crypto.KindStatus, "closed", true
		r.Answers = []crypto.Answer{{Field: "message", Value: "Your case is closed."}}
		edit(r)
	})
}

// forgedStatus is a status message asking the survey, signed by the
// relay's own key: no handler of the desk.
func (w *followupWorld) forgedStatus(t *testing.T) []byte {
	t.Helper()
	rc, _ := crypto.ParseReceipt(w.words)
	sub, _ := rc.ReplyIdentity(false)
	rep := crypto.NewStatusMessage(&crypto.Report{Desk: "helpdesk", Category: "sea", Mailbox: rc.MailboxID(), Submitted: crypto.SubmittedAt(time.Now())},
		"closed", "Your case is closed.", true)
	rep.Recipients = []string{w.mallory.Recipient()}
	if err := crypto.SignReply(rep, w.mallory); err != nil {
		t.Fatal(err)
	}
	rd, _, err := crypto.SealBundle([]*crypto.Card{w.mallory.Card(), sub.Card()}, rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rd)
	return b
}

// TestCheckShowsOnlyVerifiedStatus: check shows a status message as the
// case's status, and followup --satisfaction answers its survey, only when
// it verifies (signed by a handler of the trusted desk, for this desk and
// conversation); a forged or misfiled one is shown as an unverified reply,
// never as the status, and its survey is refused.
func TestCheckShowsOnlyVerifiedStatus(t *testing.T) {
	w := newFollowupWorld(t)
	for _, tc := range []struct {
		name  string
		reply func() []byte
		ok    bool
	}{
		{"signed by carol", func() []byte { return w.statusReply(t, "carol", func(*crypto.Report) {}) }, true},
		{"for another conversation", func() []byte {
			return w.statusReply(t, "carol", func(r *crypto.Report) { r.Mailbox = strings.Repeat("0", 32) })
		}, false},
		{"signed by the relay's key", func() []byte { return w.forgedStatus(t) }, false},
	} {
		for _, v := range []string{"tofu", "pinned"} {
			w.hostile.set(&lie{desk: "helpdesk", category: "sea", forged: tc.reply()})
			code, out, stderr := w.check(t, v)
			if code != 0 {
				t.Fatalf("%s, %s: check exit %d\n%s", tc.name, v, code, stderr)
			}
			shown := strings.Contains(out, "Status: Your case is closed.")
			offered := strings.Contains(out, "amana followup --satisfaction N")
			if shown != tc.ok || offered != tc.ok {
				t.Errorf("%s, %s: status shown %v, survey offered %v; want %v\n%s", tc.name, v, shown, offered, tc.ok, out)
			}
			if !tc.ok && !strings.Contains(out, "UNVERIFIED") {
				t.Errorf("%s, %s: not shown as unverified:\n%s", tc.name, v, out)
			}
			w.clockSkew.step()
			w.hostile.reset()
			code, _, stderr = run(t, append([]string{"followup", "--relay", w.url, "--receipt-file", w.receipt, "--satisfaction", "4"}, w.variant(v)...)...)
			switch {
			case tc.ok && (code != 0 || w.hostile.posted() != 1):
				t.Errorf("%s, %s: followup --satisfaction exit %d, %d posted\n%s", tc.name, v, code, w.hostile.posted(), stderr)
			case !tc.ok && (code == 0 || w.hostile.posted() != 0 || !strings.Contains(stderr, "\nhint: ")):
				t.Errorf("%s, %s: a survey answer to an unverified status message: exit %d, %d posted\n%s", tc.name, v, code, w.hostile.posted(), stderr)
			}
		}
	}
}

// noJSSurvey answers the survey as the no-JavaScript page does: the relay
// seals the answer itself, for whoever gives the receipt's words.
func (w *followupWorld) noJSSurvey(t *testing.T, words, score string, comment ...string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fields := [][2]string{{"lang", "en"}, {"receipt", words}, {"route", "helpdesk|sea"}, {"kind", "survey"}, {"satisfaction", score}}
	for _, c := range comment {
		fields = append(fields, [2]string{"comment", c})
	}
	for _, kv := range fields {
		mw.WriteField(kv[0], kv[1])
	}
	mw.Close()
	resp, err := http.Post(w.real+"/check/followup", mw.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("no-JS survey: %s\n%s", resp.Status, body)
	}
}

// TestPullCountsOnlyAskedSurveys: pull records a survey answer only for
// the report its own sealed mailbox and desk name, filed there by the
// relay, and only after a status message a handler of the desk signed
// asked the question; an unasked answer, one asked by no handler, and one
// the relay files under another case are not recorded. A case counts one
// answer: the latest.
func TestPullCountsOnlyAskedSurveys(t *testing.T) {
	w := newFollowupWorld(t)
	// A second report to helpdesk "sea", with its own conversation.
	out := mustRun(t, "submit", "--home", w.path("home-tofu"), "--relay", w.real, "--desk", "helpdesk", "--category", "sea", "--message-file", w.path("msg.txt"))
	words2, report2 := wordsLine.FindStringSubmatch(out)[1], idLine.FindStringSubmatch(out)[1]
	carol := func(args ...string) (string, string) {
		t.Helper()
		code, out, stderr := run(t, append(args, "--home", w.path("home-carol"), "-i", w.path("carol.key"))...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		return out, stderr
	}
	satisfaction := func(id string) string {
		t.Helper()
		out, _ := carol("case", "show", id[:12])
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "satisfaction:") {
				return l
			}
		}
		return ""
	}
	carol("pull", "--relay", w.real)
	st, err := cases.Open(w.path("home-carol/cases"))
	if err != nil {
		t.Fatal(err)
	}
	carolID, err := crypto.ParseIdentityFile([]byte(readFile(t, w.path("carol.key"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(w.real, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.Key = carolID.SigningKey()
	rc, _ := crypto.ParseReceipt(w.words)
	// postStatus posts a status message signed by signer as a reply of
	// the thread, and keeps it in carol's case store as sync does.
	postStatus := func(seq int64, survey bool, forged bool) {
		t.Helper()
		var ct []byte
		if forged {
			ct = w.forgedStatus(t)
		} else {
			ct = w.statusReply(t, "carol", func(r *crypto.Report) { r.Seq, r.Survey = seq, survey })
		}
		rid, err := cl.PostReply(context.Background(), rc.MailboxID(), "helpdesk", "sea", ct)
		if err != nil {
			t.Fatal(err)
		}
		meta := cases.Meta{ID: rid, Relay: w.real, Desk: "helpdesk", Category: "sea", Kind: api.KindReply, Mailbox: rc.MailboxID(),
			Size: int64(len(ct)), SHA256: sha256Hex(ct), Received: crypto.SubmittedAt(time.Now())}
		if err := st.Receive(meta, func(off int64, wr io.Writer) error { _, err := wr.Write(ct[off:]); return err }, nil); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing asked yet: an answer is not counted.
	w.noJSSurvey(t, w.words, "2")
	_, stderr := carol("pull", "--relay", w.real)
	if !strings.Contains(stderr, "a survey answer (2/5) is not recorded") || !strings.Contains(stderr, "no status message of the desk asked") {
		t.Errorf("an unasked answer:\n%s", stderr)
	}
	// Asked by a key that is no handler of the desk: still not counted.
	postStatus(0, true, true)
	w.noJSSurvey(t, w.words, "3")
	_, stderr = carol("pull", "--relay", w.real)
	if !strings.Contains(stderr, "a survey answer (3/5) is not recorded") {
		t.Errorf("an answer asked by a forged status message:\n%s", stderr)
	}
	if s := satisfaction(w.reportID); s != "" {
		t.Fatalf("unasked answers recorded: %q", s)
	}

	// carol asks: the next answer counts.
	postStatus(10, true, false)
	w.noJSSurvey(t, w.words, "4")
	_, stderr = carol("pull", "--relay", w.real)
	if !strings.Contains(stderr, "the submitter answered the survey: 4/5") {
		t.Fatalf("an asked answer:\n%s", stderr)
	}
	if s := satisfaction(w.reportID); s != "satisfaction: 4/5" {
		t.Errorf("case shows %q, want 4/5", s)
	}

	// An answer written for this conversation that the relay files under
	// the second report's: counted for neither.
	sub2, _ := crypto.ParseReceipt(words2)
	rep := &crypto.Report{Schema: crypto.BundleSchema, Desk: "helpdesk", Category: "sea", Mailbox: rc.MailboxID(), SealedBy: crypto.SealedByClient,
		Client: crypto.ClientCLI, Kind: crypto.KindSurvey, Seq: 50, Submitted: crypto.SubmittedAt(time.Now()), Recipients: []string{carolID.Recipient()}}
	if rep.Answers, err = crypto.SurveyAnswers(1, ""); err != nil {
		t.Fatal(err)
	}
	rd, _, err := crypto.SealBundle([]*crypto.Card{carolID.Card()}, rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := io.ReadAll(rd)
	if _, err := cl.PostFollowup(context.Background(), sub2.Token(), "helpdesk", "sea", ct); err != nil {
		t.Fatal(err)
	}
	_, stderr = carol("pull", "--relay", w.real)
	if !strings.Contains(stderr, "a survey answer (1/5) is not recorded: the relay filed it under another conversation") {
		t.Errorf("a misfiled answer:\n%s", stderr)
	}
	if s := satisfaction(report2); s != "" {
		t.Errorf("the misfiled answer counted for the other case: %q", s)
	}
	if s := satisfaction(w.reportID); s != "satisfaction: 4/5" {
		t.Errorf("after a misfiled answer the case shows %q, want 4/5", s)
	}

	// Bounded: more answers to the question replace the case's one (the
	// latest recorded); the report counts one response for it.
	w.noJSSurvey(t, w.words, "5")
	carol("pull", "--relay", w.real)
	w.noJSSurvey(t, w.words, "1")
	carol("pull", "--relay", w.real)
	if s := satisfaction(w.reportID); s != "satisfaction: 1/5" {
		t.Errorf("after two more answers the case shows %q, want the latest, 1/5", s)
	}
	day := time.Now().UTC().Format("2006-01-02")
	carol("report", "--from", time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02"), "--to", day, "--csv", w.path("report.csv"))
	csv := readFile(t, w.path("report.csv"))
	if !strings.Contains(csv, "satisfaction,responses,1\n") || !strings.Contains(csv, "satisfaction,score_1,1\n") {
		t.Errorf("report:\n%s", csv)
	}

	// A comment shows only under its own case, whatever follow-up ID an
	// event names.
	w.noJSSurvey(t, w.words, "3", "MARKER-comment-of-case-1")
	_, stderr = carol("pull", "--relay", w.real)
	if !strings.Contains(stderr, "the submitter answered the survey: 3/5") {
		t.Fatalf("an answer with a comment:\n%s", stderr)
	}
	all, _ := st.List()
	var withComment string
	for _, m := range all {
		if m.Kind == api.KindFollowup && m.Mailbox == rc.MailboxID() {
			jc := &journalCase{st: st, id: carolID}
			if jc.meta, err = st.Meta(w.reportID); err != nil {
				t.Fatal(err)
			}
			if surveyComment(jc, m.ID) == "MARKER-comment-of-case-1" {
				withComment = m.ID
			}
		}
	}
	if withComment == "" {
		t.Fatal("the comment does not show under its own case")
	}
	jc := &journalCase{st: st, id: carolID}
	if jc.meta, err = st.Meta(report2); err != nil {
		t.Fatal(err)
	}
	if got := surveyComment(jc, withComment); got != "" {
		t.Errorf("another case's comment shows under case 2: %q", got)
	}

	// Reopened with a status message that does not ask: later answers
	// are not counted.
	postStatus(100, false, false)
	w.noJSSurvey(t, w.words, "3")
	_, stderr = carol("pull", "--relay", w.real)
	if !strings.Contains(stderr, "a survey answer (3/5) is not recorded") || !strings.Contains(stderr, "did not ask") {
		t.Errorf("an answer after the question was taken back:\n%s", stderr)
	}
}
