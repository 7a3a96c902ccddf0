package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"filippo.io/age"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// StatusMessage is a status message waiting to be posted to a case's
// mailbox: the sealed reply (ciphertext only) and what the reply route
// needs to file it. On disk the whole entry is sealed to the handler's own
// key, as the index is: the status, mailbox, desk and category are case
// state, never kept in the clear.
type StatusMessage struct {
	Case     string `json:"case"`
	Desk     string `json:"desk"`
	Category string `json:"category"`
	Mailbox  string `json:"mailbox"`
	// Relay is the relay the case came from, whose mailbox it goes to.
	Relay string `json:"relay"`
	// Status is the status the message tells of (a name of the desk's
	// workflow), Seq its place in the case's thread.
	Status     string `json:"status"`
	Seq        int64  `json:"seq"`
	Ciphertext []byte `json:"ciphertext"`
}

// statusSuffix ends the name of a queued entry: <case>.<seq>.status.age.
const statusSuffix = ".status.age"

func (m *StatusMessage) name() string {
	return m.Case + "." + strconv.FormatInt(m.Seq, 10) + statusSuffix
}

// queuedSeq is the seq a queued entry's file name gives (0 when the name
// gives none): what a damaged entry still tells of the thread.
func queuedSeq(name, caseID string) int64 {
	rest, ok := strings.CutPrefix(name, caseID+".")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(rest, statusSuffix), 10, 64)
	if err != nil || n <= 0 || n > crypto.MaxSeq {
		return 0
	}
	return n
}

func (m *StatusMessage) valid() bool {
	return validCase(m.Case) && crypto.ValidName(m.Desk) && (m.Category == "" || crypto.ValidName(m.Category)) &&
		cases.ValidID(m.Mailbox) && crypto.ValidName(m.Status) && m.Seq > 0 && m.Seq <= crypto.MaxSeq && len(m.Ciphertext) > 0
}

// ReplyPoster posts a reply to a mailbox: relay/client.Client.PostReply.
type ReplyPoster interface {
	PostReply(ctx context.Context, mailbox, desk, category string, ciphertext []byte) (string, error)
}

const statusDir = "status-outbox"

// QueueStatus keeps m, durably, until FlushStatus posts it. m's
// ciphertext must already be the sealed, signed status message: nothing in
// the queue is plaintext. A message of the same case and Seq replaces the
// one queued before.
func (j *Journal) QueueStatus(m *StatusMessage) error {
	if !m.valid() {
		return fmt.Errorf("%w: an incomplete status message", ErrInvalidChange)
	}
	unlock, err := j.lock()
	if err != nil {
		return err
	}
	defer unlock()
	dir := filepath.Join(j.dir, statusDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("queueing the status message: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if b, err = j.sealOwn(b); err != nil {
		return fmt.Errorf("queueing the status message: %w", err)
	}
	if err := cases.WriteTemp(filepath.Join(dir, m.name()), b); err != nil {
		return fmt.Errorf("queueing the status message: %w", err)
	}
	return cases.SyncDir(dir)
}

// QueuedStatus lists the status messages waiting, in name order; of one
// case, when caseID is not "". Damaged lists, as paths, the queued files
// that do not open or parse (of that case, by name, when caseID is not
// ""): they are skipped, and kept for the handler to look at.
func (j *Journal) QueuedStatus(caseID string) (ms []*StatusMessage, damaged []string, err error) {
	all, _, bad, err := j.statusQueue()
	if err != nil {
		return nil, nil, err
	}
	for _, m := range all {
		if caseID == "" || m.Case == caseID {
			ms = append(ms, m)
		}
	}
	for _, p := range bad {
		if caseID == "" || strings.HasPrefix(filepath.Base(p), caseID+".") {
			damaged = append(damaged, p)
		}
	}
	return ms, damaged, nil
}

// QueuedSeq is the highest seq of the status messages waiting for caseID,
// damaged ones included (their file name gives it); 0 when none.
func (j *Journal) QueuedSeq(caseID string) (int64, error) {
	ms, _, bad, err := j.statusQueue()
	if err != nil {
		return 0, err
	}
	var hi int64
	for _, m := range ms {
		if m.Case == caseID {
			hi = max(hi, m.Seq)
		}
	}
	for _, p := range bad {
		hi = max(hi, queuedSeq(filepath.Base(p), caseID))
	}
	return hi, nil
}

// statusQueue reads the queue: the entries that open, their file names,
// and the paths of the files that do not.
func (j *Journal) statusQueue() ([]*StatusMessage, []string, []string, error) {
	dir := filepath.Join(j.dir, statusDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the status messages waiting: %w", err)
	}
	var out []*StatusMessage
	var names, damaged []string
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), statusSuffix) {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		b, err := os.ReadFile(path)
		if err == nil {
			b, err = j.openOwn(b)
		}
		var m *StatusMessage
		if err == nil {
			m, err = parseStatusMessage(ent.Name(), b)
		}
		if err != nil {
			damaged = append(damaged, path)
			continue
		}
		out = append(out, m)
		names = append(names, ent.Name())
	}
	return out, names, damaged, nil
}

// FlushStatus posts every status message waiting for relay (their Relay,
// trailing slashes aside) through its reply route p, and removes each only
// once the relay took it; posted, if not nil, is
// told of each with the reply ID the relay gave. It returns how many still
// wait, the paths of the queued files that are damaged (skipped, not
// removed: one damaged file holds up no other), and the first error.
func (j *Journal) FlushStatus(ctx context.Context, p ReplyPoster, relay string, posted func(m *StatusMessage, replyID string)) (left int, damaged []string, err error) {
	unlock, err := j.lock()
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	ms, names, damaged, err := j.statusQueue()
	if err != nil {
		return 0, nil, err
	}
	dir := filepath.Join(j.dir, statusDir)
	var first error
	for i, m := range ms {
		if strings.TrimRight(m.Relay, "/") != strings.TrimRight(relay, "/") {
			continue
		}
		rid, err := p.PostReply(ctx, m.Mailbox, m.Desk, m.Category, m.Ciphertext)
		if err != nil {
			left++
			if first == nil {
				first = fmt.Errorf("posting a status message: %w", err)
			}
			continue
		}
		if err := os.Remove(filepath.Join(dir, names[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return left, damaged, err
		}
		if posted != nil {
			posted(m, rid)
		}
	}
	if len(ms) > 0 {
		if err := cases.SyncDir(dir); err != nil && first == nil {
			first = err
		}
	}
	return left, damaged, first
}

// sealOwn encrypts b to the handler's own key, as the index is sealed.
func (j *Journal) sealOwn(b []byte) ([]byte, error) {
	rcpt, err := crypto.ParseRecipient(j.id.Recipient())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcpt)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// openOwn decrypts, in memory, what sealOwn sealed.
func (j *Journal) openOwn(b []byte) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(b), j.id.Age())
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// parseStatusMessage reads the queued status message kept as file name
// (once opened).
func parseStatusMessage(name string, b []byte) (*StatusMessage, error) {
	var m StatusMessage
	if err := json.Unmarshal(b, &m); err != nil || !m.valid() || m.name() != name {
		return nil, fmt.Errorf("the waiting status message %s is damaged", name)
	}
	return &m, nil
}
