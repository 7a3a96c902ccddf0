package relay

import (
	"io"
	"sort"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
)

// TestNoJavaScriptFollowupComesAfterTheReplies: the follow-up the relay
// seals for a submitter without JavaScript carries its place in the
// thread: 1 before any reply, and after the highest seq of the replies the
// receipt opens and the desk signed for this mailbox; a reply signed for
// another mailbox does not count.
func TestNoJavaScriptFollowupComesAfterTheReplies(t *testing.T) {
	f := newFixture(t)
	rc := crypto.NewReceipt()
	path := "/api/v1/mailboxes/" + rc.MailboxID() + "/replies?desk=helpdesk&category=sea"
	followup := func() {
		t.Helper()
		f.post("/check/followup", [][2]string{{"lang", "en"}, {"receipt", rc.Words()}, {"f.message", "more"}, {"route", "helpdesk|sea"}}, nil, 200)
	}
	reply := func(seq int64, mailbox string) {
		t.Helper()
		sub, _ := rc.ReplyIdentity(false)
		rep := &crypto.Report{Desk: "helpdesk", Category: "sea", Submitted: crypto.SubmittedAt(time.Now()), Mailbox: mailbox, Seq: seq,
			Answers: []crypto.Answer{{Field: "message", Value: "answer"}}, Recipients: []string{f.alice.Recipient()}}
		if err := crypto.SignReplyFiles(rep, nil, f.alice); err != nil {
			t.Fatal(err)
		}
		rd, _, err := crypto.SealBundle([]*crypto.Card{f.alice.Card(), sub.Card()}, rep, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rd)
		f.signed(f.alice, "POST", path, b, 201)
	}
	seqs := func() []int64 {
		t.Helper()
		subs, err := f.spool.Submissions(nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, s := range subs {
			if s.Kind != "followup" {
				continue
			}
			rd, _ := f.spool.OpenSubmission(s.ID, 0)
			br, err := crypto.OpenBundle(rd, f.alice.Age())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, br.Report().Seq)
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	followup()
	reply(4, rc.MailboxID())
	reply(9, crypto.NewReceipt().MailboxID()) // signed for another conversation
	followup()
	if got := seqs(); len(got) != 2 || got[0] != 1 || got[1] != 5 {
		t.Fatalf("follow-ups carry seq %v, want [1 5]", got)
	}
}
