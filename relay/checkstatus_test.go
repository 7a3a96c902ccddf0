package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// statusMsg describes a status message for sealStatus: its text, whether
// it asks the satisfaction question, who signs it (nil: nobody) and the
// mailbox it names ("": the receipt's); tampered changes its text after it
// was signed. (An unsigned status message cannot even be sealed or opened:
// crypto refuses it, so it never reaches a page.)
type statusMsg struct {
	text     string
	survey   bool
	signer   *crypto.Identity
	tampered bool
	seq      int64 // 0: its place in the test's list, from 1
	mailbox  string
	desk     string
}

// sealStatus is a status message in "sea" for the submitter of rc, as
// crypto.NewStatusMessage makes it, signed by sm.signer, encrypted to
// alice and the submitter.
func sealStatus(t *testing.T, f *fixture, rc *crypto.Receipt, sm statusMsg) []byte {
	t.Helper()
	sub, _ := rc.ReplyIdentity(false)
	base := &crypto.Report{Desk: "helpdesk", Category: "sea", Language: "en", Submitted: crypto.SubmittedAt(time.Now()), Mailbox: rc.MailboxID()}
	if sm.mailbox != "" {
		base.Mailbox = sm.mailbox
	}
	if sm.desk != "" {
		base.Desk = sm.desk
	}
	rep := crypto.NewStatusMessage(base, "closed", sm.text, sm.survey)
	rep.Recipients, rep.Seq = []string{f.alice.Recipient()}, sm.seq
	if err := crypto.SignReplyFiles(rep, nil, sm.signer); err != nil {
		t.Fatal(err)
	}
	if sm.tampered {
		rep.Answers[0].Value = "FORGED-" + rep.Answers[0].Value
	}
	rd, _, err := crypto.SealBundle([]*crypto.Card{f.alice.Card(), sub.Card()}, rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rd)
	return b
}

