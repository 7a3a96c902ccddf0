package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// selectRE finds a route select and its first option.
var selectRE = regexp.MustCompile(`<select id="(followup-route|route)"([^>]*)><option value="([^"]*)"( selected)?>`)

// TestCheckPagesNeverPreselectARoute: before any reply, the check page's
// "who should receive it" starts on an empty choice that the form requires
// to be changed, with and without JavaScript.
func TestCheckPagesNeverPreselectARoute(t *testing.T) {
	f := newFixture(t)
	_, page := f.page("/check?lang=en", 200)
	_, thread := f.post("/check", [][2]string{{"lang", "en"}, {"receipt", crypto.NewReceipt().Words()}}, nil, 200)
	for name, body := range map[string]string{"javascript page": page, "no-javascript thread page": thread} {
		m := selectRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no route select:\n%s", name, body)
		}
		if !strings.Contains(m[2], "required") || m[3] != "" || m[4] == "" {
			t.Errorf("%s: the route select does not start on a required empty choice: %s", name, m[0])
		}
		if n := strings.Count(body, " selected>"); n != 1 {
			t.Errorf("%s: %d options selected, want only the empty one", name, n)
		}
		if !strings.Contains(body, "Choose where you sent your report") {
			t.Errorf("%s: the empty choice has no label", name)
		}
	}
	// The catalogue keys the script needs are on the page.
	for _, k := range []string{"followup_choose", "followup_relay_disagrees", "followup_reply_mismatch"} {
		if !strings.Contains(page, `"`+k+`"`) {
			t.Errorf("the check page lacks %s for the script", k)
		}
	}
}

// TestNoJavaScriptFollowupRoute: the no-JavaScript follow-up goes where the
// submitter chose and nowhere else: without a choice it is refused, and
// once the thread exists a route other than the thread's is refused rather
// than widened.
func TestNoJavaScriptFollowupRoute(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	followup := func(route string, want int) string {
		t.Helper()
		fields := [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"f.message", "more details"}}
		if route != "-" {
			fields = append(fields, [2]string{"route", route})
		}
		_, body := f.post("/check/followup", fields, nil, want)
		return body
	}
	stored := func() int {
		t.Helper()
		subs, err := f.spool.Submissions(nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(subs)
	}
	inbox := func() int {
		t.Helper()
		var in api.Inbox
		json.NewDecoder(f.signed(f.bob, "GET", "/api/v1/inbox", nil, 200).Body).Decode(&in)
		return len(in.Submissions)
	}

	// No thread yet: no route, or an empty one, asks to choose.
	for _, route := range []string{"-", ""} {
		if body := followup(route, 400); !strings.Contains(body, "Choose who should receive your message") {
			t.Errorf("route %q without a thread:\n%s", route, body)
		}
	}
	if n := stored(); n != 0 {
		t.Fatalf("%d follow-ups stored without a route", n)
	}
	// The submitter chooses "sea" (alice only).
	if body := followup("helpdesk|sea", 200); !strings.Contains(body, "Your message was received") {
		t.Fatalf("follow-up to sea:\n%s", body)
	}
	if r, _ := f.only(f.alice); r.Category != "sea" || r.Mailbox != rc.MailboxID() {
		t.Fatalf("follow-up %+v", r)
	}
	// The thread is "sea" now: the whole desk, or another category, is
	// refused, and says where the thread is.
	for _, route := range []string{"helpdesk|", "helpdesk|incident"} {
		if body := followup(route, 409); !strings.Contains(body, "already filed under “\u2068Helpdesk\u2069: \u2068\u2068SEA\u2069 (read only by: \u2068alice\u2069)\u2069”") {
			t.Errorf("route %q against the thread:\n%s", route, body)
		}
	}
	if n := stored(); n != 1 || inbox() != 0 {
		t.Fatalf("%d follow-ups stored, bob sees %d", n, inbox())
	}
	// The thread's own route, or none (the thread page shows no choice),
	// goes to the thread, under its category.
	for _, route := range []string{"helpdesk|sea", "-"} {
		followup(route, 200)
	}
	subs, _ := f.spool.Submissions(nil)
	if len(subs) != 3 || inbox() != 0 {
		t.Fatalf("%d follow-ups stored, bob sees %d", len(subs), inbox())
	}
	for _, s := range subs {
		if s.Category != "sea" {
			t.Errorf("follow-up %s filed under category %q", s.ID, s.Category)
		}
	}
}

