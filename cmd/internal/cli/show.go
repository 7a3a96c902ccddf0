package cli

import (
	"crypto/ed25519"
	"encoding/base64"
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
	case err != nil:
		return nil, fail(ExitError, "", err, "cannot open case %s", cid[:12])
	}
	return &openedCase{Case: c, store: st}, nil
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
		return e.printShowJSON(c)
	}
	st, meta, br := c.store, c.Meta, c.Bundle
	if c.Self != nil {
		n, err := io.Copy(io.Discard, c.Self)
		if err != nil {
			return damaged(meta.ID, err)
		}
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
	if r.Language != "" {
		fmt.Fprintf(w, "language:  %s\n", clean(r.Language, false))
	}
	for _, a := range r.Answers {
		fmt.Fprintf(w, "\n%s:\n%s\n", clean(a.Field, false), clean(a.Value, true))
	}
	// Read every attachment through, so the listing says each one verified.
	var problems int
	var lines []string
	for i := 1; ; i++ {
		a, rd, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return damaged(meta.ID, err)
		}
		_, err = io.Copy(io.Discard, rd)
		status := "verified"
		if err != nil {
			status = "DAMAGED: " + err.Error()
			problems++
		}
		lines = append(lines, fmt.Sprintf("  %d. %s  %s  %s  %s", i, clean(a.Name, false), ui.Size(a.Size), clean(a.Type, false), status))
		if err != nil {
			break
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nattachments (%d):\n", len(r.Attachments))
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintf(w, "\nto save them: amana export %s --out DIR -i KEY\n", meta.ID[:12])
	}
	if problems > 0 {
		return damaged(meta.ID, errors.New("an attachment does not match its SHA-256"))
	}
	if !meta.Opened {
		meta.Opened = true
		st.SaveMeta(meta)
	}
	if r.Mailbox != "" && meta.Kind == "" {
		return e.showThread(st, r.Mailbox, o.identity)
	}
	return nil
}

// showThread prints the replies and follow-ups filed under a mailbox, in
// the order they arrived.
func (e *env) showThread(st *cases.Store, mailbox, identity string) error {
	all, err := st.List()
	if err != nil {
		return err
	}
	var items []*cases.Meta
	for _, m := range all {
		if m.Mailbox == mailbox && (m.Kind == api.KindReply || m.Kind == api.KindFollowup) {
			items = append(items, m)
		}
	}
	if len(items) == 0 {
		fmt.Fprintf(e.stdout, "\nthread: no replies or follow-ups yet (reply with 'amana reply')\n")
		return nil
	}
	id, err := e.loadIdentity(identity)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nthread (%d):\n", len(items))
	for _, m := range items {
		f, err := os.Open(st.BundlePath(m.ID))
		if err != nil {
			return err
		}
		br, err := crypto.OpenBundle(f, id.Age())
		if err != nil {
			f.Close()
			fmt.Fprintf(e.stdout, "\n-- %s, received %s: cannot be opened (%s)\n", m.Kind, clean(m.Received, false), clean(err.Error(), false))
			continue
		}
		r := br.Report()
		who := "the submitter"
		if m.Kind == api.KindReply {
			who = "the desk: signature does NOT verify"
			if pub, err := base64.RawURLEncoding.DecodeString(r.From); err == nil && len(pub) == ed25519.PublicKeySize {
				card := &crypto.Card{Name: "handler", SignKey: pub}
				if _, err := crypto.VerifyReply(r, []*crypto.Card{card}); err == nil {
					who = "handler key " + crypto.KeyFingerprint(pub)
					if r.From == id.Card().KeyID() {
						who += " (you)"
					}
				}
			}
		}
		fmt.Fprintf(e.stdout, "\n-- %s from %s, received %s\n", m.Kind, who, clean(m.Received, false))
		for _, a := range r.Answers {
			fmt.Fprintf(e.stdout, "%s\n", clean(a.Value, true))
		}
		for {
			a, rd, err := br.Next()
			if err != nil {
				break
			}
			io.Copy(io.Discard, rd)
			fmt.Fprintf(e.stdout, "   attached: %s (%s)\n", clean(a.Name, false), ui.Size(a.Size))
		}
		f.Close()
	}
	return nil
}

func reportJSON(r *crypto.Report) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
