// Package journal is a handler's case journal: every change to a case (a
// status, an assignee, a note...) is a signed event, sealed to exactly the
// handlers of the case's route (and, as text-free facts, to the desk's
// coordinators), posted through the relay and merged by every handler into
// the same state whatever order the events arrive in.
//
// The route is always the one the trusted manifest gives for the report's
// own category, read from its encrypted report.json, never the relay's
// word. Events are kept exactly as received (ciphertext) under the case
// store and decrypted in memory only; the derived index is sealed to the
// handler's own key.
//
// It must never write an event's plaintext to disk, never acknowledge an
// event before its copy is durable, and never accept an event the trusted
// manifest does not let its author write.
package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/relay/api"
)

// Trust gives the manifests the client already trusts (pinned/fingerprinted).
type Trust interface {
	Manifest(desk string) (*crypto.Manifest, error)
}

// Relay is what Sync, Record and Share need from relay/client.Client.
type Relay interface {
	PostEvent(ctx context.Context, desk, category, part, to string, ciphertext []byte) (string, error)
	Events(ctx context.Context) ([]api.Item, error)
	DownloadEvent(ctx context.Context, id string) ([]byte, error)
	AckEvent(ctx context.Context, id string) (api.Ack, error)
}

// Parts of an event as the relay names them.
const (
	PartCase  = "case"
	PartFacts = "facts"
	PartShare = "share"
)

// Item kinds the relay lists events under.
const (
	kindEvent = "event"
	kindFacts = "facts"
	kindShare = "share"
)

// Errors.
var (
	// ErrNotACase: the stored item is a reply or follow-up, not a report.
	ErrNotACase = errors.New("not a case: replies and follow-ups belong to their report")
	// ErrNotOnRoute: the handler is not among the case's handlers.
	ErrNotOnRoute = errors.New("you are not a handler of this case's category")
	// ErrInvalidChange: the change breaks the desk's workflow or bounds.
	ErrInvalidChange = errors.New("invalid change")
	// ErrNotPosted: the event is recorded here but posting it failed; it
	// waits in the outbox and is sent again by the next Sync or Record.
	ErrNotPosted = errors.New("recorded here but not yet sent to the relay")
	// ErrCategoryUnknown: the case's own category cannot be established.
	ErrCategoryUnknown = errors.New("the case's category cannot be read from the case itself")
)

// Journal is a handler's journal over a case store.
type Journal struct {
	cs  *cases.Store
	id  *crypto.Identity
	me  string // id's key ID
	dir string
	mu  sync.Mutex
	// now is the clock; tests set it.
	now func() time.Time
}

// Open opens (creating) the journal of case store cs for identity id:
// events under <casestore>/journal/<caseID>/, directories 0700, files 0600.
func Open(cs *cases.Store, id *crypto.Identity) (*Journal, error) {
	if cs == nil || id == nil {
		return nil, errors.New("journal: a case store and an identity are needed")
	}
	dir := filepath.Join(cs.Dir(), "journal")
	for _, d := range []string{dir, filepath.Join(dir, outboxDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating the case journal: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating the case journal: %w", err)
		}
	}
	return &Journal{cs: cs, id: id, me: id.Card().KeyID(), dir: dir, now: time.Now}, nil
}

const outboxDir = "outbox"

func (j *Journal) self() string { return j.me }

// lock holds the journal for this goroutine and this process.
func (j *Journal) lock() (func(), error) {
	j.mu.Lock()
	unlock, err := j.lockFile()
	if err != nil {
		j.mu.Unlock()
		return nil, err
	}
	return func() { unlock(); j.mu.Unlock() }, nil
}

// caseDir is where a case's events are kept.
func (j *Journal) caseDir(caseID string) string { return filepath.Join(j.dir, caseID) }

// eventName is the file name of an event: <author>-<seq>.<part>.age.
func eventName(author string, seq uint64, part string) string {
	return author + "-" + strconv.FormatUint(seq, 10) + "." + part + ".age"
}

