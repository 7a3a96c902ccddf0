package cli

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/evidence"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// The --json outputs. Each command prints one JSON value on standard output,
// indented, with the field names docs/cli.md ("JSON output") gives; its
// messages still go to standard error. Field names are stable: new fields
// may be added, none renamed or removed. No output carries more secret
// material than the command's text output already prints.

// writeJSON prints v as --json does. C1 control characters (U+0080 to
// U+009F, CSI among them), which encoding/json leaves raw and a terminal
// obeys, are written as \u escapes, as the text output escapes them: the
// same JSON, safe to look at.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeC1(b.Bytes()))
	return err
}

// escapeC1 writes each C1 control character in JSON text as a \u escape.
// Outside strings valid JSON holds only ASCII, so this changes no value.
func escapeC1(b []byte) []byte {
	if !bytes.Contains(b, []byte{0xc2}) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); i++ {
		if b[i] == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f {
			out = fmt.Appendf(out, `\u%04x`, b[i+1])
			i++
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// pullJSON is what 'amana pull --json' prints.
type pullJSON struct {
	Store      string        `json:"store"`
	Pulled     []string      `json:"pulled"`
	Acked      int           `json:"acked"`
	Duplicates int           `json:"duplicates"`
	Problems   []problemJSON `json:"problems"`
	Waiting    []pullWaiting `json:"waiting"`
	// Journal is what the case changes exchanged after the cases were;
	// absent with --no-sync.
	Journal *syncJSON `json:"journal,omitempty"`
}

type problemJSON struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

func printPullJSON(e *env, dir string, res *handler.PullResult, pending []pullWaiting, synced *syncJSON) error {
	out := pullJSON{Store: dir, Pulled: res.Pulled, Acked: res.Acked, Duplicates: res.Duplicates, Problems: []problemJSON{}, Waiting: pending, Journal: synced}
	if out.Pulled == nil {
		out.Pulled = []string{}
	}
	if out.Waiting == nil {
		out.Waiting = []pullWaiting{}
	}
	for _, p := range res.Problems {
		out.Problems = append(out.Problems, problemJSON{ID: p.ID, Error: p.Err.Error()})
	}
	return writeJSON(e.stdout, out)
}

// retentionText says when the relay deletes a case under r.
func retentionText(r crypto.Retention) string {
	if r.AfterFirstAck {
		return fmt.Sprintf("deleted %dh after the first handler pulls it, or after %d days if nobody does", r.DeleteAfterAckHours, r.KeepUnackedDays)
	}
	return fmt.Sprintf("kept until every handler it reaches has pulled it, or for %d days", r.KeepUnackedDays)
}

// deskJSON is what 'amana desk show --json' prints: the verified manifest.
type deskJSON struct {
	Desk        string             `json:"desk"`
	Title       string             `json:"title"`
	Description string             `json:"description"`
	Serial      uint64             `json:"serial"`
	Fingerprint string             `json:"fingerprint"`
	MaxBytes    int64              `json:"max_submission_bytes"`
	Retention   retentionJSON      `json:"retention"`
	Handlers    []deskHandlerJSON  `json:"handlers"`
	Categories  []deskCategoryJSON `json:"categories"`
	// Coordinators are handler names; Workflow is the desk's own or the
	// default one (crypto.Workflow's JSON).
	Coordinators []string        `json:"coordinators"`
	Workflow     crypto.Workflow `json:"workflow"`
}

type retentionJSON struct {
	// Until is "every_handler" (the default) or "first_ack".
	Until               string `json:"until"`
	DeleteAfterAckHours int    `json:"delete_after_ack_hours,omitempty"`
	KeepUnackedDays     int    `json:"keep_unacked_days"`
}

type deskHandlerJSON struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	PostQuantum bool   `json:"post_quantum"`
}

type deskCategoryJSON struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Handlers []string `json:"handlers"`
}

