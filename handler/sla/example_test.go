package sla_test

import (
	"fmt"
	"time"

	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/handler/sla"
)

// A high case received at 09:00, acknowledged at 09:40, put to waiting on
// the submitter at 10:00 and opened again at 14:00: at 14:40, 100 minutes
// count, not 340.
func ExampleCheck() {
	wf := crypto.DefaultWorkflow() // paused: waiting
	wf.Severities[1].Targets = &crypto.Targets{Acknowledge: 60, FirstResponse: 120}
	wf.Escalation = []crypto.Escalation{{AfterMinutes: 90, Unless: crypto.UnlessFirstResponse, Notify: []string{"lead"}, Label: "shift leads"}}
	entry := func(t, status string) journal.Entry {
		return journal.Entry{Time: t, Change: crypto.Change{Status: status}}
	}
	s := &journal.State{Case: "0123456789abcdef0123456789abcdef", Severity: "high", Status: "open",
		Received: "2026-12-03T09:00:00Z", Acknowledged: "2026-12-03T09:40:00Z",
		History: []journal.Entry{entry("2026-12-03T09:40:00Z", "acknowledged"), entry("2026-12-03T10:00:00Z", "waiting"), entry("2026-12-03T14:00:00Z", "open")}}
	c, err := sla.Check(wf, s, time.Date(2026, 12, 3, 14, 40, 0, 0, time.UTC), sla.Options{})
	if err != nil {
		panic(err)
	}
	for _, k := range c.Clocks {
		fmt.Printf("%s: %s, %v of %v\n", k.Name, k.State, k.Elapsed, k.Target)
	}
	for _, st := range c.Due {
		fmt.Printf("due: %s, %v ago\n", st.Label, st.Overdue())
	}
	// Output:
	// acknowledge: met, 40m0s of 1h0m0s
	// first_response: soon, 1h40m0s of 2h0m0s
	// due: shift leads, 10m0s ago
}
