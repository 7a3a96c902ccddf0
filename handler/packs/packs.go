// Package packs holds the taxonomy packs a desk starts from ('amana desk
// create --template'): versioned data files of categories with labels in
// several languages, which of them are sensitive, the submission form, the
// case workflow with its response-time targets, and escalation steps. The
// format is docs/packs.md. A pack is public data: it holds no key, no
// handler and nothing a submitter wrote, and it never talks to a relay.
package packs

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"

	"github.com/amana-relay/amana/crypto"
)

//go:embed data/*.json
var data embed.FS

// Format names the pack file format; a pack file's "format" member.
const Format = "amana-pack/v1"

// MaxPackLen bounds a pack file.
const MaxPackLen = 1 << 20

// MaxCategories bounds a pack's categories.
const MaxCategories = 64

// Sentinel errors.
var (
	// ErrUnknownPack: no built-in pack has the name asked for.
	ErrUnknownPack = errors.New("no such taxonomy pack")
	// ErrWideSensitive: a sensitive category would reach every handler of
	// the desk, when it must go to a restricted team.
	ErrWideSensitive = errors.New("a sensitive category is routed to every handler")
	// ErrNoRole: an escalation step names a role no handler was given for.
	ErrNoRole = errors.New("an escalation role has no handlers")
)

// Pack is a taxonomy pack: what a desk of one kind starts from. Texts are
// text maps by language code, as in the manifest (docs/protocol.md §6.1).
type Pack struct {
	Format string `json:"format"` // always Format
	// ID names the pack, a name (docs/protocol.md §3); Version grows with
	// every change of its content.
	ID      string `json:"id"`
	Version int    `json:"version"`
	// Language is the pack's own language: every text has it.
	Language    string            `json:"language"`
	Title       map[string]string `json:"title"`
	Description map[string]string `json:"description,omitempty"`
	Categories  []Category        `json:"categories"`
	// DefaultRoute is the category of a report without one; never a
	// sensitive one. "" leaves the desk's default (every handler).
	DefaultRoute string `json:"default_route,omitempty"`
	// Form is the submission form; it has a category field.
	Form crypto.Form `json:"form"`
	// Workflow is the case workflow, targets per severity included. Its
	// escalation steps' Notify name roles (such as "shift-leads"), which
	// desk create replaces with the handlers given for them.
	Workflow crypto.Workflow `json:"workflow"`
}

// Category is one category of a pack.
type Category struct {
	ID    string            `json:"id"`
	Label map[string]string `json:"label"`
	// Sensitive categories must route to a restricted team: part of the
	// desk's handlers, named explicitly.
	Sensitive bool `json:"sensitive,omitempty"`
}

// Parse reads and validates a pack file. Unknown members are refused, so
// a misspelt member is not silently dropped.
func Parse(b []byte) (*Pack, error) {
	if len(b) > MaxPackLen {
		return nil, fmt.Errorf("pack larger than %d bytes", MaxPackLen)
	}
	var p Pack
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decoding pack: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding pack: data after the pack")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func checkLabel(what, lang string, m map[string]string) error {
	if m[lang] == "" {
		return fmt.Errorf("%s has no text in the pack's language %q", what, lang)
	}
	for l, s := range m {
		if !crypto.ValidLang(l) || s == "" || len(s) > 200 {
			return fmt.Errorf("%s: text in %q must be 1 to 200 bytes, under a language code", what, l)
		}
	}
	return nil
}

// Validate checks p: its names, that every text has the pack's language,
// the form and the workflow by the manifest's rules, and a default route
// that is not sensitive. Whether a desk built from it signs is checked by
// Apply and crypto.SignManifest.
func (p *Pack) Validate() error {
	if p.Format != Format {
		return fmt.Errorf("pack format %q is not %q", p.Format, Format)
	}
	if !crypto.ValidName(p.ID) {
		return fmt.Errorf("invalid pack id %q", p.ID)
	}
	if p.Version < 1 {
		return fmt.Errorf("pack %s: version must be at least 1", p.ID)
	}
	if !crypto.ValidLang(p.Language) {
		return fmt.Errorf("pack %s: invalid language %q", p.ID, p.Language)
	}
	if err := checkLabel("pack title", p.Language, p.Title); err != nil {
		return err
	}
	for l, s := range p.Description {
		if !crypto.ValidLang(l) || len(s) > 4000 {
			return fmt.Errorf("pack description in %q: at most 4000 bytes, under a language code", l)
		}
	}
	if len(p.Categories) == 0 || len(p.Categories) > MaxCategories {
		return fmt.Errorf("pack %s: 1 to %d categories", p.ID, MaxCategories)
	}
	seen := map[string]bool{}
	for _, c := range p.Categories {
		if !crypto.ValidName(c.ID) || seen[c.ID] {
			return fmt.Errorf("pack %s: invalid or repeated category id %q", p.ID, c.ID)
		}
		seen[c.ID] = true
		if err := checkLabel("category "+c.ID, p.Language, c.Label); err != nil {
			return err
		}
	}
	if p.DefaultRoute != "" {
		c := p.category(p.DefaultRoute)
		if c == nil {
			return fmt.Errorf("pack %s: default route %q names no category", p.ID, p.DefaultRoute)
		}
		if c.Sensitive {
			return fmt.Errorf("pack %s: default route %q is sensitive: a report without a category must not be presumed sensitive", p.ID, p.DefaultRoute)
		}
	}
	if err := p.Form.Validate(true); err != nil {
		return fmt.Errorf("pack %s: %w", p.ID, err)
	}
	if !slices.ContainsFunc(p.Form.Fields, func(f crypto.Field) bool { return f.Type == crypto.FieldCategory }) {
		return fmt.Errorf("pack %s: the form has no category field, so its categories would never be chosen", p.ID)
	}
	if err := p.Workflow.Validate(); err != nil {
		return fmt.Errorf("pack %s: workflow: %w", p.ID, err)
	}
	return nil
}

func (p *Pack) category(id string) *Category {
	for i := range p.Categories {
		if p.Categories[i].ID == id {
			return &p.Categories[i]
		}
	}
	return nil
}

// Sensitive reports whether category id of p is sensitive.
func (p *Pack) Sensitive(id string) bool {
	c := p.category(id)
	return c != nil && c.Sensitive
}

// Roles are the escalation roles p's steps notify, sorted.
func (p *Pack) Roles() []string {
	var out []string
	for _, e := range p.Workflow.Escalation {
		for _, r := range e.Notify {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TitleIn is the pack's title in lang, else in its own language.
func (p *Pack) TitleIn(lang string) string { return crypto.Text("", p.Title, lang, p.Language) }

// List returns the built-in packs, sorted by id.
func List() ([]*Pack, error) {
	names, err := data.ReadDir("data")
	if err != nil {
		return nil, fmt.Errorf("reading the built-in packs: %w", err)
	}
	var out []*Pack
	for _, n := range names {
		b, err := data.ReadFile(path.Join("data", n.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading pack %s: %w", n.Name(), err)
		}
		p, err := Parse(b)
		if err != nil {
			return nil, fmt.Errorf("built-in pack %s: %w", n.Name(), err)
		}
		if p.ID+".json" != n.Name() {
			return nil, fmt.Errorf("built-in pack %s has id %q", n.Name(), p.ID)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns the built-in pack named id.
func Get(id string) (*Pack, error) {
	all, err := List()
	if err != nil {
		return nil, err
	}
	for _, p := range all {
		if p.ID == id {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownPack, id)
}
