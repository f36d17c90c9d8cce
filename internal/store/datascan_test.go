package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

func TestSQLiteDatascanAbuse(t *testing.T) { testDatascanAbuse(t, sqliteBackend()) }

func TestPostgresDatascanAbuse(t *testing.T) { testDatascanAbuse(t, postgresBackend(postgresDSN(t))) }

// testDatascanAbuse is the behavioural suite of migration 0014's tables.
func testDatascanAbuse(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &fakeClock{t: t0}
	s := openT(t, be.newDSN(t), Options{Now: clk.Now}).(ServerStore)

	called := int64(0)
	r, err := s.QueueDatascan(ctx, "/data/corpus", "alice", func(ctx context.Context, tx *sql.Tx, id int64) error { called = id; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == 0 || called != r.ID || r.Status != "queued" || r.RequestedBy != "alice" || !r.CreatedAt.Equal(t0) {
		t.Fatalf("queued %+v (hook saw %d)", r, called)
	}
	// A failing hook rolls the queued run back.
	if _, err := s.QueueDatascan(ctx, "/x", "alice", func(context.Context, *sql.Tx, int64) error { return errors.New("no") }); err == nil {
		t.Fatal("hook error ignored")
	}
	if err := s.StartDatascan(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"kind": "secret", "category": "aws_access_key_id"})
	res := DatascanResult{Files: 2, Records: 40, Bytes: 1234, Findings: 3, Worst: service.SeverityHigh,
		Counts: map[string]int{"secret": 1, "pii": 2}, Summaries: json.RawMessage(`[{"kind":"summary","finding":"backdoor_trigger"}]`),
		Kept: []DatascanFinding{
			{Severity: service.SeverityLow, Kind: "pii", File: "a.jsonl", Record: 3, Detail: "email", Doc: doc},
			{Severity: service.SeverityHigh, Kind: "secret", File: "a.jsonl", Record: 7, Detail: "aws_access_key_id", Evidence: "key [REDACTED]", Doc: doc},
			{Severity: service.SeverityLow, Kind: "pii", File: "b.jsonl\x00", Record: 1, Detail: "email", Doc: doc},
		}}
	events := 0
	if err := s.FinishDatascan(ctx, r.ID, res, nil, func(ctx context.Context, tx *sql.Tx) error { events++; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDatascan(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if events != 1 || got.Status != "finished" || got.Files != 2 || got.Records != 40 || got.Findings != 3 || got.Kept != 3 ||
		got.Worst != service.SeverityHigh || got.Counts["pii"] != 2 || got.StartedAt == nil || got.FinishedAt == nil || len(got.Warnings) != 0 {
		t.Fatalf("finished %+v", got)
	}
	fs, more, err := s.DatascanFindings(ctx, r.ID, Page{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Most severe first, then in order.
	if !more || len(fs) != 2 || fs[0].Kind != "secret" || fs[0].Record != 7 || fs[1].Record != 3 {
		t.Fatalf("findings %+v more %v", fs, more)
	}
	list, _, err := s.DatascanRuns(ctx, Page{})
	if err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("runs %+v %v", list, err)
	}
	if _, err := s.GetDatascan(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing run: %v", err)
	}
	// A failed run keeps no findings.
	if err := s.FinishDatascan(ctx, r.ID, DatascanResult{}, errors.New("permission denied"), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDatascan(ctx, r.ID); got.Status != "failed" || got.Error != "permission denied" {
		t.Fatalf("failed run %+v", got)
	}
	if fs, _, _ := s.DatascanFindings(ctx, r.ID, Page{}); len(fs) != 0 {
		t.Fatalf("failed run kept %d findings", len(fs))
	}

	// Abuse signals add up per minute, key and kind; the strongest action
	// stays.
	m := t0.Add(30 * time.Second)
	batch := []AbuseSignal{
		{Minute: m, KeyID: "k1", KeyName: "ci", Kind: "new_network", Action: "block", Count: 1, ClientIP: "127.0.0.9", Detail: "first", LastAt: m},
		{Minute: m, KeyID: "k2", KeyName: "bot", Kind: "prompt_abuse", Action: "alert", Count: 2, Categories: []string{"malware_intrusion", "fraud_phishing"}, LastAt: m},
	}
	if err := s.SaveAbuseSignals(ctx, batch); err != nil {
		t.Fatal(err)
	}
	later := m.Add(10 * time.Second)
	if err := s.SaveAbuseSignals(ctx, []AbuseSignal{{Minute: later, KeyID: "k1", KeyName: "ci", Kind: "new_network", Action: "log", Count: 3, Suppressed: 4, Detail: "second", LastAt: later}}); err != nil {
		t.Fatal(err)
	}
	sigs, _, err := s.AbuseSignals(ctx, AbuseFilter{}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 2 || sigs[0].KeyID != "k1" || sigs[0].Count != 4 || sigs[0].Suppressed != 4 || sigs[0].Action != "block" ||
		sigs[0].Detail != "second" || !sigs[0].Minute.Equal(t0) || len(sigs[1].Categories) != 2 {
		t.Fatalf("signals %+v", sigs)
	}
	if sigs, _, _ := s.AbuseSignals(ctx, AbuseFilter{Key: "bot"}, Page{}); len(sigs) != 1 || sigs[0].KeyID != "k2" {
		t.Fatalf("by key name: %+v", sigs)
	}
	if n, err := s.PruneAbuseSignals(ctx, later); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
}