func deskToJSON(m *crypto.Manifest, fp string) deskJSON {
	out := deskJSON{Desk: m.Desk, Title: m.Title, Description: m.Description, Serial: m.Serial, Fingerprint: fp,
		MaxBytes: m.Limits.MaxSubmissionBytes, Handlers: []deskHandlerJSON{}, Categories: []deskCategoryJSON{},
		Retention:    retentionJSON{Until: "every_handler", KeepUnackedDays: m.Retention.KeepUnackedDays},
		Coordinators: append([]string{}, m.Coordinators...), Workflow: m.Flow()}
	if m.Retention.AfterFirstAck {
		out.Retention.Until, out.Retention.DeleteAfterAckHours = "first_ack", m.Retention.DeleteAfterAckHours
	}
	for _, c := range m.Cards() {
		out.Handlers = append(out.Handlers, deskHandlerJSON{Name: c.Name, Fingerprint: c.Fingerprint(), PostQuantum: c.PostQuantum()})
	}
	for _, c := range m.Categories {
		out.Categories = append(out.Categories, deskCategoryJSON{ID: c.ID, Title: c.Title, Handlers: c.Handlers})
	}
	return out
}

// publishJSON is what 'amana desk publish --json' prints: the relay's answer.
func publishJSON(info *api.DeskInfo) any {
	type exposure struct {
		RemovedKeys int `json:"removed_keys"`
		Submissions int `json:"submissions"`
		Orphaned    int `json:"orphaned"`
		Mailboxes   int `json:"mailboxes"`
	}
	out := struct {
		Desk     string    `json:"desk"`
		Serial   uint64    `json:"serial"`
		Exposure *exposure `json:"exposure,omitempty"`
	}{Desk: info.Desk, Serial: info.Serial}
	if ex := info.Exposure; ex != nil {
		out.Exposure = &exposure{ex.RemovedKeys, ex.Submissions, ex.Orphaned, ex.Mailboxes}
	}
	return out
}

// publishRefused adds to the relay's refusal of a publication what the
// admin needs: which key the relay wants. A relay accepts a manifest only
// from its pinned admin key, signed by that same key.
func publishRefused(err error, path string, m *crypto.Manifest, signer ed25519.PublicKey, id *crypto.Identity) error {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Body.Code != "unauthorized" {
		return err
	}
	name := func(k ed25519.PublicKey) string {
		for _, c := range m.Cards() {
			if c.SignKey.Equal(k) {
				return " (" + clean(c.Name, false) + ")"
			}
		}
		return ""
	}
	mine := id.Card().SignKey
	if !mine.Equal(signer) {
		return fail(ExitRefused, fmt.Sprintf("only the desk admin's key may publish: %s is signed by the admin key with fingerprint %s%s, and you signed the request with %q's key, %s; pass -i with that admin's identity file",
			path, crypto.KeyFingerprint(signer), name(signer), id.Name(), crypto.KeyFingerprint(mine)), nil, "%s", err.Error())
	}
	return fail(ExitRefused, fmt.Sprintf("this relay pins another admin key than %q's (%s), which signed %s: ask its operator for the admin card it was initialised with ('amana-relay status' shows the desk fingerprint), and have that admin sign and publish the manifest",
		id.Name(), crypto.KeyFingerprint(mine), path), nil, "%s", err.Error())
}

// showJSON is what 'amana show --json' prints: the case as 'amana list
// --json' lists it, what its report says, its attachments, each read
// through and checked against its SHA-256, and the thread items filed with
// it, by ID ('amana show --json ID' of each opens it).
type showJSON struct {
	Case        *cases.Meta      `json:"case"`
	SelfSealed  bool             `json:"self_sealed"`
	Report      *showReportJSON  `json:"report"`
	Attachments []attachmentJSON `json:"attachments"`
	Thread      []*cases.Meta    `json:"thread"`
}

type showReportJSON struct {
	Desk      string          `json:"desk"`
	Category  string          `json:"category"`
	Language  string          `json:"language"`
	Submitted string          `json:"submitted"`
	SealedBy  string          `json:"sealed_by"`
	Answers   []crypto.Answer `json:"answers"`
	// From is the key ID a reply names as its writer; Verified says that
	// its signature verifies against that key.
	From     string `json:"from,omitempty"`
	Verified bool   `json:"verified,omitempty"`
}

