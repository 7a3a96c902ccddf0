package handler

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
)

// TestThreadOrderWithEqualHours: every item of a thread written within one
// hour, received within one hour, and with IDs whose order contradicts the
// order written: Thread orders them by the seq inside their ciphertext,
// with what the relay says (hour, ID) only between items of equal seq.
// Items without a seq (older writers) come first, in their hours' order.
func TestThreadOrderWithEqualHours(t *testing.T) {
	alice, err := crypto.GenerateIdentity("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	mailbox := strings.Repeat("ab", 16)
	const hour = "2026-12-03T10:00:00Z"
	// id, kind, seq, text: IDs descend as the conversation goes on.
	items := []struct {
		id, kind string
		seq      int64
		text     string
	}{
		{strings.Repeat("f", 32), api.KindReply, 1, "first answer"},
		{strings.Repeat("e", 32), api.KindFollowup, 2, "after the answer"},
		{strings.Repeat("d", 32), api.KindReply, 3, "second answer"},
		{strings.Repeat("c", 32), api.KindFollowup, 4, "last word"},
		{strings.Repeat("9", 32), api.KindFollowup, 0, "old client, later hour"},
		{strings.Repeat("a", 32), api.KindFollowup, 0, "old client"},
	}
	for _, it := range items {
		rep := &crypto.Report{Desk: "d", Submitted: hour, SealedBy: crypto.SealedByClient, Mailbox: mailbox, Seq: it.seq,
			Answers: []crypto.Answer{{Field: "message", Value: it.text}}}
		if it.text == "old client, later hour" {
			rep.Submitted = "2026-12-03T11:00:00Z"
		}
		sealed, _, err := crypto.SealBundle([]*crypto.Card{alice.Card()}, rep, nil)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := io.ReadAll(sealed)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(ct)
		m := cases.Meta{ID: it.id, Desk: "d", Kind: it.kind, Mailbox: mailbox, Size: int64(len(ct)), SHA256: hex.EncodeToString(sum[:]), Received: hour}
		if err := st.Receive(m, func(off int64, w io.Writer) error { _, err := w.Write(ct[off:]); return err }, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Thread(st, mailbox, alice.Age())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, it := range got {
		if it.Report == nil {
			t.Fatalf("%s does not open: %v", it.Meta.ID, it.Err)
		}
		order = append(order, it.Report.Answers[0].Value)
	}
	want := []string{"old client", "old client, later hour", "first answer", "after the answer", "second answer", "last word"}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Fatalf("thread order:\n got %q\nwant %q", order, want)
	}
	if seq, err := NextSeq(st, mailbox, alice.Age()); err != nil || seq != 5 {
		t.Fatalf("NextSeq = %d, %v; want 5", seq, err)
	}
	if seq, err := NextSeq(st, strings.Repeat("cd", 16), alice.Age()); err != nil || seq != 1 {
		t.Fatalf("NextSeq of an empty thread = %d, %v; want 1", seq, err)
	}
}

// TestSortThreadTies: items of equal seq go by the writer's hour, then the
// relay's, then ID; an item that does not open counts as seq 0 at the
// relay's hour.
func TestSortThreadTies(t *testing.T) {
	mk := func(id, submitted, received string, seq int64, opens bool) ThreadItem {
		it := ThreadItem{Meta: &cases.Meta{ID: id, Received: received}}
		if opens {
			it.Report = &crypto.Report{Submitted: submitted, Seq: seq}
		}
		return it
	}
	items := []ThreadItem{
		mk("b", "2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z", 2, true),
		mk("a", "2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z", 2, true),
		mk("c", "2026-01-01T09:00:00Z", "2026-01-01T11:00:00Z", 2, true),
		mk("z", "", "2026-01-01T08:00:00Z", 0, false),
		mk("d", "2026-01-01T10:00:00Z", "2026-01-01T08:00:00Z", 2, true),
		mk("e", "2026-01-01T01:00:00Z", "2026-01-01T01:00:00Z", 3, true),
	}
	SortThread(items)
	var ids []string
	for _, it := range items {
		ids = append(ids, it.Meta.ID)
	}
	if got := strings.Join(ids, ""); got != "zcdabe" {
		t.Fatalf("order %s, want zcdabe", got)
	}
}
