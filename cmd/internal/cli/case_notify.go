package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/relay/api"
)

type caseNotifyOptions struct {
	identity string
	relay    string
}

func newCaseNotify(e *env) *cobra.Command {
	var o caseNotifyOptions
	cmd := &cobra.Command{
		Use:   "notify ID -i KEY",
		Short: "queue a status message telling the submitter the case's current status",
		Long: `Queue a status message for the submitter of a case: the desk's text for the
case's current status (its manifest's workflow, submitter_status), in the
report's language or else the desk's, signed with your key and encrypted on this
machine to the submitter's reply key and the handlers of the case's category,
as a reply is. The submitter sees it as a status line on the check page and in
'amana check'; for a final status of a desk whose workflow sets survey, it also
asks how satisfied they are. 'amana case set', 'close' and 'reopen' queue one
by themselves (unless --no-status-message); notify sends one again, say after
the desk added a text.

It is only queued here, sealed: 'amana sync' (or 'amana pull') posts it through
the relay, and keeps it to try again when the post fails.`,
		Example: `  amana case notify 3f2a -i alice.key && amana sync --relay URL -i alice.key`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runCaseNotify(e, &o, args[0]) },
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().StringVar(&o.relay, "relay", "", "the relay whose copy of the desk's manifest to trust (default: the relay the case came from)")
	cmd.MarkFlagRequired("identity")
	return cmd
}

func runCaseNotify(e *env, o *caseNotifyOptions, prefix string) error {
	c, err := e.openJournalCase(prefix, o.identity, o.relay)
	if err != nil {
		return err
	}
	s, err := c.j.State(c.trust, c.meta.ID)
	if err != nil {
		return fail(ExitError, "run 'amana sync' to fetch the case's changes again", err, "cannot read the journal of case %s", c.meta.ID[:12])
	}
	_, err = e.queueStatusMessage(c, statusOf(c.man.Flow(), s), true)
	return err
}

// queueStatusMessage seals and queues the status message telling the
// submitter of case c that it moved to status, when the desk's workflow
// has a text for status and the report a mailbox; explicit (case notify)
// makes having neither an error rather than nothing to do. It says what
// it queued, and returns whether it did.
func (e *env) queueStatusMessage(c *journalCase, status string, explicit bool) (bool, error) {
	short := c.meta.ID[:12]
	nothing := func(hint, format string, args ...any) (bool, error) {
		if explicit {
			return false, fail(ExitUsage, hint, nil, format, args...)
		}
		return false, nil
	}
	hc, err := handler.Open(c.st, c.meta.ID, c.id.Age())
	if err != nil {
		return false, fail(ExitError, "", err, "cannot open case %s", short)
	}
	if hc.Bundle == nil {
		hc.Close()
		return nothing("a self-encrypted file carries no reply key", "case %s cannot be answered", short)
	}
	rep := *hc.Bundle.Report()
	hc.Close()
	if rep.Mailbox == "" || rep.ReplyRecipient == "" {
		return nothing("the submitter sent it without a receipt, so nothing can reach them", "case %s has no mailbox", short)
	}
	wf := c.man.Flow()
	text := wf.SubmitterText(status, rep.Language, c.man.Language)
	if text == "" {
		return nothing("the desk's manifest (workflow submitter_status) has no text for it; 'amana desk show' lists the texts",
			"the desk tells the submitter nothing of status %q", clean(status, false))
	}
	cards, err := c.man.Route(rep.Category)
	if err != nil {
		return false, fail(ExitUsage, "the desk changed; ask its admin", err, "cannot route the status message")
	}
	sub, err := crypto.ParseRecipient(rep.ReplyRecipient)
	if err != nil {
		return false, fail(ExitError, "", err, "the case's reply key is not an age recipient")
	}
	recips, err := crypto.Recipients(cards)
	if err != nil {
		return false, err
	}
	// After everything this machine holds of the thread, and after the
	// status messages already waiting.
	seq, err := handler.NextSeq(c.st, rep.Mailbox, c.id.Age())
	if err != nil {
		return false, err
	}
	queued, err := c.j.QueuedSeq(c.meta.ID)
	if err != nil {
		return false, err
	}
	if queued > 0 {
		seq = max(seq, min(queued+1, crypto.MaxSeq))
	}
	msg := crypto.NewStatusMessage(&rep, status, text, wf.Survey && isFinal(wf, status))
	msg.Seq = seq
	for _, card := range cards {
		msg.Recipients = append(msg.Recipients, card.Recipient)
	}
	if err := crypto.SignReply(msg, c.id); err != nil {
		return false, fail(ExitError, "", err, "cannot sign the status message")
	}
	sealed, total, err := crypto.SealBundleTo(append(recips, sub), msg, nil)
	if err != nil {
		return false, fail(ExitError, "post-quantum and classic keys cannot be mixed; the submitter's key follows the desk", err, "cannot encrypt the status message")
	}
	defer sealed.Close()
	if total > api.MaxReply {
		return false, fail(ExitError, "", nil, "the status message is %d bytes; replies are at most %d", total, api.MaxReply)
	}
	ct, err := io.ReadAll(sealed)
	if err != nil {
		return false, err
	}
	if err := c.j.QueueStatus(&journal.StatusMessage{Case: c.meta.ID, Desk: rep.Desk, Category: rep.Category, Mailbox: rep.Mailbox,
		Relay: c.meta.Relay, Status: status, Seq: seq, Ciphertext: ct}); err != nil {
		return false, fail(ExitError, "", err, "cannot queue the status message")
	}
	survey := ""
	if msg.Survey {
		survey = ", asking how satisfied they are,"
	}
	fmt.Fprintf(e.stderr, "case %s: a status message telling the submitter %q%s is queued, encrypted; 'amana sync' sends it\n", short, status, survey)
	return true, nil
}

