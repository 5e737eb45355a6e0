//go:build linux

package devenv

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to send sig to the child when this process dies, so a test binary
// killed by a timeout or ^C leaves no server behind.
func dieWithParent(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = sig
}
