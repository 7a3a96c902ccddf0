package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// TestStatesIndex: States gives what State gives for every case, from an
// index sealed to the handler, and sees every change made since it was
// written: a new event, a new case, a new manifest.
func TestStatesIndex(t *testing.T) {
	w := newWorld(t)
	c1, c2 := w.newCase("general", true), w.newCase("restricted", true)
	w.record("alice", c1, crypto.Change{Status: "open"})
	check := func(step string) map[string]*State {
		t.Helper()
		all, err := w.journals["alice"].States(w.trust)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for id, s := range all {
			one, err := w.journals["alice"].State(w.trust, id)
			if err == nil {
				one.History = nil
			}
			if err != nil || !reflect.DeepEqual(one, s) {
				t.Fatalf("%s: case %s from the index:\n%+v\nreplayed:\n%+v", step, id, s, one)
			}
		}
		return all
	}
	if all := check("first"); len(all) != 2 || all[c1.id].Status != "open" || all[c2.id].Status != "new" {
		t.Fatalf("states: %+v", all)
	}
	idx, err := os.ReadFile(filepath.Join(w.dirs["alice"], "journal", indexFile))
	if err != nil || !bytes.HasPrefix(idx, []byte("age-encryption.org/v1\n")) || bytes.Contains(idx, []byte(c1.id)) {
		t.Fatalf("the index is not sealed: %v", err)
	}
	// Once the index is old enough not to be racy, it is read as is: a
	// state planted in it shows.
	j := w.journals["alice"]
	old := j.readIndex()
	old.Built += 10 * racyWindow
	old.Cases[c1.id].State.Severity = "planted"
	if err := j.writeIndex(old); err != nil {
		t.Fatal(err)
	}
	if all := w.statesOf("alice"); all[c1.id].Severity != "planted" {
		t.Fatalf("the index was not used: %+v", all[c1.id])
	}
	// A new event on the case makes it stale.
	w.record("alice", c1, crypto.Change{Status: "waiting"})
	if all := check("after an event"); all[c1.id].Status != "waiting" || all[c1.id].Severity != "" {
		t.Fatalf("after an event: %+v", all[c1.id])
	}
	// A new case.
	c3 := w.newCase("general", true)
	if all := check("after a case"); len(all) != 3 || all[c3.id] == nil {
		t.Fatalf("after a case: %d states", len(all))
	}
	// A new manifest with another workflow.
	m := manifest(t, 5, handlerNames, []string{"dave"})
	wf := crypto.DefaultWorkflow()
	wf.Statuses = append([]string{"triage"}, wf.Statuses...)
	m.Workflow = &wf
	w.trust.set(m)
	if all := check("after a manifest"); all[c2.id].Status != "triage" {
		t.Fatalf("after a manifest: %+v", all[c2.id])
	}
	// A damaged index is rebuilt.
	os.WriteFile(filepath.Join(w.dirs["alice"], "journal", indexFile), []byte("junk"), 0o600)
	if all := check("damaged"); len(all) != 3 {
		t.Fatalf("damaged index: %d states", len(all))
	}
	// A coordinator outside the route has states for the facts alone.
	w.sync("dave")
	if all := w.statesOf("dave"); len(all) != 1 || !all[c1.id].FactsOnly || all[c1.id].Status != "waiting" {
		t.Fatalf("dave's states: %+v", all)
	}
}

func (w *world) statesOf(n string) map[string]*State {
	w.t.Helper()
	all, err := w.journals[n].States(w.trust)
	if err != nil {
		w.t.Fatal(err)
	}
	return all
}

