package relay

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/web"
	"github.com/amana-relay/amana/store"
)

// checkText are the catalogue keys the browser client uses on the check page.
var checkText = []string{"checking", "receipt_bad", "no_replies", "replies_title", "reply_from", "reply_unverified",
	"reply_files", "followup_sent", "mailbox_keep", "failed", "upload_failed", "nothing_sent", "too_large", "busy",
	"followup_choose", "followup_relay_disagrees", "followup_reply_mismatch"}

// routeOptions lists every desk and category a first follow-up can go to.
// None is selected: the page adds a first, empty choice, and a follow-up
// goes nowhere until the submitter says where they reported.
func (s *Server) routeOptions(c *web.Catalog) []optionView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []optionView
	for _, d := range s.desks {
		out = append(out, optionView{Value: d.m.Desk + "|", Label: d.m.Title + ": " + c.T("category_none")})
		for _, cat := range d.m.Categories {
			label := cat.Labels[c.Lang]
			if label == "" {
				label = cat.Title
			}
			out = append(out, optionView{Value: d.m.Desk + "|" + cat.ID, Label: d.m.Title + ": " + label})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out
}

// routeLabel names a desk and category as routeOptions does.
func (s *Server) routeLabel(c *web.Catalog, deskID, category string) string {
	for _, o := range s.routeOptions(c) {
		if o.Value == deskID+"|"+category {
			return o.Label
		}
	}
	return deskID + ": " + category
}

func (s *Server) checkPage(w http.ResponseWriter, r *http.Request) {
	c := s.pages.lang(r.URL.Query().Get("lang"))
	s.renderCheck(w, r, c, 200, "")
}

func (s *Server) renderCheck(w http.ResponseWriter, r *http.Request, c *web.Catalog, status int, msg string) {
	pd := s.pages.base(r, c, c.T("check_title"))
	pd.Error = msg
	pd.RequireClient = s.cfg.RequireClientEncryption
	pd.Routes = s.routeOptions(c)
	pd.CheckData = checkData{API: "/api/v1", Desks: map[string]checkDesk{}}
	s.mu.RLock()
	for id, d := range s.desks {
		cd := checkDesk{Routes: map[string][]string{}, PQ: d.m.Cards()[0].PostQuantum()}
		cd.Handlers = d.m.Handlers
		all, _ := d.m.Route("")
		for _, card := range all {
			cd.Routes[""] = append(cd.Routes[""], card.Recipient)
		}
		for _, cat := range d.m.Categories {
			cards, _ := d.m.Route(cat.ID)
			for _, card := range cards {
				cd.Routes[cat.ID] = append(cd.Routes[cat.ID], card.Recipient)
			}
		}
		pd.CheckData.Desks[id] = cd
	}
	s.mu.RUnlock()
	pd.CheckText = map[string]string{}
	for _, k := range append(checkText, jsText...) {
		pd.CheckText[k] = c.T(k)
	}
	pd.CheckText["busy"] = c.T("error_busy")
	pd.CheckText["mailbox_keep"] = c.T("mailbox_keep", "days", fmt.Sprint(int(s.mailboxTTL()/(24*time.Hour))))
	s.pages.render(w, status, "check", pd)
}

// checkForm is the no-JavaScript check: the relay derives the receipt's
// keys in memory for this one request, opens the replies, shows them, and
// forgets the receipt.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) {
	c := s.pages.lang(r.URL.Query().Get("lang"))
	if s.cfg.RequireClientEncryption {
		s.renderCheck(w, r, c, 403, c.T("check_required"))
		return
	}
	post, err := readForm(r, 0, false)
	if post != nil {
		defer post.wipe()
		if post.lang != "" {
			c = s.pages.lang(post.lang)
		}
	}
	if err != nil {
		s.renderCheck(w, r, c, 400, c.T("error_bad"))
		return
	}
	rcpt, err := crypto.ParseReceipt(post.receipt)
	if err != nil {
		s.renderCheck(w, r, c, 400, c.T("receipt_bad"))
		return
	}
	pd := s.pages.base(r, c, c.T("check_title"))
	pd.Words = rcpt.Words()
	pd.Routes = s.routeOptions(c)
	pd.Keep = c.T("mailbox_keep", "days", fmt.Sprint(int(s.mailboxTTL()/(24*time.Hour))))
	if m, err := s.spool.Mailbox(crypto.MailboxOf(rcpt.Token())); err == nil {
		pd.HasThread = true
		pd.Replies = s.openReplies(m, rcpt, c)
	}
	s.pages.render(w, 200, "thread", pd)
}

