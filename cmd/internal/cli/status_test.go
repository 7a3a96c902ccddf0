package cli

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
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
