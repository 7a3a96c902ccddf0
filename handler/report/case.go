package report

import (
	"time"

	"github.com/amana-relay/amana/handler/journal"
)

// Channels a report can have arrived by.
const (
	// ChannelCLI: sealed on the submitter's own device by the amana CLI
	// (report.json's client "cli").
	ChannelCLI = "cli"
	// ChannelBrowser: sealed on the submitter's own device by the desk
	// page with JavaScript (client "browser").
	ChannelBrowser = "browser"
	// ChannelClient: sealed on the submitter's own device by a client
	// older than the client member (sealed_by "client" and no client): the
	// CLI or the page with JavaScript, not saying which.
	ChannelClient = "client"
	// ChannelNoJS: sealed by the relay for a browser without JavaScript
	// (sealed_by "server").
	ChannelNoJS = "no-js"
	// ChannelSelf: a file the submitter encrypted with age themselves.
	ChannelSelf = "self"
	// ChannelUnknown: the report is not readable here (a coordinator
	// following a restricted case by its facts).
	ChannelUnknown = "unknown"
)

// Case is what the figures use of one case: IDs, categories and vocabulary
// words of the desk's manifest, and times. It holds no identifier and no
// text anyone typed.
type Case struct {
	Category, Severity, Status, Channel string
	CloseReason                         string
	Received                            time.Time // the hour the relay received it
	// The first time each was reached; zero when it was not.
	Acknowledged, FirstResponse, Resolved time.Time
	Final                                 bool // the status is one of the workflow's final ones
	Reopened                              int
	Referred, ReferralConsent             bool
	ReferralOutcome                       bool // an outcome is recorded (its text is never read)
	FactsOnly                             bool
	// Whether each step was reached within the desk's target for the
	// case's severity, as handler/sla's clocks say (pauses counted); nil
	// when there is no target for that step or it is not yet decided.
	AcknowledgeMet, FirstResponseMet, ResolveMet *bool
	// Satisfaction is the score (1 to 5) of the submitter's latest survey
	// answer; 0: none. The comment is never read.
	Satisfaction int
	// Escalated are the desk's escalation steps the case reached (their
	// time passed without their milestone), as handler/sla counts.
	Escalated []EscalationStep
}

// EscalationStep names one escalation step of a desk's workflow by what
// people see of it: its label, its time and the milestone it waits for.
type EscalationStep struct {
	Label        string
	AfterMinutes int
	Unless       string
}

// FromState is the Case of a journal state. received is used when the state
// has no Received hour (the case store's); final says whether a status is
// final in the case's workflow. The state's notes, tags, replies, referral
// text and identifiers are not read.
func FromState(s *journal.State, received, channel string, final func(status string) bool) Case {
	c := Case{Channel: channel}
	if s == nil {
		c.Received = parseTime(received)
		return c
	}
	if s.Received != "" {
		received = s.Received
	}
	c.Category, c.Severity, c.Status, c.CloseReason = s.Category, s.Severity, s.Status, s.CloseReason
	c.Received = parseTime(received)
	c.Acknowledged = parseTime(s.Acknowledged)
	c.FirstResponse = parseTime(s.FirstResponse)
	c.Resolved = parseTime(s.Resolved)
	c.Reopened = s.Reopened
	c.FactsOnly = s.FactsOnly
	c.Satisfaction = s.Satisfaction
	if final != nil && s.Status != "" {
		c.Final = final(s.Status)
	}
	if s.Referral != nil {
		c.Referred = true
		c.ReferralConsent = s.Referral.Consent
		c.ReferralOutcome = s.Referral.Outcome != ""
	}
	return c
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// hoursTo is the whole hours from the case's arrival to t, and whether t
// was reached.
func (c *Case) hoursTo(t time.Time) (int, bool) {
	if t.IsZero() || c.Received.IsZero() {
		return 0, false
	}
	d := t.Sub(c.Received)
	if d < 0 {
		d = 0
	}
	return int(d / time.Hour), true
}