type attachmentJSON struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	SHA256   string `json:"sha256"`
	Verified bool   `json:"verified"`
	// Computed: the submitter's amana sent the file without a SHA-256
	// (protocol §8.7.1); sha256 was computed as it was opened, and verified
	// means it read to its end, authenticated by the encryption.
	Computed bool   `json:"sha256_computed,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Metadata is what exiftool found (handler/evidence), null when it
	// could not be checked (MetadataError says why).
	Metadata      *evidence.Metadata `json:"metadata"`
	MetadataError string             `json:"metadata_error,omitempty"`
}

// printShowJSON prints c as showJSON. A damaged attachment is listed with
// its problem, and the command then fails as show does.
func (e *env) printShowJSON(c *openedCase) error {
	out := showJSON{Case: c.Meta, Attachments: []attachmentJSON{}, Thread: []*cases.Meta{}}
	if c.Self != nil {
		if _, err := io.Copy(io.Discard, c.Self); err != nil {
			return damaged(c.Meta.ID, err)
		}
		out.SelfSealed = true
		return writeJSON(e.stdout, out)
	}
	r := c.Bundle.Report()
	out.Report = &showReportJSON{Desk: r.Desk, Category: r.Category, Language: r.Language, Submitted: r.Submitted, SealedBy: r.SealedBy, Answers: r.Answers, From: r.From}
	if out.Report.Answers == nil {
		out.Report.Answers = []crypto.Answer{}
	}
	if r.From != "" {
		if pub, err := base64.RawURLEncoding.DecodeString(r.From); err == nil && len(pub) == ed25519.PublicKeySize {
			_, err := crypto.VerifyReply(r, []*crypto.Card{{Name: "handler", SignKey: pub}})
			out.Report.Verified = err == nil
		}
	}
	var bad error
	meter := e.newMetadataMeter()
	for {
		a, rd, err := c.Bundle.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return damaged(c.Meta.ID, err)
		}
		aj := attachmentJSON{Name: a.Name, Size: a.Size, Type: a.Type, Verified: true}
		aj.Metadata, aj.MetadataError, err = meter.readJSON(e.ctx, rd, a.Size)
		// Read to its end, a has its SHA-256: the one report.json gave,
		// or the one the reader computed when it gave none.
		aj.SHA256, aj.Computed = a.SHA256, a.Computed
		if err != nil {
			aj.Verified, aj.Problem, bad = false, err.Error(), err
		}
		out.Attachments = append(out.Attachments, aj)
		if bad != nil {
			break
		}
	}
	if r.Mailbox != "" && c.Meta.Kind == "" {
		all, err := c.store.List()
		if err != nil {
			return err
		}
		for _, m := range all {
			if m.Mailbox == r.Mailbox && (m.Kind == api.KindReply || m.Kind == api.KindFollowup) {
				out.Thread = append(out.Thread, m)
			}
		}
	}
	if bad == nil && !c.Meta.Opened {
		// Read whole, as show's text: the case is opened.
		c.Meta.Opened = true
		c.store.SaveMeta(c.Meta)
	}
	if err := writeJSON(e.stdout, out); err != nil {
		return err
	}
	if bad != nil {
		return damaged(c.Meta.ID, errors.New("an attachment does not match its SHA-256"))
	}
	return nil
}

// checkJSON is what 'amana check --json' prints: the desk's replies, each
// with whether it verifies, and how long the conversation is kept.
type checkJSON struct {
	Desk     string      `json:"desk,omitempty"`
	KeepDays int         `json:"keep_days"`
	Replies  []replyJSON `json:"replies"`
}

type replyJSON struct {
	Received string `json:"received"`
	// Verified: signed by a handler of the trusted desk, for this desk and
	// this receipt's conversation. Signer names the handler whose
	// signature verifies, even when the reply does not belong here;
	// Problem says why it does not.
	Verified bool `json:"verified"`
	// Status is the text of a verified status message (kind status), and
	// Survey whether it asks the satisfaction question; never set for an
	// unverified reply.
	Status      string           `json:"status,omitempty"`
	Survey      bool             `json:"survey,omitempty"`
	Signer      string           `json:"signer,omitempty"`
	Problem     string           `json:"problem,omitempty"`
	Answers     []crypto.Answer  `json:"answers"`
	Attachments []attachmentJSON `json:"attachments"`
}

func checkToJSON(t *thread, mb *api.Mailbox) checkJSON {
	out := checkJSON{KeepDays: mb.KeepDays, Replies: []replyJSON{}}
	if t.desk != nil {
		out.Desk = t.desk.Desk
	}
	for _, r := range t.replies {
		rj := replyJSON{Received: r.info.Received, Verified: r.verified(), Answers: r.report.Answers, Attachments: []attachmentJSON{}}
		if rj.Status = r.status(); rj.Status != "" {
			rj.Survey = r.report.Survey
		}
		if rj.Answers == nil {
			rj.Answers = []crypto.Answer{}
		}
		switch {
		case r.signer != nil:
			rj.Signer = r.signer.Name
			if r.mismatch != nil {
				rj.Problem = r.mismatch.Error()
			}
		case r.verifyErr != nil:
			rj.Problem = r.verifyErr.Error()
		}
		for _, f := range r.files {
			// Read whole when the reply was opened.
			rj.Attachments = append(rj.Attachments, attachmentJSON{Name: f.Name, Size: f.Size, Type: f.Type, SHA256: f.SHA256, Verified: true})
		}
		out.Replies = append(out.Replies, rj)
	}
	return out
}

// cardJSON is what 'amana keygen --json' and 'amana card --json' print:
// public details only. File is the identity file keygen wrote.
type cardJSON struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	PostQuantum bool   `json:"post_quantum"`
	Card        string `json:"card"`
	File        string `json:"file,omitempty"`
}

func cardToJSON(c *crypto.Card, file string) cardJSON {
	return cardJSON{Name: c.Name, Fingerprint: c.Fingerprint(), PostQuantum: c.PostQuantum(), Card: c.String(), File: file}
}

// storedJSON is the relay's record of what was sent, as submit and
// followup print it.
type storedJSON struct {
	ID       string `json:"id"`
	Desk     string `json:"desk"`
	Category string `json:"category"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Received string `json:"received,omitempty"`
	// Handlers is how many handlers it was encrypted to.
	Handlers int `json:"handlers"`
}