// parseEventName reads an event file name back; ok is false for anything
// else (a temporary file a crash left, say).
func parseEventName(name string) (author string, seq uint64, part string, ok bool) {
	rest, found := strings.CutSuffix(name, ".age")
	if !found {
		return "", 0, "", false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return "", 0, "", false
	}
	part = rest[dot+1:]
	if part != PartCase && part != PartFacts {
		return "", 0, "", false
	}
	rest = rest[:dot]
	dash := strings.LastIndexByte(rest, '-')
	if dash <= 0 {
		return "", 0, "", false
	}
	seq, err := strconv.ParseUint(rest[dash+1:], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, "", false
	}
	return rest[:dash], seq, part, true
}

// caseInfo is what the case store says of a held report, from the report
// itself.
type caseInfo struct {
	meta     *cases.Meta
	category string // the report's own category
	stanzas  int    // recipients of a self-encrypted file; 0 for a bundle
}

// info returns what a held case is, or nil when the case is not held.
func (j *Journal) info(caseID string) (*caseInfo, error) {
	if !j.cs.Has(caseID) {
		return nil, nil
	}
	m, err := j.cs.Meta(caseID)
	if err != nil {
		return nil, err
	}
	ci := &caseInfo{meta: m}
	switch m.Kind {
	case "":
		ci.category, err = j.reportCategory(m)
	case api.KindSelf:
		// A file the submitter encrypted with age has no report.json:
		// the relay's category is taken only when the file's header
		// carries exactly as many recipients as that category's route
		// (checked by route).
		ci.category = m.Category
		ci.stanzas, err = j.selfStanzas(m)
	default:
		err = fmt.Errorf("case %s: %w", short(m.ID), ErrNotACase)
	}
	if err != nil {
		return nil, err
	}
	return ci, nil
}

// reportCategory is the category a report names in its own report.json:
// from the metadata when pull learnt it, otherwise decrypted now (and kept
// in the metadata).
func (j *Journal) reportCategory(m *cases.Meta) (string, error) {
	if m.ReportCategory != nil {
		return *m.ReportCategory, nil
	}
	f, err := os.Open(j.cs.BundlePath(m.ID))
	if err != nil {
		return "", fmt.Errorf("opening case %s: %w", short(m.ID), err)
	}
	defer f.Close()
	br, err := crypto.OpenBundle(f, j.id.Age())
	if err != nil {
		return "", fmt.Errorf("case %s: %w: %w", short(m.ID), ErrCategoryUnknown, err)
	}
	cat := br.Report().Category
	m.ReportCategory = &cat
	if err := j.cs.SaveMeta(m); err != nil {
		return "", err
	}
	return cat, nil
}

// selfStanzas counts the recipients in a self-encrypted case's age header.
func (j *Journal) selfStanzas(m *cases.Meta) (int, error) {
	f, err := os.Open(j.cs.BundlePath(m.ID))
	if err != nil {
		return 0, fmt.Errorf("opening case %s: %w", short(m.ID), err)
	}
	defer f.Close()
	h, err := crypto.ReadAgeHeader(bufio.NewReader(f), crypto.MaxHeaderLen(crypto.MaxHandlers))
	if err != nil {
		return 0, fmt.Errorf("case %s: %w: %w", short(m.ID), ErrCategoryUnknown, err)
	}
	return len(h.Types), nil
}

// route is the case's route in the trusted manifest, for its category; for
// a self-encrypted case it also checks the file's recipient count.
func (j *Journal) route(m *crypto.Manifest, ci *caseInfo) ([]*crypto.Card, error) {
	cards, err := m.Route(ci.category)
	if err != nil {
		return nil, err
	}
	if ci.meta.Kind == api.KindSelf && ci.stanzas != len(cards) {
		return nil, fmt.Errorf("case %s: %w: the file has %d recipients and category %q routes to %d",
			short(ci.meta.ID), ErrCategoryUnknown, ci.stanzas, ci.category, len(cards))
	}
	return cards, nil
}

func onRoute(cards []*crypto.Card, keyID string) bool {
	return slices.ContainsFunc(cards, func(c *crypto.Card) bool { return c.KeyID() == keyID })
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
