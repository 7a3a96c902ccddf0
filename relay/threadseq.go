package relay

import (
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/store"
)

// threadSeq is the place in its thread of a follow-up the no-JavaScript
// check page seals: after every reply in the mailbox that the receipt
// opens and that a handler of the desk signed for this mailbox
// (crypto.ThreadSeq). The relay reads the replies in memory, as the check
// page does to show them; a mailbox without one gives 1.
func (s *Server) threadSeq(m *store.Mailbox, rcpt *crypto.Receipt) int64 {
	var seen []int64
	d := s.desk(m.Desk)
	pq := len(m.Stanzas) > 0 && m.Stanzas[0] == crypto.StanzaHybrid
	id, err := rcpt.ReplyIdentity(pq)
	if d == nil || err != nil {
		return crypto.ThreadSeq()
	}
	for _, rp := range m.Replies {
		rd, err := s.spool.OpenReply(m.ID, rp.ID)
		if err != nil {
			continue
		}
		br, err := crypto.OpenBundle(rd, id.Age())
		if err != nil {
			continue
		}
		rep := br.Report()
		if _, err := crypto.VerifyReply(rep, d.m.Cards()); err == nil && rep.Mailbox == rcpt.MailboxID() {
			seen = append(seen, rep.Seq)
		}
	}
	return crypto.ThreadSeq(seen...)
}
