package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
)

func newDesk(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "desk",
		Short: "create, inspect and publish signed desk manifests",
		Long: `A desk is a signed manifest: its id and title, its handlers (their cards), its
categories each routed to a subset of handlers, its size limit and retention, and a
serial that only grows. The desk admin signs it; the relay accepts only manifests
signed by the admin key pinned at 'amana-relay init', and refuses older serials.`,
	}
	cmd.AddCommand(newDeskCreate(e), newDeskShow(e), newDeskPublish(e), newDeskTemplates(e))
	return cmd
}

// pageLanguages are the languages the relay's pages come in (its message
// catalogues, relay/web/i18n): desk create has a --title-LANG and a
// --description-LANG flag for each.
var pageLanguages = []string{"ar", "en", "fr"}

type deskCreateOptions struct {
	id, title, description string
	language               string
	titles, descriptions   map[string]*string // by language, from --title-LANG and --description-LANG
	handlers               []string
	categories             []string
	categoryTitles         []string
	defaultRoute           string
	coordinators           []string
	workflow               string
	form                   string
	maxSize                string
	deleteAfterAck         string
	keepUnacked            string
	serial                 uint64
	identity               string
	out                    string
	template               string
	notify                 []string
	allowWideSensitive     bool
}

func newDeskCreate(e *env) *cobra.Command {
	o := deskCreateOptions{titles: map[string]*string{}, descriptions: map[string]*string{}}
	cmd := &cobra.Command{
		Use:   "create --id ID --title TITLE --handler CARD... -i ADMINKEY -o desk.json",
		Short: "make and sign a desk manifest",
		Long: `Make and sign a desk manifest. --title, --description and the --category-title
ID=TITLE flags are in the desk's own language (--language); --title-ar,
--description-fr and --category-title ID:LANG=TITLE give them in the languages of
the relay's pages. A page shows its own language, else the desk's text.

A report without a category goes to every handler, unless --default-route names
the category whose handlers get it instead.

--coordinator NAME names a handler who sees the whole desk's workload (each
case's category, status, severity, assignees and times) without its content: a
coordinator reads only the cases of their own categories. A desk with
coordinators needs --default-route. --workflow FILE gives the desk's own case
workflow as JSON ({"statuses": [...], "final": [...], "severities": [{"id",
"meaning", "targets"}...], "close_reasons": [...], "tags": [...], "paused": [...],
"escalation": [...]}, docs/protocol.md §6.1); without it the default applies
('amana desk show' prints it).

--template NAME starts the desk from a taxonomy pack ('amana desk templates'
lists them; a path names a pack file of your own, docs/packs.md): its
categories with their titles in several languages, its form, and its workflow
with default response-time targets and escalation steps. The handlers still
come from --handler; --category ID=NAME,… routes a pack category (one without
it goes to every handler) or adds one; --form and --workflow replace the pack's.
A sensitive category (fraud, sexual exploitation and abuse, a seized device…)
must go to a restricted team: desk create refuses one that reaches every
handler, unless --allow-wide-sensitive. --notify ROLE=NAME,… names the handlers
an escalation role of the pack tells (the role "coordinator" defaults to
--coordinator); a step whose role has nobody is left out, with a warning.`,
		Example: `  amana desk create --id helpdesk --language en --title "Digital safety helpdesk" \
    --title-ar "مكتب المساعدة في الأمان الرقمي" \
    --handler alice.card --handler bob.card --handler carol.card \
    --category incident=alice,bob,carol --category sea=carol \
    --category-title sea="Sexual exploitation and abuse" \
    --category-title sea:ar="الاستغلال والاعتداء الجنسيان" \
    --default-route incident \
    -i admin.key -o desk.json

  amana desk create --id complaints --template humanitarian-complaints \
    --handler amal.card --handler badr.card --handler chloe.card \
    --category fraud-corruption=chloe --category abuse-of-authority=chloe \
    --category sexual-exploitation-abuse=chloe --category threat-to-safety=chloe,badr \
    --coordinator chloe --notify focal-points=badr \
    -i admin.key -o desk.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runDeskCreate(e, &o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.id, "id", "", "desk id: 1 to 32 characters from a-z, 0-9, '.', '_', '-' (required)")
	f.StringVar(&o.title, "title", "", "desk title shown to submitters (required)")
	f.StringVar(&o.description, "description", "", "who runs the desk and what happens to a report")
	f.StringVar(&o.language, "language", "", `language code of --title, --description and the category titles, like "en" or "ar"`)
	for _, lang := range pageLanguages {
		o.titles[lang], o.descriptions[lang] = new(string), new(string)
		f.StringVar(o.titles[lang], "title-"+lang, "", "the desk title on pages in language "+lang)
		f.StringVar(o.descriptions[lang], "description-"+lang, "", "the description on pages in language "+lang)
	}
	f.StringArrayVar(&o.handlers, "handler", nil, "a handler's card file (repeat for each handler)")
	f.StringArrayVar(&o.categories, "category", nil, "ID=NAME,NAME…: a category and the handlers it goes to (repeat)")
	f.StringArrayVar(&o.categoryTitles, "category-title", nil, "ID=TITLE, or ID:LANG=TITLE in another language: a category's title shown to submitters (repeat)")
	f.StringVar(&o.defaultRoute, "default-route", "", "category ID whose handlers get a report without a category (default: every handler)")
	f.StringArrayVar(&o.coordinators, "coordinator", nil, "a handler, by name, who sees every case's facts (status, severity, times) but not its content (repeat)")
	f.StringVar(&o.workflow, "workflow", "", "JSON file with the desk's case workflow: statuses, final statuses, severities, close reasons, tags (default: the built-in one)")
	f.StringVar(&o.form, "form", "", `JSON file with the desk's submission form ({"fields": [...]}, see docs/protocol.md); default: an incident form`)
	f.StringVar(&o.maxSize, "max-size", "2GiB", "largest submission the desk accepts")
	f.StringVar(&o.deleteAfterAck, "delete-after-ack", "", "delete a submission this long after the first handler pulled it, even if others have not (default: keep it until every handler it reaches has pulled it)")
	f.StringVar(&o.keepUnacked, "keep-unacked", "90d", "delete a submission not every handler pulled after this long")
	f.Uint64Var(&o.serial, "serial", 0, "manifest serial; must grow with every publication (default: the current Unix time)")
	f.StringVarP(&o.identity, "identity", "i", "", "the desk admin's identity file (required)")
	f.StringVarP(&o.out, "output", "o", "", "write the signed manifest here (required; never overwritten)")
	f.StringVar(&o.template, "template", "", "start from a taxonomy pack: a built-in one's id ('amana desk templates') or a pack file's path")
	f.StringArrayVar(&o.notify, "notify", nil, "ROLE=NAME,NAME…: the handlers a template's escalation role tells (repeat)")
	f.BoolVar(&o.allowWideSensitive, "allow-wide-sensitive", false, "let a template's sensitive categories reach every handler (a desk of one team)")
	for _, n := range []string{"id", "handler", "identity", "output"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func runDeskCreate(e *env, o *deskCreateOptions) error {
	if o.title == "" && o.template == "" {
		return fail(ExitUsage, "give --title TITLE, or start from a pack with --template NAME ('amana desk templates')", nil, "a desk needs a title")
	}
	if o.template == "" && (len(o.notify) > 0 || o.allowWideSensitive) {
		return fail(ExitUsage, "--notify and --allow-wide-sensitive go with --template", nil, "no template to apply them to")
	}
	m := &crypto.Manifest{Version: 1, Desk: o.id, Language: o.language, Title: o.title, Description: o.description,
		DefaultRoute: o.defaultRoute, Serial: o.serial, Coordinators: o.coordinators}
	if o.workflow != "" {
		b, err := os.ReadFile(o.workflow)
		if err != nil {
			return fail(ExitError, "check the --workflow path", err, "cannot read the workflow")
		}
		m.Workflow = &crypto.Workflow{}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(m.Workflow); err != nil {
			return fail(ExitUsage, `write the workflow as {"statuses": [...], "final": [...], "severities": [{"id": ..., "meaning": ...}], "close_reasons": [...]}`, err, "invalid workflow %s", o.workflow)
		}
	}
	for _, lang := range pageLanguages {
		if t := *o.titles[lang]; t != "" {
			if m.Titles == nil {
				m.Titles = map[string]string{}
			}
			m.Titles[lang] = t
		}
		if d := *o.descriptions[lang]; d != "" {
			if m.Descriptions == nil {
				m.Descriptions = map[string]string{}
			}
			m.Descriptions[lang] = d
		}
	}
	if m.Serial == 0 {
		m.Serial = uint64(time.Now().Unix())
	}
	var names []string
	for _, path := range o.handlers {
		b, err := os.ReadFile(path)
		if err != nil {
			return fail(ExitError, "check the --handler path", err, "cannot read card %s", path)
		}
		c, err := crypto.ParseCard(string(b))
		if err != nil {
			return fail(ExitTrust, "ask the handler for their card again, made with 'amana card'", err, "%s is not a valid card", path)
		}
		m.Handlers = append(m.Handlers, c.String())
		names = append(names, c.Name)
	}
	categories := o.categories
	if o.template != "" {
		p, err := loadPack(o.template)
		if err != nil {
			return err
		}
		workflow := m.Workflow
		if categories, err = applyTemplate(e, o, p, m, names); err != nil {
			return err
		}
		if o.workflow != "" { // --workflow replaces the pack's; --form is read below
			m.Workflow = workflow
		}
	}
	titles := map[string]string{}
	labels := map[string]map[string]string{}
	for _, t := range o.categoryTitles {
		key, title, ok := strings.Cut(t, "=")
		id, lang, translated := strings.Cut(key, ":")
		if !ok || title == "" || translated && lang == "" {
			return fail(ExitUsage, "write --category-title ID=TITLE, or ID:LANG=TITLE", nil, "invalid --category-title %q", t)
		}
		if !translated {
			titles[id] = title
			continue
		}
		if labels[id] == nil {
			labels[id] = map[string]string{}
		}
		labels[id][lang] = title
	}
	known := map[string]bool{}
	for _, c := range o.categories {
		id, _, _ := strings.Cut(c, "=")
		known[id] = true
	}
	for i := range m.Categories { // a template's
		c := &m.Categories[i]
		known[c.ID] = true
		if t := titles[c.ID]; t != "" {
			c.Title = t
		}
		for lang, t := range labels[c.ID] {
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[lang] = t
		}
	}
	for id := range titles {
		if !known[id] {
			return fail(ExitUsage, "add --category "+id+"=NAME,… or fix the id", nil, "--category-title names no category %q", id)
		}
	}
	for id := range labels {
		if !known[id] {
			return fail(ExitUsage, "add --category "+id+"=NAME,… or fix the id", nil, "--category-title names no category %q", id)
		}
	}
	for _, c := range categories {
		id, names, ok := strings.Cut(c, "=")
		if !ok || names == "" {
			return fail(ExitUsage, "write --category ID=NAME,NAME", nil, "invalid --category %q", c)
		}
		title := titles[id]
		if title == "" {
			title = id
		}
		m.Categories = append(m.Categories, crypto.Category{ID: id, Title: title, Handlers: strings.Split(names, ","), Labels: labels[id]})
	}
	if o.form != "" {
		b, err := os.ReadFile(o.form)
		if err != nil {
			return fail(ExitError, "check the --form path", err, "cannot read the form")
		}
		m.Form = &crypto.Form{}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(m.Form); err != nil {
			return fail(ExitUsage, `write the form as {"fields": [{"id": ..., "type": ..., "label": {"en": ...}}, ...]}`, err, "invalid form %s", o.form)
		}
	}
	var err error
	if m.Limits.MaxSubmissionBytes, err = ui.ParseSize(o.maxSize); err != nil || m.Limits.MaxSubmissionBytes == 0 {
		return fail(ExitUsage, "use a size like 500MiB or 2GiB", err, "invalid --max-size")
	}
	if o.deleteAfterAck != "" {
		d, err := ui.ParseDuration(o.deleteAfterAck)
		if err != nil || d < time.Hour {
			return fail(ExitUsage, "use a duration of at least 1h, like 72h or 7d", err, "invalid --delete-after-ack")
		}
		m.Retention.DeleteAfterAckHours, m.Retention.AfterFirstAck = int(d/time.Hour), true
	}
	k, err := ui.ParseDuration(o.keepUnacked)
	if err != nil || k < 24*time.Hour {
		return fail(ExitUsage, "use a duration of at least 1d, like 90d", err, "invalid --keep-unacked")
	}
	m.Retention.KeepUnackedDays = int(k / (24 * time.Hour))
	id, err := e.loadIdentity(o.identity)
	if err != nil {
		return err
	}
	env, err := crypto.SignManifest(m, id.SigningKey())
	if err != nil {
		return fail(ExitUsage, "fix the manifest as the message says", err, "invalid desk")
	}
	if err := writeNew(o.out, env); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote desk %q serial %d with %d handlers to %s\n", m.Desk, m.Serial, len(m.Handlers), o.out)
	fmt.Fprintf(e.stderr, "desk fingerprint: %s\n", crypto.KeyFingerprint(id.Card().SignKey))
	return nil
}

type deskShowOptions struct {
	fingerprint string
	json        bool
}

func newDeskShow(e *env) *cobra.Command {
	var o deskShowOptions
	cmd := &cobra.Command{
		Use:   "show desk.json",
		Short: "verify a signed desk manifest and print it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fail(ExitError, "check the path", err, "cannot read %s", args[0])
			}
			m, key, err := crypto.OpenManifest(b, nil)
			if err != nil {
				return fail(ExitTrust, "the file is damaged or was not made by 'amana desk create'", err, "%s does not verify", args[0])
			}
			fp := crypto.KeyFingerprint(key)
			if o.fingerprint != "" && !sameFingerprint(o.fingerprint, fp) {
				return fail(ExitTrust, "this manifest was signed by another key than the one you expect", nil, "desk fingerprint mismatch: got %s", fp)
			}
			if o.json {
				return writeJSON(e.stdout, deskToJSON(m, fp))
			}
			printDesk(e, m, fp)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.fingerprint, "desk-fingerprint", "", "fail unless the manifest is signed by the key with this fingerprint")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the verified manifest as JSON (docs/cli.md)")
	return cmd
}

func printDesk(e *env, m *crypto.Manifest, fp string) {
	w := e.stdout
	fmt.Fprintf(w, "desk:        %s\n", m.Desk)
	fmt.Fprintf(w, "title:       %s\n", clean(m.Title, false))
	if m.Language != "" {
		fmt.Fprintf(w, "language:    %s\n", m.Language)
	}
	for _, lang := range slices.Sorted(maps.Keys(m.Titles)) {
		fmt.Fprintf(w, "title (%s): %s\n", lang, clean(m.Titles[lang], false))
	}
	if m.Description != "" {
		fmt.Fprintf(w, "description: %s\n", clean(m.Description, false))
	}
	for _, lang := range slices.Sorted(maps.Keys(m.Descriptions)) {
		fmt.Fprintf(w, "description (%s): %s\n", lang, clean(m.Descriptions[lang], false))
	}
	fmt.Fprintf(w, "serial:      %d\n", m.Serial)
	fmt.Fprintf(w, "fingerprint: %s\n", fp)
	fmt.Fprintf(w, "max size:    %s\n", ui.Size(m.Limits.MaxSubmissionBytes))
	fmt.Fprintf(w, "retention:   %s\n", retentionText(m.Retention))
	fmt.Fprintf(w, "handlers:\n")
	for _, c := range m.Cards() {
		pq := "post-quantum"
		if !c.PostQuantum() {
			pq = "classic"
		}
		fmt.Fprintf(w, "  %-16s %s  (%s)\n", c.Name, c.Fingerprint(), pq)
	}
	if len(m.Categories) > 0 {
		fmt.Fprintf(w, "categories:\n")
		for _, c := range m.Categories {
			only := ""
			if m.Restricted(c.ID) {
				only = " only"
			}
			fmt.Fprintf(w, "  %-16s %s -> %s%s\n", c.ID, clean(c.Title, false), strings.Join(c.Handlers, ", "), only)
			for _, lang := range slices.Sorted(maps.Keys(c.Labels)) {
				fmt.Fprintf(w, "  %-16s (%s) %s\n", "", lang, clean(c.Labels[lang], false))
			}
		}
		if m.DefaultRoute != "" {
			fmt.Fprintf(w, "no category: as %s -> %s\n", m.DefaultRoute, strings.Join(routeNames(m, ""), ", "))
		} else {
			fmt.Fprintf(w, "no category: every handler\n")
		}
	}
	if len(m.Coordinators) > 0 {
		fmt.Fprintf(w, "coordinators: %s (every case's facts, not its content)\n", strings.Join(m.Coordinators, ", "))
	}
	wf := m.Flow()
	own := " (the default)"
	if m.Workflow != nil {
		own = ""
	}
	fmt.Fprintf(w, "workflow%s:\n", own)
	fmt.Fprintf(w, "  statuses:      %s\n", strings.Join(cleanAll(wf.Statuses), ", "))
	fmt.Fprintf(w, "  final:         %s\n", strings.Join(cleanAll(wf.Final), ", "))
	fmt.Fprintf(w, "  severities:\n")
	for _, sv := range wf.Severities {
		fmt.Fprintf(w, "    %-12s %s\n", clean(sv.ID, false), clean(sv.Meaning, false))
		if t := wf.TargetsFor(sv.ID); !t.IsZero() {
			fmt.Fprintf(w, "    %-12s targets: acknowledge %s, first response %s, update %s, resolve %s\n", "",
				minutes(t.Acknowledge), minutes(t.FirstResponse), minutes(t.Update), minutes(t.Resolve))
		}
	}
	fmt.Fprintf(w, "  close reasons: %s\n", strings.Join(cleanAll(wf.CloseReasons), ", "))
	if len(wf.Tags) > 0 {
		fmt.Fprintf(w, "  tags:          %s\n", strings.Join(cleanAll(wf.Tags), ", "))
	}
	if len(wf.Paused) > 0 {
		fmt.Fprintf(w, "  clocks paused: %s\n", strings.Join(cleanAll(wf.Paused), ", "))
	}
	if len(wf.Escalation) > 0 {
		fmt.Fprintf(w, "  escalation:\n")
		for _, st := range wf.Escalation {
			only := ""
			if len(st.Severities) > 0 {
				only = " (" + strings.Join(cleanAll(st.Severities), ", ") + ")"
			}
			label := ""
			if st.Label != "" {
				label = ": " + clean(st.Label, false)
			}
			fmt.Fprintf(w, "    after %s unless %s%s -> %s%s\n", minutes(st.AfterMinutes), strings.ReplaceAll(st.Unless, "_", " "), only,
				strings.Join(cleanAll(st.Notify), ", "), label)
		}
	}
}

// routeNames are the names of the handlers a report in category goes to.
func routeNames(m *crypto.Manifest, category string) []string {
	cards, _ := m.Route(category)
	names := make([]string, len(cards))
	for i, c := range cards {
		names[i] = c.Name
	}
	return names
}

func sameFingerprint(a, b string) bool {
	norm := func(s string) string { return strings.Join(strings.Fields(s), "") }
	return norm(a) == norm(b)
}

type deskPublishOptions struct {
	relay    string
	identity string
	json     bool
}

func newDeskPublish(e *env) *cobra.Command {
	var o deskPublishOptions
	cmd := &cobra.Command{
		Use:   "publish desk.json --relay URL -i ADMINKEY",
		Short: "publish a signed desk manifest to a relay",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fail(ExitError, "check the path", err, "cannot read %s", args[0])
			}
			m, signer, err := crypto.OpenManifest(b, nil)
			if err != nil {
				return fail(ExitTrust, "make the manifest again with 'amana desk create'", err, "%s does not verify", args[0])
			}
			id, err := e.loadIdentity(o.identity)
			if err != nil {
				return err
			}
			c, done, err := e.relayClient(o.relay, id)
			if err != nil {
				return err
			}
			defer done()
			c.Key = id.SigningKey()
			info, err := c.Publish(e.ctx, m.Desk, b)
			if err != nil {
				return publishRefused(err, args[0], m, signer, id)
			}
			if o.json {
				if err := writeJSON(e.stdout, publishJSON(info)); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stderr, "published desk %q serial %d\n", info.Desk, info.Serial)
			if ex := info.Exposure; ex != nil && ex.Submissions+ex.Mailboxes > 0 {
				fmt.Fprintf(e.stderr, "warning: this manifest removes %d handler key(s), and the relay holds %d waiting submission(s) encrypted to them"+
					" (%d to them only, which no handler of this manifest can open) and %d conversation(s) whose follow-ups are encrypted to them\n",
					ex.RemovedKeys, ex.Submissions, ex.Orphaned, ex.Mailboxes)
				fmt.Fprintf(e.stderr, "hint: whoever holds a removed key opens these, given the ciphertext; if a key was lost or seized, follow \"A lost or seized handler laptop\" in docs/operator.md\n")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.relay, "relay", "", "relay URL (required)")
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "the desk admin's identity file (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the relay's answer as JSON on standard output (docs/cli.md)")
	cmd.MarkFlagRequired("relay")
	cmd.MarkFlagRequired("identity")
	return cmd
}
