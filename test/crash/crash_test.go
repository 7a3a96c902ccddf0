//go:build linux

// Crash-safety harness.
//
// TestRelayCrash runs the built amana-relay as a separate process over one
// data directory, round after round: 12 concurrent submitters send small
// single-request submissions and resumable uploads of 1–12 MiB while a
// handler acks earlier ones, and after 10–600 ms the relay is killed with
// SIGKILL. The relay is then restarted on the same directory and the test
// checks that every submission that got a receipt is in the inbox, byte for
// byte, and opens with the handler's key; that every inbox item opens
// completely (nothing half-written is visible); that confirmed acks stuck;
// and, after a clean SIGINT stop, that the bbolt file passes its consistency
// check and its byte counters match what it holds.
//
// TestPullCrash kills 'amana pull' at random moments and checks that every
// case the relay no longer lists for the handler is complete on the
// handler's disk and every partial download is a prefix of the case, then
// lets a pull finish and opens every case.
//
// By default TestRelayCrash runs 8 rounds (3 with -short, fewer if they pass
// 40 s) and TestPullCrash one campaign, so each stays well under a minute
// (about 5 s and 2 s, 15 s and 4 s with -race). The long run, which
// 'make crash' does with 200 rounds (and 8 pull campaigns, one per 25
// rounds); either line works:
//
//	go test ./test/crash -run Crash -count=1 -v -timeout 60m -args -rounds=200
//	AMANA_CRASH_ROUNDS=200 go test ./test/crash -run Crash -count=1 -v -timeout 60m
//
// -rounds wins over $AMANA_CRASH_ROUNDS. Each test ends with a summary line
// starting "crash:" on stdout (shown with -v) and in the test log; lost,
// half-written visible and missing after ack must be 0. The tests need Linux:
// the programs they start get SIGKILL if the test binary dies. They kill
// processes, not the machine: they test what the relay and amana write
// before they answer, not what the disk keeps across a power cut.

package crash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/test/internal/relayproc"
)

var roundsFlag = flag.Int("rounds", 0, "TestRelayCrash rounds (default 8, 3 with -short; also $AMANA_CRASH_ROUNDS)")

var bin string // directory with the built amana and amana-relay

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "amana-crash-bin")
	if err != nil {
		panic(err)
	}
	if err := relayproc.Build(context.Background(), dir, "./cmd/amana", "./cmd/amana-relay"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rounds is how many rounds TestRelayCrash runs, and whether the number was
// asked for (rather than the default).
func rounds(t *testing.T) (int, bool) {
	if *roundsFlag > 0 {
		return *roundsFlag, true
	}
	if s := os.Getenv("AMANA_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("AMANA_CRASH_ROUNDS=%q: want a positive number", s)
		}
		return n, true
	}
	if testing.Short() {
		return 3, false
	}
	return 8, false
}

const (
	deskID     = "crash"
	workers    = 12               // concurrent submitters
	maxSmall   = 800 << 10        // attachment of a single-request submission, at most
	minLarge   = 1 << 20          // attachment of a resumable one, at least
	maxLarge   = 12 << 20         // and at most
	survivors  = 4                // submissions never acked, checked after every crash
	crashAcks  = 12               // submissions acked during a round, into its crash
	timeBudget = 40 * time.Second // for the default rounds, so that CI stays under a minute
)

// ---------------------------------------------------------------------------
// Processes

