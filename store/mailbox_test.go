package store

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestMailboxExpiry(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, &Options{Now: c.now, MailboxTTL: 48 * time.Hour})
	id := "00112233445566778899aabbccddeeff"
	if _, err := s.Mailbox(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown mailbox: %v", err)
	}
	if _, err := s.EnsureMailbox(id, "d", "", []string{"h1", "h2"}, []string{"X25519", "X25519"}); err != nil {
		t.Fatal(err)
	}
	// A second EnsureMailbox keeps the first routes.
	m, _ := s.EnsureMailbox(id, "other", "", []string{"h9"}, []string{"X25519"})
	if m.Desk != "d" || len(m.Routes) != 2 {
		t.Fatalf("mailbox changed: %+v", m)
	}
	rid, err := s.PutReply(id, data(5000), spec(0, "x"), []string{"h2"})
	if err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Submissions(nil); len(subs) != 1 || subs[0].Kind != KindReply || subs[0].Mailbox != id || subs[0].Routes[0] != "h2" {
		t.Fatalf("reply copy %+v", subs)
	}
	r, err := s.OpenReply(id, rid)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data(5000)) {
		t.Fatal("reply differs")
	}
	c.add(24 * time.Hour)
	s.EnsureMailbox(id, "d", "", nil, nil) // activity: the clock starts again
	c.add(40 * time.Hour)
	if _, err := s.Mailbox(id); err != nil {
		t.Fatalf("mailbox expired despite activity: %v", err)
	}
	c.add(12 * time.Hour)
	if _, err := s.Mailbox(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired mailbox: %v", err)
	}
	res, err := s.Sweep()
	if err != nil || res.Mailboxes != 1 {
		t.Fatalf("sweep %+v %v", res, err)
	}
	if _, err := s.OpenReply(id, rid); !errors.Is(err, ErrNotFound) {
		t.Fatal("a reply outlived its mailbox")
	}
}
