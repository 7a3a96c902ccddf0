package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/amana-relay/amana/cmd/internal/ui"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

type receiptOptions struct {
	relay       string
	receiptFile string
	fingerprint string
}

func (o *receiptOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.relay, "relay", "", "the relay's intake onion URL (required)")
	cmd.Flags().StringVar(&o.receiptFile, "receipt-file", "", "read the receipt words from this file instead of asking on the terminal")
	cmd.Flags().StringVar(&o.fingerprint, "desk-fingerprint", "", "the desk's fingerprint; refuse any other key (as for submit)")
	cmd.MarkFlagRequired("relay")
}

// receipt reads the receipt words from --receipt-file or the terminal;
// never from a flag value, which other users of the machine could see.
func (e *env) receipt(o *receiptOptions) (*crypto.Receipt, error) {
	var words string
	if o.receiptFile != "" {
		b, err := os.ReadFile(o.receiptFile)
		if err != nil {
			return nil, fail(ExitKey, "check the --receipt-file path", err, "cannot read the receipt")
		}
		words = string(b)
	} else {
		w, err := readTerminal("receipt (12 words): ")
		if err != nil {
			return nil, fail(ExitKey, "give the receipt with --receipt-file", nil, "a receipt is needed and there is no terminal to ask for it")
		}
		words = w
	}
	r, err := crypto.ParseReceipt(words)
	if err != nil {
		return nil, fail(ExitKey, "check the 12 words: one is misspelled, missing or out of order", nil, "that is not a valid receipt")
	}
	return r, nil
}

// thread is what a submitter's receipt opens: the desk's replies, checked.
type thread struct {
	desk    *crypto.Manifest
	replies []openedReply
}

type openedReply struct {
	info      api.ReplyInfo
	report    *crypto.Report
	files     []crypto.File
	bodies    [][]byte
	signer    *crypto.Card // nil when the signature does not verify
	verifyErr error
}

// openThread fetches and opens every reply in the receipt's mailbox.
func (e *env) openThread(c *client.Client, relay, fingerprint string, rc *crypto.Receipt) (*thread, *api.Mailbox, error) {
	mb, err := c.CheckMailbox(e.ctx, rc.Token())
	if err != nil {
		return nil, nil, err
	}
	t := &thread{}
	if len(mb.Replies) == 0 {
		return t, mb, nil
	}
	if t.desk, _, err = e.fetchDesk(c, relay, mb.Desk, fingerprint); err != nil {
		return nil, nil, err
	}
	id, err := rc.ReplyIdentity(t.desk.Cards()[0].PostQuantum())
	if err != nil {
		return nil, nil, err
	}
	for _, info := range mb.Replies {
		ct, err := c.DownloadReply(e.ctx, rc.Token(), info.ID)
		if err != nil {
			return nil, nil, err
		}
		if sum := sha256.Sum256(ct); hex.EncodeToString(sum[:]) != info.SHA256 {
			return nil, nil, fail(ExitTrust, "try again; if it repeats, the relay is misbehaving", nil, "a reply does not match the relay's listing")
		}
		br, err := crypto.OpenBundle(bytes.NewReader(ct), id.Age())
		if err != nil {
			return nil, nil, fail(ExitError, "", err, "a reply cannot be opened")
		}
		or := openedReply{info: info, report: br.Report()}
		or.signer, or.verifyErr = crypto.VerifyReply(br.Report(), t.desk.Cards())
		for {
			a, r, err := br.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, fail(ExitError, "", err, "a reply is damaged")
			}
			b, err := io.ReadAll(r)
			if err != nil {
				return nil, nil, fail(ExitError, "", err, "a reply is damaged")
			}
			or.files = append(or.files, crypto.File{Attachment: *a})
			or.bodies = append(or.bodies, b)
		}
		t.replies = append(t.replies, or)
	}
	return t, mb, nil
}

type checkOptions struct {
	receiptOptions
	save string
}

func newCheck(e *env) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check --relay URL [--receipt-file FILE] [--save DIR]",
		Short: "read the desk's replies to a report you sent, with its receipt",
		Long: `Read the desk's replies to a report you sent. The receipt words (printed by 'amana
submit', or shown by the page) derive, on this machine, the token that finds your
mailbox and the key that opens the replies; neither the words nor the key leave it.
Each reply's signature is checked against the desk's handlers. --save writes the
files attached to replies into DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runCheck(e, &o) },
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&o.save, "save", "", "write the replies' attached files into this directory")
	return cmd
}

func runCheck(e *env, o *checkOptions) error {
	rc, err := e.receipt(&o.receiptOptions)
	if err != nil {
		return err
	}
	c, done, err := e.relayClient(o.relay, nil)
	if err != nil {
		return err
	}
	defer done()
	t, mb, err := e.openThread(c, o.relay, o.fingerprint, rc)
	if err != nil {
		return err
	}
	if len(t.replies) == 0 {
		fmt.Fprintf(e.stdout, "no replies yet\n")
	}
	for i, r := range t.replies {
		who := "UNVERIFIED: not signed by a handler of the desk; do not trust it"
		if r.signer != nil {
			who = "from " + clean(r.signer.Name, false) + " of desk " + clean(t.desk.Desk, false) + " (signature verified)"
		}
		fmt.Fprintf(e.stdout, "reply %d, %s, received %s\n", i+1, who, clean(r.info.Received, false))
		for _, a := range r.report.Answers {
			fmt.Fprintf(e.stdout, "\n%s\n", clean(a.Value, true))
		}
		for j, f := range r.files {
			fmt.Fprintf(e.stdout, "  attached: %s (%s)\n", clean(f.Name, false), ui.Size(f.Size))
			if o.save != "" {
				if why := SafeName(f.Name); why != "" {
					fmt.Fprintf(e.stderr, "amana: attached file %q not saved: its name %s\n", clean(f.Name, false), why)
					continue
				}
				os.MkdirAll(o.save, 0o700)
				if err := writeNew(filepath.Join(o.save, f.Name), r.bodies[j]); err != nil {
					return err
				}
			}
		}
		fmt.Fprintln(e.stdout)
	}
	fmt.Fprintf(e.stderr, "a conversation is kept %d days after its last message; 'amana followup' sends more\n", mb.KeepDays)
	return nil
}

type followupOptions struct {
	receiptOptions
	desk, category string
	messageFile    string
	files          []string
}

func newFollowup(e *env) *cobra.Command {
	var o followupOptions
	cmd := &cobra.Command{
		Use:   "followup --relay URL --message-file FILE [--file FILE]... [--receipt-file FILE]",
		Short: "send more information about a report you sent, with its receipt",
		Long: `Send a follow-up to a report: a message and files, encrypted on this machine to the
