package report_test

import (
	"fmt"
	"time"

	"github.com/amana-relay/amana/handler/report"
)

// A week of two categories: seven phishing reports from the submitters'
// devices and two from the no-JavaScript page, six spyware reports from the
// devices. The two are a small cell, and so is the no-JavaScript column's
// total; publishing the phishing row's 7 with its total 9 would give the 2
// away, and the client column's 13 with the 6 would give the 7: those go
// too, the cheapest cycle that hides the small cells.
func ExampleMakeAggregate() {
	monday := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var cs []report.Case
	for i := range 7 {
		cs = append(cs, report.Case{Category: "phishing", Severity: "high", Channel: report.ChannelClient, Received: monday.Add(time.Duration(i) * time.Hour)})
	}
	for i := range 2 {
		cs = append(cs, report.Case{Category: "phishing", Severity: "high", Channel: report.ChannelNoJS, Received: monday.Add(time.Duration(i) * time.Hour)})
	}
	for i := range 6 {
		cs = append(cs, report.Case{Category: "spyware", Severity: "high", Channel: report.ChannelClient, Received: monday.Add(time.Duration(i) * time.Hour)})
	}
	a, err := report.MakeAggregate(cs, report.AggregateOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range a.Rows {
		n := "suppressed"
		if r.Count != nil {
			n = fmt.Sprint(*r.Count)
		}
		fmt.Printf("%s %-14s %-8s %-6s %s\n", r.Start, r.Kind, r.Category, r.Channel, n)
	}
	// Output:
	// 2026-11-02 cell           phishing client suppressed
	// 2026-11-02 cell           phishing no-js  suppressed
	// 2026-11-02 category_total phishing *      9
	// 2026-11-02 cell           spyware  client 6
	// 2026-11-02 cell           spyware  no-js  0
	// 2026-11-02 category_total spyware  *      6
	// 2026-11-02 column_total   *        client suppressed
	// 2026-11-02 column_total   *        no-js  suppressed
	// 2026-11-02 total          *        *      15
}
