package e2e

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/client"
)

// statusDriven is what drive.mjs's status scenario reports.
type statusDriven struct {
	driven
	StatusShown    bool     `json:"statusShown"`
	StatusLine     string   `json:"statusLine"`
	Messages       []string `json:"messages"`
	SurveyShown    bool     `json:"surveyShown"`
	SurveyBody     string   `json:"surveyBody"`
	SurveyStatus   string   `json:"surveyStatus"`
	SurveyAnswered string   `json:"surveyAnswered"`
}

// TestStatusBrowser: a status message that a handler signed, asking the
// satisfaction question, is posted to the relay's reply route like any
// reply, then a forged one (signed by a key that only calls itself alice).
// The submitter's check page, with JavaScript, without JIT, and without
// JavaScript (in Arabic, right to left), shows the real one as the status,
// apart from the messages, and the forged one only as an unverified
// message; the submitter answers the question, and the follow-up that
// reaches the handler is of kind survey with the score and comment chosen.
func TestStatusBrowser(t *testing.T) {
	chromium := needBrowser(t)
	w := setup(t)
	alice := readIdentity(t, w.path("alice.key"))
	forger, err := crypto.GenerateIdentity("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	cards := []*crypto.Card{readCard(t, w, "alice"), readCard(t, w, "carol")}
	dir := artifacts(t)
	for _, tc := range []struct {
		name, lang     string
		js, jitless    bool
		status, forged string
		score          int
		comment        string
		confirm        string // on the page once answered
	}{
		{name: "javascript", lang: "en", js: true, status: "Closed: the matter was resolved", forged: "FORGED: your report was rejected",
			score: 4, comment: "They listened (javascript).", confirm: "Thank you. Your answer was received."},
		{name: "jitless", lang: "fr", js: true, jitless: true, status: "Clos : le problème a été réglé", forged: "FORGED : rejeté",
			score: 2, confirm: "Merci. Votre réponse a été reçue."},
		{name: "no javascript", lang: "ar", status: "أُغلِقت القضية: حُلّت المسألة", forged: "FORGED: رُفض بلاغك",
			score: 5, comment: "شكرًا (no javascript).", confirm: "شكرًا لك. وصلت إجابتك."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := map[string]any{"url": w.relay, "chromium": chromium, "js": tc.js, "jitless": tc.jitless}
			d := drive(t, with(base, "desk", "pq", "text", "report for the status test, "+tc.name, "category", "incident", "lang", tc.lang))
			words := strings.Join(strings.Fields(d.Words), " ")
			rc, err := crypto.ParseReceipt(words)
			if err != nil || len(d.Receipt.ID) != 32 {
				t.Fatalf("no receipt: %v %+v", err, d)
			}
			postStatus(t, w, alice, alice, cards, rc, tc.lang, tc.status, true)
			postStatus(t, w, alice, forger, cards, rc, tc.lang, tc.forged, false)

			shot := filepath.Join(dir, "status-"+strings.ReplaceAll(tc.name, " ", "-")+".png")
			var c statusDriven
			driveInto(t, with(base, "page", "status", "lang", tc.lang, "receipt", words, "score", tc.score, "comment", tc.comment,
				"screenshot", shot, "surveyShot", strings.TrimSuffix(shot, ".png")+"-answered.png"), &c)
			checkDriven(t, &c.driven)
			if c.ModeJS != tc.js {
				t.Errorf("script mode %v, want %v", c.ModeJS, tc.js)
			}
			if !c.StatusShown || !strings.Contains(c.StatusLine, tc.status) || strings.Contains(c.StatusLine, "FORGED") {
				t.Errorf("status line %v %q, want %q", c.StatusShown, c.StatusLine, tc.status)
			}
			if tc.lang == "ar" && (c.Dir != "rtl" || !strings.HasPrefix(strings.TrimSpace(c.StatusLine), "الحالة:")) {
				t.Errorf("Arabic page: dir %q, status line %q", c.Dir, c.StatusLine)
			}
			// The real status message is not a message; the forged one is
			// one, marked unverified, and never the status.
			if len(c.Messages) != 1 || !strings.Contains(c.Messages[0], tc.forged) || strings.Contains(c.Messages[0], tc.status) {
				t.Errorf("messages %q, want the forged one alone", c.Messages)
			}
			warning := map[string]string{"en": "WARNING", "fr": "ATTENTION", "ar": "تحذير"}[tc.lang]
			if len(c.Messages) == 1 && !strings.Contains(c.Messages[0], warning) {
				t.Errorf("the forged status message is not marked unverified (%q): %q", warning, c.Messages[0])
			}
			if !strings.Contains(c.SurveyBody+c.SurveyStatus, tc.confirm) {
				t.Errorf("survey not confirmed: %q %q", c.SurveyBody, c.SurveyStatus)
			}
			if tc.js && (c.SurveyShown || !strings.Contains(c.SurveyAnswered, strconv.Itoa(tc.score))) {
				t.Errorf("after the answer: form shown %v, answered %q", c.SurveyShown, c.SurveyAnswered)
			}

			// The handler gets it as a follow-up of the thread, of kind survey.
			out, _ := pullAndExport(t, w, "alice", d.Receipt.ID)
			r := surveyFollowup(t, out)
			score, comment, err := crypto.ParseSurvey(r)
			if err != nil || score != tc.score || comment != tc.comment {
				t.Fatalf("survey follow-up: %d %q %v (%+v)", score, comment, err, r)
			}
			wantSealed, wantClient := crypto.SealedByServer, ""
			if tc.js {
				wantSealed, wantClient = crypto.SealedByClient, crypto.ClientBrowser
			}
			if r.SealedBy != wantSealed || r.Client != wantClient || r.Mailbox != rc.MailboxID() {
				t.Errorf("survey follow-up sealed by %q, client %q, mailbox %q", r.SealedBy, r.Client, r.Mailbox)
			}
		})
	}
}

