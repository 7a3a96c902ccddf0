package crypto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// DeskFormat names the signed manifest envelope format and is the domain
// separation prefix of its signature.
const DeskFormat = "amana-desk/v1"

// MaxHandlers is the most handlers a desk may have.
const MaxHandlers = 64

// MaxManifestLen bounds a signed manifest envelope.
const MaxManifestLen = 1 << 20

// Defaults applied by Manifest.Normalize when a field is zero.
const (
	DefaultMaxSubmissionBytes = 2 << 30 // 2 GiB
	DefaultDeleteAfterAckHrs  = 72
	DefaultKeepUnackedDays    = 90
)

// Manifest sentinel errors.
var (
	// ErrBadSignature: the envelope's signature does not verify.
	ErrBadSignature = errors.New("desk manifest signature does not verify")
	// ErrWrongSigner: the envelope is signed by a key other than the pinned one.
	ErrWrongSigner = errors.New("desk manifest is signed by an unexpected key")
	// ErrManifestNotCanonical: the payload is not exactly the JSON Go's
	// encoder writes for the manifest it holds.
	ErrManifestNotCanonical = errors.New("desk manifest payload is not canonical JSON")
	// ErrMixedRecipients: post-quantum and classic handlers in one desk,
	// which age cannot encrypt to in one file.
	ErrMixedRecipients = errors.New("a desk's handlers must all be post-quantum or all classic: age cannot mix them in one file")
	// ErrUnknownDefaultRoute: default_route names no category of the desk.
	ErrUnknownDefaultRoute = errors.New("the desk's default route names no category of the desk")
	// ErrCoordinatorsNeedRoute: the desk names coordinators but no
	// default_route, so a report with no category would reach every
	// handler, the coordinators among them.
	ErrCoordinatorsNeedRoute = errors.New("a desk with coordinators needs a default_route: a report with no category would otherwise reach the coordinators")
)

// maxRetentionDays bounds retention: ten years.
const maxRetentionDays = 3650

// maxJSONInt is the largest integer every JSON implementation reads exactly.
const maxJSONInt = 1<<53 - 1