// sendStatusMessages posts the status messages queued here through relay
// cl, and keeps each one posted in the case store as a reply of its
// thread. A failure is said: they wait for the next sync.
func (e *env) sendStatusMessages(cl journal.ReplyPoster, st *cases.Store, j *journal.Journal, relay string) {
	n := 0
	left, damaged, err := j.FlushStatus(e.ctx, cl, relay, func(m *journal.StatusMessage, rid string) {
		n++
		if !cases.ValidID(rid) {
			return
		}
		meta := cases.Meta{ID: rid, Relay: relay, Desk: m.Desk, Category: m.Category, Kind: api.KindReply, Mailbox: m.Mailbox,
			Size: int64(len(m.Ciphertext)), SHA256: sha256Hex(m.Ciphertext), Received: crypto.SubmittedAt(time.Now())}
		if err := st.Receive(meta, func(off int64, w io.Writer) error { _, err := w.Write(m.Ciphertext[off:]); return err }, nil); err == nil {
			st.Sync()
		}
	})
	if n > 0 {
		fmt.Fprintf(e.stderr, "sent %d status message(s) to the submitters' mailboxes\n", n)
	}
	for _, p := range damaged {
		fmt.Fprintf(e.stderr, "amana: warning: the waiting status message %s is damaged (it does not open with this key): skipped and kept; remove it once you have looked at it, then 'amana case notify ID' queues the case's status again\n", clean(p, false))
	}
	if left > 0 {
		fmt.Fprintf(e.stderr, "amana: note: %d status message(s) not sent (%s); the next sync tries again\n", left, clean(err.Error(), false))
	} else if err != nil {
		fmt.Fprintf(e.stderr, "amana: note: the status messages: %s\n", clean(err.Error(), false))
	}
}

// threadItemText prints a survey answer ("satisfaction: N/5" and its
// comment) or a status message as such, and reports whether r was one.
func threadItemText(w io.Writer, r *crypto.Report) bool {
	switch r.Kind {
	case crypto.KindSurvey:
		score, comment, err := crypto.ParseSurvey(r)
		if err != nil {
			fmt.Fprintf(w, "a survey answer that is not valid (%s); not counted\n", clean(err.Error(), false))
			return true
		}
		fmt.Fprintf(w, "satisfaction: %d/5\n", score)
		if comment != "" {
			fmt.Fprintf(w, "comment:\n%s\n", clean(comment, true))
		}
		return true
	case crypto.KindStatus:
		if len(r.Answers) == 1 {
			survey := ""
			if r.Survey {
				survey = ", asking how satisfied they are"
			}
			fmt.Fprintf(w, "status message (status %s%s): %s\n", clean(r.Status, false), survey, clean(r.Answers[0].Value, false))
			return true
		}
	}
	return false
}

// surveyComment is the comment of the survey follow-up id, decrypted in
// memory, when this machine holds it and it is of c's thread (filed under
// the case's mailbox and naming it); "" otherwise: an event cannot make
// another case's comment show under this one.
func surveyComment(c *journalCase, id string) string {
	if c.st == nil || !cases.ValidID(id) || !c.st.Has(id) || c.meta.Mailbox == "" {
		return ""
	}
	hc, err := handler.Open(c.st, id, c.id.Age())
	if err != nil {
		return ""
	}
	defer hc.Close()
	if hc.Bundle == nil || hc.Meta.Mailbox != c.meta.Mailbox || hc.Bundle.Report().Mailbox != c.meta.Mailbox {
		return ""
	}
	_, comment, err := crypto.ParseSurvey(hc.Bundle.Report())
	if err != nil {
		return ""
	}
	return comment
}
