package testenv

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the homeserver if the test binary dies (go test timeout,
// panic), so no orphaned Dendrite keeps a port and a data directory busy. (The signal follows
// the starting OS thread; Go only retires threads of goroutines that die locked to them.)
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
