package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to stop the child (SIGTERM) if this process dies first, so an
// interrupted bench leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
