package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/evidence"
)

type exportOptions struct {
	identity string
	out      string
	json     bool
	clean    bool
	reason   string
	wrote    exportJSON // what --json prints
	// run-time: the cleaning (nil without --clean) and the files
	// exported, for the custody log.
	cr       *cleanRun
	exported []crypto.CustodyFile
}

func newExport(e *env) *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export ID --out DIR -i KEY",
		Short: "decrypt a case and its thread and write them to a directory",
		Long: `Decrypt a case and write report.json and each attachment into DIR, under the name the
submitter gave it. For a report, its thread follows: each follow-up and reply this
store holds, in the order written, in DIR/thread/NN-KIND-ID/ with its own
report.json (the message, and for a reply its signature) and attachments. Every attachment is checked against its SHA-256; one that does not
match is removed again and the case is reported damaged. Names that could escape DIR or hide what a file is (path
separators, "..", leading dots, control or bidirectional-override characters) are
refused, and no existing file is ever overwritten.

Attachments can carry metadata such as the location where a photo was taken ('amana
show' lists what exiftool finds); treat them with care and open them on an offline
machine where you can. With --clean, each attachment is also copied, cleaned of
metadata by mat2 in a sandbox, as cleaned/NAME.cleaned.EXT apart from the untouched original;
a file mat2 cannot clean is named and gets no copy (exit code 7). mat2 removes
what it knows of; it does not promise a file is clean (docs/threat-model.md).

The export, and each cleaned copy with the SHA-256 of its original and of itself,
mat2's version and --reason, are recorded as signed custody events in the case's
journal ('amana case custody'; 'amana sync' sends them).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runExport(e, &o, args[0]) },
	}
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().StringVar(&o.out, "out", "", "directory to write into; created with mode 0700 if missing (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the files written as JSON (docs/cli.md)")
	cmd.Flags().BoolVar(&o.clean, "clean", false, "also write copies cleaned of metadata with mat2 (needs mat2 and bubblewrap)")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why the files are exported (one line; kept in the custody log)")
	cmd.MarkFlagRequired("identity")
	cmd.MarkFlagRequired("out")
	return cmd
}

// SafeName reports why name cannot be used as a file name in the export
// directory, or "" if it can.
func SafeName(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return "empty or a directory name"
	case len(name) > 255:
		return "longer than 255 bytes"
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case strings.ContainsAny(name, "/\\:"):
		return "contains a path or drive separator"
	case strings.HasPrefix(name, "."):
		return "starts with a dot"
	}
	for _, r := range name {
		if ui.UnsafeInName(r) {
			return "contains control, invisible or bidirectional-override characters"
		}
	}
	return ""
}

func runExport(e *env, o *exportOptions, prefix string) error {
	if err := oneLine("--reason", o.reason, 1024); err != nil {
		return err
	}
	if o.clean {
		cr, err := e.newCleanRun(o.reason)
		if err != nil {
			return err
		}
		o.cr = cr
	}
	c, err := e.openCase(prefix, o.identity)
	if err != nil {
		return err
	}
	defer c.Close()
	meta, br := c.Meta, c.Bundle
	if c.Self != nil {
		if err := os.MkdirAll(o.out, 0o700); err != nil {
			return fail(ExitError, "", err, "cannot create %s", o.out)
		}
		path := filepath.Join(o.out, "submission.bin")
		if err := writeAttachment(path, c.Self); err != nil {
			return fail(ExitError, "", err, "cannot write %s", path)
		}
		fmt.Fprintf(e.stderr, "wrote %s: the file the submitter encrypted themselves, decrypted as it is\n", path)
		if sum, n, err := evidence.HashFile(path); err == nil {
			e.noteCustody(c.store, meta, c.ident, crypto.Custody{Action: crypto.CustodyExport, Reason: o.reason,
				Files: []crypto.CustodyFile{{Name: "submission.bin", SHA256: sum, Size: n}}})
		}
		if o.cr != nil {
			fmt.Fprintf(e.stderr, "amana: submission.bin was NOT cleaned: a file the submitter encrypted themselves is of no format mat2 knows\n")
		}
		return o.printJSON(e, meta.ID, exportedFile{Path: path})
	}
	if err := os.MkdirAll(o.out, 0o700); err != nil {
		return fail(ExitError, "", err, "cannot create %s", o.out)
	}
	written, failed, err := e.exportBundle(o.out, meta, br, o, "")
	if err != nil {
		return err
	}
	if handler.InThread(meta) {
		if err := e.threadOf(e.stderr, c.store, meta); err != nil {
			return err
		}
	}
	items := 0
	if r := br.Report(); meta.Kind == "" && r.Mailbox != "" {
		id := c.ident
		thread, err := handler.Thread(c.store, r.Mailbox, id.Age())
		if err != nil {
			return err
		}
		for i, it := range thread {
			dir := filepath.Join(o.out, "thread", fmt.Sprintf("%02d-%s-%s", i+1, it.Meta.Kind, it.Meta.ID[:12]))
			if it.Report == nil {
				fmt.Fprintf(e.stderr, "amana: %s %s cannot be opened: %s\n", it.Meta.Kind, it.Meta.ID[:12], clean(it.Err.Error(), false))
				failed++
				continue
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fail(ExitError, "", err, "cannot create %s", dir)
			}
			f, err := os.Open(c.store.BundlePath(it.Meta.ID))
			if err != nil {
				return err
			}
			ibr, err := crypto.OpenBundle(f, id.Age())
			if err != nil {
				f.Close()
				fmt.Fprintf(e.stderr, "amana: %s %s cannot be opened: %s\n", it.Meta.Kind, it.Meta.ID[:12], clean(err.Error(), false))
				failed++
				continue
			}
			w, n, err := e.exportBundle(dir, it.Meta, ibr, o, it.Meta.ID)
			f.Close()
			if err != nil {
				return err
			}
			written += w
			failed += n
			items++
		}
	}
	e.noteCustody(c.store, meta, c.ident, crypto.Custody{Action: crypto.CustodyExport, Files: o.exported, Reason: o.reason})
	if o.cr != nil {
		o.cr.record(e, c.store, meta, c.ident)
		o.wrote.NotCleaned = o.cr.refused
	}
	if err := o.printJSON(e, meta.ID); err != nil {
		return err
	}
	if o.cr != nil && len(o.cr.refused) > 0 && failed == 0 {
		return fail(ExitPartial, "the originals were written; clean the others by hand, or share them only with care", nil,
			"%d file(s) not cleaned by mat2: %s", len(o.cr.refused), clean(strings.Join(o.cr.refused, ", "), false))
	}
	if failed > 0 {
		return fail(ExitPartial, "see the messages above", nil, "%d attachment(s) or thread item(s) not written; %d file(s) written to %s", failed, written, o.out)
	}
	if items > 0 {
		fmt.Fprintf(e.stderr, "exported case %s and its thread (%d follow-up(s) and reply(ies), in the order written, under %s): %d file(s) in %s\n",
			meta.ID[:12], items, filepath.Join(o.out, "thread"), written, o.out)
		return nil
	}
	fmt.Fprintf(e.stderr, "exported case %s: %d file(s) in %s\n", meta.ID[:12], written, o.out)
	return nil
}

// exportBundle writes a bundle's report.json and attachments into dir,
// and with --clean their cleaned copies; item is the thread item's ID (""
// for the case exported). It returns the files written and the
// attachments refused or not written.
func (e *env) exportBundle(dir string, meta *cases.Meta, br *crypto.BundleReader, o *exportOptions, item string) (written, failed int, err error) {
	wrote := &o.wrote
	rep, err := reportJSON(br.Report())
	if err != nil {
		return 0, 0, err
	}
	if err := writeNew(filepath.Join(dir, "report.json"), rep); err != nil {
		return 0, 0, err
	}
	wrote.add(exportedFile{Path: filepath.Join(dir, "report.json")})
	written = 1
	// Cleaned copies go into their own directory, made before any
	// attachment is written: beside the originals, a submitter's file
	// named photo.cleaned.jpg could pose as one. An attachment named
	// "cleaned" then collides and is not written.
	cleanedDir := filepath.Join(dir, "cleaned")
	if o.cr != nil {
		if err := os.Mkdir(cleanedDir, 0o700); err != nil {
			return written, failed, fmt.Errorf("cannot create %s: %w", cleanedDir, err)
		}
	}
	for i := 1; ; i++ {
		a, rd, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return written, failed, damaged(meta.ID, err)
		}
		if why := SafeName(a.Name); why != "" {
			fmt.Fprintf(e.stderr, "amana: attachment %d refused: its name %q %s\n", i, clean(a.Name, false), why)
			fmt.Fprintf(e.stderr, "hint: it is still in the case; 'age -d -i KEY %s | tar -xi' writes it under a safe name\n", filepath.Join("CASES", meta.ID, "submission.age"))
			failed++
			continue
		}
		path := filepath.Join(dir, a.Name)
		if err := writeAttachment(path, rd); err != nil {
			fmt.Fprintf(e.stderr, "amana: attachment %d (%s): %v\n", i, clean(a.Name, false), err)
			failed++
			continue
		}
		fmt.Fprintf(e.stderr, "wrote %s (%s, %s)\n", clean(path, false), ui.Size(a.Size), hashWords(a))
		wrote.add(exportedFile{Path: path, Name: a.Name, Size: a.Size, SHA256: a.SHA256})
		o.exported = append(o.exported, crypto.CustodyFile{Item: item, Name: a.Name, SHA256: a.SHA256, Size: a.Size})
		written++
		if o.cr != nil {
			if f := o.cr.clean(e, path, cleanedDir, item, a); f != nil {
				wrote.add(*f)
				written++
			}
		}
	}
	if err := refreshReport(filepath.Join(dir, "report.json"), br.Report()); err != nil {
		return written, failed, err
	}
	return written, failed, nil
}

// refreshReport rewrites the report.json an export wrote before its
// attachments (first, so that no attachment can take the name) once the
// attachments are read, when the reader computed the SHA-256 of one the
// submitter's amana sent without it: the file then names every
// attachment's SHA-256, as custody does, each computed one marked
// "sha256_computed".
func refreshReport(path string, r *crypto.Report) error {
	computed := false
	for _, a := range r.Attachments {
		computed = computed || a.Computed
	}
	if !computed {
		return nil
	}
	rep, err := reportJSON(r)
	if err != nil {
		return err
	}
	// A new file beside it, renamed over it: report.json is the first
	// version or the second, whole, never a mix.
	f, err := os.CreateTemp(filepath.Dir(path), ".report-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(rep)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func writeAttachment(path string, rd io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return errors.New("a file with this name already exists; it was left alone")
	}
	if err != nil {
		return err
	}
	_, err = io.Copy(f, rd)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("%w; the partial file was removed", err)
	}
	return nil
}
