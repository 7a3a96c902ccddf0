package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

type replyOptions struct {
	relay       string
	identity    string
	messageFile string
	files       []string
}

func newReply(e *env) *cobra.Command {
	var o replyOptions
	cmd := &cobra.Command{
		Use:   "reply ID --relay URL -i KEY --message-file FILE [--file FILE]...",
		Short: "send the submitter of a case an end-to-end encrypted reply",
		Long: `Reply to the submitter of a case. The reply is encrypted on this machine to the
submitter's reply key (from the case's report) and to every handler of the case's
category, so the whole team can read the thread; it is signed with your key, so the
submitter can tell it comes from the desk. The relay files it in the case's mailbox,
where only the submitter's receipt finds it, and gives the other handlers a copy on
their next pull. The reply is recorded in the case's journal too (its first
response, and every one after it), as 'amana case show' shows.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runReply(e, &o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.relay, "relay", "", "the relay's handler onion URL (required)")
	f.StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	f.StringVar(&o.messageFile, "message-file", "", "file with the reply text, or - for standard input (required)")
	f.StringArrayVar(&o.files, "file", nil, "a file to attach (repeat for more)")
	for _, n := range []string{"relay", "identity", "message-file"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func runReply(e *env, o *replyOptions, prefix string) error {
	c, err := e.openCase(prefix, o.identity)
	if err != nil {
		return err
	}
	report := c.Bundle
	if report == nil {
		c.Close()
		return fail(ExitUsage, "a self-encrypted file carries no reply key", nil, "case %s cannot be answered", c.Meta.ID[:12])
	}
	orig := *report.Report()
	c.Close()
	if orig.Mailbox == "" || orig.ReplyRecipient == "" {
		return fail(ExitUsage, "the submitter sent it without a receipt, so there is no way to answer them", nil, "case %s has no mailbox", c.Meta.ID[:12])
	}
	id := c.ident
	cl, done, err := e.relayClient(o.relay, id)
	if err != nil {
		return err
	}
	defer done()
	cl.Key = id.SigningKey()
	m, remember, err := e.fetchDesk(cl, o.relay, orig.Desk, "", allowFirstContact, recordUnpinned)
	if err != nil {
		return err
	}
	cards, err := m.Route(orig.Category)
	if err != nil {
		return fail(ExitUsage, "the desk changed; ask its admin", err, "cannot route the reply")
	}
	sub, err := crypto.ParseRecipient(orig.ReplyRecipient)
	if err != nil {
		return fail(ExitError, "", err, "the case's reply key is not an age recipient")
	}
	msg, files, closeAll, err := readInput(e, o.messageFile, o.files)
	defer closeAll()
	if err != nil {
		return err
	}
	st, err := e.cases()
	if err != nil {
		return err
	}
	// After everything this machine holds of the thread.
	seq, err := handler.NextSeq(st, orig.Mailbox, id.Age())
	if err != nil {
		return err
	}
	rep := &crypto.Report{Desk: orig.Desk, Category: orig.Category, Language: orig.Language,
		Submitted: crypto.SubmittedAt(time.Now()), Answers: []crypto.Answer{{Field: "message", Value: string(msg)}},
		Mailbox: orig.Mailbox, Seq: seq}
	recips, err := crypto.Recipients(cards)
	if err != nil {
		return err
	}
	for _, card := range cards {
		rep.Recipients = append(rep.Recipients, card.Recipient)
	}
	if err := crypto.SignReplyFiles(rep, files, id); err != nil {
		return err
	}
	sealed, total, err := crypto.SealBundleTo(append(recips, sub), rep, files)
	if err != nil {
		return fail(ExitError, "post-quantum and classic keys cannot be mixed; the submitter's key follows the desk", err, "cannot encrypt the reply")
	}
	defer sealed.Close()
	if total > api.MaxReply {
		return fail(ExitUsage, "send fewer or smaller files", nil, "the reply is %d bytes; replies are at most %d", total, api.MaxReply)
	}
	ct, err := io.ReadAll(sealed)
	if err != nil {
		return err
	}
	rid, err := cl.PostReply(e.ctx, orig.Mailbox, orig.Desk, orig.Category, ct)
	if err != nil {
		return err
	}
	remember()
	e.keepDesk(o.relay, m)
	// Keep the reply in this machine's thread of the case too.
	meta := cases.Meta{ID: rid, Relay: o.relay, Desk: orig.Desk, Category: orig.Category, Kind: api.KindReply, Mailbox: orig.Mailbox,
		Size: int64(len(ct)), SHA256: sha256Hex(ct), Received: crypto.SubmittedAt(time.Now())}
	if err := st.Receive(meta, func(off int64, w io.Writer) error { _, err := w.Write(ct[off:]); return err }, nil); err == nil {
		st.Sync()
	}
	fmt.Fprintf(e.stderr, "replied to case %s: encrypted to the submitter and %d handler(s), signed by %s\n", prefix, len(cards), id.Name())
	return e.recordReply(cl, st, id, o.relay, c.Meta, rid)
}

// recordReply records a reply sent as a change of its case (the report of
// the thread): the case's responses, and its first response, come from
// these. The reply is sent already; a failure here only says so.
func (e *env) recordReply(cl *client.Client, st *cases.Store, id *crypto.Identity, relay string, replied *cases.Meta, rid string) error {
	report := replied
	if !isCase(report) {
		all, err := st.List()
		if err != nil {
			return err
		}
		if report = handler.ThreadOf(all, replied.Mailbox); report == nil {
			fmt.Fprintf(e.stderr, "amana: note: the report of this thread is not in this case store, so the reply is not recorded in its journal\n")
			return nil
		}
	}
	j, err := e.openJournal(st, id)
	if err != nil {
		return err
	}
	t := e.trust(relay, report.Relay)
	ev, err := j.Record(e.ctx, cl, t, report.ID, crypto.Change{Reply: rid})
	switch {
	case err != nil && ev != nil:
		fmt.Fprintf(e.stderr, "amana: note: the reply is recorded in the journal of case %s, not yet sent to the other handlers; 'amana sync' sends it\n", report.ID[:12])
	case err != nil:
		return fail(ExitPartial, fmt.Sprintf("the reply was sent; record it by hand with 'amana case note %s --message-file -'", report.ID[:12]), err,
			"the reply is not recorded in the journal of case %s", report.ID[:12])
	}
	return nil
}

// readMessage reads a message file, or standard input for "-".
// readInput reads what submit, followup and reply send from this machine:
// the message, and the attachments opened and checked. closeAll closes
// them, and is safe to call on an error.
func readInput(e *env, messageFile string, paths []string) (msg []byte, files []crypto.File, closeAll func(), err error) {
	closeAll = func() {}
	if msg, err = readMessage(e, messageFile); err != nil {
		return nil, nil, closeAll, err
	}
	files, closeAll, err = openAttachments(paths)
	return msg, files, closeAll, err
}

func readMessage(e *env, path string) ([]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(e.stdin, crypto.MaxReportLen))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fail(ExitError, "check the --message-file path", err, "cannot read the message")
	}
	return b, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
