package crypto

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Workflow bounds.
const (
	// MaxWorkflowList bounds the statuses, severities and close reasons of
	// a workflow.
	MaxWorkflowList = 32
	// MaxWorkflowTags bounds a workflow's suggested tags.
	MaxWorkflowTags = 64
	// MaxMeaningLen bounds a severity's meaning, in every language, and an
	// escalation step's label.
	MaxMeaningLen = 200
	// MaxTargetMinutes bounds a response-time target and an escalation
	// step's delay: a year, in minutes.
	MaxTargetMinutes = 525600
)

// Milestones an escalation step waits for (Escalation.Unless).
const (
	// UnlessAcknowledged: the case's status has left the initial one.
	UnlessAcknowledged = "acknowledged"
	// UnlessFirstResponse: the desk has replied to the submitter.
	UnlessFirstResponse = "first_response"
	// UnlessResolved: the case has reached a final status.
	UnlessResolved = "resolved"
)

// Workflow is a desk's case lifecycle: the statuses, severities and close
// reasons its case events may set. A desk that names none uses
// DefaultWorkflow.
type Workflow struct {
	// Statuses a case may have; the first is a new case's status.
	Statuses []string `json:"statuses"`
	// Final are the statuses that end a case; a status outside them after
	// one of them is a reopening. The first status is not final.
	Final []string `json:"final"`
	// Severities, most severe first.
	Severities   []Severity `json:"severities"`
	CloseReasons []string   `json:"close_reasons"`
	// Tags is a suggested vocabulary; events may carry other tags.
	Tags []string `json:"tags,omitempty"`
	// Paused are the statuses during which the response-time clocks
	// stop, such as a case waiting on the submitter. Neither the first
	// status nor a final one.
	Paused []string `json:"paused,omitempty"`
	// Escalation are the steps taken when a case is late: after so many
	// minutes (pauses left out) without a milestone, whom to notify.
	Escalation []Escalation `json:"escalation,omitempty"`
	// SubmitterStatus is what the submitter is told when a case moves to
	// a status: by status name (one of Statuses, at most MaxWorkflowList),
	// a text map by language code of one line of 1 to MaxStatusText
	// bytes. A status without text sends no status message.
	SubmitterStatus map[string]map[string]string `json:"submitter_status,omitempty"`
	// Survey: the status message of a final status asks the submitter
	// the satisfaction question.
	Survey bool `json:"survey,omitempty"`
}

// Targets are a severity's response-time targets, in minutes from the
// case's received hour (Update: since the case's last event). Zero means
// no target; all of them zero is written as no Targets at all.
type Targets struct {
	Acknowledge   int `json:"acknowledge,omitempty"`
	FirstResponse int `json:"first_response,omitempty"`
	Update        int `json:"update,omitempty"`
	Resolve       int `json:"resolve,omitempty"`
}

// IsZero reports whether t sets no target.
func (t Targets) IsZero() bool { return t == Targets{} }

// Escalation is one escalation step: when a case of one of Severities
// (empty: any) has gone AfterMinutes without reaching Unless, the handlers
// named in Notify are told. It is computed on the handler's machine only.
type Escalation struct {
	// AfterMinutes, pauses left out; 1 to MaxTargetMinutes.
	AfterMinutes int `json:"after_minutes"`
	// Unless is UnlessAcknowledged, UnlessFirstResponse or UnlessResolved.
	Unless string `json:"unless"`
	// Severities the step applies to; empty: every severity.
	Severities []string `json:"severities,omitempty"`
	// Notify are handler names of the desk, such as shift leads.
	Notify []string `json:"notify"`
	// Label names the step for people, e.g. "shift leads"; one line.
	Label string `json:"label,omitempty"`
}

// AppliesTo reports whether the step applies to a case of severity.
func (e *Escalation) AppliesTo(severity string) bool {
	return len(e.Severities) == 0 || slices.Contains(e.Severities, severity)
}

// Severity is one step of a desk's severity scale.
type Severity struct {
	ID string `json:"id"`
	// Meaning is a one-line description in the desk's language; Meanings
	// the same in other languages, a text map by language code.
	Meaning  string            `json:"meaning"`
	Meanings map[string]string `json:"meanings,omitempty"`
	// Targets are the response-time targets of a case of this severity;
	// nil: none.
	Targets *Targets `json:"targets,omitempty"`
}

