package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"filippo.io/age"
)

// The case journal's schemas. EventDomain and FactsDomain are also the
// first line of the text their signatures cover.
const (
	EventDomain   = "amana-event/v1"
	FactsDomain   = "amana-facts/v1"
	HistoryDomain = "amana-history/v1" // a case share blob's schema
)

const (
	// MaxEventText bounds the free text of one event: the note, the
	// referral's organisation and outcome and the custody detail together.
	MaxEventText = 64 << 10
	// MaxEventLen bounds a padded event plaintext and its ciphertext; it is
	// also the relay's bound (api.MaxEvent).
	MaxEventLen = 1 << 20
	// MaxEventList bounds each list of a change (assignees, tags) and the
	// authors an event's Seen names.
	MaxEventList = 64
	// EventTimeLayout is the one form of an event's times: RFC 3339, UTC,
	// whole seconds.
	EventTimeLayout = "2006-01-02T15:04:05Z"
)

// Link relations.
const (
	RelDuplicateOf = "duplicate-of"
	RelRelated     = "related"
)

// Journal sentinel errors.
var (
	// ErrEventSignature: an event's signature is missing, malformed, by a
	// key that is not one of the cards given, or does not verify.
	ErrEventSignature = errors.New("case event signature does not verify")
	// ErrFactsSignature is ErrEventSignature for a facts part.
	ErrFactsSignature = fmt.Errorf("facts: %w", ErrEventSignature)
	// ErrEventMalformed: an event, facts or history blob is not canonical
	// JSON of its schema, or breaks one of its bounds.
	ErrEventMalformed = errors.New("malformed case event")
	// ErrEventNotCanonical: the JSON is not the one canonical spelling of
	// what it holds (§8.11.2). It wraps ErrEventMalformed.
	ErrEventNotCanonical = fmt.Errorf("%w: not in canonical form", ErrEventMalformed)
	// ErrEventPadding: a decrypted event lacks its line feed, has non-zero
	// or mis-sized padding, or is larger than MaxEventLen.
	ErrEventPadding = errors.New("case event padding is invalid")
)

// Event is one signed change to a case: the plaintext of a case journal
// blob. See docs/protocol.md §8.11.
type Event struct {
	Schema     string `json:"schema"`      // EventDomain
	Desk       string `json:"desk"`        //
	Case       string `json:"case"`        // the report's submission ID (32 hex)
	CaseSHA256 string `json:"case_sha256"` // hex SHA-256 of the report's ciphertext as stored
	Category   string `json:"category"`    // the report's report.json category ("" allowed)
	Author     string `json:"author"`      // the author's key ID (Card.KeyID)
	Seq        uint64 `json:"seq"`         // per author per case, from 1, no gaps
	// Clock is a Lamport clock: one more than the highest Clock among the
	// events of the case the writer held, 1 when none. An event written
	// after another was applied has the greater Clock, whatever the clocks
	// of the machines say; the merge orders by it first (§8.11.4).
	Clock uint64 `json:"clock"`
	// Prev is the EventDigest of the author's previous event on the case;
	// "" for Seq 1.
	Prev string `json:"prev"`
	Time string `json:"time"` // EventTimeLayout
	// Seen maps an author's key ID to the highest Seq of theirs the writer
	// had applied to the case when writing.
	Seen      map[string]uint64 `json:"seen,omitempty"`
	Change    Change            `json:"change"`
	Signature string            `json:"signature,omitempty"` // base64url Ed25519
}

