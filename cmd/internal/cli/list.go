package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
)

type listOptions struct{ json bool }

func newList(e *env) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "list the cases in the local case store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.cases()
			if err != nil {
				return err
			}
			all, err := st.List()
			if err != nil {
				return err
			}
			if o.json {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if all == nil {
					return enc.Encode([]any{})
				}
				return enc.Encode(all)
			}
			if len(all) == 0 {
				fmt.Fprintln(e.stderr, "no cases yet; run 'amana pull --relay URL -i KEY'")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRECEIVED\tKIND\tDESK\tCATEGORY\tSIZE\tSTATUS")
			for _, m := range all {
				status := "new"
				if m.Opened {
					status = "opened"
				}
				cat := m.Category
				if cat == "" {
					cat = "-"
				}
				kind := clean(m.Kind, false)
				if kind == "" {
					kind = "report"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID[:12], clean(m.Received, false), kind, clean(m.Desk, false), clean(cat, false), ui.Size(m.Size), status)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return cmd
}
