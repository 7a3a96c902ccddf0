package relaycli

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"filippo.io/age"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

// backupBytes makes a real backup archive (unencrypted) of a small relay.
func backupBytes(t testing.TB) []byte {
	data := filepath.Join(t.TempDir(), "data")
	sp, err := store.Open(data, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	sp.SetSetting(daemon.SettingAdmin, []byte("card"))
	sp.Close()
	os.MkdirAll(filepath.Join(data, daemon.OnionDir), 0o700)
	os.WriteFile(filepath.Join(data, daemon.OnionDir, "intake.key"), []byte("ED25519-V3:k"), 0o600)
	var b bytes.Buffer
	if _, err := writeBackup(data, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadBackup(t *testing.T) {
	good := backupBytes(t)
	dir := t.TempDir()
	if _, err := readBackup(bytes.NewReader(good), dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, daemon.OnionDir, "intake.key")); string(b) != "ED25519-V3:k" {
		t.Fatalf("restored key %q", b)
	}
	// Damage to a header, or to the spool's bytes, is refused. (The
	// archive travels inside age, which authenticates every byte; these
	// checks catch a damaged archive that was somehow decrypted.)
	for _, at := range []int{100, 1024 + 100, len(good) / 2} {
		bad := slices.Clone(good)
		bad[at] ^= 0x20
		if _, err := readBackup(bytes.NewReader(bad), t.TempDir()); err == nil {
			t.Errorf("a backup damaged at byte %d was read", at)
		}
	}
	if _, err := readBackup(bytes.NewReader(good[:len(good)/2]), t.TempDir()); err == nil {
		t.Error("half a backup was read")
	}
}

func FuzzReadBackup(f *testing.F) {
	f.Add(backupBytes(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if _, err := readBackup(bytes.NewReader(b), dir); err != nil {
			return
		}
		// Whatever was accepted wrote only the files a backup holds.
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			rel, _ := filepath.Rel(dir, p)
			if rel != "." && rel != daemon.OnionDir && rel != store.FileName && !slices.Contains(backupFiles, filepath.ToSlash(rel)) {
				t.Fatalf("an accepted archive wrote %s", rel)
			}
			return nil
		})
	})
}

// TestBackupCreateHint: when the backup file cannot be made, the hint names
// the real cause (a file already there, a directory this user cannot write
// or that does not exist, a read-only sandbox) and the fix.
func TestBackupCreateHint(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	sp, err := store.Open(data, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	sp.Close()
	dir := t.TempDir()
	exists := filepath.Join(dir, "old.age")
	os.WriteFile(exists, []byte("an earlier backup"), 0o600)
	locked := filepath.Join(dir, "locked")
	os.Mkdir(locked, 0o500)

	for _, tc := range []struct {
		name, out string
		hint      []string
		root      bool // EACCES needs a user other than root
	}{
		{"exists", exists, []string{exists + " already exists", "give --out a new name"}, true},
		{"no directory", filepath.Join(dir, "nowhere", "b.age"), []string{filepath.Join(dir, "nowhere") + " does not exist", "install -d -m 0700 -o amana-relay"}, true},
		{"not writable", filepath.Join(locked, "b.age"), []string{"cannot write in " + locked, "sudo -u amana-relay", backupDir}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.root && os.Getuid() == 0 {
				t.Skip("root writes anywhere; createHint's table below covers this case")
			}
			var stdout, stderr bytes.Buffer
			code := Main([]string{"backup", "--data", data, "--recipient", id.Recipient().String(), "--out", tc.out}, &stdout, &stderr)
			if code != ui.ExitError {
				t.Fatalf("exit %d, want %d:\n%s", code, ui.ExitError, stderr.String())
			}
			for _, want := range tc.hint {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "choose a new file name") {
				t.Errorf("the old, wrong hint:\n%s", stderr.String())
			}
			if b, _ := os.ReadFile(exists); string(b) != "an earlier backup" {
				t.Errorf("the existing backup was changed: %q", b)
			}
		})
	}

	// The causes a test cannot make as every user, as the errors the
	// kernel gives.
	out := "/var/backups/amana-2026-11-25.age"
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{syscall.EACCES, []string{"cannot write in /var/backups", "sudo -u amana-relay", "--out in " + backupDir, "install.sh"}},
		{syscall.EROFS, []string{"/var/backups is read-only here", "ReadWritePaths=", backupDir}},
		{syscall.EEXIST, []string{out + " already exists"}},
		{syscall.ENOENT, []string{"/var/backups does not exist"}},
		{syscall.EIO, []string{"check the --out path"}},
	} {
		got := createHint(out, &fs.PathError{Op: "open", Path: out, Err: tc.err})
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%v: hint %q lacks %q", tc.err, got, w)
			}
		}
	}
}
