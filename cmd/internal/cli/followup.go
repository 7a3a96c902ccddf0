package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
)

type followupOptions struct {
	receiptOptions
	desk, category string
	categorySet    bool
	messageFile    string
	files          []string
	json           bool
	// satisfaction is --satisfaction, 0 when not given; commentFile
	// --comment-file.
	satisfaction int
	commentFile  string
}

func newFollowup(e *env) *cobra.Command {
	var o followupOptions
	cmd := &cobra.Command{
		Use:   "followup --relay URL [--desk ID [--category ID]] (--message-file FILE [--file FILE]... | --satisfaction N [--comment-file FILE]) [--receipt-file FILE]",
		Short: "send more information about a report you sent, with its receipt",
		Long: `Send a follow-up to a report: a message and files, encrypted on this machine to the
handlers of the conversation, and filed with your report.

Where it goes is decided on this machine, never by the relay:
  - before the desk has replied, by --desk and --category, as for the report
    (no --category means the desk's default route, every handler of the desk
    unless its manifest names one, as for submit);
  - once a reply verifies (signed by a handler of the desk, for that desk and
    for this receipt's conversation), by that reply: its handlers, each of
    whom must be listed in the desk's manifest. If --desk or --category say
    otherwise, the reply wins and a note says so.
The relay's answer about the conversation is only compared: if it names another
desk or category, followup refuses (exit 3) and says what the relay claims.

The desk's manifest must already be trusted here: its key remembered from 'amana
submit' to that relay and desk, or --desk-fingerprint. followup never trusts a
desk on first contact. Once the follow-up is sent, a key --desk-fingerprint
confirmed is remembered, as submit remembers the key it trusts, so that a later
change of the desk's key is refused even without the flag; --no-record leaves no
record. Without --desk, the desk the relay names is used only to check a reply,
and only if this machine trusts it.

--satisfaction N (1 to 5) answers the desk's satisfaction question instead of
sending a message, with an optional comment (--comment-file, at most 2000
bytes): a follow-up of its own kind, encrypted the same way. It is sent only
when the desk's latest verified status message ('amana check' shows it) asks the
question.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.categorySet = cmd.Flags().Changed("category")
			return runFollowup(e, &o)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.desk, "desk", "", "the desk you reported to (required before the desk's first verified reply)")
	f.StringVar(&o.category, "category", "", "the category you reported in; none means the desk's default route (every handler unless the desk names one)")
	f.StringVar(&o.messageFile, "message-file", "", "file with the message, or - for standard input (required)")
	f.StringArrayVar(&o.files, "file", nil, "a file to attach (repeat for more)")
	f.BoolVar(&o.json, "json", false, "print the relay's record of the follow-up as JSON (docs/cli.md)")
	f.IntVar(&o.satisfaction, "satisfaction", 0, "answer the desk's satisfaction question: 1 (not at all satisfied) to 5 (very satisfied)")
	f.StringVar(&o.commentFile, "comment-file", "", "with --satisfaction: a file with a comment, or - for standard input")
	return cmd
}

// followupRoute decides where a follow-up goes: the desk and category to
// file it under and the recipients to encrypt it to. See the comment above
// route.
func (e *env) followupRoute(o *followupOptions, t *thread, fromRelay bool, mb *api.Mailbox) (route, []string, error) {
	claim, claimed := relayRoute(mb)
	var latest *openedReply
	for i := len(t.replies) - 1; i >= 0; i-- {
		if t.replies[i].signer != nil {
			latest = &t.replies[i]
			break
		}
	}
	if latest != nil {
		// The desk's own word, checked against the trusted manifest.
		if latest.mismatch != nil {
			return route{}, nil, fail(ExitTrust, "do not send, and tell the desk another way: a reply signed for another desk or conversation is never followed", latest.mismatch,
				"the desk's latest signed reply does not belong to this conversation")
		}
		rep := latest.report
		got := route{rep.Desk, rep.Category}
		recipients, err := replyRecipients(rep, t.desk)
		if err != nil {
			return route{}, nil, err
		}
		if claimed && claim != got {
			return route{}, nil, relayDisagrees(claim, "the desk's signed reply", got.String())
		}
		// Flags given say a route too ("no --category" with --desk meaning
		// no category, as before a reply); the desk's own word wins.
		if o.desk != "" && o.desk != got.desk || (o.desk != "" || o.categorySet) && o.category != got.category {
			fmt.Fprintf(e.stderr, "amana: note: the desk's signed reply files this conversation under %s, not where --desk and --category say: sending it there\n", got)
		}
		return got, recipients, nil
	}
	// No verified reply: the submitter's flags decide.
	if fromRelay {
		return route{}, nil, relayUnconfirmed(claim, "no reply signed by that desk confirms it")
	}
	if o.desk == "" {
		return route{}, nil, fail(ExitUsage, "give --desk (and --category, if you chose one) as for the report", nil,
			"the desk has not replied yet, so amana does not know where this goes")
	}
	want := route{o.desk, o.category}
	if claimed && claim != want {
		return route{}, nil, relayDisagrees(claim, "the command line", want.String())
	}
	cards, err := t.desk.Route(o.category)
	if err != nil {
		return route{}, nil, fail(ExitUsage, "check --category", err, "cannot route the follow-up")
	}
	var recipients []string
	for _, card := range cards {
		recipients = append(recipients, card.Recipient)
	}
	return want, recipients, nil
}

func runFollowup(e *env, o *followupOptions) error {
	// What this machine holds is read first: a missing file is said before
	// anything reaches the network.
	switch {
	case o.messageFile == "" && o.satisfaction == 0:
		return fail(ExitUsage, "give --message-file FILE, or --satisfaction N to answer the desk's satisfaction question", nil, `required flag(s) "message-file" not set`)
	case o.messageFile != "" && (o.satisfaction != 0 || o.commentFile != ""):
		return fail(ExitUsage, "send the message and the survey answer in two follow-ups", nil, "--message-file does not go with --satisfaction or --comment-file")
	}
	var survey []crypto.Answer
	var msg []byte
	var files []crypto.File
	if o.satisfaction != 0 || o.commentFile != "" {
		var err error
		if survey, err = surveyAnswers(e, o); err != nil {
			return err
		}
	} else {
		var closeAll func()
		var err error
		msg, files, closeAll, err = readOnePass(e, o.messageFile, o.files)
		defer closeAll()
		if err != nil {
			return err
		}
	}
	rc, c, mb, done, err := e.mailbox(&o.receiptOptions)
	if err != nil {
		return err
	}
	defer done()
	if claim, claimed := relayRoute(mb); o.desk == "" && len(mb.Replies) == 0 {
		// Nothing the desk signed can say where this goes.
		if claimed {
			return relayUnconfirmed(claim, "no reply from the desk confirms it")
		}
		return fail(ExitUsage, "give --desk (and --category, if you chose one) as for the report", nil,
			"the desk has not replied yet, so amana does not know where this goes")
	}
	m, remember, fromRelay, err := e.conversationDesk(c, &o.receiptOptions, o.desk, mb)
	if err != nil {
		return err
	}
	t, err := e.openThread(c, m, rc, mb)
	if err != nil {
		return err
	}
	if survey != nil {
		if st := t.latestStatus(); st == nil || !st.report.Survey {
			return fail(ExitUsage, "the desk asks in a status message once your case is closed; 'amana check' shows it", nil,
				"the desk has not asked how satisfied you are")
		}
	}
	to, recipients, err := e.followupRoute(o, t, fromRelay, mb)
	if err != nil {
		return err
	}
	rep := &crypto.Report{Desk: to.desk, Category: to.category, Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient, Client: crypto.ClientCLI,
		Answers: []crypto.Answer{{Field: "message", Value: string(msg)}}, Seq: t.seq()}
	if survey != nil {
		rep.Kind, rep.Answers = crypto.KindSurvey, survey
	}
	sealed, total, err := crypto.SealReport(recipients, rc, rep, files)
	if errors.Is(err, crypto.ErrRecipient) {
		return fail(ExitTrust, "", err, "a reply names an invalid recipient")
	}
	if err != nil {
		return err
	}
	defer sealed.Close()
	sealed.HashCiphertext()
	if total > api.MaxReply {
		return fail(ExitUsage, "send fewer or smaller files", nil, "the follow-up is %d bytes; follow-ups are at most %d", total, api.MaxReply)
	}
	ct, err := io.ReadAll(sealed)
	if err != nil {
		return err
	}
	sum, err := sealed.SHA256()
	if err != nil {
		return err
	}
	r, err := c.PostFollowup(e.ctx, rc.Token(), to.desk, to.category, ct)
	if err != nil {
		return err
	}
	what := "sent"
	if survey != nil {
		what = "your answer was sent"
	}
	fmt.Fprintf(e.stderr, "%s: encrypted on this machine to %d handler(s) of %s\n", what, len(recipients), to)
	// Sent to the desk's handlers as its key vouches for them: remember
	// that key, so that a later change of it is refused.
	if err := remember(); err != nil {
		return fail(ExitError, "", err, "the follow-up was sent, but the desk's key could not be recorded")
	}
	if r.Size != int64(len(ct)) || r.SHA256 != sum {
		return fail(ExitTrust, "send it again; if it repeats, the relay is misbehaving", nil, "the relay's receipt does not match what was sent")
	}
	if o.json {
		return writeJSON(e.stdout, followupToJSON(r, to.desk, to.category, len(recipients)))
	}
	fmt.Fprintf(e.stdout, "stored\n  id:       %s\n  size:     %d bytes\n  sha256:   %s\n", clean(r.ID, false), r.Size, r.SHA256)
	return nil
}

// surveyAnswers are the answers of --satisfaction and --comment-file.
func surveyAnswers(e *env, o *followupOptions) ([]crypto.Answer, error) {
	if o.satisfaction < 1 || o.satisfaction > 5 {
		return nil, fail(ExitUsage, "give --satisfaction 1 (not at all satisfied) to 5 (very satisfied)", nil, "--satisfaction %d is not a score", o.satisfaction)
	}
	if len(o.files) > 0 {
		return nil, fail(ExitUsage, "send files in a follow-up of their own", nil, "--file does not go with --satisfaction")
	}
	var comment []byte
	if o.commentFile != "" {
		var err error
		if comment, err = readMessage(e, o.commentFile); err != nil {
			return nil, err
		}
	}
	a, err := crypto.SurveyAnswers(o.satisfaction, strings.TrimSpace(string(comment)))
	if err != nil {
		return nil, fail(ExitUsage, fmt.Sprintf("keep the comment under %d bytes", crypto.MaxSurveyComment), err, "cannot send the answer")
	}
	return a, nil
}