// Change is what an event changes. Empty members change nothing.
type Change struct {
	Status   string   `json:"status,omitempty"`
	Severity string   `json:"severity,omitempty"`
	Assign   []string `json:"assign,omitempty"` // key IDs
	Unassign []string `json:"unassign,omitempty"`
	Tag      []string `json:"tag,omitempty"`
	Untag    []string `json:"untag,omitempty"`
	// Note is an internal note, never shown to the submitter.
	Note string `json:"note,omitempty"`
	// CloseReason is set together with Status, a final status.
	CloseReason string    `json:"close_reason,omitempty"`
	Link        *Link     `json:"link,omitempty"`
	Unlink      *Link     `json:"unlink,omitempty"`
	Referral    *Referral `json:"referral,omitempty"`
	// Reply is the ID of a reply sent with amana reply: a response.
	Reply string `json:"reply,omitempty"`
	// Received: the author pulled the case.
	Received bool `json:"received,omitempty"`
	// Satisfaction: the author opened the submitter's survey follow-up.
	// Like Received it is not an update of the case for the clocks.
	Satisfaction *Satisfaction `json:"satisfaction,omitempty"`
	// Custody is reserved for records of exports and decryptions.
	Custody *Custody `json:"custody,omitempty"`
}

// Link relates the case to another case of the desk.
type Link struct {
	Rel  string `json:"rel"` // RelDuplicateOf or RelRelated
	Case string `json:"case"`
}

// Referral records that the case was referred to another organisation.
type Referral struct {
	To      string `json:"to"`
	Consent bool   `json:"consent"` // the submitter consented
	Outcome string `json:"outcome,omitempty"`
}

// Satisfaction is the submitter's answer to the satisfaction survey: the
// score, 1 to 5, and the survey follow-up's submission ID. The comment
// stays in the follow-up.
type Satisfaction struct {
	Score    int    `json:"score"`
	Followup string `json:"followup"`
}

// Custody records an action on the case's content (an export, a decryption).
type Custody struct {
	Action string `json:"action"`
	Detail string `json:"detail,omitempty"`
}

// Facts is the coordinators' twin of an Event: the same Desk, Case,
// Category, Author, Seq, Time and Seen, the case's Received hour, and only
// the text-free members of the change. It is signed on its own.
type Facts struct {
	Schema string `json:"schema"` // FactsDomain
	Desk   string `json:"desk"`
	Case   string `json:"case"`
	// CaseSHA256 is the event's: it binds the facts to the report, which
	// only the case's route has seen, so that a handler of another
	// category cannot pass off facts for a case it cannot read.
	CaseSHA256 string            `json:"case_sha256"`
	Category   string            `json:"category"`
	Author     string            `json:"author"`
	Received   string            `json:"received"` // the case's hour as the case store has it
	Seq        uint64            `json:"seq"`
	Clock      uint64            `json:"clock"` // the event's Clock
	Time       string            `json:"time"`
	Seen       map[string]uint64 `json:"seen,omitempty"`
	Change     FactChange        `json:"change"`
	Signature  string            `json:"signature,omitempty"`
}

// FactChange is the text-free projection of a Change. A change of text
// alone (a note, a tag, a link) projects to an empty FactChange.
type FactChange struct {
	Status          string   `json:"status,omitempty"`
	Severity        string   `json:"severity,omitempty"`
	Assign          []string `json:"assign,omitempty"`
	Unassign        []string `json:"unassign,omitempty"`
	CloseReason     string   `json:"close_reason,omitempty"`
	Replied         bool     `json:"replied,omitempty"`
	Referred        bool     `json:"referred,omitempty"`
	ReferralConsent bool     `json:"referral_consent,omitempty"`
	Received        bool     `json:"received,omitempty"`
	// Satisfaction is the survey's score, 1 to 5; 0: none.
	Satisfaction int `json:"satisfaction,omitempty"`
}

// History is a case share blob: a case's signed events and facts, as
// their canonical JSON, for a handler's new machine or a new colleague.
type History struct {
	Schema string            `json:"schema"` // HistoryDomain
	Desk   string            `json:"desk"`
	Case   string            `json:"case"`
	Events []json.RawMessage `json:"events"`
	Facts  []json.RawMessage `json:"facts"`
}

// encodeCanonical is the canonical encoding of journal JSON: Go's encoder
// with HTML escaping off, in struct order, without the final line feed.
func encodeCanonical(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// decodeStrict decodes data into v and checks data is exactly the
// canonical encoding of what it holds.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrEventNotCanonical, err)
	}
	again, err := encodeCanonical(v)
	if err != nil || !bytes.Equal(again, data) {
		return ErrEventNotCanonical
	}
	return nil
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrEventMalformed, fmt.Sprintf(format, a...))
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidCaseID reports whether s has the form of a case (submission) ID:
// 32 lower-case hex characters.
func ValidCaseID(s string) bool { return isHex(s, 32) }

