package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runInspectProc runs `llmfence inspect args...` in a process of its own
// and returns its exit status and stderr, failing the test if it does not
// end within limit (a hang on a FIFO would otherwise stall the suite).
func runInspectProc(t *testing.T, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	cmd := llmfenceCommand(t, append([]string{"inspect"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(t, err), stderr.String()
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("inspect %v still running after %v (hangs); stderr: %s", args, limit, stderr.String())
	}
	return 0, ""
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return ee.ExitCode()
}

// TestInspectRefusesSpecialFiles: a FIFO, a socket or a device named on
// the command line is refused at once, without being opened (opening a
// FIFO without a writer blocks forever).
func TestInspectRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "model.pt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	sock := filepath.Join(dir, "model.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []struct{ path, kind string }{
		{fifo, "named pipe"},
		{sock, "socket"},
		{os.DevNull, "character device"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			code, stderr := runInspectProc(t, 20*time.Second, "--format", "json", c.path)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %s", code, stderr)
			}
			if !strings.Contains(stderr, c.kind) || !strings.Contains(stderr, "refused") {
				t.Errorf("stderr does not say the %s was refused: %s", c.kind, stderr)
			}
		})
	}
	// Nobody ever opened the FIFO for reading: a writer opening it without
	// blocking finds no reader (ENXIO).
	if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
		t.Error("the FIFO has a reader: inspect left it open")
	}
}

// TestInspectSignals: SIGINT ends inspect with 130 and SIGTERM with 143,
// promptly, in the middle of hashing a large file.
func TestInspectSignals(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: costs no disk, but hashing 64 GiB of zeros takes minutes.
	if err := f.Truncate(64 << 30); err != nil {
		t.Skipf("cannot make a sparse file here: %v", err)
	}
	f.Close()
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(c.sig.String(), func(t *testing.T) {
			cmd := llmfenceCommand(t, "inspect", "--format", "json", big)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			cmd.Process.Signal(c.sig)
			select {
			case err := <-done:
				if got := exitCode(t, err); got != c.code {
					t.Errorf("exit %d, want %d; stderr %s", got, c.code, stderr.String())
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %v to stop after %s", d, c.sig)
				}
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running 20 s after %s", c.sig)
			}
		})
	}
}

// TestInspectCodeExecutionFails: a file that runs unvetted code when
// loaded exits 1 at the default --fail-on even when each finding alone is
// only medium (a Keras custom object is imported and instantiated; a
// pickle imports a class off the allow-list and calls it), and a file
// that was not inspected is never reported clean.
func TestInspectCodeExecutionFails(t *testing.T) {
	dir := t.TempDir()
	custom := ipZip(t, [2]string{"config.json", `{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "my_pkg.layers", "class_name": "MyLayer", "config": {}}]}}`})
	keras := ipPut(t, dir, "custom.keras", custom)
	noise := ipPut(t, dir, "weights.dat", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 4096))
	out, stderr, code := runInspectCLI(t, "--format", "json", keras)
	if code != 1 {
		t.Errorf("custom Keras object: exit %d, want 1; %s%s", code, out, stderr)
	}
	out, _, code = runInspectCLI(t, "--format", "json", noise)
	lines := ipParseList(t, out)
	if len(lines) != 1 || lines[0].Verdict != "not-inspected" {
		t.Errorf("unrecognised content: %s", out)
	}
	if code != 0 {
		t.Errorf("unrecognised content: exit %d", code)
	}
}
