package cli

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// The --json outputs. Each command prints one JSON value on standard output,
// indented, with the field names docs/cli.md ("JSON output") gives; its
// messages still go to standard error. Field names are stable: new fields
// may be added, none renamed or removed. No output carries more secret
// material than the command's text output already prints.

// writeJSON prints v as --json does.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// pullJSON is what 'amana pull --json' prints.
type pullJSON struct {
	Store      string        `json:"store"`
	Pulled     []string      `json:"pulled"`
	Acked      int           `json:"acked"`
	Duplicates int           `json:"duplicates"`
	Problems   []problemJSON `json:"problems"`
	Waiting    []pullWaiting `json:"waiting"`
}

type problemJSON struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

func printPullJSON(e *env, dir string, res *handler.PullResult, pending []pullWaiting) error {
	out := pullJSON{Store: dir, Pulled: res.Pulled, Acked: res.Acked, Duplicates: res.Duplicates, Problems: []problemJSON{}, Waiting: pending}
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
		Retention: retentionJSON{Until: "every_handler", KeepUnackedDays: m.Retention.KeepUnackedDays}}
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
