package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/amana-relay/amana/cmd/internal/ui"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// thread is what a submitter's receipt opens: the desk's replies, checked.
type thread struct {
	desk    *crypto.Manifest // the conversation's trusted manifest; nil when no desk is named
	replies []openedReply
}

type openedReply struct {
	info   api.ReplyInfo
	report *crypto.Report
	files  []crypto.File
	bodies [][]byte
	// signer is the handler whose signature verifies, or nil.
	signer    *crypto.Card
	verifyErr error
	// mismatch is why a reply whose signature verifies still does not
	// belong to this conversation: another desk or another mailbox.
	mismatch error
}

// verified reports whether the reply is the desk's word in this
// conversation.
func (r *openedReply) verified() bool { return r.signer != nil && r.mismatch == nil }

// status is the text of a verified status message, "" for anything else:
// an unverified reply is never shown as the case's status.
func (r *openedReply) status() string {
	if !r.verified() || r.report.Kind != crypto.KindStatus || len(r.report.Answers) != 1 {
		return ""
	}
	return r.report.Answers[0].Value
}

// latestStatus is the thread's latest verified status message, or nil:
// the one with the highest seq, the later in the mailbox of two with the
// same (the rule the relay's check page follows too).
func (t *thread) latestStatus() *openedReply {
	var latest *openedReply
	for i := range t.replies {
		if r := &t.replies[i]; r.status() != "" && (latest == nil || r.report.Seq >= latest.report.Seq) {
			latest = r
		}
	}
	return latest
}

// Where a conversation's desk and category come from, and why (docs/cli.md,
// "amana followup"): before a verified reply, from the submitter's flags
// only; after one, from that reply, checked against a manifest this machine
// already trusts. The relay's mailbox answer is only checked for agreement:
// it decides nothing.

// route is a desk and category.
type route struct{ desk, category string }

func (r route) String() string {
	if r.category == "" {
		return fmt.Sprintf("desk %q, no category", r.desk)
	}
	return fmt.Sprintf("desk %q, category %q", r.desk, r.category)
}

// advice is what a submitter who did report to r passes on the command
// line; "" when r is not even valid, and so cannot be where they reported.
func (r route) advice() string {
	switch {
	case !crypto.ValidName(r.desk) || r.category != "" && !crypto.ValidName(r.category):
		return ""
	case r.category == "":
		return "if you reported to desk " + r.desk + " with no category (so that the desk's default route reads it), pass --desk " + r.desk + " and no --category"
	}
	return "if you reported to desk " + r.desk + " in category " + r.category + ", pass --desk " + r.desk + " --category " + r.category
}

// relayRoute is the thread the relay's mailbox answer names, or false when
// it names none.
func relayRoute(mb *api.Mailbox) (route, bool) {
	return route{mb.Desk, mb.Category}, mb.Desk != ""
}

// relayDisagrees refuses a follow-up or check whose route the relay's
// mailbox answer contradicts: whose (the command line, a signed reply) says
// want.
func relayDisagrees(claim route, whose, want string) error {
	hint := "do not send: the relay's answer does not even name a valid desk, so it is misbehaving"
	if a := claim.advice(); a != "" {
		hint = a + "; otherwise do not send, and tell the desk another way"
	}
	return fail(ExitTrust, hint, nil, "the relay says this conversation belongs to %s, but %s says %s", claim, whose, want)
}

// relayUnconfirmed refuses a route that only the relay's word names.
func relayUnconfirmed(claim route, why string) error {
	hint := "do not send: the relay's answer does not even name a valid desk, so it is misbehaving"
	if a := claim.advice(); a != "" {
		hint = a + "; otherwise do not send"
	}
	return fail(ExitTrust, hint, nil, "the relay says this conversation belongs to %s, but %s", claim, why)
}

// conversationDesk is the trusted manifest a receipt's conversation is
// checked against: --desk if given, else the desk the relay names, which
// must already be trusted here (a remembered key or --desk-fingerprint):
// never a first contact. fromRelay says that only the relay named it, so
// a verified reply must still confirm it. m is nil when no desk is named.
func (e *env) conversationDesk(c *client.Client, o *receiptOptions, flagDesk string, mb *api.Mailbox) (m *crypto.Manifest, remember func() error, fromRelay bool, err error) {
	claim, claimed := relayRoute(mb)
	nothing := func() error { return nil }
	if flagDesk != "" && claimed && claim.desk != flagDesk {
		return nil, nil, false, relayDisagrees(claim, "--desk", fmt.Sprintf("desk %q", flagDesk))
	}
	name := flagDesk
	if name == "" {
		if !claimed {
			return nil, nothing, false, nil
		}
		if !crypto.ValidName(claim.desk) {
			return nil, nil, true, relayUnconfirmed(claim, "that is not a valid desk name")
		}
		name, fromRelay = claim.desk, true
	}
	m, remember, err = e.fetchDesk(c, o.relay, name, o.fingerprint, refuseFirstContact, o.recording())
	if err != nil && fromRelay && errors.Is(err, errDeskUnknown) {
		return nil, nil, true, fail(ExitTrust, "if you reported to desk "+claim.desk+", pass --desk "+claim.desk+" and --desk-fingerprint with the fingerprint the desk publishes; otherwise do not send",
			nil, "the relay says this conversation belongs to desk %q, which this machine has never trusted", claim.desk)
	}
	return m, remember, fromRelay, err
}

