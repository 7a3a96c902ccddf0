package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/relaytest"
)

// The tests in this file run the amana command in process against a real
// relay.Server, seen by the submitter through a hostile relay in front of
// it: the hostile relay rewrites the mailbox answer, withholds or forges
// replies, serves desks signed by its own key, and accepts any follow-up
// (answering with a receipt that matches it, as a lying relay would).

// run runs amana with args and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errb := run(t, args...)
	if code != 0 {
		t.Fatalf("amana %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errb)
	}
	return out
}

// lie is what the hostile relay says instead of the truth.
type lie struct {
	desk, category string            // the mailbox answer's thread
	withhold       bool              // list none of the desk's replies
	forged         []byte            // a reply of its own to list and serve
	manifests      map[string][]byte // desk manifests it serves itself
	// badReceipt keeps the mailbox answer true and answers a follow-up
	// with a storage receipt for other bytes.
	badReceipt bool
}

// hostile is a relay in front of a real one. With no lie set it passes
// everything through.
type hostile struct {
	real http.Handler

	mu        sync.Mutex
	lie       *lie
	followups int // follow-ups posted while a lie was told, since reset
}

const forgedID = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"

func (h *hostile) set(l *lie) {
	h.mu.Lock()
	h.lie = l
	h.mu.Unlock()
}

// reset forgets the follow-ups posted so far.
func (h *hostile) reset() {
	h.mu.Lock()
	h.followups = 0
	h.mu.Unlock()
}

func (h *hostile) posted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.followups
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	l := h.lie
	h.mu.Unlock()
	if l == nil {
		h.real.ServeHTTP(w, r)
		return
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/api/v1/mailbox":
		rec := httptest.NewRecorder()
		h.real.ServeHTTP(rec, r)
		var mb api.Mailbox
		if err := json.Unmarshal(rec.Body.Bytes(), &mb); err != nil {
			http.Error(w, "bad answer", 500)
			return
		}
		if !l.badReceipt {
			mb.Desk, mb.Category = l.desk, l.category
		}
		if l.withhold {
			mb.Replies = []api.ReplyInfo{}
		}
		if l.forged != nil {
			sum := sha256.Sum256(l.forged)
			mb.Replies = append(mb.Replies, api.ReplyInfo{ID: forgedID, Size: int64(len(l.forged)), SHA256: hex.EncodeToString(sum[:]),
				Received: time.Now().UTC().Format(time.RFC3339)})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(mb)
	case r.Method == "POST" && r.URL.Path == "/api/v1/mailbox/replies/"+forgedID && l.forged != nil:
		w.Write(l.forged)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/api/v1/desks/") && l.manifests[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/desks/"), "/manifest")] != nil:
		w.Write(l.manifests[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/desks/"), "/manifest")])
	case r.Method == "POST" && r.URL.Path == "/api/v1/mailbox/followups":
		// Keep it, and answer as if it were stored.
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.followups++
		h.mu.Unlock()
		sum := sha256.Sum256(b)
		if l.badReceipt {
			sum = sha256.Sum256(append(b, 0))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(api.Receipt{ID: strings.Repeat("ab", 16), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]),
			Received: time.Now().UTC().Format(time.RFC3339)})
	default:
		h.real.ServeHTTP(w, r)
	}
}

// followupWorld is a relay with two desks signed by one admin key:
// "helpdesk" (alice and carol; category "sea" is carol's only) and
// "other" (bob's). A submitter reported to helpdesk in "sea".
type followupWorld struct {
	dir       string
	real      string // the relay, as handlers reach it
	url       string // the relay, as the submitter reaches it
	hostile   *hostile
	adminFP   string
	mallory   *crypto.Identity // the hostile relay's own key
	receipt   string           // the receipt file of the report
	digits    string           // the same receipt's digits, in Persian digits
	words     string
	reportID  string
	clockSkew *clock
}

func (w *followupWorld) path(p string) string { return filepath.Join(w.dir, p) }

// clock is the relay's clock; step moves it on so that the relay's
// global lookup budget refills between commands.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) step() {
	c.mu.Lock()
	c.off += 5 * time.Second
	c.mu.Unlock()
}

var (
	wordsLine  = regexp.MustCompile(`receipt words[^\n]*\n\s+([a-z ]+)\n`)
	digitsLine = regexp.MustCompile(`receipt as digits[^\n]*\n\s+([0-9 ]+)\n`)
	idLine     = regexp.MustCompile(`id:\s+([0-9a-f]{32})`)
)

