package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// notifier runs the operator's notification command with the number of
// submissions waiting, in its environment (AMANA_WAITING) and on its
// standard input. It is run on a fixed schedule whether or not anything
// waits, so that when it runs says nothing; only its content does.
func notifier(command string, logf func(string, ...any)) func(int) {
	return func(waiting int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, command)
		cmd.Env = append(os.Environ(), "AMANA_WAITING="+strconv.Itoa(waiting))
		cmd.Stdin = strings.NewReader(fmt.Sprintf("%d submission(s) waiting on the relay\n", waiting))
		if err := cmd.Run(); err != nil {
			logf("notify: the notification command failed: %v", err)
		}
	}
}