// submitToJSON is what 'amana submit --json' prints. The receipt words
// are in it, as submit's text prints them: they open the conversation.
func submitToJSON(words string, rc *api.Receipt, category string, handlers int) any {
	return struct {
		ReceiptWords string     `json:"receipt_words"`
		Stored       storedJSON `json:"stored"`
	}{words, storedJSON{ID: rc.ID, Desk: rc.Desk, Category: category, Size: rc.Size, SHA256: rc.SHA256, Received: rc.Received, Handlers: handlers}}
}

// followupToJSON is what 'amana followup --json' prints.
func followupToJSON(rc *api.Receipt, desk, category string, handlers int) any {
	return struct {
		Stored storedJSON `json:"stored"`
	}{storedJSON{ID: rc.ID, Desk: desk, Category: category, Size: rc.Size, SHA256: rc.SHA256, Received: rc.Received, Handlers: handlers}}
}

// exportJSON is what 'amana export --json' prints: the case and the files
// written, in order. Files refused or not written are not in it; the
// messages and the exit code say why.
type exportJSON struct {
	Case  string         `json:"case"`
	Files []exportedFile `json:"files"`
	// NotCleaned names the attachments --clean could not clean.
	NotCleaned []string `json:"not_cleaned,omitempty"`
}

type exportedFile struct {
	Path string `json:"path"`
	// Name, Size and SHA256 are an attachment's, verified as it was
	// written; report.json and a self-sealed case's file have none.
	Name   string `json:"name,omitempty"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// CleanedFrom is, for a copy made by --clean, its original's SHA-256.
	CleanedFrom string `json:"cleaned_from,omitempty"`
}

func (x *exportJSON) add(f exportedFile) { x.Files = append(x.Files, f) }

// printJSON prints what export wrote, with --json.
func (o *exportOptions) printJSON(e *env, id string, more ...exportedFile) error {
	if !o.json {
		return nil
	}
	o.wrote.Case = id
	for _, f := range more {
		o.wrote.add(f)
	}
	if o.wrote.Files == nil {
		o.wrote.Files = []exportedFile{}
	}
	return writeJSON(e.stdout, o.wrote)
}
