package tornet

import "syscall"

// sysProcAttr makes the kernel SIGKILL a started tor when the thread that
// started it dies, so a killed test process leaves no tor behind. (The Go
// runtime ends threads only when a goroutine exits while locked to one, which
// nothing here does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
