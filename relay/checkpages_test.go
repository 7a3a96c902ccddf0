package relay

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

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