// ValidKeyID reports whether s is a key ID as Card.KeyID writes it: the
// canonical base64url, unpadded, of a 32-byte Ed25519 public key.
func ValidKeyID(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := b64.DecodeString(s)
	return err == nil && len(b) == ed25519.PublicKeySize
}

// ValidEventTime reports whether s is a time in EventTimeLayout exactly.
func ValidEventTime(s string) bool {
	t, err := time.Parse(EventTimeLayout, s)
	return err == nil && t.Format(EventTimeLayout) == s
}

// EventTime formats t as an event's Time: UTC, whole seconds.
func EventTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(EventTimeLayout) }

func checkKeyIDs(what string, ids []string, seen map[string]bool) error {
	if len(ids) > MaxEventList {
		return malformed("more than %d %s", MaxEventList, what)
	}
	for _, id := range ids {
		if !ValidKeyID(id) {
			return malformed("%s: not a key ID", what)
		}
		if seen[id] {
			return malformed("%s: a key ID appears twice", what)
		}
		seen[id] = true
	}
	return nil
}

func checkNames(what string, names []string, seen map[string]bool) error {
	if len(names) > MaxEventList {
		return malformed("more than %d %s", MaxEventList, what)
	}
	for _, n := range names {
		if !ValidName(n) {
			return malformed("%s: invalid name", what)
		}
		if seen[n] {
			return malformed("%s: a name appears twice", what)
		}
		seen[n] = true
	}
	return nil
}

func checkOptName(what, s string) error {
	if s != "" && !ValidName(s) {
		return malformed("invalid %s", what)
	}
	return nil
}

func checkSeen(author string, seen map[string]uint64) error {
	if len(seen) > MaxEventList {
		return malformed("seen names more than %d authors", MaxEventList)
	}
	for k, v := range seen {
		if !ValidKeyID(k) {
			return malformed("seen: not a key ID")
		}
		if k == author {
			// The author's own run is seq and prev; a seen entry for it
			// could only plant false gaps.
			return malformed("seen names the event's own author")
		}
		if v == 0 || v > maxJSONInt {
			return malformed("seen: sequence number out of range")
		}
	}
	return nil
}

func checkSignatureForm(s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 86 {
		return malformed("malformed signature")
	}
	if b, err := b64.DecodeString(s); err != nil || len(b) != ed25519.SignatureSize {
		return malformed("malformed signature")
	}
	return nil
}

// checkHead checks the members an event and its facts share.
func checkHead(desk, cas, category, author string, seq, clock uint64, tm string, seen map[string]uint64) error {
	switch {
	case !ValidName(desk):
		return malformed("invalid desk")
	case !ValidCaseID(cas):
		return malformed("invalid case ID")
	case category != "" && !ValidName(category):
		return malformed("invalid category")
	case !ValidKeyID(author):
		return malformed("author is not a key ID")
	case seq == 0 || seq > maxJSONInt:
		return malformed("sequence number out of range")
	case clock == 0 || clock > maxJSONInt:
		return malformed("clock out of range")
	case !ValidEventTime(tm):
		return malformed("time is not %s", EventTimeLayout)
	}
	return checkSeen(author, seen)
}

func checkText1(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return malformed("%s is not UTF-8", what)
	}
	if len(s) > max {
		return malformed("%s longer than %d bytes", what, max)
	}
	return nil
}

// Check reports whether e is well-formed: every bound of §8.11.1. It does
// not check the signature.
func (e *Event) Check() error {
	if e.Schema != EventDomain {
		return malformed("schema is not %q", EventDomain)
	}
	if err := checkHead(e.Desk, e.Case, e.Category, e.Author, e.Seq, e.Clock, e.Time, e.Seen); err != nil {
		return err
	}
	if !isHex(e.CaseSHA256, 64) {
		return malformed("case_sha256 is not 64 hex characters")
	}
	if e.Seq == 1 && e.Prev != "" || e.Seq > 1 && !isHex(e.Prev, 64) {
		return malformed("prev must be empty for the first event and 64 hex characters after")
	}
	if err := checkSignatureForm(e.Signature); err != nil {
		return err
	}
	return e.Change.check(e.Case)
}

