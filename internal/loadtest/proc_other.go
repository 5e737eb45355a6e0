//go:build !linux

package loadtest

import (
	"errors"
	"time"
)

// readProc needs Linux's /proc; elsewhere the server's CPU and memory are not measured.
func readProc(pid int) (procStat, error) {
	return procStat{}, errors.New("the server's CPU time and memory are read from /proc, which this system does not have")
}

func readMachineCPU() (time.Duration, error) { return 0, errors.New("no /proc/stat") }

// ensureFiles leaves the open-file limit alone where /proc is missing.
func ensureFiles(n uint64) error { return nil }
