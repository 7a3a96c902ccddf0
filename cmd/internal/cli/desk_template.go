package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/packs"
)

// loadPack reads the pack --template names: a built-in pack by its id, or
// a pack file of the organisation's own when it names a path.
func loadPack(name string) (*packs.Pack, error) {
	if !strings.ContainsAny(name, `/\`) && !strings.HasSuffix(name, ".json") {
		p, err := packs.Get(name)
		if errors.Is(err, packs.ErrUnknownPack) {
			return nil, fail(ExitUsage, "'amana desk templates' lists the built-in packs; a pack file of your own is given by its path (docs/packs.md)", nil, "no template %q", name)
		}
		if err != nil {
			return nil, fail(ExitError, "this amana build is damaged: install it again", err, "cannot read the built-in templates")
		}
		return p, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fail(ExitError, "check the --template path", err, "cannot read the template")
	}
	p, err := packs.Parse(b)
	if err != nil {
		return nil, fail(ExitUsage, "fix the pack as the message says (docs/packs.md)", err, "invalid template %s", name)
	}
	return p, nil
}

// applyTemplate starts m from the pack: its categories routed by the
// --category flags (ID=NAME,…; a pack category without one goes to every
// handler), its form and workflow unless --form or --workflow replace
// them, and its escalation roles filled from --notify. --category flags
// for ids the pack lacks are returned, for the caller to add as usual.
func applyTemplate(e *env, o *deskCreateOptions, p *packs.Pack, m *crypto.Manifest, names []string) ([]string, error) {
	d := packs.Desk{Language: o.language, Handlers: names, Routes: map[string][]string{}, Notify: map[string][]string{},
		AllowWideSensitive: o.allowWideSensitive}
	var extra []string
	for _, c := range o.categories {
		id, list, ok := strings.Cut(c, "=")
		if !ok || list == "" {
			return nil, fail(ExitUsage, "write --category ID=NAME,NAME", nil, "invalid --category %q", c)
		}
		if slices.ContainsFunc(p.Categories, func(pc packs.Category) bool { return pc.ID == id }) {
			d.Routes[id] = strings.Split(list, ",")
		} else {
			extra = append(extra, c)
		}
	}
	roles := p.Roles()
	for _, n := range o.notify {
		role, list, ok := strings.Cut(n, "=")
		if !ok || list == "" {
			return nil, fail(ExitUsage, "write --notify ROLE=NAME,NAME", nil, "invalid --notify %q", n)
		}
		if !slices.Contains(roles, role) {
			return nil, fail(ExitUsage, fmt.Sprintf("the roles of template %s are: %s", p.ID, strings.Join(roles, ", ")), nil, "--notify names no escalation role %q of the template", role)
		}
		d.Notify[role] = strings.Split(list, ",")
	}
	if _, ok := d.Notify["coordinator"]; !ok && len(o.coordinators) > 0 {
		d.Notify["coordinator"] = o.coordinators
	}
	a, err := p.Apply(m, d)
	if we := (*packs.WideError)(nil); errors.As(err, &we) {
		what, it := "category", "it"
		if len(we.Categories) > 1 {
			what, it = "categories", "each"
		}
		return nil, fail(ExitUsage, fmt.Sprintf("route %s to a restricted team, part of the handlers: --category %s=NAME,NAME; a desk of one team gives --allow-wide-sensitive", it, we.Categories[0]),
			nil, "sensitive %s routed to every handler of the desk: %s", what, strings.Join(we.Categories, ", "))
	}
	if err != nil {
		return nil, fail(ExitUsage, "fix the flags as the message says", err, "cannot start the desk from template %s", p.ID)
	}
	for _, id := range a.Wide {
		fmt.Fprintf(e.stderr, "warning: sensitive category %s reaches every handler (--allow-wide-sensitive)\n", id)
	}
	if o.workflow == "" {
		for _, s := range a.Dropped {
			fmt.Fprintf(e.stderr, "warning: escalation step %q after %d min left out: no handler given for %s\n", s.Label, s.AfterMinutes, strings.Join(s.Notify, ", "))
			fmt.Fprintf(e.stderr, "hint: --notify %s=NAME,NAME names whom it tells\n", s.Notify[0])
		}
	}
	fmt.Fprintf(e.stderr, "started from template %s version %d\n", p.ID, p.Version)
	return extra, nil
}

type deskTemplatesOptions struct{ json bool }

func newDeskTemplates(e *env) *cobra.Command {
	var o deskTemplatesOptions
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "list the taxonomy packs 'desk create --template' starts from",
		Long: `List the built-in taxonomy packs: each one's id, version and title, its
categories (sensitive ones marked: they must route to a restricted team), its
severities with their default response-time targets, and the escalation roles
'desk create --notify ROLE=NAME,…' fills. The format of a pack, for one of
your own, is docs/packs.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := packs.List()
			if err != nil {
				return fail(ExitError, "this amana build is damaged: install it again", err, "cannot read the built-in templates")
			}
			if o.json {
				return writeJSON(e.stdout, all)
			}
			for i, p := range all {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				printPack(e, p)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the packs as JSON, in their file format (docs/packs.md)")
	return cmd
}

func printPack(e *env, p *packs.Pack) {
	w := e.stdout
	fmt.Fprintf(w, "%s (version %d): %s\n", p.ID, p.Version, clean(p.TitleIn(p.Language), false))
	fmt.Fprintf(w, "  categories:\n")
	for _, c := range p.Categories {
		mark := ""
		if c.Sensitive {
			mark = "  sensitive: route to a restricted team"
		}
		fmt.Fprintf(w, "    %-26s %s%s\n", c.ID, clean(crypto.Text("", c.Label, p.Language, p.Language), false), mark)
	}
	fmt.Fprintf(w, "  severities (acknowledge / first response / update / resolve):\n")
	for _, s := range p.Workflow.Severities {
		t := p.Workflow.TargetsFor(s.ID)
		fmt.Fprintf(w, "    %-12s %s / %s / %s / %s\n", s.ID, minutes(t.Acknowledge), minutes(t.FirstResponse), minutes(t.Update), minutes(t.Resolve))
	}
	if len(p.Workflow.Paused) > 0 {
		fmt.Fprintf(w, "  clocks paused: %s\n", strings.Join(p.Workflow.Paused, ", "))
	}
	if r := p.Roles(); len(r) > 0 {
		fmt.Fprintf(w, "  escalation roles: %s\n", strings.Join(r, ", "))
	}
}

// minutes writes a target like 90m, 2h, 3d, or "-" for none.
func minutes(m int) string {
	switch {
	case m == 0:
		return "-"
	case m%1440 == 0:
		return fmt.Sprintf("%dd", m/1440)
	case m%60 == 0:
		return fmt.Sprintf("%dh", m/60)
	}
	return fmt.Sprintf("%dm", m)
}
