package journal

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amana-relay/amana/crypto"
)

// replyPoster is a reply route that fails while down.
type replyPoster struct {
	down   bool
	posted []string // mailbox + " " + ciphertext
}

func (p *replyPoster) PostReply(ctx context.Context, mailbox, desk, category string, ct []byte) (string, error) {
	if p.down {
		return "", errors.New("relay unreachable")
	}
	p.posted = append(p.posted, mailbox+" "+string(ct))
	return "00000000000000000000000000000abc", nil
}

// TestStatusQueue: a queued status message is kept (0600, ciphertext as
// given), survives a failed post and a reopening, and is removed only
// once posted; posting again sends nothing.
func TestStatusQueue(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("", true)
	j := w.journals["alice"]
	mb := strings.Repeat("ab", 16)
	m := &StatusMessage{Case: c.id, Desk: "d", Mailbox: mb, Relay: "http://r/", Status: "closed", Seq: 3, Ciphertext: []byte("sealed bytes")}
	if err := j.QueueStatus(m); err != nil {
		t.Fatal(err)
	}
	if err := j.QueueStatus(&StatusMessage{Case: c.id, Desk: "d", Status: "closed", Seq: 4, Ciphertext: []byte("x")}); err == nil {
		t.Error("a status message without a mailbox is queued")
	}
	path := filepath.Join(j.dir, statusDir, m.name())
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("queued file %v, %v; want mode 0600", st, err)
	}
	if st, _ := os.Stat(filepath.Join(j.dir, statusDir)); st.Mode().Perm() != 0o700 {
		t.Errorf("queue directory mode %v, want 0700", st.Mode().Perm())
	}
	p := &replyPoster{down: true}
	if left, _, err := j.FlushStatus(context.Background(), p, "http://other", nil); left != 0 || err != nil {
		t.Fatalf("another relay's flush: %d left, %v; want nothing tried", left, err)
	}
	if left, _, err := j.FlushStatus(context.Background(), p, "http://r", nil); left != 1 || err == nil {
		t.Fatalf("a failed post: %d left, %v; want 1 and an error", left, err)
	}
	j = w.reopen("alice")
	q, _, err := j.QueuedStatus(c.id)
	if err != nil || len(q) != 1 || string(q[0].Ciphertext) != "sealed bytes" {
		t.Fatalf("after reopening: %v, %v", q, err)
	}
	p.down = false
	var got []string
	if left, _, err := j.FlushStatus(context.Background(), p, "http://r", func(m *StatusMessage, rid string) { got = append(got, m.Status+" "+rid) }); left != 0 || err != nil {
		t.Fatalf("flush: %d left, %v", left, err)
	}
	if len(p.posted) != 1 || p.posted[0] != mb+" sealed bytes" || len(got) != 1 || got[0] != "closed 00000000000000000000000000000abc" {
		t.Fatalf("posted %q, told %q", p.posted, got)
	}
	if left, _, err := j.FlushStatus(context.Background(), p, "http://r", nil); left != 0 || err != nil || len(p.posted) != 1 {
		t.Errorf("a second flush: %d left, %v, %d posts; want nothing sent again", left, err, len(p.posted))
	}
}

// TestStatusQueueSealed: nothing of the case's state is in the clear in
// the queue: no status name, mailbox ID, desk or category bytes (the
// entry is sealed to the handler's own key); files are 0600; a damaged
// entry is skipped and kept, and holds up no other; flushing still posts
// the ciphertext as given.
func TestStatusQueueSealed(t *testing.T) {
	w := newWorld(t)
	c, d := w.newCase("", true), w.newCase("", true)
	j := w.journals["alice"]
	mb := "c0ffee" + strings.Repeat("5a", 13)
	for i, kase := range []string{c.id, d.id} {
		m := &StatusMessage{Case: kase, Desk: "deskmarkerx", Category: "catmarkery", Mailbox: mb, Relay: "http://r/",
			Status: "statusmarkerz", Seq: int64(3 + i), Ciphertext: []byte("sealed bytes")}
		if err := j.QueueStatus(m); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(j.dir, statusDir)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 2 {
		t.Fatalf("queue: %v, %v", ents, err)
	}
	for _, ent := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, ent.Name()))
		for _, secret := range []string{"statusmarkerz", "closed", mb, "deskmarkerx", "catmarkery", "sealed bytes"} {
			if strings.Contains(string(b), secret) || strings.Contains(ent.Name(), secret) {
				t.Errorf("%s holds %q in the clear", ent.Name(), secret)
			}
		}
		if st, _ := os.Stat(filepath.Join(dir, ent.Name())); st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", ent.Name(), st.Mode().Perm())
		}
	}
	// Damage the first case's entry: the other still goes.
	bad := filepath.Join(dir, c.id+".3"+statusSuffix)
	if err := os.WriteFile(bad, []byte("not sealed"), 0o600); err != nil {
		t.Fatal(err)
	}
	q, damaged, err := j.QueuedStatus("")
	if err != nil || len(q) != 1 || q[0].Case != d.id || len(damaged) != 1 || damaged[0] != bad {
		t.Fatalf("queued with a damaged file: %v, %q, %v", q, damaged, err)
	}
	if hi, err := j.QueuedSeq(c.id); hi != 3 || err != nil {
		t.Errorf("QueuedSeq of the damaged case: %d, %v; want 3 from its name", hi, err)
	}
	p := &replyPoster{}
	var told []string
	left, damaged, err := j.FlushStatus(context.Background(), p, "http://r", func(m *StatusMessage, rid string) { told = append(told, m.Status) })
	if left != 0 || err != nil || len(damaged) != 1 || damaged[0] != bad {
		t.Fatalf("flush: %d left, damaged %q, %v", left, damaged, err)
	}
	if len(p.posted) != 1 || p.posted[0] != mb+" sealed bytes" || len(told) != 1 || told[0] != "statusmarkerz" {
		t.Errorf("posted %q, told %q", p.posted, told)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Errorf("the damaged file was not kept: %v", err)
	}
}

