package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var update = flag.Bool("update", false, "write testdata/spool-vN.db for the current schema if it is missing")

// fixtureFacts is what a spool fixture holds, in testdata/spool-vN.json
// beside it.
type fixtureFacts struct {
	Schema      int64             `json:"schema"`
	Submissions map[string]string `json:"submissions"` // ID to SHA-256 of the bytes
	Uploads     int               `json:"uploads"`
	Mailboxes   []string          `json:"mailboxes"`
	Desks       map[string]string `json:"desks"` // ID to manifest
	Settings    map[string]string `json:"settings"`
	Committed   int64             `json:"committed"`
	// Events, from schema 2: ID to SHA-256 of the bytes.
	Events map[string]string `json:"events,omitempty"`
}

// TestMigrations opens a spool written by every earlier schema
// (testdata/spool-vN.db.gz, one per version, each made by the release that
// wrote that schema and never changed afterwards) and checks that it
// migrates to the current schema with everything in it intact. When the
// layout changes, add a migration, then run
//
//	go test ./store -run TestMigrations -update
//
// to add the fixture of the new schema.
func TestMigrations(t *testing.T) {
	if *update {
		writeFixture(t)
	}
	fixtures, _ := filepath.Glob("testdata/spool-v*.db.gz")
	if len(fixtures) == 0 {
		t.Fatal("no spool fixtures in testdata")
	}
	var versions []int64
	for _, f := range fixtures {
		var facts fixtureFacts
		b, err := os.ReadFile(f[:len(f)-len(".db.gz")] + ".json")
		if err != nil || json.Unmarshal(b, &facts) != nil {
			t.Fatalf("%s: no facts file beside it", f)
		}
		versions = append(versions, facts.Schema)
		t.Run(filepath.Base(f), func(t *testing.T) { checkFixture(t, f, &facts) })
	}
	// Every schema from 1 to the current one has its fixture.
	for v := int64(1); v <= SchemaVersion; v++ {
		if !slices.Contains(versions, v) {
			t.Errorf("no fixture of schema %d: run go test ./store -run TestMigrations -update with the release that writes it", v)
		}
	}
}

func checkFixture(t *testing.T, fixture string, facts *fixtureFacts) {
	dir := filepath.Join(t.TempDir(), "data")
	os.Mkdir(dir, 0o700)
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir)
	defer s.Close()
	if v, _ := s.Schema(); v != SchemaVersion {
		t.Fatalf("schema %d after opening a schema %d spool, want %d", v, facts.Schema, SchemaVersion)
	}
	if _, err := s.Verify(); err != nil {
		t.Fatalf("after migration: %v", err)
	}
	subs, err := s.Submissions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != len(facts.Submissions) {
		t.Fatalf("%d submissions, want %d", len(subs), len(facts.Submissions))
	}
	for _, sub := range subs {
		r, err := s.OpenSubmission(sub.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, r)
		if got := hex.EncodeToString(h.Sum(nil)); got != facts.Submissions[sub.ID] || got != sub.SHA256 {
			t.Errorf("submission %s: bytes hash to %s, want %s", sub.ID, got, facts.Submissions[sub.ID])
		}
	}
	st, _ := s.Stats()
	if st.Uploads != facts.Uploads || st.Committed != facts.Committed {
		t.Errorf("stats %+v, want %d uploads and %d bytes committed", st, facts.Uploads, facts.Committed)
	}
	for _, id := range facts.Mailboxes {
		if mb, err := s.Mailbox(id); err != nil || mb == nil || len(mb.Replies) != 1 {
			t.Errorf("mailbox %s: %+v, %v", id, mb, err)
		}
	}
	desks, _ := s.Desks()
	for id, m := range facts.Desks {
		if string(desks[id]) != m {
			t.Errorf("desk %s: %q", id, desks[id])
		}
	}
	for k, v := range facts.Settings {
		if got, _ := s.Setting(k); string(got) != v {
			t.Errorf("setting %s: %q", k, got)
		}
	}
	evs, err := s.Events(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(facts.Events) {
		t.Fatalf("%d events, want %d", len(evs), len(facts.Events))
	}
	for _, ev := range evs {
		b, err := s.ReadEvent(ev.ID)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != facts.Events[ev.ID] || got != ev.SHA256 {
			t.Errorf("event %s: bytes hash to %s, want %s", ev.ID, got, facts.Events[ev.ID])
		}
	}
	// The index lists each event to the route still waiting for it ("i";
	// the author "h" holds it).
	for route, want := range map[string]int{"h": 0, "i": len(facts.Events)} {
		if got, _, err := s.EventsPage(route, "", 100, nil); err != nil || len(got) != want {
			t.Errorf("route %s lists %d events (%v), want %d", route, len(got), err, want)
		}
	}
	// The submission index lists every stored submission to its route
	// ("h" in every fixture), replies copied to it included.
	subs, _, err = s.RoutePage("h", "", 1000, nil)
	if err != nil || len(subs) != len(facts.Submissions) {
		t.Errorf("route h lists %d submissions (%v), want %d", len(subs), err, len(facts.Submissions))
	}
	// The migrated spool takes new submissions and events.
	if _, err := s.PutSubmission(spec(10, "h"), data(10)); err != nil {
		t.Fatalf("after migration: %v", err)
	}
	ev, err := s.PutEvent(eventSpec(KindEvent, "h", "i"), data(10))
	if err != nil {
		t.Fatalf("event after migration: %v", err)
	}
	if d, _, err := s.AckEvent(ev.ID, "i", nil); err != nil || !d {
		t.Fatalf("the last ack of an event after migration: deleted %v, %v", d, err)
	}
}

