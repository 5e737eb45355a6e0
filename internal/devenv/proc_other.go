//go:build !linux

package devenv

import (
	"os/exec"
	"syscall"
)

// dieWithParent does nothing: only Linux can tie a child's life to its parent's. Elsewhere a
// crashed parent may leave a server running until it is stopped by hand.
func dieWithParent(cmd *exec.Cmd, sig syscall.Signal) {}
