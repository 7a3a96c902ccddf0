package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/handler"
	"github.com/amana-relay/amana/handler/cases"
	"github.com/amana-relay/amana/handler/journal"
)

type pullOptions struct {
	relays   []string
	identity string
	json     bool
	noSync   bool
	reserve  string
}

func newPull(e *env) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull --relay URL [--relay URL…] -i KEY",
		Short: "download new submissions into the local case store",
		Long: `Download the submissions waiting for you into the case store under --home. Each case
is kept exactly as received, as an age file that 'age -d -i KEY FILE | tar -xi' opens
without amana. A broken download resumes where it stopped. A submission is
acknowledged to the relay only once its local copy is complete, verified against
the relay's SHA-256 and synced to disk. By default the relay keeps a case until
every handler it was routed to has acknowledged it (or the desk's limit for cases
not acknowledged by all passes); a desk may instead have it deleted some hours
after the first. For each case the relay keeps, pull says which other handlers
have yet to fetch it, by their names in the desk's manifest when this machine
trusts it ('amana submit' or 'amana reply' to that relay and desk remembered its
key), else by key fingerprint. That list is the relay's word.

Give --relay once per relay when several relays serve one onion address
(Onionbalance): each has its own spool and its own handler onion. A report stored
on two of them (a client that sent it again after losing the answer) is
downloaded once: a submission whose SHA-256 matches a case already held is only
acknowledged.

After the cases, pull exchanges case changes with the other handlers, as 'amana
sync' does (see there); with --no-sync it fetches cases only. When the desk names
coordinators, pull records for each new case that it reached you, which the
coordinators see without its content. A survey answer among the follow-ups
pulled (a submitter's satisfaction, 1 to 5, with an optional comment) is recorded
on its case as that score: 'amana show' shows it with the comment, reports count
the score, and the comment stays in the follow-up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runPull(e, &o) },
	}
	cmd.Flags().StringArrayVar(&o.relays, "relay", nil, "relay URL, the handler onion (required; repeat for several relays)")
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print what was pulled as JSON on standard output (docs/cli.md)")
	cmd.Flags().BoolVar(&o.noSync, "no-sync", false, "fetch cases only, not the other handlers' case changes")
	cmd.Flags().StringVar(&o.reserve, "reserve", ui.SizeFlag(cases.DefaultReserve), "free space to leave on the case store's disk; a case that would eat into it is not downloaded (0: none)")
	cmd.MarkFlagRequired("relay")
	cmd.MarkFlagRequired("identity")
	return cmd
}

func (e *env) cases() (*cases.Store, error) {
	dir := filepath.Join(e.home, "cases")
	s, err := cases.Open(dir)
	if errors.Is(err, cases.ErrShared) {
		return nil, fail(ExitError, "chmod 700 "+dir, err, "cannot open the case store")
	}
	if err != nil {
		return nil, fail(ExitError, "", err, "cannot open the case store")
	}
	return s, nil
}

func runPull(e *env, o *pullOptions) error {
	id, err := e.loadIdentity(o.identity)
	if err != nil {
		return err
	}
	reserve, err := ui.ParseSize(o.reserve)
	if err != nil || reserve < 0 {
		return fail(ExitUsage, "give a size such as 64MiB, or 0 for none", err, "invalid --reserve %q", o.reserve)
	}
	st, err := e.cases()
	if err != nil {
		return err
	}
	if reserve == 0 {
		reserve = -1
	}
	st.SetReserve(reserve)
	var j *journal.Journal
	if !o.noSync {
		if j, err = e.openJournal(st, id); err != nil {
			return err
		}
	}
	total := &handler.PullResult{}
	synced := &syncTotal{}
	var syncErr error
	var pending []pullWaiting
	for _, relay := range o.relays {
		res, waiting, sr, serr, err := pullOne(e, st, id, j, relay)
		synced.add(sr)
		if serr != nil && syncErr == nil {
			syncErr = serr
			if len(o.relays) > 1 {
				syncErr = fmt.Errorf("%s: %w", clean(relay, false), serr)
			}
		}
		pending = append(pending, waiting...)
		if err != nil {
			if len(o.relays) > 1 {
				return fmt.Errorf("%s: %w", clean(relay, false), err)
			}
			return err
		}
		total.Pulled = append(total.Pulled, res.Pulled...)
		total.Acked += res.Acked
		total.Duplicates += res.Duplicates
		total.Problems = append(total.Problems, res.Problems...)
	}
	res := total
	if o.json {
		var sj *syncJSON
		if j != nil {
			x := synced.toJSON(st, e.syncTrust(st, ""))
			sj = &x
		}
		if err := printPullJSON(e, st.Dir(), res, pending, sj); err != nil {
			return err
		}
	}
	for _, p := range res.Problems {
		if p.ID == "" {
			fmt.Fprintf(e.stderr, "amana: %s\n", clean(p.Err.Error(), false))
			continue
		}
		fmt.Fprintf(e.stderr, "amana: case %s: %s\n", clean(p.ID, false), clean(p.Err.Error(), false))
	}
	fmt.Fprintf(e.stderr, "pulled %d new case(s) into %s", len(res.Pulled), st.Dir())
	if res.Duplicates > 0 {
		fmt.Fprintf(e.stderr, "; %d duplicate(s) of cases already held acknowledged, not downloaded", res.Duplicates)
	}
	if n := len(res.Problems); n > 0 {
		fmt.Fprintf(e.stderr, "; %d problem(s)\n", n)
		if len(res.Pulled) == 0 && res.Acked == 0 {
			return res.Problems[0].Err
		}
		return fail(ExitPartial, "run 'amana pull' again to retry", nil, "%d case(s) had problems", n)
	}
	fmt.Fprintln(e.stderr)
	e.printPending(pending)
	if j != nil {
		if syncErr != nil {
			fmt.Fprintf(e.stderr, "amana: the cases were pulled; exchanging case changes failed\n")
			return syncErr
		}
		if err := e.reportSync(st, id, synced, o.json, false); err != nil {
			return err
		}
	}
	if len(res.Pulled) > 0 {
		fmt.Fprintln(e.stderr, "next: 'amana list', then 'amana show ID -i KEY'")
	}
	return nil
}

// pullOne pulls from one relay into st, and names the other handlers the
// relay keeps the cases for. With a journal, it then records that the new
// cases reached this handler (for a desk with coordinators) and syncs the
// case changes: their result, and the error of the sync alone.
func pullOne(e *env, st *cases.Store, id *crypto.Identity, j *journal.Journal, relay string) (res *handler.PullResult, waiting []pullWaiting, sr *journal.SyncResult, syncErr, err error) {
	c, done, err := e.relayClient(relay, id)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	defer done()
	c.Key = id.SigningKey()
	var bar *progressbar.ProgressBar
	res, err = handler.Pull(e.ctx, c, st, id.Age(), relay, func(total, done int64) {
		if bar == nil && done == 0 {
			bar = e.bar(total, "pulling")
		}
		if bar != nil {
			bar.Set64(done)
		}
	})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return nil, nil, nil, nil, err
	}
	e.keepDesks(c, st, relay, res.Pulled)
	waiting = e.namePending(c, relay, res)
	if j != nil {
		lr := e.refreshDesks(c, st, id, relay)
		e.recordReceived(c, st, j, relay, res.Pulled)
		e.recordSurveys(c, st, j, id, relay, res.Pulled)
		sr, syncErr = j.Sync(e.ctx, lr, e.syncTrust(st, relay))
		if syncErr == nil {
			e.sendStatusMessages(c, st, j, relay)
		}
	}
	return res, waiting, sr, syncErr, nil
}