func newFollowupWorld(t *testing.T) *followupWorld {
	t.Helper()
	w := &followupWorld{dir: t.TempDir(), clockSkew: &clock{}}
	for _, n := range []string{"admin", "alice", "carol", "bob"} {
		mustRun(t, "keygen", "--home", w.path("home-"+n), "-o", w.path(n+".key"), "--name", n, "--no-passphrase", "--classic")
		card := mustRun(t, "card", "--home", w.path("home-"+n), "-i", w.path(n+".key"))
		os.WriteFile(w.path(n+".card"), []byte(card), 0o644)
	}
	adminCard, err := crypto.ParseCard(strings.TrimSpace(readFile(t, w.path("admin.card"))))
	if err != nil {
		t.Fatal(err)
	}
	w.adminFP = crypto.KeyFingerprint(adminCard.SignKey)
	r := relaytest.New(t, relaytest.Options{Config: relay.Config{Admin: adminCard.SignKey, Now: w.clockSkew.now, SignatureWindow: time.Hour}})
	w.real = r.URL
	w.url = r.Serve(t, func(real http.Handler) http.Handler {
		w.hostile = &hostile{real: real}
		return w.hostile
	})
	mustRun(t, "desk", "create", "--home", w.path("home-admin"), "--id", "helpdesk", "--title", "Helpdesk",
		"--handler", w.path("alice.card"), "--handler", w.path("carol.card"),
		"--category", "incident=alice,carol", "--category", "sea=carol", "--serial", "10",
		"-i", w.path("admin.key"), "-o", w.path("helpdesk.json"))
	mustRun(t, "desk", "create", "--home", w.path("home-admin"), "--id", "other", "--title", "Other desk",
		"--handler", w.path("bob.card"), "--serial", "10", "-i", w.path("admin.key"), "-o", w.path("other.json"))
	for _, d := range []string{"helpdesk", "other"} {
		mustRun(t, "desk", "publish", "--home", w.path("home-admin"), w.path(d+".json"), "--relay", w.real, "-i", w.path("admin.key"))
	}
	if w.mallory, err = crypto.GenerateIdentity("mallory", true); err != nil {
		t.Fatal(err)
	}

	// The submitter (home-tofu) reported to "other" once, and now to
	// helpdesk in "sea": this machine trusts both desks' keys.
	os.WriteFile(w.path("msg.txt"), []byte("what happened\n"), 0o600)
	mustRun(t, "submit", "--home", w.path("home-tofu"), "--relay", w.url, "--desk", "other", "--message-file", w.path("msg.txt"))
	out := mustRun(t, "submit", "--home", w.path("home-tofu"), "--relay", w.url, "--desk", "helpdesk", "--category", "sea", "--message-file", w.path("msg.txt"))
	m := wordsLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no receipt words:\n%s", out)
	}
	w.words = m[1]
	w.receipt = w.path("receipt.txt")
	os.WriteFile(w.receipt, []byte(w.words+"\n"), 0o600)
	d := digitsLine.FindStringSubmatch(out)
	if d == nil {
		t.Fatalf("no receipt digits:\n%s", out)
	}
	persian := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return '\u06f0' + c - '0'
		}
		return c
	}, strings.ReplaceAll(d[1], " ", "-"))
	w.digits = w.path("digits.txt")
	os.WriteFile(w.digits, []byte(persian+"\n"), 0o600)
	w.reportID = idLine.FindStringSubmatch(out)[1]
	return w
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// variants are the two ways a submitter's machine trusts the desk: the key
// remembered at submission (tofu), or the fingerprint given on the command
// line in a home that remembers nothing (pinned).
func (w *followupWorld) variant(name string) []string {
	if name == "pinned" {
		return []string{"--home", w.path("home-pinned"), "--desk-fingerprint", w.adminFP}
	}
	return []string{"--home", w.path("home-tofu")}
}

func (w *followupWorld) followup(t *testing.T, variant string, extra ...string) (int, string, string) {
	t.Helper()
	w.clockSkew.step()
	w.hostile.reset()
	args := append([]string{"followup", "--relay", w.url, "--receipt-file", w.receipt, "--message-file", w.path("msg.txt")}, w.variant(variant)...)
	return run(t, append(args, extra...)...)
}

func (w *followupWorld) check(t *testing.T, variant string, extra ...string) (int, string, string) {
	t.Helper()
	w.clockSkew.step()
	w.hostile.reset()
	args := append([]string{"check", "--relay", w.url, "--receipt-file", w.receipt}, w.variant(variant)...)
	return run(t, append(args, extra...)...)
}

