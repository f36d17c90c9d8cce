package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/vulndb"
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
		os.Args = append([]string{"llmfence"}, args...) // what a run records as its command line
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// Scans judge with the vulnerability data: tests use the embedded
	// data, never what the user imported ($LLMFENCE_VULNDB or the data
	// directory), and no store lands in the user's data directory.
	tmp, err := os.MkdirTemp("", "llmfence-cmd-test-")
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	os.Setenv(vulndb.EnvFile, filepath.Join(tmp, "vulndb.json"))
	os.Setenv("XDG_DATA_HOME", tmp)
	os.Unsetenv(store.EnvDB)
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
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

// guardProc is `llmfence guard` running in a process of its own.
type guardProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed when the process has exited
	base   string        // client side, http://listen
	killed bool
}

// kill ends the process with SIGKILL (no shutdown) and waits for it.
func (p *guardProc) kill() {
	p.killed = true
	p.cmd.Process.Kill()
	<-p.exited
}

// startGuardProc runs `llmfence args...`, a guard serving on listen with
// its metrics on metrics, as a separate process. It returns once /readyz
// answers 200 and ready (if not nil) accepts the log so far. When the test
// ends the process gets SIGTERM and must exit with status 0 (unless the
// test killed it).
func startGuardProc(t *testing.T, listen, metrics string, ready func(stderr string) bool, args ...string) *guardProc {
	t.Helper()
	p := &guardProc{cmd: llmfenceCommand(t, args...), base: "http://" + listen,
		stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting llmfence guard: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				p.kill()
				t.Errorf("guard did not shut down on SIGTERM; stderr:\n%s", p.stderr.String())
				return
			}
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 && !p.killed {
			t.Errorf("guard exited with status %d; stderr:\n%s", code, p.stderr.String())
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("guard exited early with status %d; stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
		default:
		}
		if resp, err := client.Get("http://" + metrics + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && (ready == nil || ready(p.stderr.String())) {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("guard not ready on %s; stderr:\n%s", listen, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startGuardProcess runs `llmfence --db db guard --upstream upstream
// extra...` on free loopback ports (see startGuardProc).
func startGuardProcess(t *testing.T, db, upstream string, extra ...string) *guardProc {
	t.Helper()
	listen, metrics := freeAddr(t), freeAddr(t)
	args := append([]string{"--db", db, "--log-level", "warn", "guard", "--upstream", upstream,
		"--listen", listen, "--metrics", metrics}, extra...)
	return startGuardProc(t, listen, metrics, nil, args...)
}