// Manifest is a desk's public description: who handles it, how categories
// route, its limits and its retention. It is published only inside a signed
// Envelope.
type Manifest struct {
	Version int    `json:"version"` // always 1
	Desk    string `json:"desk"`
	// Language is the language code of Title, Description and the
	// categories' Title; "" when unsaid. Text pickers fall back to it.
	Language    string `json:"language,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// Titles and Descriptions are the title and description in other
	// languages, text maps by language code (see Text).
	Titles       map[string]string `json:"titles,omitempty"`
	Descriptions map[string]string `json:"descriptions,omitempty"`
	Serial       uint64            `json:"serial"`   // only grows; relays refuse older ones
	Handlers     []string          `json:"handlers"` // card lines
	Categories   []Category        `json:"categories,omitempty"`
	// DefaultRoute is the ID of the category whose handlers get a report
	// with no category; "" means every handler.
	DefaultRoute string    `json:"default_route,omitempty"`
	Limits       Limits    `json:"limits"`
	Retention    Retention `json:"retention"`
	// Form is the desk's submission form; nil means pages show a default
	// incident form.
	Form *Form `json:"form,omitempty"`
	// Coordinators are the names of the handlers who get every case's
	// facts (its text-free journal part, §8.11.3), whatever its route.
	// Empty: the desk has none, and events have no facts part.
	Coordinators []string `json:"coordinators,omitempty"`
	// Workflow is the desk's case lifecycle; nil means DefaultWorkflow.
	Workflow *Workflow `json:"workflow,omitempty"`

	cards  []*Card
	coords []*Card
}

// Category routes submissions that choose it to a subset of the handlers.
type Category struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Handlers []string `json:"handlers"` // handler names
	// Labels are the title in other languages, by language code.
	Labels map[string]string `json:"labels,omitempty"`
}

// Limits bounds what a desk accepts. Zero means the default.
type Limits struct {
	MaxSubmissionBytes int64 `json:"max_submission_bytes"`
}

// Retention says when the relay deletes a submission. Zero means the default.
//
// By default a submission is kept until every handler it was routed to has
// acknowledged it, or for KeepUnackedDays: a handler on leave still gets
// it. With AfterFirstAck the relay deletes it DeleteAfterAckHours after the
// first handler's acknowledgement, whether the others have it or not.
type Retention struct {
	// DeleteAfterAckHours: hours after the first handler's ack, when
	// AfterFirstAck is set; otherwise unused.
	DeleteAfterAckHours int `json:"delete_after_ack_hours"`
	// KeepUnackedDays: days a submission is kept that not every handler
	// acknowledged.
	KeepUnackedDays int `json:"keep_unacked_days"`
	// AfterFirstAck: delete DeleteAfterAckHours after the first ack,
	// without waiting for the other handlers.
	AfterFirstAck bool `json:"after_first_ack,omitempty"`
}

// DeleteAfterAck is how long after the first acknowledgement the relay
// deletes a submission stored under r, or zero when it waits for every
// handler routed to (or KeepUnackedDays).
func (r Retention) DeleteAfterAck() time.Duration {
	if !r.AfterFirstAck {
		return 0
	}
	return time.Duration(r.DeleteAfterAckHours) * time.Hour
}

// Normalize fills defaults, parses the cards and checks the manifest is
// consistent. Every function that returns a Manifest calls it.
func (m *Manifest) Normalize() error {
	if m.Version != 1 {
		return fmt.Errorf("unsupported manifest version %d", m.Version)
	}
	if !ValidName(m.Desk) {
		return fmt.Errorf("invalid desk id %q", m.Desk)
	}
	if m.Title == "" || len(m.Title) > 200 || len(m.Description) > 4000 {
		return errors.New("desk title must be 1 to 200 bytes and description at most 4000")
	}
	if m.Language != "" && !ValidLang(m.Language) {
		return fmt.Errorf("invalid desk language code %q", m.Language)
	}
	if err := checkText("desk titles", m.Titles, false); err != nil {
		return err
	}
	for lang, t := range m.Titles {
		if len(t) > 200 {
			return fmt.Errorf("desk title in %q longer than 200 bytes", lang)
		}
	}
	if err := checkLongText("desk descriptions", m.Descriptions); err != nil {
		return err
	}
	if m.Serial == 0 || m.Serial > maxJSONInt {
		return errors.New("desk serial must be positive and below 2^53")
	}
	if len(m.Handlers) == 0 || len(m.Handlers) > MaxHandlers {
		return fmt.Errorf("a desk needs 1 to %d handlers", MaxHandlers)
	}
	m.cards = m.cards[:0]
	names := map[string]bool{}
	keys := map[string]bool{}
	for i, h := range m.Handlers {
		c, err := ParseCard(h)
		if err != nil {
			return fmt.Errorf("handler %d: %w", i+1, err)
		}
		if names[c.Name] {
			return fmt.Errorf("handler name %q appears twice", c.Name)
		}
		if keys[c.KeyID()] || keys[c.Recipient] {
			return fmt.Errorf("handler %q has the same key as another handler", c.Name)
		}
		names[c.Name], keys[c.KeyID()], keys[c.Recipient] = true, true, true
		if c.PostQuantum() != m.cards0PQ(c) {
			return ErrMixedRecipients
		}
		m.cards = append(m.cards, c)
	}
	seen := map[string]bool{}
	for _, cat := range m.Categories {
		if !ValidName(cat.ID) || seen[cat.ID] {
			return fmt.Errorf("invalid or repeated category id %q", cat.ID)
		}
		if len(cat.Title) > 200 {
			return fmt.Errorf("category %q: title longer than 200 bytes", cat.ID)
		}
		if err := checkText("category "+cat.ID, cat.Labels, false); err != nil {
			return err
		}
		for lang, t := range cat.Labels {
			if len(t) > 200 {
				return fmt.Errorf("category %q: title in %q longer than 200 bytes", cat.ID, lang)
			}
		}
		seen[cat.ID] = true
		if len(cat.Handlers) == 0 {
			return fmt.Errorf("category %q has no handlers", cat.ID)
		}
		for _, n := range cat.Handlers {
			if !names[n] {
				return fmt.Errorf("category %q names unknown handler %q", cat.ID, n)
			}
		}
	}
	if m.DefaultRoute != "" && !seen[m.DefaultRoute] {
		return fmt.Errorf("%w: %q", ErrUnknownDefaultRoute, m.DefaultRoute)
	}
	if err := m.checkCoordinators(names); err != nil {
		return err
	}
	if m.Workflow != nil {
		if err := m.Workflow.Validate(); err != nil {
			return fmt.Errorf("workflow: %w", err)
		}
		if err := m.Workflow.checkNotify(names); err != nil {
			return fmt.Errorf("workflow: %w", err)
		}
	}
	if m.Limits.MaxSubmissionBytes == 0 {
		m.Limits.MaxSubmissionBytes = DefaultMaxSubmissionBytes
	}
	if m.Limits.MaxSubmissionBytes < 0 || m.Limits.MaxSubmissionBytes > maxJSONInt {
		return errors.New("max_submission_bytes must be between 0 and 2^53")
	}
	if m.Form != nil {
		if err := m.Form.Validate(len(m.Categories) > 0); err != nil {
			return err
		}
	}
	if m.Retention.DeleteAfterAckHours == 0 {
		m.Retention.DeleteAfterAckHours = DefaultDeleteAfterAckHrs
	}
	if m.Retention.KeepUnackedDays == 0 {
		m.Retention.KeepUnackedDays = DefaultKeepUnackedDays
	}
	if m.Retention.DeleteAfterAckHours < 0 || m.Retention.DeleteAfterAckHours > maxRetentionDays*24 ||
		m.Retention.KeepUnackedDays < 0 || m.Retention.KeepUnackedDays > maxRetentionDays {
		return fmt.Errorf("retention must be between 0 and %d days", maxRetentionDays)
	}
	return nil
}

func (m *Manifest) cards0PQ(c *Card) bool {
	if len(m.cards) == 0 {
		return c.PostQuantum()
	}
	return m.cards[0].PostQuantum()
}

// Cards returns the parsed handler cards, in manifest order.
func (m *Manifest) Cards() []*Card { return m.cards }

// Route returns the handlers a submission in category goes to: the category's
// handlers; for an empty category, those of the DefaultRoute category, or
// every handler when the desk names none. It fails for an unknown category.
func (m *Manifest) Route(category string) ([]*Card, error) {
	if category == "" {
		category = m.DefaultRoute
	}
	if category == "" {
		return m.cards, nil
	}
	for _, cat := range m.Categories {
		if cat.ID != category {
			continue
		}
		var out []*Card
		for _, c := range m.cards {
			if slices.Contains(cat.Handlers, c.Name) {
				out = append(out, c)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("desk %q has no category %q", m.Desk, category)
}

// Restricted reports whether category ("" for none) reaches only part of
// the desk's handlers. It is false for an unknown category.
func (m *Manifest) Restricted(category string) bool {
	cards, err := m.Route(category)
	return err == nil && len(cards) < len(m.cards)
}

// TitleIn is the desk's title in lang (see Text).
func (m *Manifest) TitleIn(lang string) string { return Text(m.Title, m.Titles, lang, m.Language) }

// DescriptionIn is the desk's description in lang (see Text).
func (m *Manifest) DescriptionIn(lang string) string {
	return Text(m.Description, m.Descriptions, lang, m.Language)
}

// CategoryTitle is the title of category id in lang (see Text), or the id
// itself when it has none. It is "" for an unknown category.
func (m *Manifest) CategoryTitle(id, lang string) string {
	for _, c := range m.Categories {
		if c.ID == id {
			if t := Text(c.Title, c.Labels, lang, m.Language); t != "" {
				return t
			}
			return c.ID
		}
	}
	return ""
}

// Handler returns the card whose Ed25519 key has the given key ID, or nil.
func (m *Manifest) Handler(keyID string) *Card {
	for _, c := range m.cards {
		if c.KeyID() == keyID {
			return c
		}
	}
	return nil
}

// Envelope is the signed, published form of a manifest. The payload is the
// manifest's JSON bytes exactly as signed.
type Envelope struct {
	Format    string `json:"format"`
	Payload   string `json:"payload"`   // standard base64 of the manifest JSON
	Key       string `json:"key"`       // base64url Ed25519 public key of the signer
	Signature string `json:"signature"` // base64url Ed25519 signature
}

func deskSigned(payload []byte) []byte {
	return append([]byte(DeskFormat+"\n"), payload...)
}

// SignManifest normalizes m and returns its signed envelope, in JSON.
func SignManifest(m *Manifest, key ed25519.PrivateKey) ([]byte, error) {
	if err := m.Normalize(); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	env := Envelope{
		Format:    DeskFormat,
		Payload:   base64.StdEncoding.EncodeToString(payload),
		Key:       b64.EncodeToString(key.Public().(ed25519.PublicKey)),
		Signature: b64.EncodeToString(ed25519.Sign(key, deskSigned(payload))),
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding envelope: %w", err)
	}
	return append(out, '\n'), nil
}

// OpenManifest verifies a signed envelope and returns the manifest and the
// signer's key. If pinned is not nil the signer must be that key.
func OpenManifest(data []byte, pinned ed25519.PublicKey) (*Manifest, ed25519.PublicKey, error) {
	if len(data) > MaxManifestLen {
		return nil, nil, fmt.Errorf("desk manifest larger than %d bytes", MaxManifestLen)
	}
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, nil, errors.New("desk manifest is not a valid envelope")
	}
	if env.Format != DeskFormat {
		return nil, nil, fmt.Errorf("desk manifest format %q is not %q", env.Format, DeskFormat)
	}
	pub, err := b64.DecodeString(env.Key)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, nil, errors.New("desk manifest has an invalid signer key")
	}
	payload, err := canonicalB64{base64.StdEncoding.Strict()}.DecodeString(env.Payload)
	if err != nil {
		return nil, nil, errors.New("desk manifest payload is not base64")
	}
	sig, err := b64.DecodeString(env.Signature)
	if err != nil || !ed25519.Verify(pub, deskSigned(payload), sig) {
		return nil, nil, ErrBadSignature
	}
	if pinned != nil && !bytes.Equal(pinned, pub) {
		return nil, nil, ErrWrongSigner
	}
	var m Manifest
	if err := decodeCanonical(payload, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrManifestNotCanonical, err)
	}
	if err := m.Normalize(); err != nil {
		return nil, nil, fmt.Errorf("desk manifest: %w", err)
	}
	return &m, ed25519.PublicKey(pub), nil
}

// decodeCanonical decodes JSON that must be exactly what json.Marshal
// writes for v: no unknown, repeated or differently-cased members, no
// trailing data, no alternative spellings. Every implementation then reads
// the same values from the same signed bytes.
func decodeCanonical(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	again, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return errors.New("not in canonical form")
	}
	return nil
}