// DefaultWorkflow is the lifecycle of a desk whose manifest names none.
func DefaultWorkflow() Workflow {
	return Workflow{
		Statuses: []string{"new", "acknowledged", "open", "waiting", "escalated", "referred", "resolved", "rejected", "closed"},
		Final:    []string{"resolved", "rejected", "closed"},
		Severities: []Severity{
			{ID: "critical", Meaning: "someone's life, safety or liberty is at risk now: act at once"},
			{ID: "high", Meaning: "serious harm, abuse or exploitation: act within a day"},
			{ID: "medium", Meaning: "harm or misconduct that needs action: act within a week"},
			{ID: "low", Meaning: "a concern, question or feedback with no harm at stake"},
		},
		CloseReasons: []string{"completed", "no-action-possible", "referred", "duplicate", "spam", "out-of-mandate"},
		Paused:       []string{"waiting"},
	}
}

// TargetsFor returns the targets of severity, or no targets for a severity
// without them or unknown to w.
func (w Workflow) TargetsFor(severity string) Targets {
	if i := w.SeverityRank(severity); i >= 0 && w.Severities[i].Targets != nil {
		return *w.Severities[i].Targets
	}
	return Targets{}
}

// IsPaused reports whether the clocks stop while a case has status id.
func (w *Workflow) IsPaused(id string) bool { return slices.Contains(w.Paused, id) }

func checkIDList(what string, ids []string, max int, required bool) (map[string]bool, error) {
	if required && len(ids) == 0 {
		return nil, fmt.Errorf("%s: none given", what)
	}
	if len(ids) > max {
		return nil, fmt.Errorf("%s: more than %d", what, max)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !ValidName(id) || seen[id] {
			return nil, fmt.Errorf("%s: invalid or repeated id %q", what, id)
		}
		seen[id] = true
	}
	return seen, nil
}

func checkMeaning(what, s string) error {
	if len(s) > MaxMeaningLen || strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("%s: one line of at most %d bytes", what, MaxMeaningLen)
	}
	return nil
}

// Validate checks w: ids are names, none repeated, lists non-empty and
// bounded, Final a subset of Statuses without the first one, Paused a
// subset of the others, targets and escalation delays 0 to
// MaxTargetMinutes, escalation steps naming known severities and a known
// milestone. Manifest.Normalize also checks that steps notify handlers of
// the desk.
func (w *Workflow) Validate() error {
	statuses, err := checkIDList("statuses", w.Statuses, MaxWorkflowList, true)
	if err != nil {
		return err
	}
	final, err := checkIDList("final statuses", w.Final, MaxWorkflowList, true)
	if err != nil {
		return err
	}
	for s := range final {
		if !statuses[s] {
			return fmt.Errorf("final status %q is not one of the statuses", s)
		}
	}
	if final[w.Statuses[0]] {
		return fmt.Errorf("the first status %q, a new case's, cannot be final", w.Statuses[0])
	}
	if len(w.Severities) == 0 || len(w.Severities) > MaxWorkflowList {
		return fmt.Errorf("severities: 1 to %d", MaxWorkflowList)
	}
	sev := map[string]bool{}
	for _, s := range w.Severities {
		if !ValidName(s.ID) || sev[s.ID] {
			return fmt.Errorf("severities: invalid or repeated id %q", s.ID)
		}
		sev[s.ID] = true
		what := fmt.Sprintf("severity %q", s.ID)
		if err := checkMeaning(what, s.Meaning); err != nil {
			return err
		}
		if err := checkText(what, s.Meanings, false); err != nil {
			return err
		}
		for lang, t := range s.Meanings {
			if err := checkMeaning(fmt.Sprintf("%s in %q", what, lang), t); err != nil {
				return err
			}
		}
		if err := checkTargets(what, s.Targets); err != nil {
			return err
		}
	}
	if _, err := checkIDList("close reasons", w.CloseReasons, MaxWorkflowList, true); err != nil {
		return err
	}
	if _, err := checkIDList("tags", w.Tags, MaxWorkflowTags, false); err != nil {
		return err
	}
	paused, err := checkIDList("paused statuses", w.Paused, MaxWorkflowList, false)
	if err != nil {
		return err
	}
	for s := range paused {
		switch {
		case !statuses[s]:
			return fmt.Errorf("paused status %q is not one of the statuses", s)
		case final[s]:
			return fmt.Errorf("paused status %q is final: a final status stops the clocks already", s)
		case s == w.Statuses[0]:
			return fmt.Errorf("paused status %q is the first status: a new case's clocks would never start", s)
		}
	}
	if len(w.Escalation) > MaxWorkflowList {
		return fmt.Errorf("escalation: more than %d steps", MaxWorkflowList)
	}
	for i := range w.Escalation {
		if err := w.Escalation[i].check(sev); err != nil {
			return fmt.Errorf("escalation step %d: %w", i+1, err)
		}
	}
	return w.checkSubmitterStatus(statuses)
}