// postStatus posts, as handler poster, a status message for the thread of
// receipt rc signed by signer, encrypted to cards and the submitter, as
// crypto.NewStatusMessage makes it.
func postStatus(t *testing.T, w *world, poster, signer *crypto.Identity, cards []*crypto.Card, rc *crypto.Receipt, lang, text string, survey bool) {
	t.Helper()
	sub, err := rc.ReplyIdentity(true)
	if err != nil {
		t.Fatal(err)
	}
	base := &crypto.Report{Desk: "pq", Category: "incident", Language: lang, Submitted: crypto.SubmittedAt(time.Now()),
		ReplyRecipient: sub.Recipient(), Mailbox: rc.MailboxID()}
	rep := crypto.NewStatusMessage(base, "closed", text, survey)
	rep.Seq = 1
	rep.Recipients = crypto.RecipientsOf(cards)
	if err := crypto.SignReply(rep, signer); err != nil {
		t.Fatal(err)
	}
	recips, err := crypto.Recipients(cards)
	if err != nil {
		t.Fatal(err)
	}
	subR, err := crypto.ParseRecipient(sub.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	sealed, _, err := crypto.SealBundleTo(append(recips, subR), rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sealed.Close()
	ct, err := io.ReadAll(sealed)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(w.relay, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.Key = poster.SigningKey()
	if _, err := cl.PostReply(context.Background(), rc.MailboxID(), "pq", "incident", ct); err != nil {
		t.Fatalf("posting the status message: %v", err)
	}
}

// surveyFollowup is report.json of the one follow-up of kind survey in an
// exported case's thread.
func surveyFollowup(t *testing.T, out string) *crypto.Report {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(out, "thread", "*", "report.json"))
	var surveys []*crypto.Report
	for _, p := range found {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r crypto.Report
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if r.Kind == crypto.KindSurvey {
			surveys = append(surveys, &r)
		}
	}
	if len(surveys) != 1 {
		t.Fatalf("%d survey follow-ups in the thread %v, want 1", len(surveys), found)
	}
	return surveys[0]
}

func readIdentity(t *testing.T, path string) *crypto.Identity {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := crypto.ParseIdentityFile(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