// sealReplyFiles is alice's signed reply in "sea" with files, for the
// submitter of rc.
func sealReplyFiles(t *testing.T, f *fixture, rc *crypto.Receipt, text string, files map[string][]byte) []byte {
	t.Helper()
	sub, _ := rc.ReplyIdentity(false)
	rep := &crypto.Report{Desk: "helpdesk", Category: "sea", Submitted: crypto.SubmittedAt(time.Now()), Mailbox: rc.MailboxID(),
		Answers: []crypto.Answer{{Field: "message", Value: text}}, Recipients: []string{f.alice.Recipient()}}
	var fs []crypto.File
	for _, name := range []string{"guide.pdf", "../../etc/\x1bpasswd\u202e.txt"} {
		b, ok := files[name]
		if !ok {
			continue
		}
		sum := sha256.Sum256(b)
		fs = append(fs, crypto.File{Attachment: crypto.Attachment{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Type: "text/html"},
			Body: bytes.NewReader(b)})
	}
	if err := crypto.SignReplyFiles(rep, fs, f.alice); err != nil {
		t.Fatal(err)
	}
	rd, _, err := crypto.SealBundle([]*crypto.Card{f.alice.Card(), sub.Card()}, rep, fs)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rd)
	return b
}

// TestNoJavaScriptCheckFiles: the no-JavaScript check page offers a signed
// reply's files as downloads, with their sizes in the page's language, and
// streams each as an attachment that is never shown as a page.
func TestNoJavaScriptCheckFiles(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	guide := bytes.Repeat([]byte("<script>alert(1)</script>"), 200) // 5000 bytes
	odd := []byte("second file")
	f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk&category=sea",
		sealReplyFiles(t, f, rc, "Here is the guide.", map[string][]byte{"guide.pdf": guide, "../../etc/\x1bpasswd\u202e.txt": odd}), 201)

	_, page := f.post("/check", [][2]string{{"lang", "fr"}, {"receipt", rc.Words()}}, nil, 200)
	for _, want := range []string{"Here is the guide.", `action="/check/file"`, `Télécharger <bdi>guide.pdf</bdi> (<bdi dir="ltr">4,8 Ko</bdi>)`, `(<bdi dir="ltr">11 octets</bdi>)`} {
		if !strings.Contains(page, want) {
			t.Errorf("the French thread page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, " bytes") {
		t.Error("the French thread page says \"bytes\"")
	}
	replyID := regexp.MustCompile(`name="reply" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if replyID == nil {
		t.Fatalf("no reply ID in the download form:\n%s", page)
	}
	download := func(index string, want int) (*http.Response, string) {
		t.Helper()
		return f.post("/check/file", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"reply", replyID[1]}, {"file", index}}, nil, want)
	}
	resp, body := download("0", 200)
	if body != string(guide) {
		t.Fatalf("the download is not the file: %d bytes", len(body))
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/octet-stream",
		"Content-Disposition":    `attachment; filename=guide.pdf`,
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
		"Content-Length":         "5000",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	resp, body = download("1", 200)
	if cd := resp.Header.Get("Content-Disposition"); body != string(odd) || cd != `attachment; filename*=utf-8''passwd.txt` && cd != `attachment; filename=passwd.txt` {
		t.Errorf("the second file: %q, %q", cd, body)
	}
	// Another file, another receipt, another reply: the thread again with
	// what went wrong, never a file.
	for _, tc := range [][2]string{{"2", replyID[1]}, {"-1", replyID[1]}, {"0", strings.Repeat("0", 32)}} {
		_, body := f.post("/check/file", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"reply", tc[1]}, {"file", tc[0]}}, nil, 404)
		if !strings.Contains(body, "This file could not be opened") {
			t.Errorf("file %s of reply %s:\n%s", tc[0], tc[1], body)
		}
	}
	_, body = f.post("/check/file", [][2]string{{"lang", "en"}, {"receipt", crypto.NewReceipt().Words()}, {"reply", replyID[1]}, {"file", "0"}}, nil, 404)
	if strings.Contains(body, "<script>alert") {
		t.Error("another receipt downloads the file")
	}
}

// TestNoJavaScriptFollowupPages: a follow-up is confirmed on a page of its
// own that leads back to the conversation, and a refused one shows the
// conversation again with the message typed and the limit.
func TestNoJavaScriptFollowupPages(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	_, body := f.post("/check/followup", [][2]string{{"lang", "ar"}, {"receipt", rc.Words()}, {"route", "helpdesk|sea"}, {"f.message", "more details"}}, nil, 200)
	for _, want := range []string{"وصلت رسالتك", `action="/check"`, `name="receipt" value="` + rc.Words() + `"`, "العودة إلى المحادثة"} {
		if !strings.Contains(body, want) {
			t.Errorf("the follow-up page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "send_another") || strings.Contains(body, `href="/desks/`) {
		t.Errorf("the follow-up page leads to the report's pages:\n%s", body)
	}
	message := strings.Repeat("what I remember now. ", 500)
	_, body = f.post("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"f.message", message}},
		map[string][]byte{"big.bin": make([]byte, 17<<20)}, 413)
	if !strings.Contains(body, message+"</textarea>") || !strings.Contains(body, "at most 16 MB of files") || !strings.Contains(body, `name="receipt" value="`+rc.Words()+`"`) {
		t.Errorf("a follow-up too large:\n%.3000s", body)
	}
	if subs, _ := f.spool.Submissions(nil); len(subs) != 1 {
		t.Errorf("%d follow-ups stored, want 1", len(subs))
	}
}

// TestNoJavaScriptOwnFollowups: the no-JavaScript conversation shows the
// submitter's own follow-ups with the desk's replies, in the order they
// came, sealed to the receipt alone; the API's listing, which the script's
// page reads, has only the desk's replies.
func TestNoJavaScriptOwnFollowups(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	f.post("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"route", "helpdesk|sea"}, {"f.message", "MARKER-first-followup"}},
		map[string][]byte{"photo.jpg": []byte("jpeg")}, 200)
	f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk&category=sea", sealReply(t, f, rc, "MARKER-desk-reply"), 201)
	f.post("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"f.message", "MARKER-second-followup"}}, nil, 200)

	_, page := f.post("/check", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}}, nil, 200)
	first, reply, second := strings.Index(page, "MARKER-first-followup"), strings.Index(page, "MARKER-desk-reply"), strings.Index(page, "MARKER-second-followup")
	if first < 0 || reply < 0 || second < 0 || !(first < reply && reply < second) {
		t.Fatalf("the conversation is not the follow-ups and the reply in order (%d, %d, %d):\n%s", first, reply, second, page)
	}
	if n := strings.Count(page, `<article class="reply own">`); n != 2 || !strings.Contains(page, "<h3>Your message, ") ||
		!strings.Contains(page, "<li><bdi>photo.jpg</bdi></li>") || strings.Contains(page, "No replies yet") {
		t.Errorf("own follow-ups (%d):\n%s", n, page)
	}
	// Another receipt sees nothing of them.
	_, other := f.post("/check", [][2]string{{"lang", "en"}, {"receipt", crypto.NewReceipt().Words()}}, nil, 200)
	if strings.Contains(other, "MARKER") {
		t.Error("another receipt sees the conversation")
	}
	var mb api.Mailbox
	json.NewDecoder(f.do("POST", "/api/v1/mailbox", nil, tokenBody(rc), 200).Body).Decode(&mb)
	if len(mb.Replies) != 1 {
		t.Errorf("the API lists %d replies, want the desk's one", len(mb.Replies))
	}
	// The handlers still get each follow-up whole, with its file.
	subs, _ := f.spool.Submissions(nil)
	if len(subs) != 2 {
		t.Fatalf("%d follow-ups stored for the handlers, want 2", len(subs))
	}
}
