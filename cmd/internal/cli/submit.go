package cli

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/client"
)

type submitOptions struct {
	relay       string
	desk        string
	category    string
	messageFile string
	files       []string
	fingerprint string
	lang        string
	json        bool
}

func newSubmit(e *env) *cobra.Command {
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit --relay URL --desk ID --message-file FILE [--file FILE]...",
		Short: "encrypt a report with attachments and send it to a desk",
		Long: `Fetch the desk's signed manifest, check it, build the report bundle (report.json and
the attached files, padded), encrypt it on this machine to the handlers of the chosen
category, and upload it. Large submissions are uploaded in pieces and resume after a
broken connection. The receipt printed at the end proves the relay stored exactly
what was sent.

Give --desk-fingerprint (as the desk publishes it) to pin the desk's key; then nothing
is written on this machine. Without it the key is trusted on first use and
remembered in --home, and amana refuses to continue if it ever changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runSubmit(e, &o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.relay, "relay", "", "relay URL (required)")
	f.StringVar(&o.desk, "desk", "", "desk id (required)")
	f.StringVar(&o.category, "category", "", "category of the report; it decides which handlers can read it")
	f.StringVar(&o.messageFile, "message-file", "", "file with the report text, or - for standard input (required)")
	f.StringArrayVar(&o.files, "file", nil, "a file to attach (repeat for more)")
	f.StringVar(&o.fingerprint, "desk-fingerprint", "", "the desk's fingerprint; refuse any other key")
	f.StringVar(&o.lang, "lang", "", "language of the report, like ar or en")
	f.BoolVar(&o.json, "json", false, "print the receipt and the relay's record as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("relay")
	cmd.MarkFlagRequired("desk")
	cmd.MarkFlagRequired("message-file")
	return cmd
}

func runSubmit(e *env, o *submitOptions) error {
	// What this machine holds is read first: a missing file is said before
	// anything reaches the network.
	msg, files, closeAll, err := readOnePass(e, o.messageFile, o.files)
	defer closeAll()
	if err != nil {
		return err
	}
	c, done, err := e.relayClient(o.relay, nil)
	if err != nil {
		return err
	}
	defer done()
	m, remember, err := e.fetchDesk(c, o.relay, o.desk, o.fingerprint, allowFirstContact, recordUnpinned)
	if err != nil {
		return err
	}
	cards, err := m.Route(o.category)
	if err != nil {
		var ids []string
		for _, cat := range m.Categories {
			ids = append(ids, cat.ID)
		}
		hint := "choose one of: " + strings.Join(ids, ", ") + " (or no --category)"
		if len(ids) == 0 {
			hint = "this desk has no categories: leave out --category"
		}
		return fail(ExitUsage, hint, nil, "desk %q has no category %q", o.desk, o.category)
	}
	rcpt := crypto.NewReceipt()
	report := &crypto.Report{
		Desk:      m.Desk,
		Category:  o.category,
		Language:  o.lang,
		Submitted: crypto.SubmittedAt(time.Now()),
		SealedBy:  crypto.SealedByClient,
		Client:    crypto.ClientCLI,
		Answers:   []crypto.Answer{{Field: "message", Value: string(msg)}},
	}
	sealed, total, err := crypto.SealReport(crypto.RecipientsOf(cards), rcpt, report, files)
	if err != nil {
		return fail(ExitError, "", err, "cannot encrypt the report")
	}
	defer sealed.Close()
	// The ciphertext's SHA-256, for the receipt check, is taken beside
	// the encryption, on the other core.
	sealed.HashCiphertext()
	if total > m.Limits.MaxSubmissionBytes {
		return fail(ExitUsage, "send fewer or smaller files, or split them over several submissions", nil,
			"the encrypted report is %s; desk %q accepts at most %s", ui.Size(total), m.Desk, ui.Size(m.Limits.MaxSubmissionBytes))
	}
	bar := e.bar(total, "uploading")
	rc, err := c.Submit(e.ctx, m.Desk, o.category, sealed, total, func(n int64) {
		if bar != nil {
			bar.Set64(n)
		}
	})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	sum, err := sealed.SHA256()
	if err != nil {
		return fail(ExitError, "", err, "cannot encrypt the report")
	}
	if rc.Size != total || rc.SHA256 != sum {
		return fail(ExitTrust, "submit again; if it happens again the relay is misbehaving", nil,
			"the relay's receipt does not match what was sent")
	}
	if err := remember(); err != nil {
		fmt.Fprintf(e.stderr, "amana: warning: the desk's key could not be remembered for next time: %v\n", err)
	}
	fmt.Fprintf(e.stderr, "sent: encrypted on this machine to %d handler(s) of desk %q; the relay cannot read it\n", len(cards), m.Desk)
	if o.json {
		if err := writeJSON(e.stdout, submitToJSON(rcpt.Words(), rc, o.category, len(cards))); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "later: 'amana check --relay %s' shows the desk's replies; 'amana followup' sends more\n", o.relay)
		return nil
	}
	fmt.Fprintf(e.stdout, "receipt words (write them down; losing them loses the conversation):\n  %s\n", rcpt.Words())
	fmt.Fprintf(e.stdout, "the same receipt as digits (either form opens the desk's replies, for anyone who finds it):\n  %s\n", rcpt.Digits())
	fmt.Fprintf(e.stdout, "stored\n  id:       %s\n  desk:     %s\n  size:     %d bytes\n  sha256:   %s\n  received: %s\n",
		clean(rc.ID, false), clean(rc.Desk, false), rc.Size, rc.SHA256, clean(rc.Received, false))
	fmt.Fprintf(e.stderr, "later: 'amana check --relay %s' shows the desk's replies; 'amana followup' sends more\n", o.relay)
	return nil
}

// readOnePass is readInput for what the client seals: the message, and
// the files opened by openOnePass.
func readOnePass(e *env, messageFile string, paths []string) ([]byte, []crypto.File, func(), error) {
	msg, err := readMessage(e, messageFile)
	if err != nil {
		return nil, nil, func() {}, err
	}
	files, closeAll, err := openOnePass(paths)
	return msg, files, closeAll, err
}

// openAttachments opens files to attach to an item that keeps each file's
// SHA-256 in report.json (a handler's reply): each is hashed once here,
// and sealing reads it again without hashing and fails if it changed in
// between.
func openAttachments(paths []string) ([]crypto.File, func(), error) {
	return openFiles(paths, crypto.HashFile)
}

// openOnePass opens files to attach to a report or follow-up the client
// seals: sealing reads each once, hashing nothing, and fails if it changed
// since it was opened; report.json carries no sha256 for them and the
// handler's amana computes it as it opens the bundle (docs/protocol.md
// §8.7.1).
func openOnePass(paths []string) ([]crypto.File, func(), error) {
	return openFiles(paths, crypto.OpenFile)
}

func openFiles(paths []string, open func(f *os.File, name, typ string) (crypto.File, error)) ([]crypto.File, func(), error) {
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	var files []crypto.File
	if len(paths) > crypto.MaxAttachments {
		return nil, closeAll, fail(ExitUsage, "put the files in an archive, or split them over several submissions", nil, "at most %d files", crypto.MaxAttachments)
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, closeAll, fail(ExitError, "check the --file path", err, "cannot open %s", p)
		}
		opened = append(opened, f)
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return nil, closeAll, fail(ExitUsage, "attach regular files only", err, "%s is not a regular file", p)
		}
		typ := mime.TypeByExtension(strings.ToLower(filepath.Ext(p)))
		if typ == "" {
			typ = "application/octet-stream"
		}
		file, err := open(f, filepath.Base(p), typ)
		if err != nil {
			return nil, closeAll, fail(ExitError, "", err, "reading %s", p)
		}
		files = append(files, file)
	}
	return files, closeAll, nil
}

// knownDesk is what trust-on-first-use remembers of a desk.
type knownDesk struct {
	Key    string `json:"key"`
	Serial uint64 `json:"serial"`
	SHA256 string `json:"sha256"` // of the manifest envelope at that serial
}

// knownDesks reads what trust-on-first-use remembers, by knownDeskKey; a
// machine with no record yet has an empty map.
func (e *env) knownDesks() (path string, known map[string]knownDesk, err error) {
	path = filepath.Join(e.home, "known_desks.json")
	known = map[string]knownDesk{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &known); err != nil {
			return "", nil, fail(ExitError, "repair or remove "+path, err, "cannot read known desks")
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", nil, fail(ExitError, "", err, "cannot read known desks")
	}
	return path, known, nil
}

// knownDeskKey is the known_desks.json key of desk on relay.
func knownDeskKey(relay, desk string) string { return strings.TrimRight(relay, "/") + " " + desk }

// firstContact says whether fetchDesk may trust a desk this machine has no
// record of (trust on first use).
type firstContact bool

const (
	allowFirstContact  firstContact = true  // submit and reply: a new desk is trusted on first use
	refuseFirstContact firstContact = false // check and followup: only a remembered key or --desk-fingerprint
)

// recording says whether fetchDesk records a desk whose key a fingerprint
// confirmed.
type recording int

const (
	// recordUnpinned: submit and reply record what they trust without a
	// fingerprint; a matching --desk-fingerprint leaves no record.
	recordUnpinned recording = iota
	// recordPinned: check and followup also record a key --desk-fingerprint
	// confirmed, in place of any other, so that a later change of key is
	// refused without the flag.
	recordPinned
	// recordNothing: --no-record; the fingerprint alone is trusted.
	recordNothing
)

// errDeskUnknown: the desk has no record on this machine for this relay and
// no fingerprint was given, and first contact was refused.
var errDeskUnknown = errors.New("no key was remembered for it and no --desk-fingerprint was given")

// fetchDesk fetches and verifies a desk's manifest. With a fingerprint, the
// signer must match it (and by default nothing is remembered). Without one, the signer
// must match the key remembered for this relay and desk; a change of key, a
// lower serial, or other content under the same serial is refused. A desk
// with no record is trusted on first use only when first allows it;
// otherwise it is refused with an Error wrapping errDeskUnknown. The
// returned function records the desk; call it once the submission has
// succeeded, so a failed attempt leaves no trace. With recordPinned, a
// matching fingerprint is recorded too, replacing a record of another key
// (the user confirmed the new one); with recordNothing, never.
func (e *env) fetchDesk(c *client.Client, relay, desk, fingerprint string, first firstContact, rec recording) (*crypto.Manifest, func() error, error) {
	nothing := func() error { return nil }
	raw, err := c.Manifest(e.ctx, desk)
	if err != nil {
		return nil, nil, err
	}
	m, key, err := crypto.OpenManifest(raw, nil)
	if err != nil {
		return nil, nil, fail(ExitTrust, "the relay may be misconfigured or tampered with; do not submit until the desk confirms it", err, "the desk manifest does not verify")
	}
	if m.Desk != desk {
		return nil, nil, fail(ExitTrust, "the relay may be tampered with; do not submit until the desk confirms it", nil, "the relay served desk %q when %q was asked", m.Desk, desk)
	}
	fp := crypto.KeyFingerprint(key)
	if fingerprint != "" {
		if !sameFingerprint(fingerprint, fp) {
			return nil, nil, fail(ExitTrust, "do not submit: someone may be impersonating the desk; confirm the fingerprint with the desk another way",
				nil, "desk fingerprint mismatch: the relay's desk is signed by %s", fp)
		}
		if rec != recordPinned {
			return m, nothing, nil
		}
	}
	pinned := fingerprint != ""
	path, known, err := e.knownDesks()
	if err != nil {
		return nil, nil, err
	}
	k := knownDeskKey(relay, desk)
	keyID := base64.RawURLEncoding.EncodeToString(key)
	sum := sha256.Sum256(raw)
	seen := knownDesk{Key: keyID, Serial: m.Serial, SHA256: hex.EncodeToString(sum[:])}
	// What check and followup say when they record a confirmed key, once
	// they have succeeded and do.
	announce := func() {}
	if prev, ok := known[k]; ok {
		if prev.Key != keyID && pinned {
			announce = func() {
				fmt.Fprintf(e.stderr, "amana: desk %q has a new key, fingerprint %s, which --desk-fingerprint confirms: it replaces the one remembered\n", desk, fp)
			}
		} else if prev.Key != keyID {
			oldFP := "unknown"
			if b, err := base64.RawURLEncoding.DecodeString(prev.Key); err == nil && len(b) == ed25519.PublicKeySize {
				oldFP = crypto.KeyFingerprint(ed25519.PublicKey(b))
			}
			fmt.Fprintf(e.stderr, "\n  WARNING: THE DESK'S KEY HAS CHANGED\n  before: %s\n  now:    %s\n\n", oldFP, fp)
			return nil, nil, fail(ExitTrust, "do not submit until the desk confirms its new fingerprint another way; then pass it with --desk-fingerprint",
				nil, "desk %q is signed by a different key than before", desk)
		}
		if prev.Key == keyID && (m.Serial < prev.Serial || m.Serial == prev.Serial && prev.SHA256 != "" && prev.SHA256 != seen.SHA256) {
			return nil, nil, fail(ExitTrust, "the relay is serving an old or altered manifest; try again later or tell the desk", nil,
				"desk manifest serial %d does not follow serial %d seen before", m.Serial, prev.Serial)
		}
		if prev == seen || rec == recordNothing {
			return m, nothing, nil
		}
	} else if pinned {
		announce = func() {
			fmt.Fprintf(e.stderr, "amana: remembered desk %q's key, fingerprint %s, as --desk-fingerprint confirms it: a later change of key is refused\n", desk, fp)
			fmt.Fprintf(e.stderr, "hint: pass --no-record to leave no record of the desk on this machine\n")
		}
	} else if first == refuseFirstContact {
		return nil, nil, fail(ExitTrust, "pass --desk-fingerprint with the fingerprint the desk publishes; check and followup never trust a desk on first contact",
			errDeskUnknown, "desk %q is not known on this machine", desk)
	} else {
		fmt.Fprintf(e.stderr, "amana: first contact with desk %q: trusting its key, fingerprint %s\n", desk, fp)
		fmt.Fprintf(e.stderr, "hint: compare it with the fingerprint the desk publishes; pass --desk-fingerprint to pin it and leave no record on this machine\n")
	}
	if rec == recordNothing {
		return m, nothing, nil
	}
	return m, func() error {
		known[k] = seen
		b, _ := json.MarshalIndent(known, "", "  ")
		if err := os.MkdirAll(e.home, 0o700); err != nil {
			return err
		}
		if err := cases.WriteFileSync(path, b); err != nil {
			return err
		}
		announce()
		return nil
	}, nil
}
