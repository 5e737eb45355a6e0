//go:build !linux

package main

import "os/exec"

// dieWithParent is Linux's alone; elsewhere an interrupted bench stops its server on the way out.
func dieWithParent(cmd *exec.Cmd) {}
