package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
)

// Shell completion ('amana completion bash|zsh|fish|powershell'). Case IDs
// and desk names come from what this machine stores: the case store's
// metadata and known_desks.json; statuses, severities, close reasons, tags,
// handler names and categories from the desks' manifests it verified and
// kept (deskcache.go). Completing never decrypts anything, never
// asks for a passphrase, never reaches a relay and never creates a file.

// caseCommands take a case ID (or a prefix of one) as their argument.
var caseCommands = []string{"show", "export", "reply"}

// deskFlagCommands have a --desk flag naming a desk.
var deskFlagCommands = []string{"submit", "check", "followup", "sla"}

// workflowFlags are the flags whose values come from the desks' manifests
// as this machine keeps them: statuses, severities, close reasons,
// suggested tags, handler names and categories. For a command given a case
// ID, only that case's desk counts.
var workflowFlags = map[string]func(m *crypto.Manifest) []string{
	"status":   func(m *crypto.Manifest) []string { return m.Flow().Statuses },
	"severity": func(m *crypto.Manifest) []string { return severityIDs(m.Flow()) },
	"reason":   func(m *crypto.Manifest) []string { return m.Flow().CloseReasons },
	"tag":      func(m *crypto.Manifest) []string { return m.Flow().Tags },
	"untag":    func(m *crypto.Manifest) []string { return m.Flow().Tags },
	"assign":   handlerNamesAndMe,
	"unassign": handlerNamesAndMe,
	"assignee": handlerNamesAndMe,
	"to":       func(m *crypto.Manifest) []string { return handlerNamesAndMe(m)[1:] },
	"category": func(m *crypto.Manifest) []string {
		var out []string
		for _, c := range m.Categories {
			out = append(out, c.ID)
		}
		return out
	},
}

func handlerNamesAndMe(m *crypto.Manifest) []string {
	out := []string{"me"}
	for _, c := range m.Cards() {
		out = append(out, c.Name)
	}
	return out
}

// registerCompletions sets the completion functions on root's commands.
func (e *env) registerCompletions(root *cobra.Command) {
	for _, c := range root.Commands() {
		if slices.Contains(caseCommands, c.Name()) && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = e.completeCaseIDs
		}
		if slices.Contains(deskFlagCommands, c.Name()) && c.Flags().Lookup("desk") != nil {
			c.RegisterFlagCompletionFunc("desk", e.completeDesks)
		}
		subs := []*cobra.Command{c}
		if c.Name() == "case" {
			subs = c.Commands()
			for _, s := range subs {
				if s.ValidArgsFunction == nil && s.Args != nil {
					s.ValidArgsFunction = e.completeCaseIDs
				}
			}
		}
		for _, s := range subs {
			if s.Name() == "refer" { // --to is an organisation there, not a handler
				continue
			}
			for name, values := range workflowFlags {
				if s.Flags().Lookup(name) != nil {
					s.RegisterFlagCompletionFunc(name, e.completeWorkflow(values))
				}
			}
			for _, name := range []string{"duplicate-of", "related"} {
				if s.Flags().Lookup(name) != nil {
					s.RegisterFlagCompletionFunc(name, func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
						return e.completeCaseIDs(cmd, nil, toComplete)
					})
				}
			}
		}
	}
}

// completeWorkflow offers the values that values gives for the manifests
// completion trusts: the case's desk when the command names a case, else
// every desk kept here.
func (e *env) completeWorkflow(values func(*crypto.Manifest) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		none := cobra.ShellCompDirectiveNoFileComp
		e.resolveHome()
		var out []cobra.Completion
		for _, m := range e.completionManifests(args) {
			for _, v := range values(m) {
				if strings.HasPrefix(v, toComplete) && !slices.Contains(out, v) && describe(v) == v && !strings.ContainsAny(v, " \t") {
					out = append(out, v)
				}
			}
		}
		slices.Sort(out)
		return out, none
	}
}

// completionManifests are the manifests completion draws on: the one kept
// for the case args[0] names, or, without a case, every one kept here.
func (e *env) completionManifests(args []string) []*crypto.Manifest {
	if len(args) > 0 {
		dir := filepath.Join(e.home, "cases")
		if _, err := os.Stat(dir); err != nil {
			return nil
		}
		st, err := cases.Open(dir)
		if err != nil {
			return nil
		}
		id, err := st.Resolve(args[0])
		if err != nil {
			return nil
		}
		meta, err := st.Meta(id)
		if err != nil {
			return nil
		}
		if m := e.keptDesk(meta.Relay, meta.Desk); m != nil {
			return []*crypto.Manifest{m}
		}
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(e.home, "desks", "*.json"))
	var out []*crypto.Manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var m crypto.Manifest
		if json.Unmarshal(b, &m) == nil && m.Normalize() == nil {
			out = append(out, &m)
		}
	}
	return out
}

// resolveHome sets e.home as PersistentPreRunE does; completion runs
// without it.
func (e *env) resolveHome() {
	if e.home == "" {
		e.home = os.Getenv("AMANA_HOME")
	}
	if e.home == "" {
		e.home = defaultHome()
	}
}

// completeCaseIDs offers the IDs of the cases held here that start with
// what was typed, each described by its kind, desk and hour of arrival:
// the metadata 'amana list' shows, none of it decrypted.
func (e *env) completeCaseIDs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	none := cobra.ShellCompDirectiveNoFileComp
	if len(args) > 0 {
		return nil, none
	}
	e.resolveHome()
	dir := filepath.Join(e.home, "cases")
	if _, err := os.Stat(dir); err != nil {
		return nil, none // cases.Open would create it
	}
	st, err := cases.Open(dir)
	if err != nil {
		return nil, none
	}
	metas, err := st.List()
	if err != nil {
		return nil, none
	}
	var out []cobra.Completion
	for _, m := range metas {
		if !cases.ValidID(m.ID) || !strings.HasPrefix(m.ID, strings.ToLower(toComplete)) {
			continue
		}
		kind := m.Kind
		if kind == "" {
			kind = "report"
		}
		out = append(out, cobra.CompletionWithDesc(m.ID, describe(kind, m.Desk, m.Received)))
	}
	return out, none
}

// completeDesks offers the desks this machine remembers a key for, on the
// relay --relay names if it is given, else on any.
func (e *env) completeDesks(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	none := cobra.ShellCompDirectiveNoFileComp
	e.resolveHome()
	_, known, err := e.knownDesks()
	if err != nil {
		return nil, none
	}
	relay := ""
	if f := cmd.Flags().Lookup("relay"); f != nil {
		relay = strings.TrimRight(f.Value.String(), "/")
	}
	seen := map[string]bool{}
	var out []cobra.Completion
	for k := range known {
		r, desk, ok := strings.Cut(k, " ")
		if !ok || !crypto.ValidName(desk) || seen[desk] || relay != "" && r != relay || !strings.HasPrefix(desk, toComplete) {
			continue
		}
		seen[desk] = true
		out = append(out, desk)
	}
	slices.Sort(out)
	return out, none
}

// describe joins the parts of a completion's description, each made safe
// for a terminal and without tabs or line breaks, which would break the
// shell's parsing.
func describe(parts ...string) string {
	var out []string
	for _, p := range parts {
		p = strings.Join(strings.Fields(clean(p, false)), " ")
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}