// TestSyncKilled: a sync killed at any point (a child process, killed
// while it syncs, again and again) loses no event it acknowledged, leaves
// no half-written event, and the next sync completes the journal.
func TestSyncKilled(t *testing.T) {
	if os.Getenv("JOURNAL_CRASH_CHILD") != "" {
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	w := newWorld(t)
	c := w.newCase("general", true)
	const n = 40
	for i := range n {
		w.record("alice", c, crypto.Change{Note: strings.Repeat("n", i+1)})
	}
	relayDir := t.TempDir()
	if err := w.relay.save(relayDir); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for n, id := range w.ids {
		secrets[n] = id.MarshalSecret()
	}
	js, _ := json.Marshal(secrets)
	if err := os.WriteFile(filepath.Join(relayDir, "ids.json"), js, 0o600); err != nil {
		t.Fatal(err)
	}
	for round, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestSyncChild$")
		cmd.Env = append(os.Environ(), "JOURNAL_CRASH_CHILD=1", "JOURNAL_CRASH_STORE="+w.dirs["bob"], "JOURNAL_CRASH_RELAY="+relayDir)
		started := filepath.Join(relayDir, "started")
		os.Remove(started)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
			if _, err := os.Stat(started); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("the child never started syncing")
			}
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// What the relay has acknowledged is held complete.
		fr, err := loadFakeRelay(relayDir, w.trust)
		if err != nil {
			t.Fatal(err)
		}
		acked := 0
		for _, id := range fr.order {
			if fr.blobs[id].routes[w.key("bob")] {
				acked++
			}
		}
		j := w.reopen("bob")
		h, err := j.load(c.id)
		if err != nil {
			t.Fatalf("round %d: the journal does not load after the kill: %v", round, err)
		}
		if len(h.events) < acked {
			t.Fatalf("round %d: %d events acknowledged, %d held", round, acked, len(h.events))
		}
		t.Logf("round %d (killed after %v): %d acknowledged, %d held", round, delay, acked, len(h.events))
	}
	fr, err := loadFakeRelay(relayDir, w.trust)
	if err != nil {
		t.Fatal(err)
	}
	w.relay = fr
	w.sync("bob")
	if s := w.state("bob", c); len(s.Notes) != n || len(s.Gaps) != 0 || !reflect.DeepEqual(s, w.state("alice", c)) {
		t.Fatalf("after the kills: %d notes, gaps %v", len(s.Notes), s.Gaps)
	}
}

// TestSyncChild is the child TestSyncKilled runs and kills: a sync of
// bob's journal against the relay saved in a directory, saving it after
// every acknowledgement.
func TestSyncChild(t *testing.T) {
	if os.Getenv("JOURNAL_CRASH_CHILD") == "" {
		t.Skip("run by TestSyncKilled")
	}
	dir := os.Getenv("JOURNAL_CRASH_RELAY")
	js, err := os.ReadFile(filepath.Join(dir, "ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(js, &secrets); err != nil {
		t.Fatal(err)
	}
	for n, sec := range secrets {
		id, err := crypto.NewIdentity(n, sec)
		if err != nil {
			t.Fatal(err)
		}
		identCache[n] = id
	}
	tr := &trust{m: map[string]*crypto.Manifest{}}
	tr.set(manifest(t, 1, handlerNames, []string{"dave"}))
	fr, err := loadFakeRelay(dir, tr)
	if err != nil {
		t.Fatal(err)
	}
	fr.fail = func(op, _ string) error {
		if op == "list" {
			os.WriteFile(filepath.Join(dir, "started"), nil, 0o600)
		}
		return nil
	}
	fr.afterAck = func() {
		if err := fr.save(dir); err != nil {
			panic(err)
		}
	}
	w := &world{t: t, ids: map[string]*crypto.Identity{"bob": ident(t, "bob")}, dirs: map[string]string{"bob": os.Getenv("JOURNAL_CRASH_STORE")},
		stores: map[string]*cases.Store{}, journals: map[string]*Journal{}, trust: tr, relay: fr}
	w.reopen("bob")
	if _, err := w.journals["bob"].Sync(context.Background(), fr.as(w.key("bob")), tr); err != nil {
		t.Fatal(err)
	}
}
