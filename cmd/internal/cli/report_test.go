package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/cases"
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