func (c *Change) check(self string) error {
	if err := checkOptName("status", c.Status); err != nil {
		return err
	}
	if err := checkOptName("severity", c.Severity); err != nil {
		return err
	}
	if err := checkOptName("close reason", c.CloseReason); err != nil {
		return err
	}
	if c.CloseReason != "" && c.Status == "" {
		return malformed("a close reason comes with a status")
	}
	who := map[string]bool{}
	if err := checkKeyIDs("assignees", c.Assign, who); err != nil {
		return err
	}
	if err := checkKeyIDs("assignees", c.Unassign, who); err != nil {
		return err
	}
	tags := map[string]bool{}
	if err := checkNames("tags", c.Tag, tags); err != nil {
		return err
	}
	if err := checkNames("tags", c.Untag, tags); err != nil {
		return err
	}
	for _, l := range []*Link{c.Link, c.Unlink} {
		if l == nil {
			continue
		}
		if l.Rel != RelDuplicateOf && l.Rel != RelRelated {
			return malformed("unknown link relation")
		}
		if !ValidCaseID(l.Case) || l.Case == self {
			return malformed("a link names another case by its ID")
		}
	}
	if c.Link != nil && c.Unlink != nil && *c.Link == *c.Unlink {
		return malformed("one link both added and removed")
	}
	text := len(c.Note)
	if err := checkText1("note", c.Note, MaxEventText); err != nil {
		return err
	}
	if r := c.Referral; r != nil {
		if r.To == "" {
			return malformed("a referral names whom it is to")
		}
		if err := checkText1("referral", r.To, 200); err != nil {
			return err
		}
		if err := checkText1("referral outcome", r.Outcome, MaxEventText); err != nil {
			return err
		}
		text += len(r.To) + len(r.Outcome)
	}
	if c.Reply != "" && !ValidCaseID(c.Reply) {
		return malformed("reply is not a submission ID")
	}
	if s := c.Satisfaction; s != nil {
		if s.Score < 1 || s.Score > 5 {
			return malformed("satisfaction score is 1 to 5")
		}
		if !ValidCaseID(s.Followup) {
			return malformed("satisfaction followup is not a submission ID")
		}
	}
	if d := c.Custody; d != nil {
		if !ValidName(d.Action) {
			return malformed("invalid custody action")
		}
		if err := checkText1("custody detail", d.Detail, MaxEventText); err != nil {
			return err
		}
		text += len(d.Detail)
	}
	if text > MaxEventText {
		return malformed("text longer than %d bytes in all", MaxEventText)
	}
	if c.empty() {
		return malformed("the change changes nothing")
	}
	return nil
}

func (c *Change) empty() bool {
	return c.Status == "" && c.Severity == "" && len(c.Assign) == 0 && len(c.Unassign) == 0 &&
		len(c.Tag) == 0 && len(c.Untag) == 0 && c.Note == "" && c.CloseReason == "" &&
		c.Link == nil && c.Unlink == nil && c.Referral == nil && c.Reply == "" && !c.Received && c.Satisfaction == nil && c.Custody == nil
}

