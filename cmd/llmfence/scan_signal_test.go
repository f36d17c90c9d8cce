package main

import (
	"context"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/store"
)

// TestScanSignalsKeepThePartialRun: Ctrl-C (SIGINT) and SIGTERM stop a
// scan with 130 and 143, every service already written as JSON Lines is in
// the store, and the run reads "interrupted". A SIGKILLed scanner cannot
// say anything; the next `llmfence runs` marks its run interrupted.
func TestScanSignalsKeepThePartialRun(t *testing.T) {
	startFleet(t, lab.Config{Seed: 11, Prefix: netip.MustParsePrefix("127.97.0.0/25"), Live: 60})
	for _, tc := range []struct {
		sig    syscall.Signal
		code   int
		phrase string
	}{
		{syscall.SIGINT, 130, "interrupted (Ctrl-C)"},
		{syscall.SIGTERM, 143, "interrupted (SIGTERM)"},
		{syscall.SIGKILL, -1, ""},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			db, out := filepath.Join(dir, "s.db"), filepath.Join(dir, "out.jsonl")
			cmd := llmfenceCommand(t, "--db", db, "scan", "--format", "json", "-o", out, "--rate", "40", "--seed", "1",
				"--progress", "never", "--timeout", "2s", "--target-budget", "4s", "127.97.0.0/25")
			stderr := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = io.Discard, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for lines(out) < 3 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("no services reported; stderr:\n%s", stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			cmd.Process.Signal(tc.sig)
			cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if code != tc.code {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if tc.phrase != "" && (!strings.Contains(stderr.String(), tc.phrase) || strings.Contains(stderr.String(), "context canceled")) {
				t.Errorf("stderr does not say %q in words for a person:\n%s", tc.phrase, stderr)
			}
			reported := lines(out)
			if tc.sig == syscall.SIGKILL {
				// The next reader of the store notices the owner is gone.
				o, e, c := runCLI(t, "", "--db", db, "runs")
				if c != 0 || !strings.Contains(o, "interrupted") {
					t.Fatalf("runs after SIGKILL (%d): %s %s", c, o, e)
				}
			}
			st, err := store.Open(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			runs, _ := st.Runs(context.Background(), 0)
			if len(runs) != 1 || runs[0].Status != store.StatusInterrupted {
				t.Fatalf("runs: %+v", runs)
			}
			svcs, _ := st.Services(context.Background(), runs[0].ID)
			if tc.sig != syscall.SIGKILL && len(svcs) != reported {
				t.Errorf("%d services written as JSON Lines, %d in the store", reported, len(svcs))
			}
			if tc.sig == syscall.SIGKILL && len(svcs) > reported {
				t.Errorf("store holds %d services, more than the %d reported", len(svcs), reported)
			}
		})
	}
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// TestRunsNeverShowCredentials: a password in --db is neither stored nor
// printed by `llmfence runs` (PostgreSQL here trusts loopback, so any
// password connects).
func TestRunsNeverShowCredentials(t *testing.T) {
	db := testPostgres(t)
	u, _ := url.Parse(db)
	u.User = url.UserPassword(u.User.Username(), "Hunter2Secret")
	withPw := u.String()
	// A process of its own, so its command line is the one recorded.
	if out, err := llmfenceCommand(t, "--db", withPw, "scan", "--progress", "never", "--rate", "0", "--timeout", "1s", "127.0.0.1:9").CombinedOutput(); err != nil {
		t.Fatalf("scan: %v %s", err, out)
	}
	for _, format := range []string{"json", "table"} {
		out, e, c := runCLI(t, "", "--db", withPw, "runs", "--format", format)
		if c != 0 {
			t.Fatalf("runs: %s", e)
		}
		if strings.Contains(out, "Hunter2Secret") || (format == "json" && !strings.Contains(out, ":xxxxx@127.0.0.1")) {
			t.Errorf("runs --format %s:\n%s", format, out)
		}
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var args string
	st.(store.ServerStore).DB().QueryRow("SELECT args FROM runs").Scan(&args)
	if strings.Contains(args, "Hunter2Secret") || args == "" {
		t.Errorf("stored command line: %s", args)
	}
}
