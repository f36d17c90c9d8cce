package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// execEnv, when set in the environment, makes the test binary run as the
// llmfence command with these arguments (a JSON array) instead of running
// tests: tests that must signal or kill a whole llmfence process start
// one with llmfenceCommand.
const execEnv = "LLMFENCE_TEST_EXEC_ARGS"

func TestMain(m *testing.M) {
	if raw, ok := os.LookupEnv(execEnv); ok {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			os.Stderr.WriteString("bad " + execEnv + ": " + err.Error() + "\n")
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// llmfenceCommand returns a command running `llmfence args...` in a process
// of its own (this test binary, re-executed).
func llmfenceCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(args)
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), execEnv+"="+string(raw))
	return cmd
}
