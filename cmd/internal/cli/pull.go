package cli

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/amana-relay/amana/relay/client"
	"github.com/amana-relay/amana/store/cases"
	"github.com/spf13/cobra"
)

type pullOptions struct {
	relay    string
	identity string
}

func newPull(e *env) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull --relay URL -i KEY",
		Short: "download new submissions into the local case store",
		Long: `Download the submissions waiting for you into the case store under --home. Each case
is kept exactly as received, as an age file that 'age -d -i KEY | tar -x' opens
without amana. A broken download resumes where it stopped. A submission is
acknowledged to the relay only once its local copy is complete, verified against
the relay's SHA-256 and synced to disk; the relay deletes it when every handler it
was routed to has acknowledged it, or some time after the first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runPull(e, &o) },
	}
	cmd.Flags().StringVar(&o.relay, "relay", "", "relay URL (required)")
	cmd.Flags().StringVarP(&o.identity, "identity", "i", "", "your identity file (required)")
	cmd.MarkFlagRequired("relay")
	cmd.MarkFlagRequired("identity")
	return cmd
}

func (e *env) cases() (*cases.Store, error) {
	s, err := cases.Open(filepath.Join(e.home, "cases"))
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
	c, err := client.New(o.relay, nil)
	if err != nil {
		return fail(ExitUsage, "give --relay http://HOST:PORT", err, "invalid relay URL")
	}
	c.Key = id.SigningKey()
	st, err := e.cases()
	if err != nil {
		return err
	}
	items, err := c.Inbox(e.ctx)
	if err != nil {
		return err
	}
	var total int64
	for _, it := range items {
		total += it.Size
	}
	bar := e.bar(total, "pulling")
	var done int64
	var pulled, failed int
	var firstErr error
	for _, it := range items {
		m := cases.Meta{ID: it.ID, Relay: o.relay, Desk: it.Desk, Category: it.Category, Size: it.Size, SHA256: it.SHA256, Received: it.Received}
		if !st.Has(it.ID) {
			base := done
			err := st.Receive(m, func(off int64, w io.Writer) error {
				if bar != nil {
					w = &barWriter{w: w, set: bar.Set64, n: base + off}
				}
				_, err := c.Download(e.ctx, it.ID, off, w)
				return err
			})
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				fmt.Fprintf(e.stderr, "amana: case %s: %v\n", it.ID, err)
				continue
			}
			pulled++
		} else if prev, err := st.Meta(it.ID); err == nil {
			m = *prev
		}
		done += it.Size
		if _, err := c.Ack(e.ctx, it.ID); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			fmt.Fprintf(e.stderr, "amana: case %s is stored, but the acknowledgement failed (it will be sent on the next pull): %v\n", it.ID, err)
			continue
		}
		m.Acked = true
		if err := st.SaveMeta(&m); err != nil {
			return fail(ExitError, "", err, "cannot update case %s", it.ID)
		}
	}
	if bar != nil {
		bar.Finish()
	}
	fmt.Fprintf(e.stderr, "pulled %d new case(s) into %s", pulled, st.Dir())
	if failed > 0 {
		fmt.Fprintf(e.stderr, "; %d failed\n", failed)
		if pulled == 0 && len(items) == failed {
			return firstErr
		}
		return fail(ExitPartial, "run 'amana pull' again to retry the failed ones", nil, "%d of %d case(s) failed", failed, len(items))
	}
	fmt.Fprintln(e.stderr)
	if pulled > 0 {
		fmt.Fprintln(e.stderr, "next: 'amana list', then 'amana show ID -i KEY'")
	}
	return nil
}

// barWriter moves a progress bar as bytes are written.
type barWriter struct {
	w   io.Writer
	set func(int64) error
	n   int64
}

func (b *barWriter) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	b.n += int64(n)
	b.set(b.n)
	return n, err
}