// ErrSubmitterStatus: a workflow's submitter_status or survey breaks a
// rule of §6.2.
var ErrSubmitterStatus = errors.New("invalid submitter status texts")

func (w *Workflow) checkSubmitterStatus(statuses map[string]bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrSubmitterStatus, fmt.Sprintf(format, a...))
	}
	if len(w.SubmitterStatus) > MaxWorkflowList {
		return bad("more than %d statuses", MaxWorkflowList)
	}
	for st, texts := range w.SubmitterStatus {
		if !statuses[st] {
			return bad("%q is not one of the statuses", st)
		}
		if err := checkText(fmt.Sprintf("status %q", st), texts, true); err != nil {
			return bad("%v", err)
		}
		for lang, t := range texts {
			if !validStatusText(t) {
				return bad("status %q in %q: one line of 1 to %d bytes", st, lang, MaxStatusText)
			}
		}
	}
	if w.Survey && !slices.ContainsFunc(w.Final, func(f string) bool { return len(w.SubmitterStatus[f]) > 0 }) {
		return bad("the survey is asked in the status message of a final status, and none has a text")
	}
	return nil
}

// SubmitterText is what the submitter is told of a case moving to status:
// the text in lang, else in deskLang, else "" (no status message is sent).
func (w *Workflow) SubmitterText(status, lang, deskLang string) string {
	texts := w.SubmitterStatus[status]
	if s := texts[lang]; lang != "" && s != "" {
		return s
	}
	if deskLang != "" {
		return texts[deskLang]
	}
	return ""
}

func checkTargets(what string, t *Targets) error {
	if t == nil {
		return nil
	}
	if t.IsZero() {
		return fmt.Errorf("%s: targets sets none: leave the member out", what)
	}
	for _, m := range []int{t.Acknowledge, t.FirstResponse, t.Update, t.Resolve} {
		if m < 0 || m > MaxTargetMinutes {
			return fmt.Errorf("%s: a target is 0 to %d minutes", what, MaxTargetMinutes)
		}
	}
	return nil
}

// check checks e against the workflow's severities; its Notify names are
// checked against the desk's handlers by checkNotify.
func (e *Escalation) check(severities map[string]bool) error {
	if e.AfterMinutes <= 0 || e.AfterMinutes > MaxTargetMinutes {
		return fmt.Errorf("after_minutes is 1 to %d", MaxTargetMinutes)
	}
	switch e.Unless {
	case UnlessAcknowledged, UnlessFirstResponse, UnlessResolved:
	default:
		return fmt.Errorf("unless %q is not %q, %q or %q", e.Unless, UnlessAcknowledged, UnlessFirstResponse, UnlessResolved)
	}
	sev, err := checkIDList("severities", e.Severities, MaxWorkflowList, false)
	if err != nil {
		return err
	}
	for s := range sev {
		if !severities[s] {
			return fmt.Errorf("severity %q is not one of the workflow's", s)
		}
	}
	if _, err := checkIDList("notify", e.Notify, MaxHandlers, true); err != nil {
		return err
	}
	return checkMeaning("label", e.Label)
}

// checkNotify checks that every escalation step notifies handlers of the
// desk, whose names are names.
func (w *Workflow) checkNotify(names map[string]bool) error {
	for i, e := range w.Escalation {
		for _, n := range e.Notify {
			if !names[n] {
				return fmt.Errorf("escalation step %d notifies %q, not a handler of the desk", i+1, n)
			}
		}
	}
	return nil
}

// IsStatus reports whether id is one of w's statuses.
func (w *Workflow) IsStatus(id string) bool { return slices.Contains(w.Statuses, id) }