// TestSatisfactionState: the latest survey answer recorded is the case's
// satisfaction, for a handler on the route and for a coordinator reading
// facts.
func TestSatisfactionState(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("", true)
	w.record("alice", c, crypto.Change{Status: "closed", CloseReason: "completed"})
	w.tick(60e9)
	w.record("alice", c, crypto.Change{Satisfaction: &crypto.Satisfaction{Score: 2, Followup: "00000000000000000000000000000011"}})
	w.tick(60e9)
	w.record("alice", c, crypto.Change{Satisfaction: &crypto.Satisfaction{Score: 5, Followup: "00000000000000000000000000000012"}})
	s := w.state("alice", c)
	if s.Satisfaction != 5 || s.SatisfactionFollowup != "00000000000000000000000000000012" {
		t.Errorf("alice: satisfaction %d (%s), want 5", s.Satisfaction, s.SatisfactionFollowup)
	}
	w.sync("dave")
	if s := w.state("dave", c); s.Satisfaction != 5 {
		t.Errorf("the coordinator: satisfaction %d, want 5", s.Satisfaction)
	}
}

// TestSatisfactionMergeOrder: a case counts one answer, the latest
// satisfaction event in merge order, even when its author's clock is
// behind the one before (the event was written after reading it).
func TestSatisfactionMergeOrder(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("", true)
	w.record("alice", c, crypto.Change{Status: "closed", CloseReason: "completed"})
	w.record("alice", c, crypto.Change{Satisfaction: &crypto.Satisfaction{Score: 5, Followup: "00000000000000000000000000000011"}})
	w.tick(-3600e9)
	w.record("alice", c, crypto.Change{Satisfaction: &crypto.Satisfaction{Score: 2, Followup: "00000000000000000000000000000012"}})
	s := w.state("alice", c)
	if s.Satisfaction != 2 || s.SatisfactionFollowup != "00000000000000000000000000000012" {
		t.Errorf("satisfaction %d (%s), want 2: the later event in merge order", s.Satisfaction, s.SatisfactionFollowup)
	}
	w.sync("dave")
	if s := w.state("dave", c); s.Satisfaction != 2 {
		t.Errorf("the coordinator: satisfaction %d, want 2", s.Satisfaction)
	}
}

// FuzzParseStatusMessage: a queued file either parses into a complete
// message named as the file is, or is refused; never a panic.
func FuzzParseStatusMessage(f *testing.F) {
	m := &StatusMessage{Case: strings.Repeat("0a", 16), Desk: "d", Mailbox: strings.Repeat("ab", 16), Relay: "http://r", Status: "closed", Seq: 2, Ciphertext: []byte("ct")}
	b, _ := json.Marshal(m)
	f.Add(m.name(), b)
	f.Add(m.name(), []byte(`{"case":"x"}`))
	f.Add("x.status.json", []byte(`[]`))
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		got, err := parseStatusMessage(name, b)
		if err != nil {
			return
		}
		if !got.valid() || got.name() != name {
			t.Fatalf("accepted %q as %+v", name, got)
		}
	})
}

// TestCustodyInFacts: a coordinator's facts-only view of a case knows that
// an event recorded a custody action, and nothing of which one, so that
// its clocks can tell a handler reading a case from an update of it.
func TestCustodyInFacts(t *testing.T) {
	w := newWorld(t)
	c := w.newCase("", true)
	w.record("alice", c, crypto.Change{Custody: &crypto.Custody{Action: crypto.CustodyDecrypt}})
	w.sync("dave")
	s := w.state("dave", c)
	var found bool
	for _, e := range s.History {
		if e.Change.Custody != nil {
			found = true
			if e.Change.Custody.Action != "" || e.Change.Custody.Files != nil {
				t.Errorf("the coordinator's entry says which custody action: %+v", e.Change.Custody)
			}
		}
	}
	if !found {
		t.Errorf("the coordinator's history has no custody entry: %+v", s.History)
	}
}
