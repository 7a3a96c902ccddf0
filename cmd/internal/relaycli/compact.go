package relaycli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/store"
)

func newCompact(e *env) *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "compact --data DIR",
		Short: "rewrite the spool without the space deleted submissions left",
		Long: `Rewrite the spool into a fresh file and replace the old one. bbolt reuses the pages
of deleted submissions but does not shrink its file or wipe them; compaction drops
them from the new file. The old file's blocks go back to the filesystem, which may
keep them on the disk until they are reused: see docs/threat-model.md.

Stop the relay first: compaction is offline. The relay is down for as long as the
copy of the live data takes (measured: 2.4 s for 240 MiB of submissions left in a
497 MiB file; the deleted part costs nothing), and submitters get the onion's "not
reachable" meanwhile. 'amana-relay doctor' says when it would pay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needExisting(data); err != nil {
				return err
			}
			before, after, err := store.Compact(data)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "compacted spool: %s -> %s\n", ui.Size(before), ui.Size(after))
			return nil
		},
	}
	dataFlag(cmd, &data)
	return cmd
}
