package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

func TestSQLiteProbeRuns(t *testing.T) { testProbeStore(t, sqliteBackend()) }

func TestPostgresProbeRuns(t *testing.T) { testProbeStore(t, postgresBackend(postgresDSN(t))) }

func openProbeT(t *testing.T, dsn string, opts Options) ProbeRunStore {
	t.Helper()
	s := openT(t, dsn, opts)
	p, ok := s.(ProbeRunStore)
	if !ok {
		t.Fatal("store keeps no probe runs")
	}
	return p
}

// testProbeStore is the behavioural suite of ProbeStore that every back
// end must pass.
func testProbeStore(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &fakeClock{t: t0}
	s := openProbeT(t, be.newDSN(t), Options{Now: clk.Now})

	r, err := s.CreateProbeRun(ctx, ProbeRun{Target: "http://127.0.0.1:11434", Host: "127.0.0.1", Port: 11434, API: "ollama",
		Model: "qwen2.5:7b", ModelDigest: "abc", Suites: []string{"guardrails", "backdoor"}, Args: []string{"llmfence", "probe"},
		ToolVersion: "dev", Baseline: "llama3.2:3b"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == "" || r.Status != StatusRunning || !r.StartedAt.Equal(t0) {
		t.Fatalf("created %+v", r)
	}
	if err := s.SetProbeJournal(ctx, r.ID, "/tmp/j.jsonl"); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(90 * time.Second))
	sum, _ := json.Marshal(map[string]any{"kind": "summary", "suite": "backdoor", "verdict": "backdoor"})
	vs := []ProbeVerdict{
		{Suite: "backdoor", Verdict: "backdoor", Severity: service.SeverityCritical, Summary: sum},
		{Suite: "guardrails", Verdict: "intact", Severity: service.SeverityNone},
	}
	if err := s.FinishProbeRun(ctx, r.ID, StatusFinished, "", 354, true, vs); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetProbeRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusFinished || !got.FinishedAt.Equal(t0.Add(90*time.Second)) || got.Journal != "/tmp/j.jsonl" ||
		got.Requests != 354 || !got.Complete || got.Worst != service.SeverityCritical || len(got.Verdicts) != 2 ||
		got.Verdicts[0].Suite != "guardrails" || got.Baseline != "llama3.2:3b" || len(got.Suites) != 2 || got.Args[1] != "probe" {
		t.Errorf("finished run %+v", got)
	}
	var doc map[string]any
	if err := json.Unmarshal(got.Verdicts[1].Summary, &doc); err != nil || doc["verdict"] != "backdoor" {
		t.Errorf("summary document %s: %v", got.Verdicts[1].Summary, err)
	}

	// Resume: reopen, finish again with new verdicts replacing the old.
	if err := s.ReopenProbeRun(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetProbeRun(ctx, r.ID); got.Status != StatusRunning || !got.FinishedAt.IsZero() {
		t.Errorf("reopened %+v", got)
	}
	if err := s.FinishProbeRun(ctx, r.ID, StatusInterrupted, "interrupted", 10, false, vs[1:]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetProbeRun(ctx, r.ID); len(got.Verdicts) != 1 || got.Worst != service.SeverityNone || got.Error != "interrupted" {
		t.Errorf("refinished %+v", got)
	}

	r2, err := s.CreateProbeRun(ctx, ProbeRun{Target: "http://10.0.0.5:8000", Host: "10.0.0.5", Port: 8000, Model: "m\x00odel\xff"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.ProbeRuns(ctx, ProbeRunFilter{})
	if err != nil || len(all) != 2 || all[0].ID != r2.ID || all[0].Model != "model\uFFFD" {
		t.Errorf("all runs %+v %v", all, err)
	}
	byHost, _ := s.ProbeRuns(ctx, ProbeRunFilter{Host: "127.0.0.1", Port: 11434})
	byModel, _ := s.ProbeRuns(ctx, ProbeRunFilter{Model: "qwen2.5:7b", Limit: 1})
	if len(byHost) != 1 || byHost[0].ID != r.ID || len(byModel) != 1 || byModel[0].ID != r.ID {
		t.Errorf("filters: %d by host, %d by model", len(byHost), len(byModel))
	}
	if _, err := s.GetProbeRun(ctx, "999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing run: %v", err)
	}
	if err := s.FinishProbeRun(ctx, "999", StatusFinished, "", 0, true, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("finish missing run: %v", err)
	}
	if err := s.FinishProbeRun(ctx, r.ID, StatusRunning, "", 0, true, nil); !errors.Is(err, ErrBadInput) {
		t.Errorf("finish as running: %v", err)
	}
	if _, err := s.CreateProbeRun(ctx, ProbeRun{Target: "x"}); !errors.Is(err, ErrBadInput) {
		t.Errorf("run without a model: %v", err)
	}
}