// openReplies decrypts a mailbox's replies with the receipt's reply key.
func (s *Server) openReplies(m *store.Mailbox, rcpt *crypto.Receipt, c *web.Catalog) []replyView {
	d := s.desk(m.Desk)
	pq := len(m.Stanzas) > 0 && m.Stanzas[0] == crypto.StanzaHybrid
	id, err := rcpt.ReplyIdentity(pq)
	if err != nil {
		return nil
	}
	var out []replyView
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
		v := replyView{From: "?"}
		if d != nil {
			if card, err := crypto.VerifyReply(rep, d.m.Cards()); err == nil {
				v.Verified, v.From = true, card.Name
			}
		}
		v.From = c.T("reply_from", "name", v.From, "when", rp.Received.UTC().Format("2006-01-02 15:00 UTC"))
		var text []string
		for _, a := range rep.Answers {
			text = append(text, a.Value)
		}
		v.Text = strings.Join(text, "\n\n")
		for {
			a, r, err := br.Next()
			if err != nil {
				break
			}
			io.Copy(io.Discard, r)
			v.Files = append(v.Files, fmt.Sprintf("%s (%d bytes)", a.Name, a.Size))
		}
		out = append(out, v)
	}
	return out
}

// followupForm is the no-JavaScript follow-up: sealed by the relay in
// memory, like the no-JavaScript report.
func (s *Server) followupForm(w http.ResponseWriter, r *http.Request) {
	c := s.pages.lang(r.URL.Query().Get("lang"))
	if s.cfg.RequireClientEncryption {
		s.renderCheck(w, r, c, 403, c.T("check_required"))
		return
	}
	limit := min(s.cfg.MaxFormBytes, MaxReply)
	post, err := readForm(r, limit, false)
	if post != nil {
		defer post.wipe()
		if post.lang != "" {
			c = s.pages.lang(post.lang)
		}
	}
	if err != nil {
		fe := s.formError(err)
		s.renderCheck(w, r, c, fe.status, c.T(fe.key))
		return
	}
	rcpt, err := crypto.ParseReceipt(post.receipt)
	if err != nil {
		s.renderCheck(w, r, c, 400, c.T("receipt_bad"))
		return
	}
	// The route is the submitter's choice, never a default: with no
	// thread yet, an empty one is refused; with a thread, a route that
	// is not the thread's is refused rather than widened or narrowed.
	deskID, category, _ := strings.Cut(post.route, "|")
	thread, err := s.spool.Mailbox(rcpt.MailboxID())
	switch {
	case err == nil && post.route != "" && (deskID != thread.Desk || category != thread.Category):
		s.renderCheck(w, r, c, 409, c.T("followup_route_mismatch", "route", s.routeLabel(c, thread.Desk, thread.Category)))
		return
	case err != nil && deskID == "":
		s.renderCheck(w, r, c, 400, c.T("followup_choose"))
		return
	}
	m, aerr := s.followupRoute(rcpt.Token(), deskID, category)
	if aerr != nil {
		s.renderCheck(w, r, c, 400, c.T("error_bad"))
		return
	}
	d := s.desk(m.Desk)
	if d == nil {
		s.renderCheck(w, r, c, 404, c.T("error_not_found"))
		return
	}
	var cards []*crypto.Card
	for _, k := range m.Routes {
		if card := d.m.Handler(k); card != nil {
			cards = append(cards, card)
		}
	}
	if len(cards) == 0 {
		s.renderCheck(w, r, c, 400, c.T("error_bad"))
		return
	}
	var answers []crypto.Answer
	for _, a := range post.answers {
		if a.Field == "message" {
			answers = append(answers, a)
		}
	}
	report := &crypto.Report{Desk: m.Desk, Category: m.Category, Language: c.Lang, Submitted: crypto.SubmittedAt(s.cfg.Now()),
		SealedBy: crypto.SealedByServer, Answers: answers}
	report.Seq = crypto.ThreadSeq()
	if thread != nil {
		report.Seq = s.threadSeq(thread, rcpt)
	}
	sealed, total, err := crypto.SealReport(crypto.RecipientsOf(cards), rcpt, report, post.files)
	if err != nil {
		s.renderCheck(w, r, c, 500, c.T("error_bad"))
		return
	}
	defer sealed.Close()
	if total > MaxReply {
		s.renderCheck(w, r, c, 413, c.T("error_too_large"))
		return
	}
	m.Stanzas = m.Stanzas[:len(cards)]
	m.Routes = keyIDsOf(cards)
	if m, err = s.openMailbox(m); err != nil {
		fe := s.formError(err)
		s.renderCheck(w, r, c, fe.status, c.T(fe.key))
		return
	}
	sub, err := s.storeFollowupStream(m, total, sealed)
	if err != nil {
		fe := s.formError(err)
		s.renderCheck(w, r, c, fe.status, c.T(fe.key))
		return
	}
	rc := receipt(sub)
	pd := s.pages.base(r, c, c.T("followup_sent"))
	pd.Receipt, pd.SealedBy, pd.Followup = &rc, crypto.SealedByServer, true
	pd.Desk = s.deskView(r, d, c, nil)
	s.pages.render(w, 200, "receipt", pd)
}

func keyIDsOf(cards []*crypto.Card) []string {
	ids, _ := keyIDs(cards)
	return ids
}
