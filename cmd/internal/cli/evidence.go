package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/evidence"
)

// What 'amana show' says of attachments' metadata, and the evidence
// commands: cleaned copies (export --clean) and evidence bundles.

const installTools = "apt-get install libimage-exiftool-perl mat2 bubblewrap ffmpeg (ffmpeg lets mat2 clean video)"

// metadataMeter reads attachments through exiftool, when it can.
type metadataMeter struct {
	in      *evidence.Inspector
	missing error // why metadata is not checked; nil when it is
}

func (e *env) newMetadataMeter() *metadataMeter {
	in := &evidence.Inspector{}
	if err := in.Check(e.ctx); err != nil {
		return &metadataMeter{missing: err}
	}
	return &metadataMeter{in: in}
}

// read reads rd to its end and returns the lines that say what its
// metadata reveals; the error is rd's own (a damaged attachment).
func (m *metadataMeter) read(ctx context.Context, rd io.Reader, size int64) ([]string, error) {
	if m.in == nil {
		_, err := io.Copy(io.Discard, rd)
		return nil, err
	}
	md, err := m.in.Inspect(ctx, rd, size)
	var re *evidence.ReadError
	if errors.As(err, &re) {
		return nil, re.Err
	}
	if err != nil {
		return []string{"     metadata: NOT checked: " + clean(err.Error(), false)}, nil
	}
	return metadataLines(md), nil
}

// readJSON is read for 'show --json': the metadata, or why there is none;
// the error is rd's own.
func (m *metadataMeter) readJSON(ctx context.Context, rd io.Reader, size int64) (*evidence.Metadata, string, error) {
	if m.in == nil {
		_, err := io.Copy(io.Discard, rd)
		return nil, "not checked: " + m.missing.Error(), err
	}
	md, err := m.in.Inspect(ctx, rd, size)
	var re *evidence.ReadError
	if errors.As(err, &re) {
		return nil, "", re.Err
	}
	if err != nil {
		return nil, "not checked: " + err.Error(), nil
	}
	if md.Findings == nil {
		md.Findings = []evidence.Finding{}
	}
	return md, "", nil
}

// kindWords names what a kind of finding is.
var kindWords = map[string]string{
	evidence.KindLocation: "location",
	evidence.KindDevice:   "device",
	evidence.KindPerson:   "names",
	evidence.KindTime:     "times",
	evidence.KindSoftware: "software",
}

// metadataLines says, per kind, what md reveals: at most four values each.
func metadataLines(md *evidence.Metadata) []string {
	if md.Err != "" {
		return []string{"     metadata: " + clean(md.Err, false)}
	}
	var out []string
	for _, k := range evidence.Kinds {
		fs := md.Of(k)
		if len(fs) == 0 {
			continue
		}
		var vs []string
		for i, f := range fs {
			if i == 4 {
				vs = append(vs, fmt.Sprintf("and %d more", len(fs)-4))
				break
			}
			vs = append(vs, clean(f.Value, false)+" ("+clean(f.Tag, false)+")")
		}
		out = append(out, fmt.Sprintf("     reveals %s: %s", kindWords[k], strings.Join(vs, "; ")))
	}
	if len(out) == 0 {
		out = append(out, "     metadata: exiftool found no location, device, names, times or software")
	}
	if md.Fast {
		out = append(out, "     (a large file, read with exiftool -fast: a JPEG trailer, metadata after a GIF's first comment or after WAV or AVI media data were not read)")
	}
	return out
}

// summary says, after the list, what could not be checked.
func (m *metadataMeter) summary(w io.Writer) {
	if m.missing == nil {
		return
	}
	fmt.Fprintf(w, "\nmetadata: NOT checked (%s): GPS positions, device makes and models, owner and author names,\ncreation times and software in these files could not be checked\nhint: %s\n", clean(m.missing.Error(), false), installTools)
}

// noteDecrypt records that the case c was decrypted: its files, and the
// files of its thread when a report's thread is shown with it.
func (e *env) noteDecrypt(c *openedCase) {
	d := crypto.Custody{Action: crypto.CustodyDecrypt}
	if c.Self != nil {
		d.Files = []crypto.CustodyFile{c.selfSum}
	} else {
		r := c.Bundle.Report()
		d.Files = custodyFiles("", summed(r.Attachments))
		if r.Mailbox != "" && c.Meta.Kind == "" {
			if items, err := handler.ThreadSums(c.store, r.Mailbox, c.ident.Age()); err == nil && len(items) > 0 {
				d.Detail = fmt.Sprintf("with its thread of %d item(s)", len(items))
				damagedItems := 0
				for _, it := range items {
					if it.Report != nil {
						d.Files = append(d.Files, custodyFiles(it.Meta.ID, summed(it.Report.Attachments))...)
					}
					if it.Report != nil && it.Err != nil {
						// It opened, but a file of it could not be read:
						// custody cannot name that file, and the handler
						// must know.
						damagedItems++
						fmt.Fprintf(e.stderr, "amana: warning: %s %s of the thread is damaged: %s\nhint: its files that could not be read are not in the custody record; 'amana export' shows what of it can be saved\n",
							it.Meta.Kind, it.Meta.ID[:12], clean(it.Err.Error(), false))
					}
				}
				if damagedItems > 0 {
					d.Detail += fmt.Sprintf(", %d of them damaged", damagedItems)
				}
			}
		}
	}
	e.noteCustody(c.store, c.Meta, c.ident, d)
}

