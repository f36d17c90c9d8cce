package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

func TestRunLifecycleSQLite(t *testing.T) { testRunLifecycle(t, sqliteBackend()) }
func TestRunLifecyclePostgres(t *testing.T) {
	testRunLifecycle(t, postgresBackend(postgresDSN(t)))
}

func testRunLifecycle(t *testing.T, be backend) {
	ctx := context.Background()

	t.Run("credentials are never stored or shown", func(t *testing.T) {
		dsn := be.newDSN(t)
		s := openT(t, dsn, Options{})
		r, err := s.CreateRun(ctx, Run{Targets: []string{"https://ops:hunter22@llm.example/", "10.0.0.0/24"},
			Args: []string{"llmfence", "--db", "postgres://scan:S3cretPW@db.example/llm", "scan", "--contact", "a@b.example"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(append(got.Args, got.Targets...), " ")
		for _, secret := range []string{"hunter22", "S3cretPW"} {
			if strings.Contains(all, secret) {
				t.Errorf("run record keeps %q: %q", secret, all)
			}
		}
		if !slices.Contains(got.Args, "postgres://scan:xxxxx@db.example/llm") || !slices.Contains(got.Targets, "10.0.0.0/24") {
			t.Errorf("redaction removed more than the secret: %q", all)
		}
		// A record written before redaction existed is redacted when read.
		be.raw(t, dsn, `UPDATE runs SET args = '["llmfence","--db","postgres://u:OldSecret@h/d"]' WHERE id = `+r.ID)
		got, _ = s.GetRun(ctx, r.ID)
		if strings.Contains(strings.Join(got.Args, " "), "OldSecret") {
			t.Errorf("an old record's secret is shown: %q", got.Args)
		}
	})

	t.Run("heartbeat, end once, stale runs", func(t *testing.T) {
		clk := &fakeClock{t: t0}
		s := openT(t, be.newDSN(t), Options{Now: clk.Now})
		// A run whose owner process is gone, one whose heartbeat is old,
		// and one alive.
		gone, _ := s.CreateRun(ctx, Run{OwnerHost: "scanner-1", OwnerPID: 4242})
		quiet, _ := s.CreateRun(ctx, Run{OwnerHost: "elsewhere", OwnerPID: 1})
		alive, _ := s.CreateRun(ctx, Run{OwnerHost: "scanner-1", OwnerPID: 77})
		_, _ = s.CreateRun(ctx, Run{OwnerHost: "scanner-1", OwnerPID: 4242, Shards: 4}) // sharded: lives by its shard jobs
		clk.Set(t0.Add(90 * time.Second))
		if err := s.Heartbeat(ctx, alive.ID, RunStats{AddressesProbed: 10, OpenPorts: 2}); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(150 * time.Second))
		pol := StalePolicy{HeartbeatAge: 2 * time.Minute, Host: "scanner-1", Alive: func(pid int) bool { return pid == 77 }}
		ended, err := s.MarkStaleRuns(ctx, pol)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ended)
		want := []string{gone.ID, quiet.ID}
		slices.Sort(want)
		if !slices.Equal(ended, want) {
			t.Errorf("MarkStaleRuns ended %v, want %v (a sharded run lives by its shard jobs)", ended, want)
		}
		r, _ := s.GetRun(ctx, gone.ID)
		if r.Status != StatusInterrupted || !strings.Contains(r.Error, "pid 4242") {
			t.Errorf("gone run: %s %q", r.Status, r.Error)
		}
		r, _ = s.GetRun(ctx, alive.ID)
		if r.Status != StatusRunning || r.Stats.AddressesProbed != 10 || !r.HeartbeatAt.Equal(t0.Add(90*time.Second)) {
			t.Errorf("alive run: %+v", r)
		}
		// The owner of a run marked interrupted learns it at its next
		// heartbeat and cannot turn it into a finished run.
		if err := s.Heartbeat(ctx, gone.ID, RunStats{}); !errors.Is(err, ErrRunEnded) {
			t.Errorf("heartbeat of an ended run: %v, want ErrRunEnded", err)
		}
		if err := s.FinishRun(ctx, gone.ID, RunStats{}); !errors.Is(err, ErrRunEnded) {
			t.Errorf("finishing an interrupted run: %v, want ErrRunEnded", err)
		}
		if err := s.Heartbeat(ctx, "9999", RunStats{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("heartbeat of an unknown run: %v", err)
		}
	})

	t.Run("prune keeps history and the newest runs of each scope", func(t *testing.T) {
		clk := &fakeClock{t: t0}
		s := openT(t, be.newDSN(t), Options{Now: clk.Now})
		mk := func(scope string, status RunStatus, host string) string {
			r, err := s.CreateRun(ctx, Run{ScopeKey: scope})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SaveServices(ctx, r.ID, []service.Service{withFindings(svc(host, 11434, "ollama", "0.6.8", service.SeverityHigh),
				finding("LLMF-001", service.SeverityHigh))}); err != nil {
				t.Fatal(err)
			}
			if status == StatusFinished {
				err = s.FinishRun(ctx, r.ID, RunStats{})
			} else {
				err = s.EndRun(ctx, r.ID, status, "x", RunStats{})
			}
			if err != nil {
				t.Fatal(err)
			}
			clk.Set(clk.Now().Add(24 * time.Hour))
			return r.ID
		}
		a1 := mk("A", StatusFinished, "10.0.0.1")
		a2 := mk("A", StatusFinished, "10.0.0.2")
		a3 := mk("A", StatusInterrupted, "10.0.0.3")
		a4 := mk("A", StatusFinished, "10.0.0.4")
		b1 := mk("B", StatusFinished, "10.0.0.5")
		clk.Set(t0.Add(30 * 24 * time.Hour))
		dry, err := s.PruneRuns(ctx, PrunePolicy{OlderThan: 7 * 24 * time.Hour, Keep: 2, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dry.RunIDs, []string{a1, a3}) || dry.Services != 2 || dry.Findings != 2 {
			t.Errorf("dry run: %+v, want runs %s %s with 2 services and 2 findings", dry, a1, a3)
		}
		if runs, _ := s.Runs(ctx, 0); len(runs) != 5 {
			t.Fatalf("dry run deleted runs")
		}
		res, err := s.PruneRuns(ctx, PrunePolicy{OlderThan: 7 * 24 * time.Hour, Keep: 2})
		if err != nil || res.Runs != 2 {
			t.Fatalf("prune: %+v %v", res, err)
		}
		var left []string
		runs, _ := s.Runs(ctx, 0)
		for _, r := range runs {
			left = append(left, r.ID)
		}
		slices.Sort(left)
		want := []string{a2, a4, b1}
		slices.Sort(want)
		if !slices.Equal(left, want) {
			t.Errorf("runs left %v, want %v", left, want)
		}
		hosts, _ := s.Hosts(ctx, HostFilter{})
		if len(hosts) != 5 {
			t.Errorf("host history lost entries: %d hosts, want 5", len(hosts))
		}
	})
}