// IsFinal reports whether status id ends a case.
func (w *Workflow) IsFinal(id string) bool { return slices.Contains(w.Final, id) }

// IsSeverity reports whether id is one of w's severities.
func (w *Workflow) IsSeverity(id string) bool { return w.SeverityRank(id) >= 0 }

// SeverityRank is id's place on the scale, 0 the most severe, or -1.
func (w *Workflow) SeverityRank(id string) int {
	return slices.IndexFunc(w.Severities, func(s Severity) bool { return s.ID == id })
}

// IsCloseReason reports whether id is one of w's close reasons.
func (w *Workflow) IsCloseReason(id string) bool { return slices.Contains(w.CloseReasons, id) }

// ErrChangeWorkflow: a change names a status, severity or close reason the
// desk's workflow does not have, or a close reason without a final status.
var ErrChangeWorkflow = errors.New("change does not fit the desk's workflow")

// CheckChange reports whether c fits w: known status, severity and close
// reason, and a close reason only with a final status.
func (w *Workflow) CheckChange(c *Change) error {
	switch {
	case c.Status != "" && !w.IsStatus(c.Status):
		return fmt.Errorf("%w: unknown status %q", ErrChangeWorkflow, c.Status)
	case c.Severity != "" && !w.IsSeverity(c.Severity):
		return fmt.Errorf("%w: unknown severity %q", ErrChangeWorkflow, c.Severity)
	case c.CloseReason != "" && !w.IsCloseReason(c.CloseReason):
		return fmt.Errorf("%w: unknown close reason %q", ErrChangeWorkflow, c.CloseReason)
	case c.CloseReason != "" && !w.IsFinal(c.Status):
		return fmt.Errorf("%w: a close reason comes with a final status", ErrChangeWorkflow)
	}
	return nil
}

// Flow is the desk's workflow: its own, or DefaultWorkflow.
func (m *Manifest) Flow() Workflow {
	if m.Workflow == nil {
		return DefaultWorkflow()
	}
	// A copy: callers sort and append, and the manifest is shared.
	w := *m.Workflow
	w.Statuses = slices.Clone(w.Statuses)
	w.Final = slices.Clone(w.Final)
	w.CloseReasons = slices.Clone(w.CloseReasons)
	w.Tags = slices.Clone(w.Tags)
	w.Severities = slices.Clone(w.Severities)
	for i := range w.Severities {
		w.Severities[i].Meanings = maps.Clone(w.Severities[i].Meanings)
		if t := w.Severities[i].Targets; t != nil {
			c := *t
			w.Severities[i].Targets = &c
		}
	}
	w.Paused = slices.Clone(w.Paused)
	if w.SubmitterStatus != nil {
		w.SubmitterStatus = make(map[string]map[string]string, len(m.Workflow.SubmitterStatus))
		for k, v := range m.Workflow.SubmitterStatus {
			w.SubmitterStatus[k] = maps.Clone(v)
		}
	}
	w.Escalation = slices.Clone(w.Escalation)
	for i := range w.Escalation {
		w.Escalation[i].Severities = slices.Clone(w.Escalation[i].Severities)
		w.Escalation[i].Notify = slices.Clone(w.Escalation[i].Notify)
	}
	return w
}

// CoordinatorCards returns the coordinators' cards, in the order of the
// manifest's handlers; nil when the desk has none.
func (m *Manifest) CoordinatorCards() []*Card { return m.coords }

// IsCoordinator reports whether keyID is a coordinator's key ID.
func (m *Manifest) IsCoordinator(keyID string) bool {
	return slices.ContainsFunc(m.coords, func(c *Card) bool { return c.KeyID() == keyID })
}

func (m *Manifest) checkCoordinators(names map[string]bool) error {
	m.coords = nil
	if len(m.Coordinators) == 0 {
		return nil
	}
	if m.DefaultRoute == "" {
		return ErrCoordinatorsNeedRoute
	}
	want := map[string]bool{}
	for _, n := range m.Coordinators {
		if !names[n] {
			return fmt.Errorf("coordinator %q is not a handler of the desk", n)
		}
		if want[n] {
			return fmt.Errorf("coordinator %q appears twice", n)
		}
		want[n] = true
	}
	for _, c := range m.cards {
		if want[c.Name] {
			m.coords = append(m.coords, c)
		}
	}
	return nil
}
