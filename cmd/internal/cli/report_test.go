package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/handler/report"
	"github.com/amana-relay/amana/relay/api"
)

// TestChannelOf: the channel comes from the case store's kind and the
// report's own sealed_by, decrypted in memory; a case not held here, one
// sealed to someone else and an odd sealed_by are "unknown".
func TestChannelOf(t *testing.T) {
	me, err := crypto.GenerateIdentity("me", true)
	if err != nil {
		t.Fatal(err)
	}
	other, err := crypto.GenerateIdentity("other", true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cases.Open(filepath.Join(t.TempDir(), "cases"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		sealedBy string
		to       *crypto.Identity
		kind     string
		held     bool
		want     string
	}{
		{"the submitter's device", crypto.SealedByClient, me, "", true, report.ChannelClient},
		{"the no-JavaScript page", crypto.SealedByServer, me, "", true, report.ChannelNoJS},
		{"a self-encrypted file", "", me, api.KindSelf, true, report.ChannelSelf},
		{"facts only", crypto.SealedByClient, me, "", false, report.ChannelUnknown},
		{"sealed to another key", crypto.SealedByServer, other, "", true, report.ChannelUnknown},
		{"an odd sealed_by", "robot", me, "", true, report.ChannelUnknown},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("%032x", i+1)
			if err := os.MkdirAll(filepath.Join(st.Dir(), id), 0o700); err != nil {
				t.Fatal(err)
			}
			rep := &crypto.Report{Desk: "helpdesk", Category: "incident", Submitted: "2026-12-01T09:00:00Z", SealedBy: tt.sealedBy}
			rc, _, err := crypto.SealBundle([]*crypto.Card{tt.to.Card()}, rep, nil)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(st.BundlePath(id), ct, 0o600); err != nil {
				t.Fatal(err)
			}
			r := &caseRow{meta: &cases.Meta{ID: id, Desk: "helpdesk", Kind: tt.kind}, held: tt.held}
			if got := channelOf(st, r, me); got != tt.want {
				t.Errorf("channel %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReportWithinTarget: the report's "within target" comes from the
// clocks of handler/sla, over the case's full history: acknowledged after
// 30 minutes meets a 60-minute target, after two hours misses it, and an
// open case still inside its target is undecided.
func TestReportWithinTarget(t *testing.T) {
	wf := crypto.DefaultWorkflow()
	for i := range wf.Severities {
		wf.Severities[i].Targets = &crypto.Targets{Acknowledge: 60}
	}
	now := time.Date(2026, 12, 1, 10, 50, 0, 0, time.UTC)
	ack := func(at string) *journal.State {
		s := &journal.State{Case: "0123456789abcdef0123456789abcdef", Desk: "d", Received: "2026-12-01T10:00:00Z",
			Severity: wf.Severities[0].ID, Status: wf.Statuses[0]}
		if at != "" {
			s.Status, s.Acknowledged = "acknowledged", at
			s.History = []journal.Entry{{Author: "a", Time: at, Seq: 1, Change: crypto.Change{Status: "acknowledged"}}}
		}
		return s
	}
	yes, no := true, false
	for _, tc := range []struct {
		name string
		s    *journal.State
		now  time.Time
		want *bool
	}{
		{"in time", ack("2026-12-01T10:30:00Z"), now.Add(2 * time.Hour), &yes},
		{"late", ack("2026-12-01T12:00:00Z"), now.Add(2 * time.Hour), &no},
		{"open, past the target", ack(""), now.Add(2 * time.Hour), &no},
		{"open, inside the target", ack(""), now, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &caseRow{meta: &cases.Meta{ID: tc.s.Case, Desk: "d", Received: tc.s.Received}, wf: wf, status: tc.s.Status}
			var c report.Case
			within(&c, wf, r, tc.s, tc.now)
			switch got := c.AcknowledgeMet; {
			case tc.want == nil && got != nil, tc.want != nil && (got == nil || *got != *tc.want):
				t.Errorf("AcknowledgeMet = %v, want %v", fmtBool(got), fmtBool(tc.want))
			}
			if c.ResolveMet != nil || c.FirstResponseMet != nil {
				t.Errorf("steps without a target decided: %v %v", fmtBool(c.FirstResponseMet), fmtBool(c.ResolveMet))
			}
		})
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "undecided"
	}
	return strconv.FormatBool(*b)
}