handlers of the conversation (those the desk's replies name) and filed with your
report. Before the desk has replied, say where it goes with --desk and --category,
as for the report itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runFollowup(e, &o) },
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.desk, "desk", "", "before any reply: the desk")
	f.StringVar(&o.category, "category", "", "before any reply: the category of the report")
	f.StringVar(&o.messageFile, "message-file", "", "file with the message, or - for standard input (required)")
	f.StringArrayVar(&o.files, "file", nil, "a file to attach (repeat for more)")
	cmd.MarkFlagRequired("message-file")
	return cmd
}

func runFollowup(e *env, o *followupOptions) error {
	rc, err := e.receipt(&o.receiptOptions)
	if err != nil {
		return err
	}
	c, done, err := e.relayClient(o.relay, nil)
	if err != nil {
		return err
	}
	defer done()
	t, mb, err := e.openThread(c, o.relay, o.fingerprint, rc)
	if err != nil {
		return err
	}
	desk, category := o.desk, o.category
	if mb.Desk != "" {
		// The thread exists: its desk and category decide, whatever flags say.
		desk, category = mb.Desk, mb.Category
	}
	var recipients []string
	for i := len(t.replies) - 1; i >= 0; i-- {
		if r := t.replies[i]; r.signer != nil {
			desk, category, recipients = r.report.Desk, r.report.Category, r.report.Recipients
			break
		}
	}
	if recipients == nil {
		if desk == "" {
			return fail(ExitUsage, "give --desk (and --category) as for the report", nil, "the desk has not replied yet, so amana does not know where this goes")
		}
		m, _, err := e.fetchDesk(c, o.relay, desk, o.fingerprint)
		if err != nil {
			return err
		}
		cards, err := m.Route(category)
		if err != nil {
			return fail(ExitUsage, "check --category", err, "cannot route the follow-up")
		}
		for _, card := range cards {
			recipients = append(recipients, card.Recipient)
		}
	}
	pq := strings.HasPrefix(recipients[0], "age1pq1")
	replyID, err := rc.ReplyIdentity(pq)
	if err != nil {
		return err
	}
	msg, err := readMessage(e, o.messageFile)
	if err != nil {
		return err
	}
	files, closeAll, err := openAttachments(o.files)
	defer closeAll()
	if err != nil {
		return err
	}
	rep := &crypto.Report{Desk: desk, Category: category, Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
		Answers: []crypto.Answer{{Field: "message", Value: string(msg)}}, ReplyRecipient: replyID.Recipient(), Mailbox: rc.MailboxID()}
	recips, err := parseRecipients(recipients)
	if err != nil {
		return err
	}
	sealed, total, err := crypto.SealBundleTo(recips, rep, files)
	if err != nil {
		return err
	}
	defer sealed.Close()
	if total > api.MaxReply {
		return fail(ExitUsage, "send fewer or smaller files", nil, "the follow-up is %d bytes; follow-ups are at most %d", total, api.MaxReply)
	}
	ct, err := io.ReadAll(sealed)
	if err != nil {
		return err
	}
	r, err := c.PostFollowup(e.ctx, rc.Token(), desk, category, ct)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "sent: encrypted on this machine to %d handler(s) of the conversation\n", len(recipients))
	if r.Size != int64(len(ct)) || r.SHA256 != sha256Hex(ct) {
		return fail(ExitTrust, "send it again; if it repeats, the relay is misbehaving", nil, "the relay's receipt does not match what was sent")
	}
	fmt.Fprintf(e.stdout, "stored\n  id:       %s\n  size:     %d bytes\n  sha256:   %s\n", clean(r.ID, false), r.Size, r.SHA256)
	return nil
}

func parseRecipients(rs []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, s := range rs {
		var r age.Recipient
		var err error
		if strings.HasPrefix(s, "age1pq1") {
			r, err = age.ParseHybridRecipient(s)
		} else {
			r, err = age.ParseX25519Recipient(s)
		}
		if err != nil {
			return nil, fail(ExitTrust, "", err, "a reply names an invalid recipient")
		}
		out = append(out, r)
	}
	return out, nil
}
