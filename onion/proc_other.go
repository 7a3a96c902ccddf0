//go:build !linux

package onion

import "os/exec"

func setDeathSignal(cmd *exec.Cmd) {}
