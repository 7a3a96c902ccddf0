package relaycli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

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
