//go:build linux

package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/fingerprint"
	"github.com/llmfence/llmfence/internal/risk"
)

// helperEnv switches the test binary into a helper role when the real
// tests re-execute it (in a network namespace, as another user).
const helperEnv = "LLMFENCE_AUDIT_TEST_HELPER"

// helperExecEnv carries the command the "lo-exec" helper runs (JSON argv).
const helperExecEnv = "LLMFENCE_AUDIT_TEST_EXEC"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "lo-exec":
		// Inside a fresh network namespace: bring loopback up, then become
		// the command (same PID), so the test knows the runtime's PID.
		if err := loopbackUp(); err != nil {
			fmt.Fprintln(os.Stderr, "bringing lo up:", err)
			os.Exit(3)
		}
		var argv []string
		if err := json.Unmarshal([]byte(os.Getenv(helperExecEnv)), &argv); err != nil || len(argv) == 0 {
			fmt.Fprintln(os.Stderr, "bad", helperExecEnv, err)
			os.Exit(3)
		}
		env := []string{}
		for _, kv := range os.Environ() {
			if len(kv) < len(helperEnv) || kv[:len(helperEnv)] != helperEnv {
				env = append(env, kv)
			}
		}
		err := syscall.Exec(argv[0], argv, env)
		fmt.Fprintln(os.Stderr, "exec:", err)
		os.Exit(3)
	case "idle":
		// A long-running process with one listening socket on loopback,
		// whatever its command line says it is.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(3)
		}
		fmt.Println(l.Addr())
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		select {
		case <-ch:
		case <-time.After(10 * time.Minute):
		}
		os.Exit(0)
	case "audit":
		// Audit this machine and print the JSON Lines (probes on unless
		// LLMFENCE_AUDIT_TEST_NOPROBE is set).
		judge, err := risk.NewJudge()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		opts := Options{Reader: NewLinux("/"), Version: "test", Judge: judge}
		if os.Getenv("LLMFENCE_AUDIT_TEST_NOPROBE") == "" {
			p, err := fingerprint.New(fingerprint.Options{Timeout: 5 * time.Second, TargetBudget: 30 * time.Second})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
			opts.Prober = FingerprintProber(p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := Run(ctx, opts)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if err := WriteJSONL(os.Stdout, res); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(3)
	}
}
