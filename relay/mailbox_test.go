package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/store"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

// sealReply makes alice's signed reply, in category "sea", to the
// submitter of receipt rc.
func sealReply(t *testing.T, f *fixture, rc *crypto.Receipt, text string, extra ...*crypto.Card) []byte {
	return sealReplyIn(t, f, "sea", rc, text, extra...)
}

// sealReplyIn makes alice's signed reply in category to the submitter of
// receipt rc, encrypted to alice, the submitter and extra.
func sealReplyIn(t *testing.T, f *fixture, category string, rc *crypto.Receipt, text string, extra ...*crypto.Card) []byte {
	t.Helper()
	sub, _ := rc.ReplyIdentity(false)
	rep := &crypto.Report{Desk: "helpdesk", Category: category, Submitted: crypto.SubmittedAt(time.Now()), Mailbox: rc.MailboxID(),
		Answers: []crypto.Answer{{Field: "message", Value: text}}, Recipients: []string{f.alice.Recipient()}}
	if err := crypto.SignReplyFiles(rep, nil, f.alice); err != nil {
		t.Fatal(err)
	}
	cards := append([]*crypto.Card{f.alice.Card(), sub.Card()}, extra...)
	rd, _, err := crypto.SealBundle(cards, rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rd)
	return b
}

func tokenBody(rc *crypto.Receipt) []byte {
	b, _ := json.Marshal(api.MailboxRequest{Token: base64.RawURLEncoding.EncodeToString(rc.Token())})
	return b
}

func TestFollowUpChannel(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	path := "/api/v1/mailboxes/" + rc.MailboxID() + "/replies?desk=helpdesk&category=sea"

	// Nothing yet: the same answer as for any unknown receipt.
	var mb api.Mailbox
	json.NewDecoder(f.do("POST", "/api/v1/mailbox", nil, tokenBody(rc), 200).Body).Decode(&mb)
	if len(mb.Replies) != 0 || mb.KeepDays != 180 {
		t.Fatalf("empty mailbox answer %+v", mb)
	}

	// A reply with the wrong stanzas (no submitter recipient) is refused.
	bad := encrypt(t, []byte("x"), f.alice)
	if code := errCode(t, f.signed(f.alice, "POST", path, bad, 400)); code != "wrong_recipients" {
		t.Fatalf("reply without the submitter: %s", code)
	}
	f.signed(f.alice, "POST", path, sealReply(t, f, rc, "We received your report. Are you safe?"), 201)
	// bob handles the desk but not this thread ("sea" is alice's only).
	f.signed(f.bob, "POST", path, sealReply(t, f, rc, "not mine to answer"), 404)

	json.NewDecoder(f.do("POST", "/api/v1/mailbox", nil, tokenBody(rc), 200).Body).Decode(&mb)
	if len(mb.Replies) != 1 || mb.Desk != "helpdesk" {
		t.Fatalf("mailbox %+v", mb)
	}
	ct, _ := io.ReadAll(f.do("POST", "/api/v1/mailbox/replies/"+mb.Replies[0].ID, nil, tokenBody(rc), 200).Body)
	sub, _ := rc.ReplyIdentity(false)
	br, err := crypto.OpenBundle(bytes.NewReader(ct), sub.Age())
	if err != nil {
		t.Fatal(err)
	}
	card, err := crypto.VerifyReply(br.Report(), []*crypto.Card{f.alice.Card(), f.bob.Card()})
	if err != nil || card.Name != "alice" || br.Report().Answers[0].Value != "We received your report. Are you safe?" {
		t.Fatalf("reply: %v %+v", err, br.Report())
	}
	// Another receipt cannot read it.
	other := crypto.NewReceipt()
	f.do("POST", "/api/v1/mailbox/replies/"+mb.Replies[0].ID, nil, tokenBody(other), 404)

	// The submitter follows up; the thread's handler (alice) gets it in her
	// inbox under the mailbox, bob does not.
	fu := encrypt(t, []byte("I am safe, here is more."), f.alice)
	hdr := http.Header{"Amana-Token": {base64.RawURLEncoding.EncodeToString(rc.Token())}}
	f.do("POST", "/api/v1/mailbox/followups", hdr, fu, 201)
	var in api.Inbox
	json.NewDecoder(f.signed(f.alice, "GET", "/api/v1/inbox", nil, 200).Body).Decode(&in)
	if len(in.Submissions) != 1 || in.Submissions[0].Kind != "followup" || in.Submissions[0].Mailbox != rc.MailboxID() {
		t.Fatalf("alice's inbox %+v", in)
	}
	json.NewDecoder(f.signed(f.bob, "GET", "/api/v1/inbox", nil, 200).Body).Decode(&in)
	if len(in.Submissions) != 0 {
		t.Fatalf("bob sees the thread: %+v", in)
	}
	// A follow-up to more handlers than the thread's is refused.
	f.do("POST", "/api/v1/mailbox/followups", hdr, encrypt(t, []byte("x"), f.alice, f.bob), 400)
	// Malformed tokens are not told apart from unknown ones.
	var empty api.Mailbox
	json.NewDecoder(f.do("POST", "/api/v1/mailbox", nil, []byte(`{"token":"nonsense"}`), 200).Body).Decode(&empty)
	if len(empty.Replies) != 0 {
		t.Fatal("a malformed token found replies")
	}
}

