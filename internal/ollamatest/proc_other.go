//go:build !unix

package ollamatest

import (
	"os/exec"
)

func setProcessGroup(*exec.Cmd) {}

func terminate(cmd *exec.Cmd) error {
	return cmd.Process.Kill() // no graceful signal for child processes here
}

func killGroup(*exec.Cmd) {}
