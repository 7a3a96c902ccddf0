package onion

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes a launched tor die with this process.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
