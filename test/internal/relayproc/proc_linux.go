package relayproc

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the child if the program that
// started it dies without stopping it, so no relay outlives a killed run.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
