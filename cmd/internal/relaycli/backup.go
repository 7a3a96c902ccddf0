package relaycli

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

// backupManifest is the first entry of a backup archive.
type backupManifest struct {
	Format  string            `json:"format"` // "amana-relay-backup-v1"
	Created string            `json:"created"`
	Version string            `json:"version"`
	Schema  int64             `json:"schema"`
	SHA256  map[string]string `json:"sha256"` // of every other entry
}

const (
	backupFormat       = "amana-relay-backup-v1"
	backupManifestName = "backup.json"
	maxBackupKey       = 64 << 10 // an onion key or hostname file
)

// backupFiles are the files of the data directory a backup holds besides
// the spool: the onion services' keys and addresses.
var backupFiles = []string{
	daemon.KeyFile(daemon.IntakeOnion), daemon.HostnameFile(daemon.IntakeOnion),
	daemon.KeyFile(daemon.HandlerOnion), daemon.HostnameFile(daemon.HandlerOnion),
}

type backupOptions struct {
	data       string
	out        string
	recipients []string
	recFile    string
}

func newBackup(e *env) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup --data DIR --recipient age1… --out FILE",
		Short: "write an encrypted, consistent copy of the spool and the onion keys",
		Long: `Write a backup of the relay: a consistent copy of the spool (submissions not yet
pulled, the desks' manifests, the pinned admin key, mailboxes) and the onion services'
keys and addresses, as one tar archive encrypted with age to the operator's
recipients. Make the operator's key on another machine with 'age-keygen -o
operator.key' and give its public key here; only that key opens the backup, with
'amana-relay restore'.

While the relay runs, the copy is taken through its control socket (DIR/control.sock),
without stopping it; when it is stopped, from the spool directly. The submissions in
the backup are ciphertext the relay cannot open either; the onion keys are what the
encryption protects: whoever holds them can impersonate the relay's onions.

Run it as the relay's user (sudo -u amana-relay), and write into a directory that
user owns: install.sh makes ` + backupDir + ` (mode 0700) for this, and
amana-relay-backup.timer, once enabled, writes one there every day. The file is made
with mode 0600 and never overwrites another. Copy it off the server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runBackup(e, &o) },
	}
	dataFlag(cmd, &o.data)
	cmd.Flags().StringVarP(&o.out, "out", "o", "", "the backup file to write (mode 0600; must not exist)")
	cmd.Flags().StringArrayVarP(&o.recipients, "recipient", "r", nil, "an age recipient (age1… or age1pq1…) to encrypt to; repeatable")
	cmd.Flags().StringVarP(&o.recFile, "recipients-file", "R", "", "a file of age recipients, one per line")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runBackup(e *env, o *backupOptions) error {
	if err := needExisting(o.data); err != nil {
		return err
	}
	var recs []age.Recipient
	for _, r := range o.recipients {
		rs, err := age.ParseRecipients(strings.NewReader(r))
		if err != nil {
			return ui.Fail(ui.ExitUsage, "give the operator's public key from 'age-keygen -y operator.key' (age1…)", err, "invalid recipient")
		}
		recs = append(recs, rs...)
	}
	if o.recFile != "" {
		f, err := os.Open(o.recFile)
		if err != nil {
			return ui.Fail(ui.ExitError, "check the --recipients-file path", err, "cannot read the recipients file")
		}
		rs, err := age.ParseRecipients(f)
		f.Close()
		if err != nil {
			return ui.Fail(ui.ExitUsage, "put one age recipient (age1…) per line", err, "invalid recipients file")
		}
		recs = append(recs, rs...)
	}
	if len(recs) == 0 {
		return ui.Fail(ui.ExitUsage, "give --recipient age1… (the operator's public key, from age-keygen)", nil, "no recipient to encrypt the backup to")
	}
	f, err := os.OpenFile(o.out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ui.Fail(ui.ExitError, createHint(o.out, err), err, "cannot create the backup file")
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(o.out)
		}
	}()
	enc, err := age.Encrypt(f, recs...)
	if err != nil {
		return fmt.Errorf("encrypting the backup: %w", err)
	}
	n, err := writeBackup(o.data, enc)
	if err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encrypting the backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	ok = true
	fmt.Fprintf(e.stderr, "wrote %s: the spool (%s) and %d onion file(s), encrypted to %d recipient(s)\n", o.out, ui.Size(n.spool), n.onion, len(recs))
	return nil
}

// backupDir is the directory install.sh makes for backups: owned by the
// relay's user, mode 0700, and writable from the backup timer's sandbox.
const backupDir = "/var/backups/amana-relay"

// createHint says why the backup file could not be created, and what to do:
// the directory is not the relay user's, it is read-only here (a systemd
// sandbox), it does not exist, or the file is already there.
func createHint(out string, err error) string {
	dir := filepath.Dir(out)
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Sprintf("%s already exists, and backup never overwrites one: give --out a new name, or move the old backup away", out)
	case errors.Is(err, syscall.EROFS):
		return fmt.Sprintf("%s is read-only here: under systemd, only the unit's ReadWritePaths= are writable; write into %s, as the shipped amana-relay-backup.service does", dir, backupDir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("this user cannot write in %s: run backup as the relay's user (sudo -u amana-relay) with --out in %s, which install.sh makes for that user (mode 0700)", dir, backupDir)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s does not exist: make it for the relay's user (sudo install -d -m 0700 -o amana-relay -g amana-relay %s), or write into %s", dir, dir, backupDir)
	}
	return "check the --out path: a new file, in a directory the relay's user can write"
}

type backupCounts struct {
	spool int64
	onion int
}

// writeBackup writes the archive: backup.json, spool.db, then the onion
// files that exist. The spool comes from the running relay's control socket
// when the spool is locked.
func writeBackup(data string, w io.Writer) (backupCounts, error) {
	var n backupCounts
	tw := tar.NewWriter(w)
	man := backupManifest{Format: backupFormat, Created: time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339),
		Version: ui.Version(), SHA256: map[string]string{}}
	onion := map[string][]byte{}
	for _, name := range backupFiles {
		b, err := os.ReadFile(filepath.Join(data, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("reading %s: %w", name, err)
		}
		onion[name] = b
		man.SHA256[name] = sum(b)
	}
	// The spool goes through a hash as it streams; its digest is in a
	// trailer entry, since the manifest comes first.
	h := sha256.New()
	put := func(size int64, writeTo func(io.Writer) error) error {
		if err := tw.WriteHeader(&tar.Header{Name: store.FileName, Mode: 0o600, Size: size, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if err := writeTo(io.MultiWriter(tw, h)); err != nil {
			return err
		}
		n.spool = size
		return nil
	}
	sp, err := store.Open(data, nil)
	switch {
	case errors.Is(err, store.ErrLocked):
		if err := writeManifest(tw, &man); err != nil {
			return n, err
		}
		if err := snapshotFromRelay(data, put); err != nil {
			return n, err
		}
	case err != nil:
		return n, err
	default:
		man.Schema, _ = sp.Schema()
		err := writeManifest(tw, &man)
		if err == nil {
			err = sp.Snapshot(put)
		}
		sp.Close()
		if err != nil {
			return n, fmt.Errorf("copying the spool: %w", err)
		}
	}
	for _, name := range backupFiles {
		b, ok := onion[name]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Format: tar.FormatPAX}); err != nil {
			return n, err
		}
		if _, err := tw.Write(b); err != nil {
			return n, err
		}
		n.onion++
	}
	trailer := []byte(hex.EncodeToString(h.Sum(nil)) + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: store.FileName + ".sha256", Mode: 0o600, Size: int64(len(trailer)), Format: tar.FormatPAX}); err != nil {
		return n, err
	}
	if _, err := tw.Write(trailer); err != nil {
		return n, err
	}
	return n, tw.Close()
}

func writeManifest(tw *tar.Writer, man *backupManifest) error {
	b, _ := json.MarshalIndent(man, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: backupManifestName, Mode: 0o600, Size: int64(len(b)), Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// snapshotFromRelay asks the running relay for a copy of its spool.
func snapshotFromRelay(data string, put func(int64, func(io.Writer) error) error) error {
	c, err := daemon.DialControl(data)
	if err != nil {
		return ui.Fail(ui.ExitError, "run backup as the relay's user (sudo -u amana-relay), on a relay of this version; or stop the relay and run it again",
			err, "the relay is running, and its control socket does not answer")
	}
	defer c.Close()
	return c.Snapshot(put)
}
