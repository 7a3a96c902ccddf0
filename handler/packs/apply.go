package packs

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/amana-relay/amana/crypto"
)

// Desk is what a desk adds to a pack: who handles it and how its
// categories route. Every zero value is documented.
type Desk struct {
	// Language is the desk's language; "" means the pack's.
	Language string
	// Handlers are the names of every handler of the desk.
	Handlers []string
	// Routes maps a category id of the pack to the names of the handlers
	// it goes to. A category without a route goes to every handler, which
	// a sensitive one may not unless AllowWideSensitive.
	Routes map[string][]string
	// Notify maps an escalation role of the pack (Pack.Roles) to handler
	// names. A step whose roles all have none is left out (Applied.Dropped).
	Notify map[string][]string
	// AllowWideSensitive lets a sensitive category reach every handler:
	// a desk of one team, knowingly.
	AllowWideSensitive bool
}

// Applied says what Apply did beyond filling the manifest.
type Applied struct {
	// Dropped are the pack's escalation steps left out because no handler
	// was given for their roles.
	Dropped []crypto.Escalation
	// Wide are the sensitive categories that reach every handler, allowed
	// by AllowWideSensitive.
	Wide []string
}

// Apply fills m from p for the desk d: the categories routed by d.Routes,
// the form, the workflow with the escalation roles replaced by handlers,
// and, where m leaves them empty, the language, title and description
// (with the pack's translations of them) and default route. It refuses a sensitive category routed to every handler
// unless d.AllowWideSensitive (a *WideError), and a route for a
// category the pack lacks is not its business: the caller adds those.
func (p *Pack) Apply(m *crypto.Manifest, d Desk) (*Applied, error) {
	lang := d.Language
	if lang == "" {
		lang = p.Language
	}
	if m.Language == "" {
		m.Language = lang
	}
	// The pack's translations come with the pack's text only: beside a
	// title of the desk's own they would name another desk.
	if m.Title == "" {
		m.Title = crypto.Text("", p.Title, lang, p.Language)
		m.Titles = fill(m.Titles, p.Title, lang)
	}
	if m.Description == "" {
		m.Description = crypto.Text("", p.Description, lang, p.Language)
		m.Descriptions = fill(m.Descriptions, p.Description, lang)
	}
	if m.DefaultRoute == "" {
		m.DefaultRoute = p.DefaultRoute
	}

	all := map[string]bool{}
	for _, h := range d.Handlers {
		all[h] = true
	}
	var wide []string
	for _, c := range p.Categories {
		route, ok := d.Routes[c.ID]
		if !ok {
			route = slices.Clone(d.Handlers)
		}
		if c.Sensitive && reachesAll(route, all) {
			wide = append(wide, c.ID)
		}
		m.Categories = append(m.Categories, crypto.Category{ID: c.ID, Title: crypto.Text("", c.Label, lang, p.Language),
			Handlers: route, Labels: others(c.Label, lang)})
	}
	if len(wide) > 0 && !d.AllowWideSensitive {
		return nil, &WideError{Categories: wide}
	}

	form := cloneForm(p.Form)
	m.Form = &form
	wf := flow(p.Workflow, lang, p.Language)
	out := &Applied{Wide: wide}
	steps := wf.Escalation[:0:0]
	for _, e := range wf.Escalation {
		var names []string
		for _, role := range e.Notify {
			for _, n := range d.Notify[role] {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		if len(names) == 0 {
			out.Dropped = append(out.Dropped, e)
			continue
		}
		e.Notify = names
		steps = append(steps, e)
	}
	wf.Escalation = steps
	if len(wf.Escalation) == 0 {
		wf.Escalation = nil
	}
	m.Workflow = &wf
	return out, nil
}

// WideError is ErrWideSensitive with the categories at fault.
type WideError struct {
	Categories []string // in the pack's order
}

func (e *WideError) Error() string {
	return fmt.Sprintf("%v: %s", ErrWideSensitive, strings.Join(e.Categories, ", "))
}

func (e *WideError) Unwrap() error { return ErrWideSensitive }

func reachesAll(route []string, all map[string]bool) bool {
	n := 0
	seen := map[string]bool{}
	for _, h := range route {
		if all[h] && !seen[h] {
			seen[h] = true
			n++
		}
	}
	return n == len(all)
}

// others is the text map m without lang, nil when nothing is left.
func others(m map[string]string, lang string) map[string]string {
	out := map[string]string{}
	for l, s := range m {
		if l != lang && s != "" {
			out[l] = s
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fill adds to have the texts of pack in languages other than lang that
// have does not give.
func fill(have, pack map[string]string, lang string) map[string]string {
	for l, s := range others(pack, lang) {
		if have[l] != "" {
			continue
		}
		if have == nil {
			have = map[string]string{}
		}
		have[l] = s
	}
	return have
}

func cloneForm(f crypto.Form) crypto.Form {
	out := crypto.Form{Fields: slices.Clone(f.Fields)}
	for i := range out.Fields {
		fl := &out.Fields[i]
		fl.Label, fl.Help = maps.Clone(fl.Label), maps.Clone(fl.Help)
		fl.Options = slices.Clone(fl.Options)
		for j := range fl.Options {
			fl.Options[j].Label = maps.Clone(fl.Options[j].Label)
		}
	}
	return out
}

// flow is a copy of w whose severity meanings are in lang: the pack's
// Meaning is in packLang, its Meanings in the other languages.
func flow(w crypto.Workflow, lang, packLang string) crypto.Workflow {
	m := &crypto.Manifest{Workflow: &w}
	out := m.Flow() // a deep copy: the pack is shared

	for i := range out.Severities {
		s := &out.Severities[i]
		texts := maps.Clone(s.Meanings)
		if texts == nil {
			texts = map[string]string{}
		}
		if s.Meaning != "" {
			texts[packLang] = s.Meaning
		}
		s.Meaning = crypto.Text("", texts, lang, packLang)
		s.Meanings = others(texts, lang)
	}
	return out
}
