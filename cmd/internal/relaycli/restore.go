package relaycli

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

type restoreOptions struct {
	data     string
	from     string
	identity string
}

func newRestore(e *env) *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore --data DIR --from FILE -i operator.key",
		Short: "bring a relay back from a backup, with the same onion addresses",
		Long: `Decrypt a backup made by 'amana-relay backup' with the operator's age identity and
write it into DIR, which must not exist or be empty: the spool, and the onion keys, so
the relay comes back with the same intake and handler addresses. Every file is
written with mode 0600, directories 0700.

Run it as the relay's user, with the relay stopped, into its empty data directory,
then start it again:

  sudo systemctl stop amana-relay
  sudo -u amana-relay amana-relay restore --data /var/lib/amana-relay --from FILE -i operator.key
  sudo systemctl start amana-relay

The backup and the key must be readable by that user: copy them into
/var/backups/amana-relay (mode 0600, owned by amana-relay), and remove the key
afterwards.

Submissions pulled and acknowledged after the backup was taken come back too, and
handlers get them again as new cases unless they still hold them; those deleted by
their retention in the meantime are deleted by the first sweep.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runRestore(e, &o) },
	}
	dataFlag(cmd, &o.data)
	cmd.Flags().StringVar(&o.from, "from", "", "the backup file")
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "the operator's age identity file (from age-keygen)")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("identity")
	return cmd
}

func runRestore(e *env, o *restoreOptions) error {
	if err := needData(o.data); err != nil {
		return err
	}
	ents, err := os.ReadDir(o.data)
	existed := err == nil
	if err == nil && len(ents) > 0 {
		return ui.Fail(ui.ExitUsage, "restore into a new directory, then point the relay at it", nil, "%s is not empty", o.data)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ui.Fail(ui.ExitError, "check --data", err, "cannot read %s", o.data)
	}
	kf, err := os.Open(o.identity)
	if err != nil {
		return ui.Fail(ui.ExitError, "check the -i path", err, "cannot read the identity file")
	}
	ids, err := age.ParseIdentities(kf)
	kf.Close()
	if err != nil {
		return ui.Fail(ui.ExitUsage, "give the age identity file made with age-keygen (AGE-SECRET-KEY-…)", err, "invalid identity file")
	}
	f, err := os.Open(o.from)
	if err != nil {
		return ui.Fail(ui.ExitError, "check the --from path", err, "cannot read the backup")
	}
	defer f.Close()
	r, err := age.Decrypt(f, ids...)
	if err != nil {
		return ui.Fail(ui.ExitError, "use the operator key the backup was encrypted to", err, "cannot decrypt the backup")
	}
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", o.data, err)
	}
	os.Chmod(o.data, 0o700)
	ok := false
	defer func() {
		if !ok { // leave nothing half-restored
			if existed {
				os.RemoveAll(filepath.Join(o.data, store.FileName))
				os.RemoveAll(filepath.Join(o.data, daemon.OnionDir))
			} else {
				os.RemoveAll(o.data)
			}
		}
	}()
	man, err := readBackup(r, o.data)
	if err != nil {
		return ui.Fail(ui.ExitError, "the backup is damaged or not an amana-relay backup; try another copy", err, "cannot restore")
	}
	sp, err := store.Open(o.data, nil)
	if err != nil {
		return fmt.Errorf("the restored spool does not open: %w", err)
	}
	cerr := sp.Check()
	st, _ := sp.Stats()
	v, _ := sp.Schema()
	sp.Close()
	if cerr != nil {
		return fmt.Errorf("the restored spool fails its consistency check: %w", cerr)
	}
	ok = true
	fmt.Fprintf(e.stderr, "restored the backup of %s (made by %s) into %s: %d submission(s), %d unfinished upload(s), schema %d\n",
		man.Created, ui.Clean(man.Version, false), o.data, st.Submissions, st.Uploads, v)
	if in, hd := daemon.OnionAddresses(o.data); in != "" {
		fmt.Fprintf(e.stderr, "intake onion:  %s\nhandler onion: %s\n", in, hd)
	}
	fmt.Fprintf(e.stderr, "next: start the relay: sudo systemctl start amana-relay, or amana-relay serve --data %s\n", o.data)
	return nil
}

// readBackup reads a decrypted backup archive into dir: backup.json first,
// then spool.db, the onion files it names, and the spool's digest, and
// nothing else. Every file is checked against its digest before it is kept.
func readBackup(r io.Reader, dir string) (*backupManifest, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != backupManifestName || hdr.Size > 64<<10 {
		return nil, errors.New("no backup.json at the start")
	}
	var man backupManifest
	b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil || json.Unmarshal(b, &man) != nil || man.Format != backupFormat {
		return nil, errors.New("backup.json is not an amana-relay-backup-v1 manifest")
	}
	var spoolSum string
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || seen[hdr.Name] {
			return nil, fmt.Errorf("unexpected entry %q", hdr.Name)
		}
		seen[hdr.Name] = true
		switch {
		case hdr.Name == store.FileName:
			h := sha256.New()
			if err := writeRestored(dir, hdr.Name, io.TeeReader(io.LimitReader(tr, hdr.Size), h), hdr.Size); err != nil {
				return nil, err
			}
			spoolSum = hex.EncodeToString(h.Sum(nil))
		case hdr.Name == store.FileName+".sha256":
			b, err := io.ReadAll(io.LimitReader(tr, 128))
			if err != nil || spoolSum == "" || strings.TrimSpace(string(b)) != spoolSum {
				return nil, errors.New("the spool in the backup does not match its digest")
			}
			spoolSum = "checked"
		case slices.Contains(backupFiles, hdr.Name):
			if hdr.Size > maxBackupKey {
				return nil, fmt.Errorf("%s is too large", hdr.Name)
			}
			b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
			if err != nil || int64(len(b)) != hdr.Size || sum(b) != man.SHA256[hdr.Name] {
				return nil, fmt.Errorf("%s does not match its digest", hdr.Name)
			}
			if err := os.MkdirAll(filepath.Join(dir, daemon.OnionDir), 0o700); err != nil {
				return nil, err
			}
			if err := writeRestored(dir, hdr.Name, strings.NewReader(string(b)), hdr.Size); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unexpected entry %q", hdr.Name)
		}
	}
	if spoolSum != "checked" {
		return nil, errors.New("the backup has no spool, or no digest for it")
	}
	for name := range man.SHA256 {
		if !seen[name] {
			return nil, fmt.Errorf("%s is listed but missing", name)
		}
	}
	return &man, nil
}

// writeRestored writes one file of the data directory, mode 0600, synced.
func writeRestored(dir, name string, r io.Reader, size int64) error {
	f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(name)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("%s: the archive ends early", name)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
