//go:build !linux

package tornet

import "syscall"

// sysProcAttr has nothing to add outside Linux; there tor's
// __OwningControllerProcess option alone ends orphaned tors, within about
// 15 seconds.
func sysProcAttr() *syscall.SysProcAttr { return nil }
