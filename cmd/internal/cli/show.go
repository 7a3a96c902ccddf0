package cli

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/relay/api"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

type showOptions struct {
	identity string
	json     bool
}

func newShow(e *env) *cobra.Command {
	var o showOptions
	cmd := &cobra.Command{
		Use:   "show ID -i KEY",
		Short: "decrypt a case and print its report",
		Long: `Decrypt a case on this machine and print its report: the answers and the list of
attachments, each checked against its SHA-256. ID may be any unique prefix of the
case ID shown by 'amana list'. Text from submitters is printed with control
characters escaped, so it cannot drive your terminal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runShow(e, &o, args[0]) },
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the case as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("identity")
	return cmd
}

// openedCase is a case being read (handler.Case), with the store it is in.
type openedCase struct {
	*handler.Case
	store *cases.Store
	ident *crypto.Identity // the identity that opened it, loaded once
	// selfSum is the plaintext of a self-sealed case, once read.
	selfSum crypto.CustodyFile
}

// openCase resolves an ID prefix and decrypts the case, with the hints a
// handler needs when it cannot.
func (e *env) openCase(prefix, identity string) (*openedCase, error) {
	st, err := e.cases()
	if err != nil {
		return nil, err
	}
	cid, err := st.Resolve(prefix)
	if errors.Is(err, cases.ErrNotFound) {
		return nil, fail(ExitUsage, "run 'amana list' to see the case IDs", nil, "no case %q", prefix)
	} else if errors.Is(err, cases.ErrAmbiguous) {
		return nil, fail(ExitUsage, "give more characters of the ID", nil, "%q matches more than one case", prefix)
	} else if err != nil {
		return nil, err
	}
	ident, err := e.loadIdentity(identity)
	if err != nil {
		return nil, err
	}
	c, err := handler.Open(st, cid, ident.Age())
	switch {
	case errors.Is(err, handler.ErrNotForYou):
		return nil, fail(ExitKey, "this case was routed to other handlers; ask one of them", nil, "case %s is not encrypted to your key", cid[:12])
	case errors.Is(err, handler.ErrDamaged):
		return nil, damaged(cid, err)
	case errors.Is(err, cases.ErrBadMeta):
		return nil, fail(ExitError, "restore its case.json from a backup, or remove the case's folder and run 'amana pull' while the relay still holds it", err, "cannot open case %s", cid[:12])
	case err != nil:
		return nil, fail(ExitError, "", err, "cannot open case %s", cid[:12])
	}
	return &openedCase{Case: c, store: st, ident: ident}, nil
}

func damaged(id string, err error) error {
	return fail(ExitError, "the other cases are unaffected; ask the submitter to send it again if you can reach them", err, "case %s is damaged", id[:12])
}

func runShow(e *env, o *showOptions, prefix string) error {
	c, err := e.openCase(prefix, o.identity)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.json {
		if err := e.printShowJSON(c); err != nil {
			return err
		}
		e.noteDecrypt(c)
		return nil
	}
	st, meta, br := c.store, c.Meta, c.Bundle
	if c.Self != nil {
		h := sha256.New()
		n, err := io.Copy(h, c.Self)
		if err != nil {
			return damaged(meta.ID, err)
		}
		c.selfSum = crypto.CustodyFile{Name: "submission.bin", SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}
		e.noteDecrypt(c)
		fmt.Fprintf(e.stdout, "case:      %s\ndesk:      %s\n", meta.ID, clean(meta.Desk, false))
		if meta.Category != "" {
			fmt.Fprintf(e.stdout, "category:  %s\n", clean(meta.Category, false))
		}
		fmt.Fprintf(e.stdout, "sealed by: the submitter, with age, outside Amana: a single file of %s, not a report form\n", ui.Size(n))
		fmt.Fprintf(e.stdout, "\nto save it: amana export %s --out DIR -i KEY\n", meta.ID[:12])
		return nil
	}
	r := br.Report()
	w := e.stdout
	fmt.Fprintf(w, "case:      %s\n", meta.ID)
	if handler.InThread(meta) {
		fmt.Fprintf(w, "kind:      %s\n", meta.Kind)
		if err := e.threadOf(w, st, meta); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "desk:      %s\n", clean(r.Desk, false))
	if r.Category != "" {
		fmt.Fprintf(w, "category:  %s\n", clean(r.Category, false))
	}
	fmt.Fprintf(w, "submitted: %s (to the hour)\n", clean(r.Submitted, false))
	switch r.SealedBy {
	case crypto.SealedByClient:
		fmt.Fprintf(w, "sealed by: the submitter's own device\n")
	case crypto.SealedByServer:
		fmt.Fprintf(w, "sealed by: the relay, on behalf of a submitter without JavaScript (the relay saw the plaintext in memory)\n")
	default:
		fmt.Fprintf(w, "sealed by: %s\n", clean(r.SealedBy, false))
	}
	if meta.Kind == api.KindReply {
		fmt.Fprintf(w, "from:      %s\n", replyAuthor(r, e.keptDesk(meta.Relay, meta.Desk), c.ident))
	}
	if r.Language != "" {
		fmt.Fprintf(w, "language:  %s\n", clean(r.Language, false))
	}
	for _, a := range r.Answers {
		fmt.Fprintf(w, "\n%s:\n%s\n", clean(a.Field, false), clean(a.Value, true))
	}
	// Read every attachment through, so the listing says each one
	// verified (or, sent without a SHA-256 by the submitter's amana, that
	// its SHA-256 was computed now), and through exiftool, which says what
	// its metadata reveals.
	var problems int
	var lines []string
	meter := e.newMetadataMeter()
	for i := 1; ; i++ {
		a, rd, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return damaged(meta.ID, err)
		}
		found, err := meter.read(e.ctx, rd, a.Size)
		status := hashStatus(a)
		if err != nil {
			status = "DAMAGED: " + err.Error()
			problems++
		}
		lines = append(lines, fmt.Sprintf("  %d. %s  %s  %s  %s", i, clean(a.Name, false), ui.Size(a.Size), clean(a.Type, false), status))
		lines = append(lines, found...)
		if err != nil {
			break
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nattachments (%d):\n", len(r.Attachments))
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		meter.summary(w)
		fmt.Fprintf(w, "\nto save them: amana export %s --out DIR -i KEY (--clean adds copies cleaned of metadata)\n", meta.ID[:12])
	}
	e.noteDecrypt(c)
	if problems > 0 {
		return damaged(meta.ID, errors.New("an attachment does not match its SHA-256"))
	}
	if !meta.Opened {
		meta.Opened = true
		st.SaveMeta(meta)
	}
	if r.Mailbox != "" && meta.Kind == "" {
		if meta.Mailbox == "" {
			meta.Mailbox = r.Mailbox
		}
		return e.showThread(st, meta, c.ident)
	}
	return nil
}

// showThread prints the replies and follow-ups filed under a mailbox, in
// the order they were written (handler.SortThread).
func (e *env) showThread(st *cases.Store, report *cases.Meta, id *crypto.Identity) error {
	items, err := handler.Thread(st, report.Mailbox, id.Age())
	if err != nil {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintf(e.stdout, "\nthread: no replies or follow-ups yet (reply with 'amana reply')\n")
		return nil
	}
	desk := e.keptDesk(report.Relay, report.Desk)
	fmt.Fprintf(e.stdout, "\nthread (%d), in the order written:\n", len(items))
	for i, it := range items {
		m := it.Meta
		if it.Report == nil {
			fmt.Fprintf(e.stdout, "\n-- %s, received %s: cannot be opened (%s)\n", m.Kind, clean(m.Received, false), clean(it.Err.Error(), false))
			continue
		}
		r := it.Report
		who := "the submitter"
		if m.Kind == api.KindReply {
			who = replyAuthor(r, desk, id)
		}
		fmt.Fprintf(e.stdout, "\n-- %s from %s, received %s (%s)\n", m.Kind, who, clean(m.Received, false), m.ID[:12])
		if i > 0 && it.Seq() > 0 && it.Seq() == items[i-1].Seq() {
			fmt.Fprintf(e.stdout, "   (same place in the thread as the item above: its writer had not read it, or it is the submitter's again; ordered by hour, then arrival)\n")
		}
		if threadItemText(e.stdout, r) {
			continue
		}
		for _, a := range r.Answers {
			fmt.Fprintf(e.stdout, "%s\n", clean(a.Value, true))
		}
		if len(r.Attachments) == 0 {
			continue
		}
		f, err := os.Open(st.BundlePath(m.ID))
		if err != nil {
			return err
		}
		if br, err := crypto.OpenBundle(f, id.Age()); err == nil {
			for {
				a, rd, err := br.Next()
				if err != nil {
					break
				}
				status := ""
				if _, err := io.Copy(io.Discard, rd); err != nil {
					status = ", DAMAGED"
				}
				fmt.Fprintf(e.stdout, "   attached: %s (%s%s)\n", clean(a.Name, false), ui.Size(a.Size), status)
			}
		}
		f.Close()
	}
	return nil
}

// replyAuthor says who signed a reply: the handler's name from the desk's
// manifest this machine last verified (kept by 'amana pull' and 'amana
// reply'), or, without one, the fingerprint of the key the reply names.
func replyAuthor(r *crypto.Report, desk *crypto.Manifest, me *crypto.Identity) string {
	you := ""
	if r.From == me.Card().KeyID() {
		you = " (you)"
	}
	if desk != nil {
		if card, err := crypto.VerifyReply(r, desk.Cards()); err == nil {
			return "handler " + clean(card.Name, false) + you
		}
	}
	pub, err := base64.RawURLEncoding.DecodeString(r.From)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return "the desk: signature does NOT verify"
	}
	card := &crypto.Card{Name: "handler", SignKey: pub}
	if _, err := crypto.VerifyReply(r, []*crypto.Card{card}); err != nil {
		return "the desk: signature does NOT verify"
	}
	if desk != nil {
		return "key " + crypto.KeyFingerprint(pub) + you + ", which is NOT a handler in the desk's manifest"
	}
	return "handler key " + crypto.KeyFingerprint(pub) + you + " (no manifest of the desk here to name it: 'amana pull' keeps one)"
}

// threadOf prints which case a follow-up or a reply belongs to.
func (e *env) threadOf(w io.Writer, st *cases.Store, meta *cases.Meta) error {
	if !handler.InThread(meta) {
		return nil
	}
	all, err := st.List()
	if err != nil {
		return err
	}
	if rep := handler.ThreadOf(all, meta.Mailbox); rep != nil {
		fmt.Fprintf(w, "thread of: case %s ('amana show %s' prints the whole thread)\n", rep.ID, rep.ID[:12])
	} else {
		fmt.Fprintf(w, "thread of: a report not in this case store (mailbox %s)\n", clean(meta.Mailbox, false))
	}
	return nil
}

// hashStatus says how an attachment read to its end was checked: against
// the SHA-256 its report.json gave ("verified"), or, when the submitter's
// amana sealed it in one read and gave none, not against anything: its
// SHA-256 was computed as it was opened, and the encryption's
// authentication is what vouches for its bytes.
func hashStatus(a *crypto.Attachment) string {
	if a.Computed {
		return "SHA-256 computed when opened"
	}
	return "verified"
}

// exportedReport is report.json as export writes it: the report, and for
// each attachment whose SHA-256 the reader computed (report.json gave
// none, protocol.md §8.7.1) "sha256_computed": true, so that the copy
// tells a computed SHA-256 from one the submitter's client gave. The
// member exists only in exported copies, never in a sealed bundle.
type exportedReport struct {
	*crypto.Report
	Attachments []exportedAttachment `json:"attachments"`
}

type exportedAttachment struct {
	crypto.Attachment
	SHA256Computed bool `json:"sha256_computed,omitempty"`
}

// hashWords is hashStatus as export and evidence export write it.
func hashWords(a *crypto.Attachment) string {
	if a.Computed {
		return "SHA-256 computed when opened"
	}
	return "SHA-256 verified"
}

// reportJSON is report.json as export writes it (exportedReport).
func reportJSON(r *crypto.Report) ([]byte, error) {
	x := exportedReport{Report: r}
	if r.Attachments != nil {
		x.Attachments = make([]exportedAttachment, len(r.Attachments))
	}
	for i, a := range r.Attachments {
		x.Attachments[i] = exportedAttachment{Attachment: a, SHA256Computed: a.Computed}
	}
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
