package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/evidence"
	"github.com/amana-relay/amana/handler/journal"
)

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
                           (or computed when opened, when the submitter's amana
                           sent it without one: the encryption vouches for it)
  derived/NAME.cleaned.EXT a copy cleaned of metadata with mat2 in a sandbox
  renamed/attachment-N.EXT an attachment whose name cannot be used as a file name;
                           renamed/NAMES.txt gives the name the submitter gave
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

// custodySchema is custody.json's schema (protocol.md §8.11.9).
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
	var renamed []string // "PATH\t\"REAL NAME\"" of files stored under another name
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
		for i := 1; ; i++ {
			a, rd, err := br.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return broken(damaged(meta.ID, err), "case %s is damaged", meta.ID[:12])
			}
			rel := "originals/" + a.Name
			if why := SafeName(a.Name); why != "" {
				// One unusable name must not block the bundle: the file goes
				// to renamed/, where no submitter's name can collide, and its
				// real name to renamed/NAMES.txt (and report.json has it).
				if len(renamed) == 0 {
					if err := os.Mkdir(filepath.Join(o.out, "renamed"), 0o700); err != nil {
						return broken(err, "cannot create renamed/")
					}
				}
				rel = fmt.Sprintf("renamed/attachment-%d%s", i, safeExt(a.Name))
				renamed = append(renamed, fmt.Sprintf("%s\t%q", rel, a.Name))
				fmt.Fprintf(e.stderr, "amana: attachment %d's name %q %s: it is in the bundle as %s\n", i, clean(a.Name, false), why, rel)
			}
			if err := writeAttachment(filepath.Join(o.out, rel), rd); err != nil {
				return broken(err, "attachment %d (%s) not written", i, clean(a.Name, false))
			}
			if err := add(rel); err != nil {
				return broken(err, "cannot read %s", rel)
			}
			fmt.Fprintf(e.stderr, "wrote %s (%s, %s)\n", clean(rel, false), clean(a.SHA256[:16], false), hashWords(a))
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
		// report.json was written first, so that no attachment takes its
		// name; with every attachment read, it names the SHA-256s the
		// reader computed, and only then is it hashed for SHA256SUMS.
		if err := refreshReport(filepath.Join(o.out, "report.json"), r); err != nil {
			return broken(err, "cannot write report.json")
		}
		n := len(bundled)
		if err := add("report.json"); err != nil {
			return broken(err, "cannot read report.json")
		}
		bundled = append([]crypto.CustodyFile{bundled[n]}, bundled[:n]...) // report.json first, as before
	}
	if len(renamed) > 0 {
		names := "# files whose name could not be used, and the name the submitter gave (Go-quoted)\n" + strings.Join(renamed, "\n") + "\n"
		if err := writeNew(filepath.Join(o.out, "renamed", "NAMES.txt"), []byte(names)); err != nil {
			return broken(err, "cannot write renamed/NAMES.txt")
		}
		if err := add("renamed/NAMES.txt"); err != nil {
			return broken(err, "cannot read renamed/NAMES.txt")
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
	if len(renamed) > 0 {
		exp.Detail += "; stored under another name: " + strings.Join(renamed, ", ")
	}
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

// safeExt is name's extension if it is short and safe as a file name's
// end, else "".
func safeExt(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || len(name)-i < 2 || len(name)-i > 16 {
		return ""
	}
	ext := name[i:]
	for _, r := range ext[1:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return ""
		}
	}
	return ext
}