// TestCheckStatusAndSurvey: the no-JavaScript conversation shows the
// latest status message a handler of the desk signed as the status,
// apart from the messages, and offers the satisfaction question while the
// latest one asks it; an unsigned, forged or misfiled status message is
// never the status, and is shown as an unverified message.
func TestCheckStatusAndSurvey(t *testing.T) {
	forger, err := crypto.GenerateIdentity("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	other := crypto.NewReceipt().MailboxID()
	for _, tc := range []struct {
		name     string
		lang     string
		msgs     []statusMsg // posted in order; a zero signer means alice
		reply    string      // an ordinary reply after them, if any
		answer   string      // a survey score answered after them, if any
		status   string      // the status line shown, "" none
		survey   bool        // the form offered
		answered string      // what the page says of an answer given
		warning  bool        // an unverified message is shown
		absent   []string    // never on the page
	}{
		{name: "status", lang: "en", msgs: []statusMsg{{text: "We are looking into it"}},
			status: "Status: <bdi>We are looking into it</bdi>"},
		{name: "status asks", lang: "en", msgs: []statusMsg{{text: "Closed: resolved", survey: true}},
			status: "Status: <bdi>Closed: resolved</bdi>", survey: true},
		{name: "the latest decides", lang: "en", msgs: []statusMsg{{text: "Closed", survey: true}, {text: "Reopened"}},
			status: "Status: <bdi>Reopened</bdi>", absent: []string{"Closed"}},
		{name: "filed out of order", lang: "en", msgs: []statusMsg{{text: "Closed at last", survey: true, seq: 3}, {text: "Still open", seq: 2}},
			status: "Status: <bdi>Closed at last</bdi>", survey: true, absent: []string{"Still open"}},
		{name: "asked again", lang: "en", msgs: []statusMsg{{text: "In progress"}, {text: "Closed again", survey: true}},
			reply: "MARKER-a-message", status: "Status: <bdi>Closed again</bdi>", survey: true},
		{name: "answered", lang: "en", msgs: []statusMsg{{text: "Closed", survey: true}}, answer: "4",
			status: "Status: <bdi>Closed</bdi>", answered: "You answered: 4 of 5."},
		{name: "arabic", lang: "ar", msgs: []statusMsg{{text: "أُغلِقت القضية", survey: true}},
			status: "الحالة: <bdi>أُغلِقت القضية</bdi>", survey: true},
		{name: "tampered", lang: "en", msgs: []statusMsg{{text: "Closed", survey: true, tampered: true}},
			warning: true, absent: []string{"Status:"}},
		{name: "forged", lang: "en", msgs: []statusMsg{{text: "FORGED-by-an-impostor", survey: true, signer: forger}},
			warning: true, absent: []string{"Status:"}},
		{name: "forged after a real one", lang: "en", msgs: []statusMsg{{text: "Received"}, {text: "FORGED-later", survey: true, signer: forger}},
			status: "Status: <bdi>Received</bdi>", warning: true},
		{name: "another mailbox", lang: "en", msgs: []statusMsg{{text: "MISFILED", survey: true, mailbox: other}},
			warning: true, absent: []string{"Status:"}},
		{name: "another desk", lang: "en", msgs: []statusMsg{{text: "MISFILED", survey: true, desk: "otherdesk"}},
			warning: true, absent: []string{"Status:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rc := crypto.NewReceipt()
			path := "/api/v1/mailboxes/" + rc.MailboxID() + "/replies?desk=helpdesk&category=sea"
			for i, sm := range tc.msgs {
				if sm.signer == nil {
					sm.signer = f.alice
				}
				if sm.seq == 0 {
					sm.seq = int64(i + 1)
				}
				f.signed(f.alice, "POST", path, sealStatus(t, f, rc, sm), 201)
				f.now = f.now.Add(time.Hour)
			}
			if tc.reply != "" {
				f.signed(f.alice, "POST", path, sealReply(t, f, rc, tc.reply), 201)
			}
			if tc.answer != "" {
				f.post("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"kind", "survey"}, {"satisfaction", tc.answer}}, nil, 200)
			}
			_, page := f.post("/check", [][2]string{{"lang", tc.lang}, {"receipt", rc.Words()}}, nil, 200)
			// Every case has a message from the desk: shown as the status
			// or as a message, it is never "no replies".
			if strings.Contains(page, "No replies yet") {
				t.Errorf("says no replies:\n%s", page)
			}
			statusAt := strings.Index(page, `id="case-status"`)
			if got := statusAt >= 0; got != (tc.status != "") || !strings.Contains(page, tc.status) {
				t.Errorf("status shown %v, want %q:\n%s", got, tc.status, page)
			}
			if tc.status != "" {
				// Apart from the messages: in the status section only, never
				// as a message of the conversation.
				text := tc.status[strings.Index(tc.status, "<bdi>")+5 : strings.LastIndex(tc.status, "</bdi>")]
				if strings.Count(page, text) != 1 || strings.Index(page, text) > strings.Index(page, `</section>`) {
					t.Errorf("the status text is not once, in the status section:\n%s", page)
				}
			}
			if got := strings.Contains(page, `name="kind" value="survey"`); got != tc.survey {
				t.Errorf("survey form %v, want %v:\n%s", got, tc.survey, page)
			}
			if tc.survey {
				if n := strings.Count(page, `type="radio" name="satisfaction"`); n != 5 {
					t.Errorf("%d choices, want 5", n)
				}
				// The box counts characters, the bound bytes: it says
				// characters, half the bytes, and the relay checks bytes.
				if !strings.Contains(page, `maxlength="1000"`) || !strings.Contains(page, `name="comment"`) ||
					(tc.lang == "en" && !strings.Contains(page, "Up to 1000 characters.")) {
					t.Errorf("no bounded comment:\n%s", page)
				}
			}
			if tc.answered != "" && !strings.Contains(page, tc.answered) {
				t.Errorf("no %q:\n%s", tc.answered, page)
			}
			if got := strings.Contains(page, "reply_unverified") || strings.Contains(page, "WARNING"); got != tc.warning {
				t.Errorf("unverified warning %v, want %v:\n%s", got, tc.warning, page)
			}
			for _, a := range tc.absent {
				if strings.Contains(page, a) {
					t.Errorf("the page shows %q:\n%s", a, page)
				}
			}
			if tc.lang == "ar" && (!strings.Contains(page, `dir="rtl"`) || !strings.Contains(page, "كيف كانت تجربتك؟") || !strings.Contains(page, "راضٍ جدًا")) {
				t.Errorf("the Arabic page:\n%s", page)
			}
		})
	}
}

// TestNoJavaScriptSurvey: the no-JavaScript survey answer is sealed by the
// relay as a follow-up of kind survey to the thread's handlers; a missing
// or bad score, a comment past crypto.MaxSurveyComment, or anything the
// form does not have, is refused with what to do, and nothing is stored.
func TestNoJavaScriptSurvey(t *testing.T) {
	long := strings.Repeat("é", crypto.MaxSurveyComment/2) + "x" // 2001 bytes, 1001 characters
	for _, tc := range []struct {
		name    string
		fields  [][2]string
		files   map[string][]byte
		want    int
		page    []string // on the page
		score   int      // the follow-up's score, 0 none stored
		comment string
	}{
		{name: "score and comment", fields: [][2]string{{"satisfaction", "4"}, {"comment", "They listened."}}, want: 200,
			page: []string{"Thank you. Your answer was received.", "encrypted your answer"}, score: 4, comment: "They listened."},
		{name: "score only", fields: [][2]string{{"satisfaction", "1"}, {"comment", "  \r\n "}}, want: 200, score: 1},
		{name: "longest comment", fields: [][2]string{{"satisfaction", "5"}, {"comment", long[:len(long)-1]}}, want: 200, score: 5, comment: long[:len(long)-1]},
		{name: "arabic", fields: [][2]string{{"lang", "ar"}, {"satisfaction", "3"}}, want: 200, page: []string{"وصلت إجابتك", `dir="rtl"`}, score: 3},
		{name: "no score", fields: [][2]string{{"comment", "KEPT-comment"}}, want: 400,
			page: []string{"Choose one answer from 1 to 5, then send again. Nothing was sent.", "KEPT-comment</textarea>"}},
		{name: "zero", fields: [][2]string{{"satisfaction", "0"}}, want: 400, page: []string{"Choose one answer from 1 to 5"}},
		{name: "six", fields: [][2]string{{"satisfaction", "6"}}, want: 400, page: []string{"Choose one answer from 1 to 5"}},
		{name: "not a number", fields: [][2]string{{"satisfaction", "x"}}, want: 400, page: []string{"Choose one answer from 1 to 5"}},
		{name: "two digits", fields: [][2]string{{"satisfaction", "04"}}, want: 400, page: []string{"Choose one answer from 1 to 5"}},
		{name: "comment too long", fields: [][2]string{{"satisfaction", "2"}, {"comment", long}}, want: 400,
			page: []string{"at most 2000 bytes. Shorten it and send again", long + "</textarea>", `value="2" required checked`}},
		{name: "not UTF-8", fields: [][2]string{{"satisfaction", "2"}, {"comment", "caf\xe9"}}, want: 400, page: []string{"Remove unusual characters and send again"}},
		{name: "a message too", fields: [][2]string{{"satisfaction", "2"}, {"f.message", "smuggled"}}, want: 400, page: []string{"could not be read"}},
		{name: "a file too", fields: [][2]string{{"satisfaction", "2"}}, files: map[string][]byte{"a.txt": []byte("x")}, want: 400, page: []string{"could not be read"}},
		{name: "another kind", fields: [][2]string{{"satisfaction", "2"}}, want: 400, page: []string{"could not be read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rc := crypto.NewReceipt()
			f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk&category=sea",
				sealStatus(t, f, rc, statusMsg{text: "Closed", survey: true, signer: f.alice}), 201)
			kind := "survey"
			if tc.name == "another kind" {
				kind = "status"
			}
			fields := append([][2]string{{"receipt", rc.Words()}, {"kind", kind}}, tc.fields...)
			if fields[2][0] != "lang" {
				fields = append(fields, [2]string{"lang", "en"})
			}
			_, page := f.post("/check/followup", fields, tc.files, tc.want)
			for _, w := range tc.page {
				if !strings.Contains(page, w) {
					t.Errorf("the page lacks %q:\n%s", w, page)
				}
			}
			subs, _ := f.spool.Submissions(nil)
			if tc.score == 0 {
				if len(subs) != 0 {
					t.Fatalf("%d follow-ups stored, want none", len(subs))
				}
				if tc.want == 400 && !strings.Contains(page, `name="kind" value="survey"`) {
					t.Errorf("the refusal does not offer the question again:\n%s", page)
				}
				return
			}
			r, _ := f.only(f.alice)
			score, comment, err := crypto.ParseSurvey(r)
			if err != nil || score != tc.score || comment != tc.comment || r.Kind != crypto.KindSurvey || r.SealedBy != crypto.SealedByServer ||
				r.Mailbox != rc.MailboxID() || len(r.Attachments) != 0 || r.Client != "" {
				t.Fatalf("survey follow-up %+v: %d %q %v", r, score, comment, err)
			}
			if subs[0].Kind != "followup" || subs[0].Mailbox != rc.MailboxID() {
				t.Errorf("filed as %+v", subs[0])
			}
			// The conversation shows the answer, not the question.
			_, page = f.post("/check", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}}, nil, 200)
			if strings.Contains(page, `name="kind" value="survey"`) || !strings.Contains(page, "You answered: ") {
				t.Errorf("the conversation after the answer:\n%s", page)
			}
		})
	}
}