// start runs the built program name; it is killed when the test ends, and
// by the kernel if the test binary dies.
func start(t *testing.T, env []string, stdout io.Writer, name string, args ...string) *relayproc.Process {
	t.Helper()
	p, err := relayproc.Start(filepath.Join(bin, name), env, stdout, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// startRelay runs 'amana-relay serve --no-tor' on data.
func startRelay(t *testing.T, data string) *relayproc.Relay {
	t.Helper()
	r, err := relayproc.StartRelay(context.Background(), filepath.Join(bin, "amana-relay"), data, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// stopRelay stops the relay with SIGINT and checks it exits cleanly and in
// time, so that the spool is unlocked.
func stopRelay(t *testing.T, r *relayproc.Relay) {
	t.Helper()
	if clean, how := r.Stop(os.Interrupt, 20*time.Second); !clean {
		t.Errorf("amana-relay serve after SIGINT: %s\n%s", how, r.Tail())
	}
}

// ---------------------------------------------------------------------------
// The desk and its people

// world is a relay data directory with a desk of two classic handlers,
// alice and bob, every submission going to both.
type world struct {
	dir, data         string
	admin, alice, bob *crypto.Identity
	cards             []*crypto.Card
	envelope          []byte
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	w.data = filepath.Join(w.dir, "data")
	var err error
	for _, p := range []struct {
		id   **crypto.Identity
		name string
	}{{&w.admin, "admin"}, {&w.alice, "alice"}, {&w.bob, "bob"}} {
		if *p.id, err = crypto.GenerateIdentity(p.name, true); err != nil {
			t.Fatal(err)
		}
	}
	m := &crypto.Manifest{Version: 1, Desk: deskID, Title: "Crash desk", Serial: 1,
		Handlers: []string{w.alice.Card().String(), w.bob.Card().String()}}
	if w.envelope, err = crypto.SignManifest(m, w.admin.SigningKey()); err != nil {
		t.Fatal(err)
	}
	w.cards = m.Cards()
	card := filepath.Join(w.dir, "admin.card")
	if err := os.WriteFile(card, []byte(w.admin.Card().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(bin, "amana-relay"), "init", "--data", w.data, "--admin", card).CombinedOutput(); err != nil {
		t.Fatalf("amana-relay init: %v\n%s", err, out)
	}
	return w
}

func (w *world) publish(t *testing.T, r *relayproc.Relay) {
	t.Helper()
	c := w.client(t, r.URL, nil, w.admin)
	if _, err := c.Publish(context.Background(), deskID, w.envelope); err != nil {
		t.Fatalf("publishing the desk: %v\n%s", err, r.Tail())
	}
}

// client returns a client of the relay at url signing as id (nil: none).
func (w *world) client(t *testing.T, url string, hc *http.Client, id *crypto.Identity) *client.Client {
	t.Helper()
	c, err := client.New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = 20 * time.Millisecond
	if id != nil {
		c.Key = id.SigningKey()
	}
	return c
}

// ---------------------------------------------------------------------------
// Submissions

// sub is one submission: a bundle whose report carries a unique marker and
// whose one attachment is a stream derived from the marker, so its content
// can be recomputed.
type sub struct {
	marker  string
	small   bool // sent in one request
	attSize int64
	attSHA  string

	// Set by the submitter once Submit returned.
	ctLen   int64
	ctSHA   string // of the ciphertext, if it was read to its end
	keep    bool   // keep the ciphertext in ct
	ct      []byte
	receipt *api.Receipt
}

func content(marker string, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(sha256.Sum256([]byte(marker))), n)
}

func newSub(marker string, small bool, size int64) *sub {
	h := sha256.New()
	io.Copy(h, content(marker, size))
	return &sub{marker: marker, small: small, attSize: size, attSHA: hex.EncodeToString(h.Sum(nil))}
}

func (s *sub) seal(cards []*crypto.Card) (io.ReadCloser, int64, error) {
	r := &crypto.Report{Desk: deskID, Language: "en", Submitted: crypto.SubmittedAt(time.Now()), SealedBy: crypto.SealedByClient,
		Answers: []crypto.Answer{{Field: "marker", Value: s.marker}}}
	f := crypto.File{Attachment: crypto.Attachment{Name: "evidence.bin", Size: s.attSize, SHA256: s.attSHA, Type: "application/octet-stream"},
		Body: content(s.marker, s.attSize)}
	return crypto.SealBundle(cards, r, []crypto.File{f})
}

// opened is what a ciphertext opened to.
type opened struct {
	marker  string
	attSize int64
	attSHA  string
}

// openAll decrypts a bundle and reads all of it: report.json, the
// attachment (checked against its SHA-256 in report.json) and the padding.
func openAll(ct []byte, id *crypto.Identity) (*opened, error) {
	br, err := crypto.OpenBundle(bytes.NewReader(ct), id.Age())
	if err != nil {
		return nil, err
	}
	o := &opened{}
	for _, a := range br.Report().Answers {
		if a.Field == "marker" {
			o.marker = a.Value
		}
	}
	if o.marker == "" {
		return nil, errors.New("report.json has no marker")
	}
	a, rd, err := br.Next()
	if err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, rd); err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	o.attSize, o.attSHA = a.Size, hex.EncodeToString(h.Sum(nil))
	if a.Name != "evidence.bin" {
		return nil, fmt.Errorf("attachment named %q", a.Name)
	}
	if _, _, err := br.Next(); err != io.EOF {
		return nil, fmt.Errorf("end of bundle: %v", err)
	}
	return o, nil
}

// matches says how an opened bundle differs from the submission it claims
// to be, or "" if it does not.
func (s *sub) matches(o *opened) string {
	if o.attSize != s.attSize || o.attSHA != s.attSHA {
		return fmt.Sprintf("attachment is %d bytes with SHA-256 %.12s, sent %d bytes with %.12s", o.attSize, o.attSHA, s.attSize, s.attSHA)
	}
	return ""
}

type hashReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	keep *[]byte
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	if h.keep != nil {
		*h.keep = append(*h.keep, p[:n]...)
	}
	h.n += int64(n)
	return n, err
}

// submit seals s and sends it with c.
func (s *sub) submit(ctx context.Context, c *client.Client, cards []*crypto.Card) error {
	rc, n, err := s.seal(cards)
	if err != nil {
		return err
	}
	defer rc.Close()
	s.ctLen = n
	hr := &hashReader{r: rc, h: sha256.New()}
	if s.keep {
		hr.keep = &s.ct
	}
	rcpt, err := c.Submit(ctx, deskID, "", hr, n, nil)
	if hr.n == n {
		s.ctSHA = hex.EncodeToString(hr.h.Sum(nil))
	}
	s.receipt = rcpt
	return err
}

func randHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