func TestNoJavaScriptCheck(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk&category=sea", sealReply(t, f, rc, "MARKER reply for the submitter"), 201)
	form := func(path string, fields [][2]string, want int) string {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, kv := range fields {
			mw.WriteField(kv[0], kv[1])
		}
		mw.Close()
		r, _ := http.NewRequest("POST", f.ts.URL+path, &b)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		body, _ := io.ReadAll(f.req(r, want).Body)
		return string(body)
	}
	page := form("/check", [][2]string{{"lang", "en"}, {"receipt", strings.ToUpper(rc.Words())}}, 200)
	if !strings.Contains(page, "MARKER reply for the submitter") || !strings.Contains(page, "From the desk (<bdi>alice</bdi>)") || strings.Contains(page, "WARNING") {
		t.Fatalf("check page:\n%s", page)
	}
	// Swapped words: the 4-bit checksum misses about one such mistake in 16
	// (§8.9 of protocol.md), so take a receipt whose swap it catches.
	var swapped string
	for {
		words := strings.Fields(crypto.NewReceipt().Words())
		words[3], words[4] = words[4], words[3]
		if _, err := crypto.ParseReceipt(strings.Join(words, " ")); err != nil {
			swapped = strings.Join(words, " ")
			break
		}
	}
	if page := form("/check", [][2]string{{"lang", "en"}, {"receipt", swapped}}, 400); !strings.Contains(page, "not valid") {
		t.Fatalf("swapped words:\n%s", page)
	}
	page = form("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"f.message", "more details"}}, 200)
	if !strings.Contains(page, "Your message was received") {
		t.Fatalf("follow-up page:\n%s", page)
	}
	r, _ := f.only(f.alice)
	if r.Mailbox != rc.MailboxID() || r.SealedBy != crypto.SealedByServer || r.Answers[0].Value != "more details" {
		t.Fatalf("follow-up %+v", r)
	}
	f.srv.cfg.RequireClientEncryption = true
	form("/check", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}}, 403)
}

func TestKindsMatchTheWire(t *testing.T) {
	if store.KindSelf != api.KindSelf || store.KindReply != api.KindReply || store.KindFollowup != api.KindFollowup {
		t.Fatal("store and api disagree on submission kinds")
	}
}