// summed is the attachments that have a SHA-256: all of them, once read
// to their end, but one sent without a SHA-256 (the reader computes it)
// that could not be read, which custody cannot name and was not decrypted.
func summed(as []crypto.Attachment) []crypto.Attachment {
	var out []crypto.Attachment
	for _, a := range as {
		if a.SHA256 != "" {
			out = append(out, a)
		}
	}
	return out
}

// cleanRun is export's cleaning: mat2, and what it made and could not.
type cleanRun struct {
	c       *evidence.Cleaner
	in      *evidence.Inspector // to check the copies; nil when exiftool is missing
	version string
	reason  string
	derived []crypto.Custody // one derive record per cleaned copy
	refused []string         // attachments not cleaned, and why
}

// newCleanRun checks mat2 and the sandbox before anything is written.
func (e *env) newCleanRun(reason string) (*cleanRun, error) {
	c := &evidence.Cleaner{}
	v, err := c.Version(e.ctx)
	if err == nil {
		err = (&evidence.Sandbox{}).Available(e.ctx)
	}
	if err != nil {
		return nil, fail(ExitError, installTools, err, "cannot make cleaned copies")
	}
	cr := &cleanRun{c: c, version: v, reason: reason}
	if in := (&evidence.Inspector{}); in.Check(e.ctx) == nil {
		cr.in = in
	}
	return cr, nil
}

// clean makes the cleaned copy of the attachment a, written at path, into
// dir. It never passes a file off as clean: what mat2 refuses is named.
func (cr *cleanRun) clean(e *env, path, dir, item string, a *crypto.Attachment) *exportedFile {
	cl, err := cr.c.Clean(e.ctx, path, dir, a.Name)
	if err != nil {
		why := err.Error()
		if errors.Is(err, evidence.ErrNotCleaned) {
			why = strings.TrimPrefix(why, evidence.ErrNotCleaned.Error()+": ")
		}
		cr.refused = append(cr.refused, a.Name)
		fmt.Fprintf(e.stderr, "amana: %s was NOT cleaned, no cleaned copy was written: %s\n", clean(a.Name, false), clean(why, false))
		return nil
	}
	// The original must be as it was: mat2 saw it read-only.
	if sum, _, err := evidence.HashFile(path); err != nil || sum != a.SHA256 {
		fmt.Fprintf(e.stderr, "amana: the original %s changed while it was cleaned; do not use this export\n", clean(path, false))
		cr.refused = append(cr.refused, a.Name)
		return nil
	}
	cr.derived = append(cr.derived, crypto.Custody{
		Action: crypto.CustodyDerive,
		Files:  []crypto.CustodyFile{{Item: item, Name: a.Name, SHA256: a.SHA256, Size: a.Size}},
		Derived: &crypto.Derivation{Name: cl.Name, From: a.SHA256, SHA256: cl.SHA256, Size: cl.Size,
			Tool: "mat2", ToolVersion: cr.version},
		Reason: cr.reason,
	})
	left := ""
	if cr.in != nil {
		if f, err := os.Open(cl.Path); err == nil {
			md, err := cr.in.Inspect(e.ctx, f, cl.Size)
			f.Close()
			if err == nil && md.Err == "" {
				var kinds []string
				for _, k := range evidence.Kinds {
					if len(md.Of(k)) > 0 {
						kinds = append(kinds, kindWords[k])
					}
				}
				if len(kinds) > 0 {
					left = "; exiftool still finds " + strings.Join(kinds, ", ") + " in it ('amana evidence' docs: what mat2 does not remove)"
				} else {
					left = "; exiftool finds no location, device, names, times or software in it"
				}
			}
		}
	}
	if cl.Warning != "" {
		left += "; mat2 said: " + clean(cl.Warning, false)
	}
	fmt.Fprintf(e.stderr, "wrote %s (cleaned with mat2 %s from %s%s)\n", clean(cl.Path, false), clean(cr.version, false), clean(a.Name, false), left)
	return &exportedFile{Path: cl.Path, Name: cl.Name, Size: cl.Size, SHA256: cl.SHA256, CleanedFrom: a.SHA256}
}

// record records a derive event per cleaned copy.
func (cr *cleanRun) record(e *env, st *cases.Store, meta *cases.Meta, id *crypto.Identity) {
	for _, d := range cr.derived {
		e.noteCustody(st, meta, id, d)
	}
}

func newEvidence(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "write and verify evidence bundles anyone can check",
		Long: `Write a case's files as an evidence bundle: the originals byte for byte, copies
cleaned of metadata, the report, the case's custody log, SHA256SUMS and your
Ed25519 signature over it, with your public key and a README saying how anyone
checks it with sha256sum and openssl, without Amana.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newEvidenceExport(e), newEvidenceVerify(e))
	return cmd
}
