package handler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
)

// TestThreadSums: a follow-up amana followup sealed in one read lists its
// file without a SHA-256; ThreadSums reads it through so that the
// attachment has the SHA-256 of its bytes (what custody records), while
// Thread reads report.json only and leaves it empty.
func TestThreadSums(t *testing.T) {
	alice, err := crypto.GenerateIdentity("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := cases.Open(filepath.Join(dir, "cases"))
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("a photo "), 50000)
	path := filepath.Join(dir, "photo.jpg")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file, err := crypto.OpenFile(f, "photo.jpg", "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	mailbox := strings.Repeat("ab", 16)
	rep := &crypto.Report{Desk: "d", Submitted: "2026-12-04T04:00:00Z", SealedBy: crypto.SealedByClient, Client: crypto.ClientCLI, Mailbox: mailbox, Seq: 1,
		Answers: []crypto.Answer{{Field: "message", Value: "here it is"}}}
	sealed, _, err := crypto.SealBundle([]*crypto.Card{alice.Card()}, rep, []crypto.File{file})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := io.ReadAll(sealed)
	if err != nil {
		t.Fatal(err)
	}
	receiveDamaged(t, st, mailbox, ct, strings.Repeat("f", 32))
	sum := sha256.Sum256(ct)
	m := cases.Meta{ID: strings.Repeat("e", 32), Desk: "d", Kind: api.KindFollowup, Mailbox: mailbox, Size: int64(len(ct)), SHA256: hex.EncodeToString(sum[:]), Received: "2026-12-04T04:00:00Z"}
	if err := st.Receive(m, func(off int64, w io.Writer) error { _, err := w.Write(ct[off:]); return err }, nil); err != nil {
		t.Fatal(err)
	}
	fileSum := sha256.Sum256(body)
	for _, tc := range []struct {
		name string
		open func(*cases.Store, string, age.Identity) ([]ThreadItem, error)
		want string
	}{
		{"Thread", Thread, ""},
		{"ThreadSums", ThreadSums, hex.EncodeToString(fileSum[:])},
	} {
		items, err := tc.open(st, mailbox, alice.Age())
		if err != nil || len(items) != 2 || items[0].Report == nil || items[1].Report == nil {
			t.Fatalf("%s: %v %v", tc.name, items, err)
		}
		for _, it := range items {
			damaged := it.Meta.ID == strings.Repeat("f", 32)
			a := it.Report.Attachments[0]
			switch {
			case !damaged && (a.SHA256 != tc.want || a.Computed != (tc.want != "")):
				t.Errorf("%s: attachment sha256 %q computed %v, want %q", tc.name, a.SHA256, a.Computed, tc.want)
			case !damaged && it.Err != nil:
				t.Errorf("%s: a whole item has Err %v", tc.name, it.Err)
			case damaged && a.SHA256 != "":
				t.Errorf("%s: the damaged item's attachment has sha256 %q", tc.name, a.SHA256)
			case damaged && (it.Err != nil) != (tc.name == "ThreadSums"):
				// Thread reads report.json only and cannot see the damage;
				// ThreadSums must say it.
				t.Errorf("%s: the damaged item has Err %v", tc.name, it.Err)
			}
		}
	}
}

// receiveDamaged files ct, with a byte of its last attachment flipped, as
// the follow-up id in mailbox.
func receiveDamaged(t *testing.T, st *cases.Store, mailbox string, ct []byte, id string) {
	t.Helper()
	bad := bytes.Clone(ct)
	bad[len(bad)-2000] ^= 1
	sum := sha256.Sum256(bad)
	m := cases.Meta{ID: id, Desk: "d", Kind: api.KindFollowup, Mailbox: mailbox, Size: int64(len(bad)), SHA256: hex.EncodeToString(sum[:]), Received: "2026-12-04T04:00:01Z"}
	if err := st.Receive(m, func(off int64, w io.Writer) error { _, err := w.Write(bad[off:]); return err }, nil); err != nil {
		t.Fatal(err)
	}
}
