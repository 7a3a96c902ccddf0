//go:build !linux

package main

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the bench still stops its relay on every exit it controls.
func setParentDeathSignal(cmd *exec.Cmd) {}