// TestSurveyPostWiped: the survey answer's score and comment are read into
// the post's one buffer and wiped with it.
func TestSurveyPostWiped(t *testing.T) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, kv := range [][2]string{{"kind", "survey"}, {"satisfaction", "3"}, {"comment", "SECRET-comment"}, {"receipt", "words"}} {
		mw.WriteField(kv[0], kv[1])
	}
	mw.Close()
	r, _ := http.NewRequest("POST", "/check/followup", &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.ContentLength = int64(b.Len())
	post, err := readForm(r, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if post.kind != "survey" || post.satisfaction != "3" || post.comment != "SECRET-comment" || !bytes.Contains(post.arena, []byte("SECRET-comment")) {
		t.Fatalf("post %q %q %q", post.kind, post.satisfaction, post.comment)
	}
	post.wipe()
	if bytes.Contains(post.arena[:cap(post.arena)], []byte("SECRET")) || post.comment != "" || post.satisfaction != "" || post.receipt != "" {
		t.Fatal("the survey answer outlives the wipe")
	}
}

// TestStatusMessagesLookLikeReplies backs threat-model.md §8.11 ("Status
// messages and the satisfaction question"): to the relay, a status message
// is a reply and a survey answer sealed in the browser a follow-up. They
// take the same routes, and nothing the relay stores or lists of them
// differs from an ordinary reply's or follow-up's but the ciphertext, its
// size and the hour.
func TestStatusMessagesLookLikeReplies(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	path := "/api/v1/mailboxes/" + rc.MailboxID() + "/replies?desk=helpdesk&category=sea"
	f.signed(f.alice, "POST", path, sealReply(t, f, rc, "an ordinary reply"), 201)
	f.signed(f.alice, "POST", path, sealStatus(t, f, rc, statusMsg{text: "Closed", survey: true, signer: f.alice, seq: 2}), 201)

	m, err := f.spool.Mailbox(rc.MailboxID())
	if err != nil || len(m.Replies) != 2 {
		t.Fatalf("mailbox %+v %v", m, err)
	}
	reply, status := m.Replies[0], m.Replies[1]
	reply.ID, reply.Size, reply.SHA256, status.ID, status.Size, status.SHA256 = "", 0, "", "", 0, ""
	if reply != status {
		t.Errorf("the relay keeps a status message unlike a reply: %+v, %+v", m.Replies[0], m.Replies[1])
	}
	var mb api.Mailbox
	json.NewDecoder(f.do("POST", "/api/v1/mailbox", nil, tokenBody(rc), 200).Body).Decode(&mb)
	if len(mb.Replies) != 2 || mb.Replies[0].Received != mb.Replies[1].Received {
		t.Errorf("the listing tells them apart: %+v", mb.Replies)
	}

	// A survey answer sealed in the browser, and an ordinary follow-up.
	sub, _ := rc.ReplyIdentity(false)
	hdr := http.Header{"Amana-Token": {base64.RawURLEncoding.EncodeToString(rc.Token())}}
	for _, kind := range []string{"", crypto.KindSurvey} {
		rep := &crypto.Report{Desk: "helpdesk", Category: "sea", Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
			Client: crypto.ClientBrowser, ReplyRecipient: sub.Recipient(), Mailbox: rc.MailboxID(), Seq: 3, Kind: kind,
			Answers: []crypto.Answer{{Field: "message", Value: "more"}}}
		if kind == crypto.KindSurvey {
			rep.Answers, _ = crypto.SurveyAnswers(3, "")
		}
		rd, _, err := crypto.SealBundle([]*crypto.Card{f.alice.Card()}, rep, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rd)
		f.do("POST", "/api/v1/mailbox/followups", hdr, b, 201)
	}
	var in api.Inbox
	json.NewDecoder(f.signed(f.alice, "GET", "/api/v1/inbox", nil, 200).Body).Decode(&in)
	if len(in.Submissions) != 2 {
		t.Fatalf("alice's inbox %+v", in)
	}
	a, b := in.Submissions[0], in.Submissions[1]
	a.ID, a.Size, a.SHA256, b.ID, b.Size, b.SHA256 = "", 0, "", "", 0, ""
	if a.Kind != "followup" || !reflect.DeepEqual(a, b) {
		t.Errorf("the relay lists a survey answer unlike a follow-up: %+v, %+v", in.Submissions[0], in.Submissions[1])
	}
}

// TestNoJavaScriptSurveyInMemory backs threat-model.md §8.11: the relay
// reads a no-JavaScript survey answer, seals it in memory, and writes none
// of it to disk or to its log.
func TestNoJavaScriptSurveyInMemory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := newFixture(t)
	rc := crypto.NewReceipt()
	f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk&category=sea",
		sealStatus(t, f, rc, statusMsg{text: "Closed", survey: true, signer: f.alice}), 201)
	const marker = "MARKER-survey-comment-7c1d"
	f.post("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"kind", "survey"}, {"satisfaction", "2"}, {"comment", marker}}, nil, 200)
	// Refused, too: nothing of it kept either.
	f.post("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"kind", "survey"}, {"satisfaction", "9"}, {"comment", marker}}, nil, 400)
	r, _ := f.only(f.alice)
	if _, comment, err := crypto.ParseSurvey(r); err != nil || comment != marker || r.SealedBy != crypto.SealedByServer {
		t.Fatalf("the relay did not seal the answer it read: %+v %v", r, err)
	}
	for _, dir := range []string{f.dataDir, tmp} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(marker)) || bytes.Contains(b, []byte("satisfaction")) {
					t.Errorf("%s holds the survey answer", p)
				}
			}
			return nil
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.logs {
		if strings.Contains(l, marker) {
			t.Errorf("logged: %s", l)
		}
	}
}