// Check reports whether f is well-formed. It does not check the signature.
func (f *Facts) Check() error {
	if f.Schema != FactsDomain {
		return malformed("schema is not %q", FactsDomain)
	}
	if err := checkHead(f.Desk, f.Case, f.Category, f.Author, f.Seq, f.Clock, f.Time, f.Seen); err != nil {
		return err
	}
	if !isHex(f.CaseSHA256, 64) {
		return malformed("case_sha256 is not 64 hex characters")
	}
	if !ValidEventTime(f.Received) {
		return malformed("received is not %s", EventTimeLayout)
	}
	if err := checkSignatureForm(f.Signature); err != nil {
		return err
	}
	c := &f.Change
	for what, s := range map[string]string{"status": c.Status, "severity": c.Severity, "close reason": c.CloseReason} {
		if err := checkOptName(what, s); err != nil {
			return err
		}
	}
	if c.CloseReason != "" && c.Status == "" {
		return malformed("a close reason comes with a status")
	}
	if c.ReferralConsent && !c.Referred {
		return malformed("referral consent without a referral")
	}
	if c.Satisfaction < 0 || c.Satisfaction > 5 {
		return malformed("satisfaction score is 1 to 5")
	}
	who := map[string]bool{}
	if err := checkKeyIDs("assignees", c.Assign, who); err != nil {
		return err
	}
	return checkKeyIDs("assignees", c.Unassign, who)
}

// MarshalEvent checks e and encodes it canonically.
func MarshalEvent(e *Event) ([]byte, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	return encodeCanonical(e)
}

