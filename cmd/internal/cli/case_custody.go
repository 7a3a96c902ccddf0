package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/relay/api"
)

type caseCustodyOptions struct {
	identity string
	json     bool
}

func newCaseCustody(e *env) *cobra.Command {
	var o caseCustodyOptions
	cmd := &cobra.Command{
		Use:   "custody ID -i KEY",
		Short: "print a case's chain of custody",
		Long: `Print the custody events of a case held on this machine, in order: who decrypted
('amana show'), exported ('amana export'), derived a cleaned copy ('amana export
--clean'), shared ('amana case share'), referred ('amana case refer') or wrote an
evidence bundle of it ('amana evidence export'), when, which files with their
SHA-256, and why when the handler said. Each event is signed by its handler's key
and verified against the desk's manifest when it arrives; a derivative names the
SHA-256 of its original, the tool and its version.

Events recorded on this machine wait in the journal's outbox until 'amana sync'
sends them to the other handlers of the case's category; events of other handlers
appear after 'amana sync' fetches them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runCaseCustody(e, &o, args[0]) },
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the chain as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("identity")
	return cmd
}

// custodyJSON is one custody event as 'amana case custody --json' prints it.
type custodyJSON struct {
	Author handlerJSON     `json:"author"`
	Seq    uint64          `json:"seq"`
	Time   string          `json:"time"`
	Event  string          `json:"event"` // the event's digest (§8.11)
	Change *crypto.Custody `json:"custody"`
}

func runCaseCustody(e *env, o *caseCustodyOptions, prefix string) error {
	c, err := e.openJournalCase(prefix, o.identity, "")
	if err != nil {
		return err
	}
	evs, err := c.j.CustodyEvents(c.meta.ID)
	if err != nil {
		return fail(ExitError, "run 'amana sync' to fetch the case's changes again", err, "cannot read the journal of case %s", c.meta.ID[:12])
	}
	if o.json {
		out := struct {
			Case   string        `json:"case"`
			Events []custodyJSON `json:"events"`
		}{c.meta.ID, []custodyJSON{}}
		for _, s := range evs {
			ev := s.Event
			out.Events = append(out.Events, custodyJSON{handlerRef(c.man, ev.Author), ev.Seq, ev.Time, crypto.EventDigest(ev), ev.Change.Custody})
		}
		return writeJSON(e.stdout, out)
	}
	w := e.stdout
	fmt.Fprintf(w, "case:    %s\ndesk:    %s\n", c.meta.ID, clean(c.meta.Desk, false))
	if len(evs) == 0 {
		fmt.Fprintf(w, "\ncustody: no events yet ('amana show', 'amana export' and 'amana evidence export' record them)\n")
		return nil
	}
	fmt.Fprintf(w, "\ncustody (%d), oldest first; each signed by its handler:\n", len(evs))
	for _, s := range evs {
		printCustody(w, c.man, c.id, s.Event)
	}
	return nil
}

// printCustody prints one custody event: who, when, what, the files.
func printCustody(w io.Writer, m *crypto.Manifest, me *crypto.Identity, ev *crypto.Event) {
	d := ev.Change.Custody
	fmt.Fprintf(w, "\n%s  %s #%d: %s\n", clean(ev.Time, false), nameOf(m, ev.Author, me), ev.Seq, custodyVerb(d.Action))
	if d.Detail != "" {
		fmt.Fprintf(w, "  detail: %s\n", clean(d.Detail, false))
	}
	if d.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", clean(d.Reason, false))
	}
	for _, f := range d.Files {
		item := ""
		if f.Item != "" {
			item = " (thread item " + f.Item[:12] + ")"
		}
		fmt.Fprintf(w, "  file:   %s  sha256 %s  %d bytes%s\n", clean(f.Name, false), f.SHA256, f.Size, item)
	}
	if v := d.Derived; v != nil {
		fmt.Fprintf(w, "  made:   %s  sha256 %s  %d bytes, with %s %s, from sha256 %s\n", clean(v.Name, false), v.SHA256, v.Size, clean(v.Tool, false), clean(v.ToolVersion, false), v.From)
	}
}

func custodyVerb(action string) string {
	switch action {
	case crypto.CustodyDecrypt:
		return "decrypted the case to read it"
	case crypto.CustodyExport:
		return "exported files"
	case crypto.CustodyDerive:
		return "derived a cleaned copy"
	case crypto.CustodyShare:
		return "shared the case's history"
	case crypto.CustodyRefer:
		return "referred the case"
	case crypto.CustodyEvidenceExport:
		return "wrote an evidence bundle"
	}
	return clean(action, false)
}

// offlineRelay is a journal.Relay that sends nothing: a custody event is
// recorded on this machine and waits in the journal's outbox for 'amana
// sync', so that reading a case never touches the network.
type offlineRelay struct{}

var errOffline = errors.New("not sent: custody events go with the next 'amana sync'")

func (offlineRelay) PostEvent(context.Context, string, string, string, string, []byte) (string, error) {
	return "", errOffline
}
func (offlineRelay) Events(context.Context) ([]api.Item, error)            { return nil, errOffline }
func (offlineRelay) DownloadEvent(context.Context, string) ([]byte, error) { return nil, errOffline }
func (offlineRelay) AckEvent(context.Context, string) (api.Ack, error)     { return api.Ack{}, errOffline }

// errNoCustody: a custody event could not be recorded.
type errNoCustody struct {
	why  string
	hint string
	err  error
}

func (e *errNoCustody) Error() string { return e.why }
func (e *errNoCustody) Unwrap() error { return e.err }

// recordCustody records a custody event on the case meta is, or, for a
// follow-up or a reply, on the report of its thread (its files then name
// the item). It sends nothing: the event waits in the outbox.
func (e *env) recordCustody(st *cases.Store, meta *cases.Meta, id *crypto.Identity, d crypto.Custody) (*crypto.Event, *cases.Meta, error) {
	target := meta
	if handler.InThread(meta) {
		all, err := st.List()
		if err != nil {
			return nil, nil, err
		}
		target = handler.ThreadOf(all, meta.Mailbox)
		if target == nil {
			return nil, nil, &errNoCustody{why: "its report is not in this case store", hint: "'amana pull' fetches it"}
		}
		for i := range d.Files {
			if d.Files[i].Item == "" {
				d.Files[i].Item = meta.ID
			}
		}
	}
	j, err := journal.Open(st, id)
	if err != nil {
		return nil, target, err
	}
	t := e.trust(target.Relay)
	if _, err := t.Manifest(target.Desk); err != nil {
		return nil, target, &errNoCustody{why: "no verified manifest of its desk is kept here", hint: "'amana pull' or 'amana sync' keeps one", err: err}
	}
	ev, err := j.Record(e.ctx, offlineRelay{}, t, target.ID, crypto.Change{Custody: &d})
	if ev != nil && errors.Is(err, journal.ErrNotPosted) {
		err = nil
	}
	return ev, target, err
}

// noteCustody records a custody event and says so on stderr; when it
// cannot be recorded it warns, and the command goes on.
func (e *env) noteCustody(st *cases.Store, meta *cases.Meta, id *crypto.Identity, d crypto.Custody) *crypto.Event {
	ev, target, err := e.recordCustody(st, meta, id, d)
	if err != nil {
		var nc *errNoCustody
		hint := "check the case with 'amana case show'"
		why := err.Error()
		if errors.As(err, &nc) {
			hint, why = nc.hint, nc.why
		}
		fmt.Fprintf(e.stderr, "amana: warning: the %s of case %s is NOT in its custody log: %s\nhint: %s\n", d.Action, meta.ID[:12], clean(why, false), hint)
		return nil
	}
	fmt.Fprintf(e.stderr, "custody: %s recorded as change %d of case %s ('amana case custody'; 'amana sync' sends it)\n", d.Action, ev.Seq, target.ID[:12])
	return ev
}

// custodyFiles lists attachments as a custody record names them.
func custodyFiles(item string, as []crypto.Attachment) []crypto.CustodyFile {
	var out []crypto.CustodyFile
	for _, a := range as {
		out = append(out, crypto.CustodyFile{Item: item, Name: a.Name, SHA256: a.SHA256, Size: a.Size})
	}
	return out
}

// oneLine checks a --reason: one line of at most max bytes.
func oneLine(flag, v string, max int) error {
	if strings.ContainsAny(v, "\r\n") || len(v) > max || !utf8.ValidString(v) {
		return fail(ExitUsage, fmt.Sprintf("keep it to one line of at most %d bytes; 'amana case note' can say more", max), nil, "%s is too long or not one line of text", flag)
	}
	return nil
}
