package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/evidence"
	"github.com/amana-relay/amana/handler/journal"
)

// What 'amana show' says of attachments' metadata, and the evidence
// commands: cleaned copies (export --clean) and evidence bundles.

const installTools = "apt-get install libimage-exiftool-perl mat2 bubblewrap ffmpeg (ffmpeg lets mat2 clean video)"

// metadataMeter reads attachments through exiftool, when it can.
type metadataMeter struct {
	in      *evidence.Inspector
	missing error // why metadata is not checked; nil when it is
	files   int
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
	m.files++
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
		d.Files = custodyFiles("", r.Attachments)
		if r.Mailbox != "" && c.Meta.Kind == "" {
			if items, err := handler.Thread(c.store, r.Mailbox, c.ident.Age()); err == nil && len(items) > 0 {
				d.Detail = fmt.Sprintf("with its thread of %d item(s)", len(items))
				for _, it := range items {
					if it.Report != nil {
						d.Files = append(d.Files, custodyFiles(it.Meta.ID, it.Report.Attachments)...)
					}
				}
			}
		}
	}
	e.noteCustody(c.store, c.Meta, c.ident, d)
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

type evidenceExportOptions struct {
	identity, out, reason string
	noClean, json         bool
}

func newEvidenceExport(e *env) *cobra.Command {
	var o evidenceExportOptions
	cmd := &cobra.Command{
		Use:   "export ID --out DIR -i KEY [--reason TEXT]",
		Short: "write a case as a signed evidence bundle",
		Long: `Decrypt a case and write an evidence bundle into DIR (a new or empty directory,
created with mode 0700):

  originals/NAME           each attachment as the submitter sent it, SHA-256 verified
  derived/NAME.cleaned.EXT a copy cleaned of metadata with mat2 in a sandbox
  report.json              the report, with the SHA-256 of each attachment
  custody.json             the case's custody events, each signed by its handler
  handler.pub.pem          your public key (Ed25519, SubjectPublicKeyInfo)
  README.txt               how to verify the bundle without Amana
  SHA256SUMS               the SHA-256 of every file above
  SHA256SUMS.sig           your Ed25519 signature over SHA256SUMS

A file mat2 cannot clean has no derived copy and is named. Each cleaned copy and
the bundle itself are recorded in the case's custody log (derive and
evidence-export events, with --reason), before custody.json is written, so the
bundle carries its own record. Anyone checks it with:

  sha256sum -c SHA256SUMS
  openssl pkeyutl -verify -pubin -inkey handler.pub.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig

and 'amana evidence verify DIR' does both and names any changed, missing or extra
file. Thread items are not included: export a follow-up by its own ID.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runEvidenceExport(e, &o, args[0]) },
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().StringVar(&o.out, "out", "", "a new or empty directory to write the bundle into (required)")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why the bundle is made (one line; kept in the custody log)")
	cmd.Flags().BoolVar(&o.noClean, "no-clean", false, "write no cleaned copies (mat2 is then not needed)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the bundle's files as JSON (docs/cli.md)")
	cmd.MarkFlagRequired("identity")
	cmd.MarkFlagRequired("out")
	return cmd
}

// custodyFileJSON is custody.json's schema.
const custodySchema = "amana-custody/v1"

func runEvidenceExport(e *env, o *evidenceExportOptions, prefix string) error {
	if err := oneLine("--reason", o.reason, 1024); err != nil {
		return err
	}
	var cr *cleanRun
	if !o.noClean {
		var err error
		if cr, err = e.newCleanRun(o.reason); err != nil {
			return err
		}
	}
	if ents, err := os.ReadDir(o.out); err == nil && len(ents) > 0 {
		return fail(ExitUsage, "choose a new or empty directory", nil, "%s is not empty", o.out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(ExitError, "", err, "cannot read %s", o.out)
	}
	c, err := e.openCase(prefix, o.identity)
	if err != nil {
		return err
	}
	defer c.Close()
	meta := c.Meta
	// The custody log must take the bundle's events: check first.
	target := meta
	if handler.InThread(meta) {
		all, err := c.store.List()
		if err != nil {
			return err
		}
		if target = handler.ThreadOf(all, meta.Mailbox); target == nil {
			return fail(ExitUsage, "'amana pull' fetches it", nil, "the report of %s's thread is not in this case store: its custody log cannot be kept", meta.ID[:12])
		}
	}
	t := e.trust(target.Relay)
	man, err := t.Manifest(target.Desk)
	if err != nil {
		return noManifest(target.Desk)
	}
	for _, d := range []string{o.out, filepath.Join(o.out, "originals")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fail(ExitError, "", err, "cannot create %s", d)
		}
	}
	broken := func(err error, f string, a ...any) error {
		return fail(ExitError, "the bundle in "+o.out+" is incomplete: remove it and run the command again", err, f, a...)
	}
	var bundled []crypto.CustodyFile
	add := func(rel string) error {
		sum, n, err := evidence.HashFile(filepath.Join(o.out, rel))
		if err != nil {
			return err
		}
		bundled = append(bundled, crypto.CustodyFile{Name: rel, SHA256: sum, Size: n})
		return nil
	}
	if c.Self != nil {
		rel := "originals/submission.bin"
		if err := writeAttachment(filepath.Join(o.out, rel), c.Self); err != nil {
			return broken(err, "cannot write %s", rel)
		}
		if err := add(rel); err != nil {
			return broken(err, "cannot read %s", rel)
		}
		cr = nil // one file the submitter encrypted: no media to clean
	} else {
		br := c.Bundle
		r := br.Report()
		rep, err := reportJSON(r)
		if err != nil {
			return err
		}
		if err := writeNew(filepath.Join(o.out, "report.json"), rep); err != nil {
			return broken(err, "cannot write report.json")
		}
		if err := add("report.json"); err != nil {
			return broken(err, "cannot read report.json")
		}
		for i := 1; ; i++ {
			a, rd, err := br.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return broken(damaged(meta.ID, err), "case %s is damaged", meta.ID[:12])
			}
			if why := SafeName(a.Name); why != "" {
				return broken(nil, "attachment %d's name %q %s", i, clean(a.Name, false), why)
			}
			rel := "originals/" + a.Name
			if err := writeAttachment(filepath.Join(o.out, rel), rd); err != nil {
				return broken(err, "attachment %d (%s) not written", i, clean(a.Name, false))
			}
			if err := add(rel); err != nil {
				return broken(err, "cannot read %s", rel)
			}
			fmt.Fprintf(e.stderr, "wrote %s (%s, SHA-256 verified)\n", clean(rel, false), clean(a.SHA256[:16], false))
			if cr != nil {
				if err := os.MkdirAll(filepath.Join(o.out, "derived"), 0o700); err != nil {
					return broken(err, "cannot create derived/")
				}
				if f := cr.clean(e, filepath.Join(o.out, rel), filepath.Join(o.out, "derived"), "", a); f != nil {
					if err := add("derived/" + f.Name); err != nil {
						return broken(err, "cannot read %s", f.Name)
					}
				}
			}
		}
	}
	// Record the derivations and the bundle, then write the log with them.
	var derived []crypto.Custody
	if cr != nil {
		derived = cr.derived
	}
	for _, d := range derived {
		if _, _, err := e.recordCustody(c.store, meta, c.ident, d); err != nil {
			return broken(err, "cannot record the derivation of %s in the custody log", clean(d.Files[0].Name, false))
		}
	}
	exp := crypto.Custody{Action: crypto.CustodyEvidenceExport, Files: bundled, Reason: o.reason,
		Detail: fmt.Sprintf("evidence bundle of %d file(s), %d cleaned copy(ies)", len(bundled), len(derived))}
	if cr != nil && len(cr.refused) > 0 {
		exp.Detail += "; not cleaned by mat2: " + strings.Join(cr.refused, ", ")
	}
	if len(exp.Detail) > 4096 {
		exp.Detail = exp.Detail[:4096]
	}
	ev, _, err := e.recordCustody(c.store, meta, c.ident, exp)
	if err != nil {
		return broken(err, "cannot record the bundle in the custody log")
	}
	j, err := journal.Open(c.store, c.ident)
	if err != nil {
		return broken(err, "cannot open the case journal")
	}
	evs, err := j.CustodyEvents(target.ID)
	if err != nil {
		return broken(err, "cannot read the custody log")
	}
	log, err := custodyLog(man, target, evs)
	if err != nil {
		return broken(err, "cannot write custody.json")
	}
	if err := writeNew(filepath.Join(o.out, "custody.json"), log); err != nil {
		return broken(err, "cannot write custody.json")
	}
	sums, err := evidence.Seal(o.out, c.ident.SigningKey())
	if err != nil {
		return broken(err, "cannot seal the bundle")
	}
	if o.json {
		out := struct {
			Case    string   `json:"case"`
			Dir     string   `json:"dir"`
			Files   []string `json:"files"`
			Refused []string `json:"not_cleaned"`
			Event   uint64   `json:"custody_seq"`
		}{meta.ID, o.out, []string{}, []string{}, ev.Seq}
		for _, s := range sums {
			out.Files = append(out.Files, s.Path)
		}
		if cr != nil && cr.refused != nil {
			out.Refused = cr.refused
		}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "custody: evidence-export recorded as change %d of case %s ('amana sync' sends it)\n", ev.Seq, target.ID[:12])
	fmt.Fprintf(e.stderr, "wrote an evidence bundle of case %s in %s: %d file(s) in SHA256SUMS, signed by %s (key %s)\n", meta.ID[:12], o.out, len(sums),
		clean(c.ident.Name(), false), crypto.KeyFingerprint(c.ident.Card().SignKey))
	if cr != nil && len(cr.refused) > 0 {
		return fail(ExitPartial, "the originals are all in the bundle; clean the others by hand, or share them only with care", nil,
			"%d file(s) not cleaned by mat2: %s", len(cr.refused), clean(strings.Join(cr.refused, ", "), false))
	}
	return nil
}

// custodyLog is custody.json: the case, the handlers who signed its
// custody events (names from the desk's manifest), and the events as their
// authors signed them, byte for byte, one per line.
func custodyLog(m *crypto.Manifest, target *cases.Meta, evs []journal.SignedEvent) ([]byte, error) {
	type handlerKey struct {
		KeyID       string `json:"key_id"`
		Name        string `json:"name"`
		Fingerprint string `json:"fingerprint"`
	}
	var hs []handlerKey
	seen := map[string]bool{}
	for _, s := range evs {
		a := s.Event.Author
		if seen[a] {
			continue
		}
		seen[a] = true
		pub, _ := base64.RawURLEncoding.DecodeString(a)
		hs = append(hs, handlerKey{a, rawName(m, a), crypto.KeyFingerprint(pub)})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	head := struct {
		Schema   string       `json:"schema"`
		Desk     string       `json:"desk"`
		Case     string       `json:"case"`
		Handlers []handlerKey `json:"handlers"`
	}{custodySchema, target.Desk, target.ID, hs}
	if err := enc.Encode(head); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("}\n"))
	out = append(out, []byte(`,"events":[`)...)
	for i, s := range evs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '\n')
		out = append(out, s.JSON...)
	}
	out = append(out, []byte("\n]}\n")...)
	return out, nil
}

type evidenceVerifyOptions struct{ json bool }

func newEvidenceVerify(e *env) *cobra.Command {
	var o evidenceVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "verify an evidence bundle: every file, the signature, the custody log",
		Long: `Verify an evidence bundle as sha256sum -c and openssl would: SHA256SUMS.sig is an
Ed25519 signature over SHA256SUMS by the key in handler.pub.pem, every file listed
has its SHA-256, and no file is there that is not listed. Every changed, missing or
extra file is named, and the exit code is 3. It also checks custody.json: each
event is canonical and signed by its author's key, and the bundle's own
evidence-export event is signed by the key in handler.pub.pem.

It does not say whose key that is: compare the fingerprint printed with the
handler's in the desk's manifest ('amana desk show').`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runEvidenceVerify(e, &o, args[0]) },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print what was found as JSON (docs/cli.md)")
	return cmd
}

func runEvidenceVerify(e *env, o *evidenceVerifyOptions, dir string) error {
	v, err := evidence.Verify(dir)
	if err != nil {
		return fail(ExitTrust, "is "+dir+" an evidence bundle? it needs SHA256SUMS and handler.pub.pem", err, "cannot verify %s", dir)
	}
	events, custodyErr := checkCustodyLog(dir, v.Key)
	fp := crypto.KeyFingerprint(v.Key)
	if o.json {
		out := struct {
			OK          bool               `json:"ok"`
			Key         string             `json:"key_id"`
			Fingerprint string             `json:"fingerprint"`
			Files       int                `json:"files"`
			Problems    []evidence.Problem `json:"problems"`
			Custody     int                `json:"custody_events"`
			CustodyErr  string             `json:"custody_error,omitempty"`
		}{len(v.Problems) == 0 && custodyErr == nil, base64.RawURLEncoding.EncodeToString(v.Key), fp, v.Files, v.Problems, events, ""}
		if out.Problems == nil {
			out.Problems = []evidence.Problem{}
		}
		if custodyErr != nil {
			out.CustodyErr = custodyErr.Error()
		}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		for _, p := range v.Problems {
			switch p.What {
			case evidence.ProblemSignature:
				fmt.Fprintf(e.stdout, "BAD SIGNATURE: %s does not verify over SHA256SUMS with handler.pub.pem\n", p.Path)
			case evidence.ProblemChanged:
				fmt.Fprintf(e.stdout, "CHANGED: %s\n", clean(p.Path, false))
			case evidence.ProblemMissing:
				fmt.Fprintf(e.stdout, "MISSING: %s\n", clean(p.Path, false))
			case evidence.ProblemExtra:
				fmt.Fprintf(e.stdout, "EXTRA: %s (not in SHA256SUMS)\n", clean(p.Path, false))
			}
		}
		if custodyErr != nil {
			fmt.Fprintf(e.stdout, "CUSTODY: %s\n", clean(custodyErr.Error(), false))
		}
	}
	if len(v.Problems) > 0 || custodyErr != nil {
		return fail(ExitTrust, "the bundle is not as it was signed: get it again from its source", nil, "%s does not verify: %d problem(s)", dir, len(v.Problems)+btoi(custodyErr != nil))
	}
	fmt.Fprintf(e.stderr, "verified %s: %d file(s) as listed in SHA256SUMS, none missing or extra; signed by key %s; %d custody event(s), each signed by its handler\n", dir, v.Files, fp, events)
	fmt.Fprintf(e.stderr, "hint: check that key %s is the handler's in the desk's manifest ('amana desk show')\n", fp)
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkCustodyLog checks custody.json: every event canonical and signed
// by its author, and an evidence-export event signed by key, the bundle's.
// It returns how many events it holds.
func checkCustodyLog(dir string, key ed25519.PublicKey) (int, error) {
	f, err := os.Open(filepath.Join(dir, "custody.json"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var log struct {
		Schema string            `json:"schema"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&log); err != nil || log.Schema != custodySchema {
		return 0, errors.New("custody.json is not an Amana custody log")
	}
	signedByBundle := false
	for i, raw := range log.Events {
		ev, err := crypto.ParseEvent(raw)
		if err != nil {
			return 0, fmt.Errorf("custody event %d: %w", i+1, err)
		}
		pub, err := base64.RawURLEncoding.DecodeString(ev.Author)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return 0, fmt.Errorf("custody event %d: its author is not a key", i+1)
		}
		if _, err := crypto.VerifyEvent(ev, []*crypto.Card{{Name: "author", SignKey: pub}}); err != nil {
			return 0, fmt.Errorf("custody event %d: %w", i+1, err)
		}
		if ev.Change.Custody == nil {
			return 0, fmt.Errorf("custody event %d is not a custody event", i+1)
		}
		if ev.Change.Custody.Action == crypto.CustodyEvidenceExport && slices.Equal(pub, key) {
			signedByBundle = true
		}
	}
	if !signedByBundle {
		return 0, errors.New("no evidence-export event in custody.json is signed by the key in handler.pub.pem")
	}
	return len(log.Events), nil
}
