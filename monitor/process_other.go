//go:build !unix

package monitor

import "os/exec"

// setProcessGroup does nothing where process groups do not exist.
func setProcessGroup(*exec.Cmd) {}

// terminate stops the command; without signals it is killed.
func terminate(cmd *exec.Cmd) { kill(cmd) }

// kill stops the command at once.
func kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
