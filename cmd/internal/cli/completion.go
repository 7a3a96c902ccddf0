package cli

import (
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
// metadata and known_desks.json. Completing never decrypts anything, never
// asks for a passphrase, never reaches a relay and never creates a file.

// caseCommands take a case ID (or a prefix of one) as their argument.
var caseCommands = []string{"show", "export", "reply"}

// deskFlagCommands have a --desk flag naming a desk.
var deskFlagCommands = []string{"submit", "check", "followup"}

// registerCompletions sets the completion functions on root's commands.
func (e *env) registerCompletions(root *cobra.Command) {
	for _, c := range root.Commands() {
		if slices.Contains(caseCommands, c.Name()) && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = e.completeCaseIDs
		}
		if slices.Contains(deskFlagCommands, c.Name()) && c.Flags().Lookup("desk") != nil {
			c.RegisterFlagCompletionFunc("desk", e.completeDesks)
		}
	}
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
