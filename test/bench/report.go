package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
	"github.com/amana-relay/amana/handler/report"
)

type reportResult struct {
	Cases         int     `json:"cases"`
	ReportSeconds float64 `json:"report_seconds"`
	ReplaySeconds float64 `json:"replay_seconds"`
	ReportRatio   float64 `json:"report_ratio"`
}

func (r *reportResult) print(out io.Writer) {
	printLine(out, fmt.Sprintf("report and aggregate (%d cases)", r.Cases),
		fmt.Sprintf("report %.2fs  replaying their journal %.2fs  ratio %.2fx (aim <= 1x)", r.ReportSeconds, r.ReplaySeconds, r.ReportRatio))
}

// benchReport times 'amana report' on cfg.journalCases cases (two events
// each): the states from the sealed index, the HTML and CSV report and the
// aggregate (CSV and JSON), against replaying every case's journal from
// disk.
func benchReport(ctx context.Context, cfg *config, dir string) (*reportResult, error) {
	d, err := newDesk(3, cfg.classic, 0)
	if err != nil {
		return nil, err
	}
	st, err := cases.Open(filepath.Join(dir, "report"))
	if err != nil {
		return nil, err
	}
	ids, err := makeCases(st, cfg.journalCases)
	if err != nil {
		return nil, err
	}
	if _, err := writeEvents(ctx, st, d, ids, 2*cfg.journalCases); err != nil {
		return nil, err
	}
	j, err := journal.Open(st, d.Handlers[0])
	if err != nil {
		return nil, err
	}
	tr := benchTrust{d.Manifest}
	if _, err := j.States(tr); err != nil { // builds the index
		return nil, err
	}
	// As in benchJournal: let the index outlive its racy window.
	time.Sleep(3 * time.Second)
	if _, err := j.States(tr); err != nil {
		return nil, err
	}
	wf := d.Manifest.Flow()
	final := func(s string) bool { return slices.Contains(wf.Final, s) }
	start := time.Now()
	states, err := j.States(tr)
	if err != nil {
		return nil, err
	}
	cs := make([]report.Case, 0, len(states))
	for _, s := range states {
		cs = append(cs, report.FromState(s, "", report.ChannelClient, final))
	}
	r := report.Make(cs, report.Options{})
	var b bytes.Buffer
	if err := r.WriteHTML(&b, "en"); err != nil {
		return nil, err
	}
	if err := r.WriteCSV(&b); err != nil {
		return nil, err
	}
	a, err := report.MakeAggregate(cs, report.AggregateOptions{})
	if err != nil {
		return nil, err
	}
	if err := a.WriteCSV(&b); err != nil {
		return nil, err
	}
	if err := a.WriteJSON(&b); err != nil {
		return nil, err
	}
	took := time.Since(start)
	if r.Total != cfg.journalCases {
		return nil, fmt.Errorf("the report counts %d cases of %d", r.Total, cfg.journalCases)
	}
	start = time.Now()
	for _, id := range ids {
		if _, err := j.State(tr, id); err != nil {
			return nil, fmt.Errorf("replaying case %s: %w", id, err)
		}
	}
	replay := time.Since(start)
	return &reportResult{Cases: cfg.journalCases, ReportSeconds: took.Seconds(), ReplaySeconds: replay.Seconds(),
		ReportRatio: ratio(took.Seconds(), replay.Seconds())}, nil
}
