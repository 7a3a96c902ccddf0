package relay

import (
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/web"
	"github.com/amana-relay/amana/store"
)

// checkText are the catalogue keys the browser client uses on the check page.
var checkText = []string{"checking", "receipt_bad", "no_replies", "replies_title", "reply_from", "reply_unverified",
	"reply_files", "followup_sent", "mailbox_keep", "failed", "upload_failed", "nothing_sent", "too_large", "busy",
	"followup_choose", "followup_relay_disagrees", "followup_reply_mismatch",
	"status_line", "status_updated", "survey_sent", "survey_choose", "survey_comment_long", "survey_answered"}

// routeOptions lists every desk and category a first follow-up can go to.
// None is selected: the page adds a first, empty choice, and a follow-up
// goes nowhere until the submitter says where they reported.
func (s *Server) routeOptions(c *web.Catalog) []optionView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []optionView
	for _, d := range s.desks {
		for _, id := range append([]string{""}, categoryIDs(d.m)...) {
			out = append(out, optionView{Value: d.m.Desk + "|" + id,
				Label: c.T("route_label", "desk", isolate(d.m.TitleIn(c.Lang)), "category", isolate(categoryLabel(c, d.m, id)))})
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
		cd := checkDesk{Routes: map[string][]string{}, DefaultRoute: d.m.DefaultRoute, PQ: d.m.Cards()[0].PostQuantum()}
		cd.Handlers = d.m.Handlers
		for _, id := range append([]string{""}, categoryIDs(d.m)...) {
			cards, _ := d.m.Route(id)
			for _, card := range cards {
				cd.Routes[id] = append(cd.Routes[id], card.Recipient)
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
	pd.CheckText["survey_comment_long"] = c.T("survey_comment_long", "max", strconv.Itoa(crypto.MaxSurveyComment))
	// The page's script shows the question when a status message it
	// verified asks it.
	pd.Survey = surveyForm(c, "", "")
	pd.CheckText["mailbox_keep"] = c.T("mailbox_keep", "days", fmt.Sprint(int(s.mailboxTTL()/(24*time.Hour))))
	s.pages.render(w, status, "check", pd)
}

// readCheck reads a no-JavaScript check form and its receipt. It answers
// the request itself, and returns a nil receipt, when the form or the
// receipt is refused. The caller wipes the post it returns.
func (s *Server) readCheck(w http.ResponseWriter, r *http.Request) (*web.Catalog, *formPost, *crypto.Receipt) {
	c := s.pages.lang(r.URL.Query().Get("lang"))
	if s.cfg.RequireClientEncryption {
		s.renderCheck(w, r, c, 403, c.T("check_required"))
		return c, nil, nil
	}
	post, err := readForm(r, 0, false)
	if post != nil && post.lang != "" {
		c = s.pages.lang(post.lang)
	}
	if err != nil {
		s.renderCheck(w, r, c, 400, c.T("error_bad"))
		return c, post, nil
	}
	rcpt, err := crypto.ParseReceipt(post.receipt)
	if err != nil {
		s.renderCheck(w, r, c, 400, c.T("receipt_bad"))
		return c, post, nil
	}
	return c, post, rcpt
}

// checkForm is the no-JavaScript check: the relay derives the receipt's
// keys in memory for this one request, opens the replies, shows them, and
// forgets the receipt.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) {
	c, post, rcpt := s.readCheck(w, r)
	if post != nil {
		defer post.wipe()
	}
	if rcpt == nil {
		return
	}
	s.renderThread(w, r, c, rcpt, 200, "", "")
}

// renderThread is the no-JavaScript conversation of a receipt: the
// replies, and the follow-up form, with msg as an error and message as
// the follow-up's text when a follow-up was refused.
func (s *Server) renderThread(w http.ResponseWriter, r *http.Request, c *web.Catalog, rcpt *crypto.Receipt, status int, msg, message string) {
	s.renderThreadForm(w, r, c, rcpt, status, threadForm{msg: msg, message: message})
}

// threadForm is what a refused post to the conversation typed, shown
// again with msg, the error: a follow-up's message, or a survey
// answer's score and comment.
type threadForm struct {
	msg, message   string
	score, comment string
}

// renderThreadForm is renderThread with what a refused post typed.
func (s *Server) renderThreadForm(w http.ResponseWriter, r *http.Request, c *web.Catalog, rcpt *crypto.Receipt, status int, f threadForm) {
	pd := s.pages.base(r, c, c.T("check_title"))
	pd.Words = rcpt.Words()
	pd.Error, pd.FollowupText = f.msg, f.message
	pd.Routes = s.routeOptions(c)
	pd.Keep = c.T("mailbox_keep", "days", fmt.Sprint(int(s.mailboxTTL()/(24*time.Hour))))
	if m, err := s.spool.Mailbox(crypto.MailboxOf(rcpt.Token())); err == nil {
		pd.HasThread = true
		t := s.openReplies(m, rcpt, c)
		pd.Replies, pd.Status = t.replies, t.status
		switch {
		case t.answered > 0:
			pd.Survey = &surveyView{Answered: c.T("survey_answered", "score", strconv.Itoa(t.answered))}
		case t.ask:
			pd.Survey = surveyForm(c, f.score, f.comment)
		}
	}
	pd.NoReplies = pd.Status == nil && !slices.ContainsFunc(pd.Replies, func(v replyView) bool { return !v.Own })
	s.pages.render(w, status, "thread", pd)
}

// statusView is a thread's current status, from the latest status
// message a handler of the desk signed: "Status: TEXT", and when it came.
type statusView struct {
	Line, When template.HTML
}

// surveyView is the satisfaction question: the form, with what a refused
// answer typed, or, once the submitter answered it, what they chose.
type surveyView struct {
	Answered string
	Choices  []surveyChoice
	Comment  string
	// Max is the text area's maxlength, in the browser's characters
	// (UTF-16 units): half of crypto.MaxSurveyComment, which counts
	// bytes, so that a comment within it in the pages' scripts (Latin,
	// Arabic: at most 2 bytes a character) is never refused. The pages
	// check the bytes themselves (the relay here, the JS before sealing).
	Max int
	// The form's texts.
	Question, CommentLabel, CommentHint, Send string
}

type surveyChoice struct {
	Value, Label string
	Checked      bool
}

// maxCommentChars is the comment box's bound in characters (surveyView.Max).
const maxCommentChars = crypto.MaxSurveyComment / 2

// surveyForm is the question's form, score checked and comment filled
// in when a refused answer gave them.
func surveyForm(c *web.Catalog, score, comment string) *surveyView {
	v := &surveyView{Comment: comment, Max: maxCommentChars, Question: c.T("survey_question"),
		CommentLabel: c.T("survey_comment"), CommentHint: c.T("survey_comment_hint", "max", strconv.Itoa(maxCommentChars)),
		Send: c.T("survey_send")}
	for i := 1; i <= 5; i++ {
		n := strconv.Itoa(i)
		v.Choices = append(v.Choices, surveyChoice{Value: n, Label: c.T("survey_" + n), Checked: n == score})
	}
	return v
}

// threadView is what the no-JavaScript conversation shows of a mailbox:
// the messages in order, the current status apart from them, whether
// the latest status message asks the satisfaction question, and the
// score of the submitter's answer sent since it did (0: none).
type threadView struct {
	replies  []replyView
	status   *statusView
	ask      bool
	answered int
}

// openedReply is a reply opened with the receipt's reply key, and the
// desk card that signed it (nil if none of the desk's current handlers).
type openedReply struct {
	bundle *crypto.BundleReader
	signer *crypto.Card
}

// openReply opens one reply of a mailbox with the receipt's reply key.
func (s *Server) openReply(m *store.Mailbox, rcpt *crypto.Receipt, replyID string) (*openedReply, error) {
	pq := len(m.Stanzas) > 0 && m.Stanzas[0] == crypto.StanzaHybrid
	id, err := rcpt.ReplyIdentity(pq)
	if err != nil {
		return nil, err
	}
	rd, err := s.spool.OpenReply(m.ID, replyID)
	if err != nil {
		return nil, err
	}
	br, err := crypto.OpenBundle(rd, id.Age())
	if err != nil {
		return nil, err
	}
	o := &openedReply{bundle: br}
	if d := s.desk(m.Desk); d != nil {
		if card, err := crypto.VerifyReply(br.Report(), d.m.Cards()); err == nil {
			o.signer = card
		}
	}
	return o, nil
}

// openReplies decrypts a mailbox's replies, and the submitter's own
// copies of their follow-ups, with the receipt's reply key, in the order
// the mailbox has them. A reply of kind status that a handler of the desk
// signed for this mailbox is a status, not a message; one that does not
// verify is never a status: it is shown as a message, with the warning
// every unverified reply has. The thread's status is the one with the
// highest seq, which the handler signed, so that the relay's order of the
// mailbox cannot make an older one current (ties: the later in the
// mailbox); an answer to the question counts if it comes after it.
func (s *Server) openReplies(m *store.Mailbox, rcpt *crypto.Receipt, c *web.Catalog) threadView {
	var t threadView
	statusAt, statusSeq := -1, int64(0)
	type answer struct{ at, score int }
	var answers []answer
	for i, rp := range m.Replies {
		o, err := s.openReply(m, rcpt, rp.ID)
		if err != nil {
			continue
		}
		rep := o.bundle.Report()
		// A signed reply is the desk's word for this conversation only
		// when it names it: one signed for another mailbox or desk is
		// shown with the warning, never as verified or as the status.
		belongs := rep.Mailbox == m.ID && rep.Desk == m.Desk
		when := pageTime(rp.Received)
		v := replyView{ID: rp.ID}
		var text []string
		switch {
		case rp.Own:
			// The copy keeps the message and the files' names, as
			// answers "message" and "file"; a survey answer's copy, its
			// score and comment.
			if rep.SealedBy != crypto.SealedByServer || rep.Mailbox != m.ID {
				continue
			}
			v.Own, v.From = true, tIsolated(c, "own_from", "when", when)
			if rep.Kind == crypto.KindSurvey {
				score, comment, err := crypto.ParseSurvey(rep)
				if err != nil {
					continue
				}
				answers = append(answers, answer{i, score})
				text = append(text, c.T("survey_answered", "score", strconv.Itoa(score)))
				if comment != "" {
					text = append(text, comment)
				}
				break
			}
			for _, a := range rep.Answers {
				if a.Field == "file" {
					v.Files = append(v.Files, fileView{Name: a.Value})
				} else {
					text = append(text, a.Value)
				}
			}
		case o.signer != nil && rep.Kind == crypto.KindStatus && belongs:
			var line string
			for _, a := range rep.Answers {
				if a.Field == "message" {
					line = a.Value
				}
			}
			if statusAt < 0 || rep.Seq >= statusSeq {
				statusAt, statusSeq = i, rep.Seq
				t.status = &statusView{Line: tIsolated(c, "status_line", "status", line), When: tIsolated(c, "status_updated", "when", when)}
				t.ask = rep.Survey
			}
			continue
		default:
			from := "?"
			if o.signer != nil && belongs {
				v.Verified, from = true, o.signer.Name
			}
			v.From = tIsolated(c, "reply_from", "name", from, "when", when)
			for _, a := range rep.Answers {
				text = append(text, a.Value)
			}
			for i := 0; ; i++ {
				a, r, err := o.bundle.Next()
				if err != nil {
					break
				}
				io.Copy(io.Discard, r)
				v.Files = append(v.Files, fileView{Index: i, Name: a.Name, Size: humanSize(c, a.Size)})
			}
		}
		v.Text = strings.Join(text, "\n\n")
		t.replies = append(t.replies, v)
	}
	for _, a := range answers {
		if statusAt >= 0 && a.at > statusAt {
			t.answered = a.score
		}
	}
	return t
}

// keepOwnCopy files in the thread a copy of the follow-up report that the
// relay has just sealed for the handlers, sealed to the submitter's reply
// key alone, so that the conversation shows what they wrote. It keeps the
// message and the files' names, not the files. Failing to keep it leaves
// the follow-up sent.
func (s *Server) keepOwnCopy(m *store.Mailbox, rcpt *crypto.Receipt, report crypto.Report, files []crypto.File) {
	id, err := rcpt.ReplyIdentity(len(m.Stanzas) > 0 && m.Stanzas[0] == crypto.StanzaHybrid)
	if err != nil {
		return
	}
	report.Answers = slices.Clone(report.Answers)
	for _, f := range files {
		report.Answers = append(report.Answers, crypto.Answer{Field: "file", Value: f.Name})
	}
	sealed, total, err := crypto.SealReport([]string{id.Recipient()}, rcpt, &report, nil)
	if err != nil {
		s.cfg.Eventf("sealing a follow-up's own copy failed: %s", scrubbed(err))
		return
	}
	defer sealed.Close()
	if total > MaxReply {
		return
	}
	data, err := io.ReadAll(sealed)
	if err == nil {
		_, err = s.spool.PutOwnCopy(m.ID, data)
	}
	if err != nil {
		s.cfg.Eventf("keeping a follow-up's own copy failed: %s", scrubbed(err))
	}
}

// checkFile is the download of one file of a reply on the no-JavaScript
// check page: like the check, the relay opens the reply with the receipt
// for this one request, and streams the file out as it decrypts it, as a
// download, never as a page. Only a reply signed by one of the desk's
// handlers offers its files, as on the JavaScript page.
func (s *Server) checkFile(w http.ResponseWriter, r *http.Request) {
	c, post, rcpt := s.readCheck(w, r)
	if post != nil {
		defer post.wipe()
	}
	if rcpt == nil {
		return
	}
	index, err := strconv.Atoi(post.file)
	m, merr := s.spool.Mailbox(crypto.MailboxOf(rcpt.Token()))
	if err != nil || index < 0 || merr != nil {
		s.renderThread(w, r, c, rcpt, 404, c.T("reply_file_failed"), "")
		return
	}
	o, err := s.openReply(m, rcpt, post.reply)
	if err != nil || o.signer == nil {
		s.renderThread(w, r, c, rcpt, 404, c.T("reply_file_failed"), "")
		return
	}
	for i := 0; ; i++ {
		a, body, err := o.bundle.Next()
		if err != nil {
			s.renderThread(w, r, c, rcpt, 404, c.T("reply_file_failed"), "")
			return
		}
		if i < index {
			continue
		}
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": safeFilename(a.Name)}))
		h.Set("Content-Length", strconv.FormatInt(a.Size, 10))
		h.Set("X-Content-Type-Options", "nosniff")
		if _, err := io.Copy(w, body); err != nil {
			// Cut off: the browser sees a failed download, never a
			// short file it could take for the whole.
			panic(http.ErrAbortHandler)
		}
		return
	}
}

// safeFilename is a file name from a reply fit to offer as a download's
// name: its last path element, without control characters or quotes, at
// most 200 bytes, never empty or hidden.
func safeFilename(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' || r == '/' || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, name)
	for len(name) > 200 {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	name = strings.Trim(name, ". ")
	if name == "" {
		return "attachment"
	}
	return name
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
	var rcpt *crypto.Receipt
	var rerr error = errFormBad
	if post != nil {
		rcpt, rerr = crypto.ParseReceipt(post.receipt)
	}
	// back shows the conversation again, with the message typed and
	// what went wrong: every failure once the receipt is known.
	back := func(status int, msg string) {
		f := threadForm{msg: msg}
		if v := post.values["f.message"]; len(v) > 0 {
			f.message = v[0]
		}
		if post.kind == crypto.KindSurvey {
			f.score, f.comment = post.satisfaction, post.comment
		}
		s.renderThreadForm(w, r, c, rcpt, status, f)
	}
	if err != nil {
		fe := s.formError(err)
		msg := c.T(fe.key)
		if fe == errFormTooLarge && post != nil {
			msg = tooLargeText(c, post.over, limit)
		}
		if rerr == nil {
			back(fe.status, msg)
		} else {
			s.renderCheck(w, r, c, fe.status, msg)
		}
		return
	}
	if rerr != nil {
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
		back(409, c.T("followup_route_mismatch", "route", s.routeLabel(c, thread.Desk, thread.Category)))
		return
	case err != nil && deskID == "":
		back(400, c.T("followup_choose"))
		return
	}
	m, aerr := s.followupRoute(rcpt.Token(), deskID, category)
	if aerr != nil {
		back(400, c.T("error_bad"))
		return
	}
	d := s.desk(m.Desk)
	if d == nil {
		back(404, c.T("error_not_found"))
		return
	}
	var cards []*crypto.Card
	for _, k := range m.Routes {
		if card := d.m.Handler(k); card != nil {
			cards = append(cards, card)
		}
	}
	if len(cards) == 0 {
		back(400, c.T("error_bad"))
		return
	}
	answers, kind, files, refused := followupAnswers(c, post)
	if refused != "" {
		back(400, refused)
		return
	}
	report := &crypto.Report{Desk: m.Desk, Category: m.Category, Language: c.Lang, Submitted: crypto.SubmittedAt(s.cfg.Now()),
		SealedBy: crypto.SealedByServer, Kind: kind, Answers: answers}
	report.Seq = crypto.ThreadSeq()
	if thread != nil {
		report.Seq = s.threadSeq(thread, rcpt)
	}
	sealed, total, err := crypto.SealReport(crypto.RecipientsOf(cards), rcpt, report, files)
	if err != nil {
		back(500, c.T("error_bad"))
		return
	}
	defer sealed.Close()
	if total > MaxReply {
		back(413, tooLargeText(c, overFiles, limit))
		return
	}
	m.Stanzas = m.Stanzas[:len(cards)]
	m.Routes = keyIDsOf(cards)
	if m, err = s.openMailbox(m); err != nil {
		fe := s.formError(err)
		back(fe.status, c.T(fe.key))
		return
	}
	sub, err := s.storeFollowupStream(m, total, sealed)
	if err != nil {
		fe := s.formError(err)
		back(fe.status, c.T(fe.key))
		return
	}
	s.keepOwnCopy(m, rcpt, *report, files)
	// A page of its own, which leads back to the conversation, not to
	// the report's receipt page.
	rc := receipt(sub)
	pd := s.pages.base(r, c, c.T("followup_sent"))
	pd.Receipt, pd.SealedBy, pd.Followup = &rc, crypto.SealedByServer, true
	pd.SurveySent = kind == crypto.KindSurvey
	pd.Words = rcpt.Words()
	s.pages.render(w, 200, "followup_sent", pd)
}

// followupAnswers is what a no-JavaScript follow-up carries: the message
// and files of an ordinary one, or, with kind "survey", the answer to the
// satisfaction question (crypto.SurveyAnswers), with no files. refused is
// what the submitter is told when the post is refused, else "".
func followupAnswers(c *web.Catalog, post *formPost) (answers []crypto.Answer, kind string, files []crypto.File, refused string) {
	switch post.kind {
	case "":
		for _, a := range post.answers {
			if a.Field == "message" {
				answers = append(answers, a)
			}
		}
		return answers, "", post.files, ""
	case crypto.KindSurvey:
	default:
		return nil, "", nil, c.T("error_bad")
	}
	// The form has only the score and the comment: anything else came
	// from elsewhere, and goes nowhere.
	if len(post.files) > 0 || len(post.answers) > 0 {
		return nil, "", nil, c.T("error_bad")
	}
	sc := post.satisfaction
	if len(sc) != 1 || sc[0] < '1' || sc[0] > '5' {
		return nil, "", nil, c.T("survey_choose")
	}
	comment := post.comment
	if strings.TrimSpace(comment) == "" {
		comment = ""
	}
	if len(comment) > crypto.MaxSurveyComment {
		return nil, "", nil, c.T("survey_comment_long", "max", strconv.Itoa(crypto.MaxSurveyComment))
	}
	answers, err := crypto.SurveyAnswers(int(sc[0]-'0'), comment)
	if err != nil {
		return nil, "", nil, c.T("survey_comment_bad")
	}
	return answers, crypto.KindSurvey, nil, ""
}

func keyIDsOf(cards []*crypto.Card) []string {
	ids, _ := keyIDs(cards)
	return ids
}
