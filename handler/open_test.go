package handler

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/relaytest"
)

// TestOpenWithCachedFileKey: a report the pull decrypted keeps its file
// key sealed in case.json, and Open uses it, for a post-quantum and a
// classic identity and for a case of a team (several handlers' stanzas).
// A cached key altered in one byte, sealed for another case, sealed for
// another ciphertext SHA-256 than the one case.json records, sealed under
// another identity's key, or a well-sealed wrong key (age's header MAC
// refuses it), is not used: the case opens with the identity. A case kept
// without one (an older version's pull) opens with the identity. No file
// of the store holds the file key in the clear, and every file is 0600.
func TestOpenWithCachedFileKey(t *testing.T) {
	mk := func(name string, classic bool) *crypto.Identity {
		id, err := crypto.GenerateIdentity(name, classic)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	pq, classic, teammate := mk("pq", false), mk("classic", true), mk("teammate", false)
	r := relaytest.New(t, relaytest.Options{})
	r.Desk(t, "p", []*crypto.Identity{pq})
	r.Desk(t, "t", []*crypto.Identity{teammate, pq})
	r.Desk(t, "c", []*crypto.Identity{classic})
	for _, tc := range []struct {
		name string
		desk string
		me   *crypto.Identity
		to   []*crypto.Identity
	}{
		{"post-quantum", "p", pq, []*crypto.Identity{pq}},
		{"classic", "c", classic, []*crypto.Identity{classic}},
		{"team", "t", pq, []*crypto.Identity{teammate, pq}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := r.Submit(t, tc.desk, tc.to, "report a "+tc.name)
			b, _ := r.Submit(t, tc.desk, tc.to, "report b "+tc.name)
			st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Pull(context.Background(), r.Client(t, tc.me), st, tc.me.Age(), r.URL, nil)
			if err != nil || len(res.Problems) != 0 || !st.Has(a) || !st.Has(b) {
				t.Fatalf("pull: %+v %v", res, err)
			}
			open := func(id string, who *crypto.Identity, wantCached bool) {
				t.Helper()
				c, err := Open(st, id, who.Age())
				if err != nil {
					t.Fatalf("open %s: %v", id, err)
				}
				defer c.Close()
				if c.cached != wantCached {
					t.Fatalf("open %s: opened with the cached key %v, want %v", id, c.cached, wantCached)
				}
				if c.Bundle.Report().Desk != tc.desk {
					t.Fatalf("open %s: report of desk %q", id, c.Bundle.Report().Desk)
				}
			}
			open(a, tc.me, true)
			open(b, tc.me, true)
			ma, err := st.Meta(a)
			if err != nil || ma.FileKey == "" {
				t.Fatalf("case.json keeps no sealed file key: %v", err)
			}
			mb, _ := st.Meta(b)
			good := ma.FileKey
			save := func(m *cases.Meta, key string) {
				t.Helper()
				m.FileKey = key
				if err := st.SaveMeta(m); err != nil {
					t.Fatal(err)
				}
			}

			// One byte of the sealed key changed, each position in turn.
			raw, err := base64.RawURLEncoding.DecodeString(good[len("fk2:"):])
			if err != nil {
				t.Fatal(err)
			}
			for i := range raw {
				bad := bytes.Clone(raw)
				bad[i] ^= 0x01
				save(ma, "fk2:"+base64.RawURLEncoding.EncodeToString(bad))
				open(a, tc.me, false)
			}
			// b's sealed key on a: the case ID is its associated data.
			save(ma, mb.FileKey)
			open(a, tc.me, false)
			// A key well sealed for a but wrong: age's header MAC refuses it.
			cache, ok := crypto.NewFileKeyCache(tc.me.Age())
			if !ok {
				t.Fatal("no cache key for a handler's identity")
			}
			save(ma, cache.Seal(a, ma.SHA256, bytes.Repeat([]byte{7}, 16)))
			open(a, tc.me, false)
			// a's own key, but case.json records another ciphertext: the
			// key is bound to the file it was sealed for, so the identity
			// opens the case.
			shaA := ma.SHA256
			ma.SHA256 = mb.SHA256
			save(ma, good)
			open(a, tc.me, false)
			// The right key sealed for a with the other SHA-256, the file's
			// own recorded: not used either.
			ma.SHA256 = shaA
			fa, err := os.Open(st.BundlePath(a))
			if err != nil {
				t.Fatal(err)
			}
			ci := crypto.Capture(tc.me.Age())
			if _, err := crypto.OpenBundle(fa, ci); err != nil || len(ci.Key()) != 16 {
				t.Fatalf("unwrapping %s: %v", a, err)
			}
			fa.Close()
			save(ma, cache.Seal(a, shaA, ci.Key()))
			open(a, tc.me, true) // the control: sealed for (a, its SHA-256)
			save(ma, cache.Seal(a, mb.SHA256, ci.Key()))
			open(a, tc.me, false)
			// A case pulled by an older version keeps none.
			save(ma, "")
			if b, err := os.ReadFile(filepath.Join(st.Dir(), a, "case.json")); err != nil || bytes.Contains(b, []byte("file_key")) {
				t.Fatalf("case.json without a key: %s %v", b, err)
			}
			open(a, tc.me, false)
			save(ma, good)
			open(a, tc.me, true)
			if tc.name == "team" {
				// Another handler of the team with this store: its own
				// cache key does not open the key, its identity the case.
				open(a, teammate, false)
			}

			// The file keys, unwrapped here with the identity, are
			// nowhere in the store in the clear (raw, hex or base64).
			var keys [][]byte
			for _, id := range []string{a, b} {
				f, err := os.Open(st.BundlePath(id))
				if err != nil {
					t.Fatal(err)
				}
				ci := crypto.Capture(tc.me.Age())
				if _, err := crypto.OpenBundle(f, ci); err != nil || len(ci.Key()) != 16 {
					t.Fatalf("unwrapping %s: %v", id, err)
				}
				f.Close()
				k := ci.Key()
				keys = append(keys, k, []byte(hex.EncodeToString(k)),
					[]byte(base64.StdEncoding.EncodeToString(k)), []byte(base64.RawStdEncoding.EncodeToString(k)),
					[]byte(base64.URLEncoding.EncodeToString(k)), []byte(base64.RawURLEncoding.EncodeToString(k)))
			}
			files := 0
			err = filepath.WalkDir(st.Dir(), func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				if d.IsDir() {
					if fi.Mode().Perm() != 0o700 {
						t.Errorf("%s has mode %04o, want 0700", path, fi.Mode().Perm())
					}
					return nil
				}
				files++
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				for _, k := range keys {
					if bytes.Contains(data, k) {
						t.Errorf("%s holds a file key in the clear (%q)", path, k)
					}
				}
				return nil
			})
			if err != nil || files < 4 {
				t.Fatalf("walking the store: %d files, %v", files, err)
			}
		})
	}
}
