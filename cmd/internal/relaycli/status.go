package relaycli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/amana-relay/amana/cmd/internal/ui"
	"github.com/amana-relay/amana/crypto"
	"github.com/amana-relay/amana/relay/daemon"
	"github.com/amana-relay/amana/store"
)

func newStatus(e *env) *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "status --data DIR",
		Short: "say whether the relay is running and summarise its spool",
		Long: `Say whether the relay is running, its onion addresses and tor's state, and
summarise its spool: desks, submissions waiting, unfinished uploads, quota use.

On a running relay the counts are live: status asks the relay through its control
socket (DIR/control.sock), so a desk just published or a report just sent shows at
once. (The Prometheus figures of serve --metrics, unlike these, change once per
--time-granularity.) If the socket does not answer, status shows the counts of the
status file the relay rewrites every 5 seconds, and says so. Run it as the relay's
user (sudo -u amana-relay). On a stopped relay it reads the spool itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needExisting(data); err != nil {
				return err
			}
			sp, err := store.Open(data, nil)
			if errors.Is(err, store.ErrLocked) {
				st, rerr := daemon.ReadStatus(data)
				if rerr != nil {
					fmt.Fprintf(e.stdout, "relay:       running (data directory locked), no status yet\n")
					return nil
				}
				if st.Mode == "tor" {
					fmt.Fprintf(e.stdout, "relay:       running on Tor, pid %d\n", st.PID)
					fmt.Fprintf(e.stdout, "intake:      %s (public; proof of work %s)\n", st.Intake, onOff(st.PoW))
					state := fmt.Sprintf("client authorization: %d key(s)", st.HandlerClients)
					if st.HandlerDown {
						state = "DOWN, being published again; see the relay's log"
					}
					fmt.Fprintf(e.stdout, "handler:     %s (%s)\n", st.Handler, state)
					fmt.Fprintf(e.stdout, "tor:         %s, %s\n", st.TorVersion, st.TorState)
					if st.CircuitIDs {
						fmt.Fprintf(e.stdout, "circuits:    per-circuit limits on (%d circuit(s) seen)\n", st.Circuits)
					} else {
						fmt.Fprintf(e.stdout, "circuits:    per-circuit limits off (tor attached with --tor-control does not export circuit IDs)\n")
					}
				} else {
					fmt.Fprintf(e.stdout, "relay:       running on loopback, pid %d, listening on http://%s\n", st.PID, st.Listen)
				}
				n, how := liveCounts(data, st)
				fmt.Fprintf(e.stdout, "desks:       %d\n", n.Desks)
				fmt.Fprintf(e.stdout, "submissions: %d waiting, %d upload(s) unfinished\n", n.Submissions, n.Uploads)
				fmt.Fprintf(e.stdout, "spool:       %s of %s quota used, file %s\n", ui.Size(n.Committed), ui.Size(n.Quota), ui.Size(n.FileSize))
				fmt.Fprintf(e.stdout, "counts:      %s\n", how)
				fmt.Fprintf(e.stdout, "as of:       %s (the status file, rewritten every 5 seconds)\n", st.Updated)
				return nil
			}
			if err != nil {
				return err
			}
			defer sp.Close()
			fmt.Fprintf(e.stdout, "relay:       not running\n")
			if in, hd := daemon.OnionAddresses(data); in != "" || hd != "" {
				fmt.Fprintf(e.stdout, "intake:      %s (when running)\n", in)
				fmt.Fprintf(e.stdout, "handler:     %s (when running)\n", hd)
			}
			if admin, err := daemon.LoadAdmin(sp, data); err == nil {
				fmt.Fprintf(e.stdout, "admin:       %s, desk fingerprint %s\n", admin.Name, crypto.KeyFingerprint(admin.SignKey))
			} else {
				fmt.Fprintf(e.stdout, "admin:       none pinned (run 'amana-relay init')\n")
			}
			desks, err := sp.Desks()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "desks:       %d\n", len(desks))
			st, err := sp.Stats()
			if err != nil {
				return err
			}
			v, _ := sp.Schema()
			fmt.Fprintf(e.stdout, "submissions: %d waiting, %d upload(s) unfinished\n", st.Submissions, st.Uploads)
			fmt.Fprintf(e.stdout, "spool:       %s committed, file %s, schema %d\n", ui.Size(st.Committed), ui.Size(st.FileSize), v)
			return nil
		},
	}
	dataFlag(cmd, &data)
	return cmd
}

// liveCounts asks the running relay for its counts through the control
// socket, and says where they came from: live, or, when the socket does not
// answer, the status file's, up to 5 seconds old.
func liveCounts(data string, st *daemon.Status) (*daemon.Counts, string) {
	c, err := daemon.DialControl(data)
	if err == nil {
		defer c.Close()
		if n, err := c.Counts(); err == nil {
			return n, "live, from the running relay"
		}
	}
	return &daemon.Counts{Desks: st.Desks, Submissions: st.Submissions, Uploads: st.Uploads, Committed: st.Committed, Quota: st.Quota, FileSize: st.FileSize},
		"from the status file, up to 5 seconds old (the relay's control socket did not answer: run status as the relay's user, on a relay of this version)"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