// writeFixture writes the fixture of the current schema, unless it exists:
// a fixture, once written, is never changed.
func writeFixture(t *testing.T) {
	name := fmt.Sprintf("testdata/spool-v%d", SchemaVersion)
	if _, err := os.Stat(name + ".db.gz"); err == nil {
		t.Logf("%s.db.gz exists; fixtures are never rewritten", name)
		return
	}
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, &Options{MailboxTTL: 100 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	facts := fixtureFacts{Schema: SchemaVersion, Submissions: map[string]string{}, Desks: map[string]string{},
		Settings: map[string]string{"admin_card": "amana-card-v1 fixture"}}
	long := func(n int64, routes ...string) UploadSpec {
		sp := spec(n, routes...)
		sp.KeepUnacked = 100 * 365 * 24 * time.Hour // fixtures outlive any retention
		return sp
	}
	for i, n := range []int{100, ChunkSize + 7, 5000} {
		sub, err := s.PutSubmission(long(int64(n), "h"), bytes.Repeat([]byte{byte(i + 1)}, n))
		if err != nil {
			t.Fatal(err)
		}
		facts.Submissions[sub.ID] = sub.SHA256
	}
	tok, err := s.CreateUpload(long(ChunkSize*2, "h"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteUpload(tok, 0, bytes.NewReader(data(ChunkSize+1))); err != nil {
		t.Fatal(err)
	}
	facts.Uploads = 1
	mb, err := s.EnsureMailbox("00112233445566778899aabbccddeeff", "d", "", []string{"h"}, []string{"X25519"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutReply(mb.ID, data(300), long(300, "h"), nil); err != nil {
		t.Fatal(err)
	}
	facts.Mailboxes = []string{mb.ID}
	if SchemaVersion >= 2 {
		facts.Events = map[string]string{}
		for i, k := range EventKinds {
			sp := eventSpec(k, "h", "i")
			sp.KeepUnacked = 100 * 365 * 24 * time.Hour
			ev, err := s.PutEvent(sp, bytes.Repeat([]byte{byte(0x40 + i)}, 200*(i+1)))
			if err != nil {
				t.Fatal(err)
			}
			facts.Events[ev.ID] = ev.SHA256
		}
	}
	if err := s.PutDesk("d", 7, []byte(`{"fixture":true}`)); err != nil {
		t.Fatal(err)
	}
	facts.Desks["d"] = `{"fixture":true}`
	for k, v := range facts.Settings {
		s.SetSetting(k, []byte(v))
	}
	st, _ := s.Stats()
	facts.Committed = st.Committed
	s.Close()
	if _, _, err := Compact(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	if err := os.WriteFile(name+".db.gz", z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	j, _ := json.MarshalIndent(facts, "", "  ")
	os.WriteFile(name+".json", append(j, '\n'), 0o644)
	t.Logf("wrote %s.db.gz (%d bytes, %d compressed)", name, len(b), z.Len())
}

// TestMigrationRuns checks the machinery with a made-up schema 2: opening
// every fixture runs the migrations after its version, once, in one
// transaction with the version bump.
func TestMigrationRuns(t *testing.T) {
	saved, savedVersion := migrations, SchemaVersion
	defer func() { migrations, SchemaVersion = saved, savedVersion }()
	runs := 0
	migrations = append(slices.Clone(migrations), func(tx *bolt.Tx) error {
		runs++
		_, err := tx.CreateBucket([]byte("made-up"))
		return err
	})
	SchemaVersion = int64(1 + len(migrations))
	facts := fixtureFacts{Schema: 1}
	b, _ := os.ReadFile("testdata/spool-v1.json")
	json.Unmarshal(b, &facts)
	t.Run("v1 to v2", func(t *testing.T) { checkFixture(t, "testdata/spool-v1.db.gz", &facts) })
	if runs != 1 {
		t.Fatalf("the migration ran %d times", runs)
	}
}
