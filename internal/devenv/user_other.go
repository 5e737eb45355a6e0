//go:build !unix

package devenv

import (
	"errors"
	"os/exec"
)

// postgresUser is never reached off Unix, where os.Geteuid returns -1 rather than 0.
func postgresUser() (uid, gid uint32, err error) {
	return 0, 0, errors.New("running PostgreSQL as another user is only supported on Unix")
}

func runAs(cmd *exec.Cmd, uid, gid uint32) {}

func chownTree(dir string, uid, gid uint32) error { return nil }

// processAlive says yes: without a portable check, no directory is taken for abandoned.
func processAlive(pid int) bool { return true }