// replyBelongs checks that a reply whose signature verifies against the
// trusted manifest m is about this conversation: filed under m's desk, for
// this receipt's mailbox. The signature covers both.
func replyBelongs(rep *crypto.Report, m *crypto.Manifest, mailbox string) error {
	if rep.Desk != m.Desk {
		return fmt.Errorf("it is signed for desk %q, not %q", rep.Desk, m.Desk)
	}
	if rep.Mailbox != mailbox {
		return errors.New("it is signed for another conversation")
	}
	return nil
}

// replyRecipients are the handlers a verified reply sends the conversation
// to, each of them the age recipient of a handler card in the trusted
// manifest m: a key m does not list is refused, never encrypted to.
func replyRecipients(rep *crypto.Report, m *crypto.Manifest) ([]string, error) {
	known := map[string]bool{}
	for _, c := range m.Cards() {
		known[c.Recipient] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Recipients {
		if !known[r] {
			return nil, fail(ExitTrust, "do not send; tell the desk another way that its reply names a key its manifest does not list", nil,
				"the desk's latest signed reply names a recipient that is not a handler of desk %q", m.Desk)
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fail(ExitTrust, "wait for another reply from the desk, or tell it another way", nil, "the desk's latest signed reply names no handler to send to")
	}
	return out, nil
}

// openThread fetches and opens every reply in the receipt's mailbox and
// checks each against m, the conversation's trusted manifest. With replies
// and no manifest it fails: there is nothing to check them against.
func (e *env) openThread(c *client.Client, m *crypto.Manifest, rc *crypto.Receipt, mb *api.Mailbox) (*thread, error) {
	t := &thread{desk: m}
	if len(mb.Replies) == 0 {
		return t, nil
	}
	if m == nil {
		return nil, fail(ExitUsage, "give --desk as for the report (and --desk-fingerprint if this machine does not remember the desk)", nil,
			"the relay does not say which desk replied, so the replies cannot be checked")
	}
	id, err := rc.ReplyIdentity(m.Cards()[0].PostQuantum())
	if err != nil {
		return nil, err
	}
	for _, info := range mb.Replies {
		ct, err := c.DownloadReply(e.ctx, rc.Token(), info.ID)
		if err != nil {
			return nil, err
		}
		if sum := sha256.Sum256(ct); hex.EncodeToString(sum[:]) != info.SHA256 {
			return nil, fail(ExitTrust, "try again; if it repeats, the relay is misbehaving", nil, "a reply does not match the relay's listing")
		}
		br, err := crypto.OpenBundle(bytes.NewReader(ct), id.Age())
		if err != nil {
			return nil, fail(ExitError, "", err, "a reply cannot be opened")
		}
		or := openedReply{info: info, report: br.Report()}
		or.signer, or.verifyErr = crypto.VerifyReply(br.Report(), m.Cards())
		if or.signer != nil {
			or.mismatch = replyBelongs(br.Report(), m, rc.MailboxID())
		}
		for {
			a, r, err := br.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fail(ExitError, "", err, "a reply is damaged")
			}
			b, err := io.ReadAll(r)
			if err != nil {
				return nil, fail(ExitError, "", err, "a reply is damaged")
			}
			or.files = append(or.files, crypto.File{Attachment: *a})
			or.bodies = append(or.bodies, b)
		}
		t.replies = append(t.replies, or)
	}
	return t, nil
}

type checkOptions struct {
	receiptOptions
	desk string
	save string
	json bool
}

func newCheck(e *env) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check --relay URL [--desk ID] [--desk-fingerprint FP] [--receipt-file FILE] [--save DIR]",
		Short: "read the desk's replies to a report you sent, with its receipt",
		Long: `Read the desk's replies to a report you sent. The receipt (its 12 words or its 45
digits, printed by 'amana submit' or shown by the page) derives, on this machine, the
token that finds your mailbox and the key that opens the replies; neither the receipt
nor the key leave it.
--save writes the files attached to replies into DIR.

Each reply's signature is checked against the handlers of the desk's manifest, and
a reply counts as verified only if it is signed for that desk and for this
receipt's conversation. The desk is --desk if given, else the one the relay names;
either way this machine must already trust it: its key remembered from 'amana
submit' to that relay and desk, or --desk-fingerprint. check never trusts a desk on
first contact. A key --desk-fingerprint confirms is remembered, as submit
remembers the key it trusts, so that a later change of the desk's key is refused
even without the flag; --no-record leaves no record. If the relay names another
desk than --desk, check refuses (exit 3).

A verified status message (the desk telling you the case's new status) is shown
first, as "Status: …", not as a reply; an unverified one is never shown as the
status. When the latest one asks how satisfied you are, check says how to answer
('amana followup --satisfaction N').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runCheck(e, &o) },
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&o.desk, "desk", "", "the desk you reported to; default: the one the relay names, if this machine trusts it")
	cmd.Flags().StringVar(&o.save, "save", "", "write the replies' attached files into this directory")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the replies as JSON (docs/cli.md)")
	return cmd
}

func runCheck(e *env, o *checkOptions) error {
	rc, c, mb, done, err := e.mailbox(&o.receiptOptions)
	if err != nil {
		return err
	}
	defer done()
	var m *crypto.Manifest
	remember := func() error { return nil }
	if o.desk != "" || len(mb.Replies) > 0 {
		if m, remember, _, err = e.conversationDesk(c, &o.receiptOptions, o.desk, mb); err != nil {
			return err
		}
	}
	t, err := e.openThread(c, m, rc, mb)
	if err != nil {
		return err
	}
	// The thread opened against the desk's key: remember that key, so that
	// a later change of it is refused.
	if err := remember(); err != nil {
		return fail(ExitError, "", err, "cannot record the desk's key")
	}
	if o.json {
		for _, r := range t.replies {
			if err := e.saveReplyFiles(o.save, &r); err != nil {
				return err
			}
		}
		if err := writeJSON(e.stdout, checkToJSON(t, mb)); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "a conversation is kept %d days after its last message; 'amana followup' sends more\n", mb.KeepDays)
		return nil
	}
	if len(t.replies) == 0 {
		fmt.Fprintf(e.stdout, "no replies yet\n")
	}
	if st := t.latestStatus(); st != nil {
		fmt.Fprintf(e.stdout, "Status: %s\n  (from %s of desk %s, signature verified, received %s)\n\n", clean(st.status(), false),
			clean(st.signer.Name, false), clean(t.desk.Desk, false), clean(st.info.Received, false))
	}
	n := 0
	for _, r := range t.replies {
		if r.status() != "" {
			continue // shown above, as the status, when it is the latest
		}
		n++
		who := "UNVERIFIED: not signed by a handler of the desk; do not trust it"
		switch {
		case r.verified():
			who = "from " + clean(r.signer.Name, false) + " of desk " + clean(t.desk.Desk, false) + " (signature verified)"
		case r.signer != nil:
			who = "UNVERIFIED: signed by " + clean(r.signer.Name, false) + ", but " + clean(r.mismatch.Error(), false) + "; do not trust it"
		}
		if r.report.Kind == crypto.KindStatus {
			who += " (it claims to be a status message; it is not shown as the status)"
		}
		fmt.Fprintf(e.stdout, "reply %d, %s, received %s\n", n, who, clean(r.info.Received, false))
		for _, a := range r.report.Answers {
			fmt.Fprintf(e.stdout, "\n%s\n", clean(a.Value, true))
		}
		for _, f := range r.files {
			fmt.Fprintf(e.stdout, "  attached: %s (%s)\n", clean(f.Name, false), ui.Size(f.Size))
		}
		if err := e.saveReplyFiles(o.save, &r); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
	}
	if n == 0 && len(t.replies) > 0 {
		fmt.Fprintf(e.stdout, "no other replies\n")
	}
	if st := t.latestStatus(); st != nil && st.report.Survey {
		fmt.Fprintf(e.stdout, "\nThe desk asks how satisfied you are, from 1 (not at all) to 5 (very): answer with\n  amana followup --satisfaction N [--comment-file FILE] (and the same --relay and receipt)\n")
	}
	fmt.Fprintf(e.stderr, "a conversation is kept %d days after its last message; 'amana followup' sends more\n", mb.KeepDays)
	return nil
}

// saveReplyFiles writes a reply's attached files into dir, if given; a
// file whose name is unsafe is skipped, and said so.
func (e *env) saveReplyFiles(dir string, r *openedReply) error {
	if dir == "" {
		return nil
	}
	for j, f := range r.files {
		if why := SafeName(f.Name); why != "" {
			fmt.Fprintf(e.stderr, "amana: attached file %q not saved: its name %s\n", clean(f.Name, false), why)
			continue
		}
		os.MkdirAll(dir, 0o700)
		if err := writeNew(filepath.Join(dir, f.Name), r.bodies[j]); err != nil {
			return err
		}
	}
	return nil
}