// ParseEvent parses an event's canonical JSON: unknown members, other
// spellings and broken bounds are refused. It does not check the signature.
func ParseEvent(data []byte) (*Event, error) {
	if len(data) > MaxEventLen {
		return nil, malformed("longer than %d bytes", MaxEventLen)
	}
	var e Event
	if err := decodeStrict(data, &e); err != nil {
		return nil, err
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// MarshalFacts checks f and encodes it canonically.
func MarshalFacts(f *Facts) ([]byte, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	return encodeCanonical(f)
}

// ParseFacts parses a facts part's canonical JSON, as ParseEvent does.
func ParseFacts(data []byte) (*Facts, error) {
	if len(data) > MaxEventLen {
		return nil, malformed("longer than %d bytes", MaxEventLen)
	}
	var f Facts
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	if err := f.Check(); err != nil {
		return nil, err
	}
	return &f, nil
}

func eventSigned(e *Event) ([]byte, error) {
	c := *e
	c.Signature = ""
	b, err := encodeCanonical(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte(EventDomain+"\n"), b...), nil
}

func factsSigned(f *Facts) ([]byte, error) {
	c := *f
	c.Signature = ""
	b, err := encodeCanonical(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte(FactsDomain+"\n"), b...), nil
}

// SignEvent sets e's Schema and Author to id's, checks e and signs it.
func SignEvent(e *Event, id *Identity) error {
	e.Schema, e.Author, e.Signature = EventDomain, keyIDOf(id), ""
	if err := e.Check(); err != nil {
		return err
	}
	msg, err := eventSigned(e)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	e.Signature = b64.EncodeToString(ed25519.Sign(id.SigningKey(), msg))
	return nil
}

// keyIDOf is id's key ID (Card.KeyID) without building and signing its card.
func keyIDOf(id *Identity) string {
	return b64.EncodeToString(id.SigningKey().Public().(ed25519.PublicKey))
}

func findSigner(author string, cards []*Card) *Card {
	for _, c := range cards {
		if c.KeyID() == author {
			return c
		}
	}
	return nil
}

func verifySig(sentinel error, author, signature string, msg []byte, cards []*Card) (*Card, error) {
	if signature == "" {
		return nil, fmt.Errorf("%w: not signed", sentinel)
	}
	sig, err := b64.DecodeString(signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: malformed signature", sentinel)
	}
	signer := findSigner(author, cards)
	if signer == nil {
		return nil, fmt.Errorf("%w: signed by a key that is not one of the handlers given", sentinel)
	}
	if !ed25519.Verify(signer.SignKey, msg, sig) {
		return nil, sentinel
	}
	return signer, nil
}

// VerifyEvent checks e is well-formed and signed by its Author, one of
// cards, and returns that card.
func VerifyEvent(e *Event, cards []*Card) (*Card, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	msg, err := eventSigned(e)
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	return verifySig(ErrEventSignature, e.Author, e.Signature, msg, cards)
}

// EventDigest is the hex SHA-256 of e's signed text: what the author's
// next event names as Prev.
func EventDigest(e *Event) string {
	msg, err := eventSigned(e)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(msg)
	return hex.EncodeToString(sum[:])
}

// FactsOf is the unsigned facts twin of e for a case received at received
// (the case store's hour). No text of e is copied.
func FactsOf(e *Event, received string) *Facts {
	f := &Facts{
		Schema:     FactsDomain,
		Desk:       e.Desk,
		Case:       e.Case,
		CaseSHA256: e.CaseSHA256,
		Category:   e.Category,
		Author:     e.Author,
		Received:   received,
		Seq:        e.Seq,
		Clock:      e.Clock,
		Time:       e.Time,
		Change: FactChange{
			Status:      e.Change.Status,
			Severity:    e.Change.Severity,
			Assign:      cloneStrings(e.Change.Assign),
			Unassign:    cloneStrings(e.Change.Unassign),
			CloseReason: e.Change.CloseReason,
			Replied:     e.Change.Reply != "",
			Referred:    e.Change.Referral != nil,
			Received:    e.Change.Received,
		},
	}
	if e.Change.Satisfaction != nil {
		f.Change.Satisfaction = e.Change.Satisfaction.Score
	}
	if e.Change.Referral != nil {
		f.Change.ReferralConsent = e.Change.Referral.Consent
	}
	if len(e.Seen) > 0 {
		f.Seen = make(map[string]uint64, len(e.Seen))
		for k, v := range e.Seen {
			f.Seen[k] = v
		}
	}
	return f
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// SignFacts sets f's Schema and Author to id's, checks f and signs it.
func SignFacts(f *Facts, id *Identity) error {
	f.Schema, f.Author, f.Signature = FactsDomain, keyIDOf(id), ""
	if err := f.Check(); err != nil {
		return err
	}
	msg, err := factsSigned(f)
	if err != nil {
		return fmt.Errorf("encoding facts: %w", err)
	}
	f.Signature = b64.EncodeToString(ed25519.Sign(id.SigningKey(), msg))
	return nil
}

// VerifyFacts checks f is well-formed and signed by its Author, one of
// cards, and returns that card.
func VerifyFacts(f *Facts, cards []*Card) (*Card, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	msg, err := factsSigned(f)
	if err != nil {
		return nil, fmt.Errorf("encoding facts: %w", err)
	}
	return verifySig(ErrFactsSignature, f.Author, f.Signature, msg, cards)
}

// MinEventPlain is the smallest padded plaintext of a journal blob. Events
// and facts are mostly a few hundred bytes, and the bundle padding alone
// would put a close or an assignment in another 512-byte block than a
// note or a status, which the relay sees; below 4 KiB they all look alike.
const MinEventPlain = 4 << 10

// EventPlainSize is the padded plaintext size of a journal blob whose JSON
// is n bytes: PaddedSize(n+1), the line feed counted, and at least
// MinEventPlain.
func EventPlainSize(n int) int64 { return max(PaddedSize(int64(n)+1), MinEventPlain) }

// SealEvent encrypts a journal blob's JSON (an event, facts or history) to
// exactly cards, in order: the plaintext is the JSON, a line feed, and zero
// bytes up to EventPlainSize. It refuses a result over MaxEventLen.
func SealEvent(cards []*Card, signedJSON []byte) ([]byte, error) {
	if bytes.IndexByte(signedJSON, '\n') >= 0 || len(signedJSON) == 0 {
		return nil, errors.New("sealing event: JSON must be one non-empty line")
	}
	size := EventPlainSize(len(signedJSON))
	if size > MaxEventLen {
		return nil, fmt.Errorf("sealing event: padded to %d bytes, more than %d", size, MaxEventLen)
	}
	recips, err := Recipients(cards)
	if err != nil {
		return nil, fmt.Errorf("sealing event: %w", err)
	}
	plain := make([]byte, size)
	copy(plain, signedJSON)
	plain[len(signedJSON)] = '\n'
	var out bytes.Buffer
	w, err := age.Encrypt(&out, recips...)
	if err != nil {
		return nil, fmt.Errorf("sealing event: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("sealing event: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("sealing event: %w", err)
	}
	if out.Len() > MaxEventLen {
		return nil, fmt.Errorf("sealing event: ciphertext of %d bytes, more than %d", out.Len(), MaxEventLen)
	}
	return out.Bytes(), nil
}

// OpenEvent decrypts a journal blob with id and returns its JSON, after
// checking the line feed and the padding (ErrEventPadding). It does not
// parse the JSON.
func OpenEvent(ciphertext []byte, id age.Identity) ([]byte, error) {
	if len(ciphertext) > MaxEventLen {
		return nil, fmt.Errorf("%w: ciphertext larger than %d bytes", ErrEventPadding, MaxEventLen)
	}
	r, err := age.Decrypt(bytes.NewReader(ciphertext), id)
	if err != nil {
		return nil, fmt.Errorf("decrypting event: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxEventLen+1))
	if err != nil {
		return nil, fmt.Errorf("decrypting event: %w", err)
	}
	return unpadEvent(plain)
}

func unpadEvent(plain []byte) ([]byte, error) {
	if len(plain) > MaxEventLen {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrEventPadding, MaxEventLen)
	}
	n := bytes.IndexByte(plain, '\n')
	if n <= 0 {
		return nil, fmt.Errorf("%w: no line feed after the JSON", ErrEventPadding)
	}
	if anyNonZero(plain[n+1:]) {
		return nil, fmt.Errorf("%w: non-zero padding", ErrEventPadding)
	}
	if int64(len(plain)) != EventPlainSize(n) {
		return nil, fmt.Errorf("%w: %d bytes, expected %d", ErrEventPadding, len(plain), EventPlainSize(n))
	}
	return plain[:n], nil
}

// Check reports whether h is well-formed: its schema, desk and case, and
// every event and facts part a canonical, well-formed one of the same desk
// and case. It does not check signatures.
func (h *History) Check() error {
	if h.Schema != HistoryDomain {
		return malformed("schema is not %q", HistoryDomain)
	}
	if !ValidName(h.Desk) || !ValidCaseID(h.Case) {
		return malformed("history: invalid desk or case")
	}
	for i, raw := range h.Events {
		e, err := ParseEvent(raw)
		if err != nil {
			return fmt.Errorf("history event %d: %w", i+1, err)
		}
		if e.Desk != h.Desk || e.Case != h.Case {
			return malformed("history event %d is of another case", i+1)
		}
	}
	for i, raw := range h.Facts {
		f, err := ParseFacts(raw)
		if err != nil {
			return fmt.Errorf("history facts %d: %w", i+1, err)
		}
		if f.Desk != h.Desk || f.Case != h.Case {
			return malformed("history facts %d are of another case", i+1)
		}
	}
	return nil
}

// MarshalHistory checks h and encodes it canonically; nil lists are
// written as empty ones.
func MarshalHistory(h *History) ([]byte, error) {
	if h.Events == nil {
		h.Events = []json.RawMessage{}
	}
	if h.Facts == nil {
		h.Facts = []json.RawMessage{}
	}
	if err := h.Check(); err != nil {
		return nil, err
	}
	return encodeCanonical(h)
}

// ParseHistory parses a history blob's canonical JSON and checks it.
func ParseHistory(data []byte) (*History, error) {
	if len(data) > MaxEventLen {
		return nil, malformed("longer than %d bytes", MaxEventLen)
	}
	var h History
	if err := decodeStrict(data, &h); err != nil {
		return nil, err
	}
	if h.Events == nil || h.Facts == nil {
		return nil, malformed("history lacks its events or facts")
	}
	if err := h.Check(); err != nil {
		return nil, err
	}
	return &h, nil
}

// SealHistory encodes h and seals it to cards as SealEvent does.
func SealHistory(cards []*Card, h *History) ([]byte, error) {
	b, err := MarshalHistory(h)
	if err != nil {
		return nil, err
	}
	return SealEvent(cards, b)
}

// OpenHistory decrypts and parses a history blob.
func OpenHistory(ciphertext []byte, id age.Identity) (*History, error) {
	b, err := OpenEvent(ciphertext, id)
	if err != nil {
		return nil, err
	}
	return ParseHistory(b)
}
