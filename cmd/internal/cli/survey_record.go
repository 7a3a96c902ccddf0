package cli

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/relay/api"
	"github.com/amana-relay/amana/relay/client"
)

// surveyAnswer is a survey follow-up pulled now, opened in memory.
type surveyAnswer struct {
	id     string
	listed string // the mailbox the relay filed it under
	r      *crypto.Report
	score  int
}

// recordSurveys records, for each follow-up pulled now that is a valid
// survey answer the desk asked for, its score on the report of its thread
// (the comment stays in the follow-up), in the thread's order, so that of
// two answers pulled together the later one written is the case's. An
// answer counts only when its own sealed mailbox and desk are its
// report's (never the relay's filing alone), and when the thread, as this
// case store holds it, has a status message a handler of the desk signed
// that asked the question before the answer was written (a lower seq) and
// that no later status message took back. Anything else is said, and not
// recorded; the pull goes on.
func (e *env) recordSurveys(c *client.Client, st *cases.Store, j *journal.Journal, id *crypto.Identity, relay string, pulled []string) {
	var answers []surveyAnswer
	for _, fid := range pulled {
		m, err := st.Meta(fid)
		if err != nil || m.Kind != api.KindFollowup {
			continue
		}
		hc, err := handler.Open(st, fid, id.Age())
		if err != nil {
			continue
		}
		var a surveyAnswer
		if hc.Bundle != nil {
			a = surveyAnswer{id: fid, listed: m.Mailbox, r: hc.Bundle.Report()}
			a.score, _, err = crypto.ParseSurvey(a.r)
		}
		hc.Close()
		if hc.Bundle == nil || err != nil {
			continue
		}
		answers = append(answers, a)
	}
	if len(answers) == 0 {
		return
	}
	slices.SortStableFunc(answers, func(a, b surveyAnswer) int {
		return cmp.Or(cmp.Compare(a.r.Seq, b.r.Seq), cmp.Compare(a.r.Submitted, b.r.Submitted), cmp.Compare(a.id, b.id))
	})
	all, err := st.List()
	if err != nil {
		return
	}
	t := e.syncTrust(st, relay)
	for _, a := range answers {
		rep, why := surveyCase(st, id, t, all, &a)
		if rep == nil {
			fmt.Fprintf(e.stderr, "amana: note: a survey answer (%d/5) is not recorded: %s\n", a.score, why)
			continue
		}
		ev, err := j.Record(e.ctx, c, t, rep.ID, crypto.Change{Satisfaction: &crypto.Satisfaction{Score: a.score, Followup: a.id}})
		switch {
		case err != nil && ev != nil:
			fmt.Fprintf(e.stderr, "case %s: the submitter answered the survey: %d/5 (recorded, not yet sent to the other handlers; 'amana sync' sends it)\n", rep.ID[:12], a.score)
		case err != nil:
			fmt.Fprintf(e.stderr, "amana: note: case %s: the submitter's survey answer (%d/5) is not recorded (%s)\n", rep.ID[:12], a.score, clean(err.Error(), false))
		default:
			fmt.Fprintf(e.stderr, "case %s: the submitter answered the survey: %d/5\n", rep.ID[:12], a.score)
		}
	}
}

// surveyCase is the report case a survey answer counts for, or nil and
// why it counts for none.
func surveyCase(st *cases.Store, id *crypto.Identity, t *deskTrust, all []*cases.Meta, a *surveyAnswer) (*cases.Meta, string) {
	mailbox, desk := a.r.Mailbox, a.r.Desk
	if mailbox == "" || mailbox != a.listed {
		return nil, "the relay filed it under another conversation than the one it was written for"
	}
	rep := handler.ThreadOf(all, mailbox)
	if rep == nil {
		return nil, "it answers for a report not in this case store"
	}
	hc, err := handler.Open(st, rep.ID, id.Age())
	if err != nil {
		return nil, "its report does not open with this key"
	}
	var own *crypto.Report
	if hc.Bundle != nil {
		own = hc.Bundle.Report()
	}
	hc.Close()
	if own == nil || own.Mailbox != mailbox || own.Desk != desk || rep.Desk != desk {
		return nil, fmt.Sprintf("it names another conversation or desk than case %s", rep.ID[:12])
	}
	man, err := t.Manifest(desk)
	if err != nil {
		return nil, fmt.Sprintf("no verified manifest of desk %q here to check who asked ('amana pull' keeps one)", clean(desk, false))
	}
	items, err := handler.Thread(st, mailbox, id.Age())
	if err != nil {
		return nil, "the case's thread cannot be read"
	}
	// The latest status message before the answer decides, as the
	// submitter's pages show it (SortThread: by seq, then hour).
	var last *crypto.Report
	for _, it := range items {
		r := it.Report
		if it.Meta.Kind != api.KindReply || r == nil || r.Kind != crypto.KindStatus || r.Seq >= a.r.Seq {
			continue
		}
		if r.Mailbox != mailbox || r.Desk != desk {
			continue
		}
		if _, err := crypto.VerifyReply(r, man.Cards()); err != nil {
			continue
		}
		last = r
	}
	switch {
	case last == nil:
		return nil, fmt.Sprintf("case %s: no status message of the desk asked how satisfied the submitter is before it was written", rep.ID[:12])
	case !last.Survey:
		return nil, fmt.Sprintf("case %s: the desk's latest status message before it did not ask (the case was reopened)", rep.ID[:12])
	}
	return rep, ""
}