// evilManifest is a desk "evil" whose only handler is the relay's own key,
// signed by that key.
func (w *followupWorld) evilManifest(t *testing.T) []byte {
	t.Helper()
	m := &crypto.Manifest{Version: 1, Desk: "evil", Title: "Helpdesk", Serial: 1, Handlers: []string{w.mallory.Card().String()}}
	env, err := crypto.SignManifest(m, w.mallory.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// forgedReply is a reply signed by the relay's own key, in desk "evil",
// naming that key as the only recipient. The hostile relay is assumed to
// know the submitter's reply key (a relay that sealed a no-JavaScript
// report saw it).
func (w *followupWorld) forgedReply(t *testing.T) []byte {
	t.Helper()
	rc, err := crypto.ParseReceipt(w.words)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := rc.ReplyIdentity(false)
	rep := &crypto.Report{Desk: "evil", Submitted: crypto.SubmittedAt(time.Now()), Mailbox: rc.MailboxID(),
		Answers: []crypto.Answer{{Field: "message", Value: "Please send us the names."}}, Recipients: []string{w.mallory.Recipient()}}
	if err := crypto.SignReplyFiles(rep, nil, w.mallory); err != nil {
		t.Fatal(err)
	}
	rd, _, err := crypto.SealBundle([]*crypto.Card{w.mallory.Card(), sub.Card()}, rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rd)
	return b
}

// refused checks that a command was refused as a trust failure, with a
// message and a hint, and that nothing was posted.
func (w *followupWorld) refused(t *testing.T, what string, code int, stderr string) {
	t.Helper()
	t.Logf("%s: exit %d\n%s", what, code, stderr)
	if code != ExitTrust {
		t.Errorf("%s: exit %d, want %d (trust)\n%s", what, code, ExitTrust, stderr)
	}
	if !strings.Contains(stderr, "amana: ") || !strings.Contains(stderr, "\nhint: ") {
		t.Errorf("%s: no message and hint:\n%s", what, stderr)
	}
	if n := w.hostile.posted(); n != 0 {
		t.Errorf("%s: %d follow-up(s) posted to the lying relay", what, n)
	}
}

// TestFollowupMaliciousRelay plays the three attacks of a relay that
// decides where a follow-up is encrypted, before and after the desk's
// reply, against a machine that trusts the desk on first use and one that
// pins its fingerprint; then the honest paths.
func TestFollowupMaliciousRelay(t *testing.T) {
	w := newFollowupWorld(t)
	sea := []string{"--desk", "helpdesk", "--category", "sea"}
	variants := []string{"tofu", "pinned"}

	// Before any reply (and before the mailbox exists).
	for _, v := range variants {
		// 1. The category widened: the relay says the thread is the whole
		// desk's.
		w.hostile.set(&lie{desk: "helpdesk", category: ""})
		code, _, stderr := w.followup(t, v, sea...)
		w.refused(t, v+": category widened", code, stderr)

		// 2. Another desk signed by the same admin key.
		w.hostile.set(&lie{desk: "other"})
		code, _, stderr = w.followup(t, v, sea...)
		w.refused(t, v+": another desk, with --desk", code, stderr)
		code, _, stderr = w.followup(t, v)
		w.refused(t, v+": another desk, without --desk", code, stderr)

		// 3. A desk of the relay's own, signed by its own key.
		w.hostile.set(&lie{desk: "evil", manifests: map[string][]byte{"evil": w.evilManifest(t)}})
		code, _, stderr = w.followup(t, v, sea...)
		w.refused(t, v+": the relay's own desk, with --desk", code, stderr)
		code, _, stderr = w.followup(t, v)
		w.refused(t, v+": the relay's own desk, without --desk", code, stderr)
		if strings.Contains(stderr, "first contact") {
			t.Errorf("%s: the relay's own desk taken as a first contact:\n%s", v, stderr)
		}
	}

	// The honest relay: the first follow-up goes where the submitter says,
	// and so does the next one, which the relay's thread now agrees with.
	w.hostile.set(nil)
	for _, v := range variants {
		if code, out, stderr := w.followup(t, v, sea...); code != 0 || !strings.Contains(stderr, "1 handler(s)") {
			t.Fatalf("%s: honest follow-up before a reply: exit %d\n%s%s", v, code, out, stderr)
		}
	}
	// After it, a relay that widens the existing thread is still refused.
	w.hostile.set(&lie{desk: "helpdesk", category: "incident"})
	code, _, stderr := w.followup(t, "tofu", sea...)
	w.refused(t, "thread of another category", code, stderr)

	// carol (the only handler of "sea") pulls and replies.
	w.hostile.set(nil)
	mustRun(t, "pull", "--home", w.path("home-carol"), "--relay", w.real, "-i", w.path("carol.key"))
	os.WriteFile(w.path("reply.txt"), []byte("Are you safe?\n"), 0o600)
	mustRun(t, "reply", w.reportID, "--home", w.path("home-carol"), "--relay", w.real, "-i", w.path("carol.key"), "--message-file", w.path("reply.txt"))

	// After the reply.
	for _, v := range variants {
		// 1. The category widened, the reply withheld.
		w.hostile.set(&lie{desk: "helpdesk", category: "", withhold: true})
		code, _, stderr := w.followup(t, v)
		w.refused(t, v+": after a reply, category widened, reply withheld", code, stderr)
		code, _, stderr = w.followup(t, v, sea...)
		w.refused(t, v+": after a reply, category widened, reply withheld, with --desk", code, stderr)
		// ... or the reply shown, the mailbox answer still widened.
		w.hostile.set(&lie{desk: "helpdesk", category: ""})
		code, _, stderr = w.followup(t, v)
		w.refused(t, v+": after a reply, category widened", code, stderr)

		// 2. Another desk, with and without the reply.
		for _, withhold := range []bool{true, false} {
			w.hostile.set(&lie{desk: "other", withhold: withhold})
			code, _, stderr = w.followup(t, v)
			w.refused(t, v+": after a reply, another desk", code, stderr)
		}

		// 3. The relay's own desk, with a reply of its own.
		w.hostile.set(&lie{desk: "evil", manifests: map[string][]byte{"evil": w.evilManifest(t)}, forged: w.forgedReply(t)})
		code, _, stderr = w.followup(t, v)
		w.refused(t, v+": after a reply, the relay's own desk and reply", code, stderr)
		code, out, stderr := w.check(t, v)
		w.refused(t, v+": check, the relay's own desk and reply", code, stderr)
		if strings.Contains(out, "verified") {
			t.Errorf("%s: check shows the relay's reply as verified:\n%s", v, out)
		}
	}

	// The honest relay after the reply: the reply decides, with or without
	// --desk, and check shows it verified.
	w.hostile.set(nil)
	for _, v := range variants {
		code, out, stderr := w.check(t, v)
		if code != 0 || !strings.Contains(out, "from carol of desk helpdesk (signature verified)") {
			t.Fatalf("%s: honest check: exit %d\n%s%s", v, code, out, stderr)
		}
		// The same receipt as digits, typed in Persian digits, reads the
		// same reply.
		w.clockSkew.step()
		code, byDigits, stderr := run(t, append([]string{"check", "--relay", w.url, "--receipt-file", w.digits}, w.variant(v)...)...)
		if code != 0 || byDigits != out {
			t.Fatalf("%s: check with the digits: exit %d\n%s%s", v, code, byDigits, stderr)
		}
		for _, extra := range [][]string{nil, sea} {
			if code, out, stderr := w.followup(t, v, extra...); code != 0 || !strings.Contains(stderr, "1 handler(s)") {
				t.Fatalf("%s %v: honest follow-up after a reply: exit %d\n%s%s", v, extra, code, out, stderr)
			}
		}
	}
	// Flags that disagree with the signed reply: the reply wins, and a
	// note says so.
	code, _, stderr = w.followup(t, "tofu", "--desk", "helpdesk", "--category", "incident")
	if code != 0 || !strings.Contains(stderr, `note: the desk's signed reply files this conversation under desk "helpdesk", category "sea"`) ||
		!strings.Contains(stderr, "1 handler(s)") {
		t.Errorf("flags against the reply: exit %d\n%s", code, stderr)
	}
	// carol gets every honest follow-up in her case.
	mustRun(t, "pull", "--home", w.path("home-carol"), "--relay", w.real, "-i", w.path("carol.key"))
	show := mustRun(t, "show", "--home", w.path("home-carol"), w.reportID, "-i", w.path("carol.key"))
	if n := strings.Count(show, "-- followup from the submitter"); n != 7 {
		t.Errorf("carol's case has %d follow-ups, want 7:\n%s", n, show)
	}

	// Even from an honest relay, check and followup never trust a desk on
	// first contact, and never write a record.
	fresh := []string{"--home", w.path("home-fresh")}
	for _, cmd := range [][]string{
		{"check", "--relay", w.url, "--receipt-file", w.receipt},
		{"check", "--relay", w.url, "--receipt-file", w.receipt, "--desk", "helpdesk"},
		{"followup", "--relay", w.url, "--receipt-file", w.receipt, "--message-file", w.path("msg.txt")},
		{"followup", "--relay", w.url, "--receipt-file", w.receipt, "--message-file", w.path("msg.txt"), "--desk", "helpdesk", "--category", "sea"},
	} {
		w.clockSkew.step()
		code, _, stderr := run(t, append(cmd, fresh...)...)
		if code != ExitTrust || !strings.Contains(stderr, "--desk-fingerprint") || strings.Contains(stderr, "first contact with") {
			t.Errorf("%v in a home that knows no desk: exit %d\n%s", cmd, code, stderr)
		}
	}
	if _, err := os.Stat(w.path("home-fresh/known_desks.json")); err == nil {
		t.Error("check or followup wrote known_desks.json")
	}
	for _, v := range variants {
		code, _, stderr := w.check(t, v, "--desk", "other")
		if code != ExitTrust || !strings.Contains(stderr, `the relay says this conversation belongs to desk "helpdesk", category "sea", but --desk says desk "other"`) {
			t.Errorf("%s: check --desk other: exit %d\n%s", v, code, stderr)
		}
	}
}

// handlerReply is a reply signed by a handler of the desk (from its key
// file in w), changed by edit before it is signed, and sealed to that
// handler and the submitter.
func (w *followupWorld) handlerReply(t *testing.T, name string, edit func(*crypto.Report)) []byte {
	t.Helper()
	id, err := crypto.ParseIdentityFile([]byte(readFile(t, w.path(name+".key"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := crypto.ParseReceipt(w.words)
	sub, _ := rc.ReplyIdentity(false)
	rep := &crypto.Report{Desk: "helpdesk", Category: "sea", Submitted: crypto.SubmittedAt(time.Now()), Mailbox: rc.MailboxID(),
		Answers: []crypto.Answer{{Field: "message", Value: "a reply"}}, Recipients: []string{id.Recipient()}}
	edit(rep)
	if err := crypto.SignReplyFiles(rep, nil, id); err != nil {
		t.Fatal(err)
	}
	rd, _, err := crypto.SealBundle([]*crypto.Card{id.Card(), sub.Card()}, rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rd)
	return b
}

// TestFollowupSignedReplyChecks: a reply whose signature verifies decides
// where a follow-up goes only if it is signed for this desk and this
// conversation, and names only handlers of the trusted manifest.
func TestFollowupSignedReplyChecks(t *testing.T) {
	w := newFollowupWorld(t)
	for _, tc := range []struct {
		name string
		edit func(*crypto.Report)
		ok   bool
	}{
		{"as the desk sends it", func(*crypto.Report) {}, true},
		{"for another conversation", func(r *crypto.Report) { r.Mailbox = strings.Repeat("0", 32) }, false},
		{"for no conversation", func(r *crypto.Report) { r.Mailbox = "" }, false},
		{"for another desk", func(r *crypto.Report) { r.Desk = "other" }, false},
		{"naming the relay's key too", func(r *crypto.Report) { r.Recipients = append(r.Recipients, w.mallory.Recipient()) }, false},
		{"naming no one", func(r *crypto.Report) { r.Recipients = nil }, false},
	} {
		for _, v := range []string{"tofu", "pinned"} {
			w.hostile.set(&lie{desk: "helpdesk", category: "sea", forged: w.handlerReply(t, "carol", tc.edit)})
			for _, extra := range [][]string{nil, {"--desk", "helpdesk", "--category", "sea"}} {
				code, out, stderr := w.followup(t, v, extra...)
				what := fmt.Sprintf("%s, reply %s, %v", v, tc.name, extra)
				if tc.ok {
					if code != 0 || w.hostile.posted() != 1 {
						t.Errorf("%s: exit %d, %d posted\n%s%s", what, code, w.hostile.posted(), out, stderr)
					}
					continue
				}
				w.refused(t, what, code, stderr)
			}
		}
	}
}

// TestFollowupChecksStorageReceipt: a relay that answers a follow-up with a
// storage receipt for other bytes is caught, as for submit (threat model
// §8.5), and its receipt is not printed as if it were true.
func TestFollowupChecksStorageReceipt(t *testing.T) {
	w := newFollowupWorld(t)
	w.hostile.set(&lie{badReceipt: true})
	code, out, errb := w.followup(t, "tofu", "--desk", "helpdesk", "--category", "sea")
	if code != ExitTrust || !strings.Contains(errb, "receipt does not match") || strings.Contains(out, "stored") {
		t.Fatalf("a wrong storage receipt: exit %d\nstdout: %s\nstderr: %s", code, out, errb)
	}
}
