//go:build !linux

package relayproc

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the harnesses still stop their processes on every exit they control.
func setParentDeathSignal(cmd *exec.Cmd) {}