func TestLookupsAreRateLimited(t *testing.T) {
	f := newFixture(t)
	body := tokenBody(crypto.NewReceipt())
	busy := 0
	for i := 0; i < lookupBurst+10; i++ {
		resp, err := http.Post(f.ts.URL+"/api/v1/mailbox", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 429 {
			busy++
		}
		resp.Body.Close()
	}
	if busy == 0 {
		t.Fatal("no lookup was refused after the burst")
	}
}

// TestReplyMovesThread removes a handler in the middle of a thread: the
// desk's next reply, encrypted to the category's current handlers, moves
// the thread to them, and later follow-ups go to them only.
func TestReplyMovesThread(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	hdr := http.Header{"Amana-Token": {base64.RawURLEncoding.EncodeToString(rc.Token())}}
	// The first follow-up starts the thread with both incident handlers.
	f.do("POST", "/api/v1/mailbox/followups?desk=helpdesk&category=incident", hdr, encrypt(t, []byte("first"), f.alice, f.bob), 201)

	// The admin removes bob from the desk.
	m := &crypto.Manifest{Version: 1, Desk: "helpdesk", Title: "Helpdesk", Serial: 2,
		Handlers:   []string{f.alice.Card().String()},
		Categories: []crypto.Category{{ID: "incident", Title: "Incident", Handlers: []string{"alice"}}},
		Limits:     crypto.Limits{MaxSubmissionBytes: 8 << 20}}
	env, err := crypto.SignManifest(m, f.admin.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	f.publish(env, 200)

	// The thread still names bob: until the desk replies, a follow-up is
	// checked against the thread's handlers.
	f.do("POST", "/api/v1/mailbox/followups", hdr, encrypt(t, []byte("second"), f.alice), 400)

	// alice's reply, to alice and the submitter, moves the thread to her.
	reply := sealReplyIn(t, f, "incident", rc, "bob has left the desk")
	path := "/api/v1/mailboxes/" + rc.MailboxID() + "/replies?desk=helpdesk&category=incident"
	f.signed(f.alice, "POST", path, reply, 201)
	// A reply naming another category does not move a thread there.
	f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk", reply, 404)

	mb, err := f.spool.Mailbox(rc.MailboxID())
	if err != nil {
		t.Fatal(err)
	}
	if len(mb.Routes) != 1 || mb.Routes[0] != f.alice.Card().KeyID() {
		t.Fatalf("thread routes after the reply: %v", mb.Routes)
	}
	// Follow-ups now go to alice only; one still encrypted to bob too is
	// refused.
	f.do("POST", "/api/v1/mailbox/followups", hdr, encrypt(t, []byte("to both"), f.alice, f.bob), 400)
	f.do("POST", "/api/v1/mailbox/followups", hdr, encrypt(t, []byte("third"), f.alice), 201)
	subs, _ := f.spool.Submissions(func(s *store.Submission) bool { return s.Kind == store.KindFollowup })
	if len(subs) != 2 {
		t.Fatalf("%d follow-ups stored, want 2", len(subs))
	}
	moved := 0
	for _, s := range subs {
		if len(s.Routes) == 1 && s.Routes[0] == f.alice.Card().KeyID() {
			moved++
		}
	}
	if moved != 1 {
		t.Fatalf("follow-ups' routes %v %v: want one to alice alone", subs[0].Routes, subs[1].Routes)
	}
}

// TestRefusedFirstMessageMakesNoMailbox: a first follow-up or reply whose
// age header the check refuses leaves no mailbox behind (protocol.md
// §10.14, "Creation").
func TestRefusedFirstMessageMakesNoMailbox(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	hdr := http.Header{"Amana-Token": {base64.RawURLEncoding.EncodeToString(rc.Token())}}
	// One stanza for the two incident handlers.
	f.do("POST", "/api/v1/mailbox/followups?desk=helpdesk&category=incident", hdr, encrypt(t, []byte("x"), f.alice), 400)
	// A reply without the submitter's stanza.
	f.signed(f.alice, "POST", "/api/v1/mailboxes/"+rc.MailboxID()+"/replies?desk=helpdesk&category=incident",
		encrypt(t, []byte("x"), f.alice, f.bob), 400)
	if _, err := f.spool.Mailbox(rc.MailboxID()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused first message left a mailbox: %v", err)
	}
}
