package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// StatusMessage is a status message waiting to be posted to a case's
// mailbox: the sealed reply (ciphertext only) and what the reply route
// needs to file it.
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

func (m *StatusMessage) name() string {
	return m.Case + "." + strconv.FormatInt(m.Seq, 10) + ".status.json"
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
	if err := cases.WriteTemp(filepath.Join(dir, m.name()), b); err != nil {
		return fmt.Errorf("queueing the status message: %w", err)
	}
	return cases.SyncDir(dir)
}

// QueuedStatus lists the status messages waiting, in name order; of one
// case, when caseID is not "".
func (j *Journal) QueuedStatus(caseID string) ([]*StatusMessage, error) {
	ms, _, err := j.statusQueue()
	if err != nil || caseID == "" {
		return ms, err
	}
	var out []*StatusMessage
	for _, m := range ms {
		if m.Case == caseID {
			out = append(out, m)
		}
	}
	return out, nil
}

func (j *Journal) statusQueue() ([]*StatusMessage, []string, error) {
	dir := filepath.Join(j.dir, statusDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the status messages waiting: %w", err)
	}
	var out []*StatusMessage
	var names []string
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".status.json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("reading the status messages waiting: %w", err)
		}
		m, err := parseStatusMessage(ent.Name(), b)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, m)
		names = append(names, ent.Name())
	}
	return out, names, nil
}

// FlushStatus posts every status message waiting for relay (their Relay,
// trailing slashes aside) through its reply route p, and removes each only
// once the relay took it; posted, if not nil, is
// told of each with the reply ID the relay gave. It returns how many still
// wait, and the first error.
func (j *Journal) FlushStatus(ctx context.Context, p ReplyPoster, relay string, posted func(m *StatusMessage, replyID string)) (int, error) {
	unlock, err := j.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	ms, names, err := j.statusQueue()
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(j.dir, statusDir)
	var first error
	left := 0
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
			return left, err
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
	return left, first
}

// parseStatusMessage reads the queued status message kept as file name.
func parseStatusMessage(name string, b []byte) (*StatusMessage, error) {
	var m StatusMessage
	if err := json.Unmarshal(b, &m); err != nil || !m.valid() || m.name() != name {
		return nil, fmt.Errorf("the waiting status message %s is damaged", name)
	}
	return &m, nil
}
