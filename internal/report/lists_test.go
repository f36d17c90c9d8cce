package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apikeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/verdict"
)

// TestListTablesGolden renders every list table from fixed records,
// hostile text and Japanese included: columns line up by display width
// and no control character reaches the terminal.
func TestListTablesGolden(t *testing.T) {
	utc := ListOptions{Location: time.UTC, Now: t0.Add(time.Hour)}
	runs := []store.Run{
		{ID: "12", StartedAt: t0, Status: store.StatusFinished, Targets: []string{"203.0.113.0/24", "scanme.example"},
			Stats: store.RunStats{AddressesProbed: 512, OpenPorts: 9, Services: 4}},
		{ID: "9", StartedAt: t0.Add(-24 * time.Hour), Status: store.StatusInterrupted, Targets: []string{"198.51.100.0/28\x1b[2J"},
			Stats: store.RunStats{AddressesProbed: 16}},
	}
	hosts := []store.Host{
		{Host: "203.0.113.7", Port: 11434, Product: "ollama", Version: "0.5.7", Auth: service.AuthNone, Risk: service.SeverityCritical,
			Models: 4, FirstSeen: t0.Add(-48 * time.Hour), LastSeen: t0, FirstRun: "3", LastRun: "12", Findings: 3,
			TopFinding: "Model management reachable without authentication"},
		{Host: "2001:db8::1", Port: 8000, Product: "vllm", Version: "版本\x07", Auth: service.AuthRequired, Gateway: "llmfence-guard", Risk: service.SeverityLow,
			Models: 1, FirstSeen: t0, LastSeen: t0, FirstRun: "12", LastRun: "12", TopFinding: "put `llmfence guard` in front"},
	}
	findings := []store.FindingRow{
		{RunID: "12", Host: "203.0.113.7", Port: 11434, Product: "ollama", ID: "LLMF-002", Severity: service.SeverityCritical,
			Title: "Model management reachable without authentication", Detail: "model-management routes answered\nwithout credentials"},
		{RunID: "12", Host: "203.0.113.7", Port: 11434, Product: "ollama", ID: "LLMF-005", Severity: service.SeverityHigh,
			Title: "System prompt that could enable harmful activity", Detail: "model 詐欺:latest: classified as fraud_phishing"},
	}
	keys := []apikeys.Key{
		{ID: "k1a2b3c4", Name: "alice", Created: t0, Expires: t0.Add(720 * time.Hour), Models: []string{"llama3*", "qwen*"},
			Limits: apikeys.Limits{RPM: 60, TPM: -1}},
		{ID: "k9z8y7x6", Name: "ops", Created: t0, Revoked: t0.Add(time.Minute), LastUsed: t0, Admin: true, Models: []string{"*"}},
	}
	usage := []store.UsageSummary{
		{KeyID: "k1a2b3c4", KeyName: "alice", Requests: 3, PromptTokens: 30, CompletionTokens: 300, Errors: 1},
		{Requests: 1, Errors: 1},
	}
	captures := []store.Capture{
		{Time: t0, KeyName: "alice", Route: "/api/chat", Model: "llama3.2:3b", Status: 200,
			Prompt: "Mail [REDACTED:email] \x1b[31mnow\x1b[0m\n\u202eok", Response: "Sure: " + strings.Repeat("long text ", 10),
			Redactions: map[string]int{"email": 1, "payment_card": 2}, ResponseTruncated: true},
		{Time: t0.Add(-time.Hour), Route: "/api/generate", Status: 401, Prompt: "日本語のプロンプト"},
	}
	probeRuns := []store.ProbeRun{
		{ID: "4", StartedAt: t0, Status: store.StatusFinished, Host: "127.0.0.1", Port: 11434, Model: "lab-model\x1b[1m",
			Complete: false, Worst: service.SeverityHigh, Verdicts: []store.ProbeVerdict{{Suite: "leak", Verdict: "leaked"}}},
	}
	tests := []struct {
		file   string
		render func(*bytes.Buffer) error
	}{
		{"runs.golden.txt", func(b *bytes.Buffer) error { return RunsTable(b, runs, utc) }},
		{"hosts.golden.txt", func(b *bytes.Buffer) error { return HostsTable(b, hosts, utc) }},
		{"findings.golden.txt", func(b *bytes.Buffer) error { return FindingsTable(b, findings, utc) }},
		{"keys.golden.txt", func(b *bytes.Buffer) error { return KeysTable(b, keys, utc) }},
		{"usage.golden.txt", func(b *bytes.Buffer) error { return UsageTable(b, usage) }},
		{"captures.golden.txt", func(b *bytes.Buffer) error { return CapturesTable(b, captures, utc) }},
		{"probes.golden.txt", func(b *bytes.Buffer) error { return ProbeRunsTable(b, probeRuns, utc) }},
		{"users.golden.txt", func(b *bytes.Buffer) error {
			last := t0.Add(-time.Hour)
			return UsersTable(b, []store.User{{Name: "ann", Role: "admin", LastLogin: &last}, {Name: "ben\x1b[1m", Role: "viewer", Disabled: true}}, utc)
		}},
		{"runs.golden.jsonl", func(b *bytes.Buffer) error { return WriteJSONL(b, runs) }},
		{"keys.golden.jsonl", func(b *bytes.Buffer) error { return WriteJSONL(b, KeyRecords(keys, utc)) }},
		{"inspect.golden.txt", func(b *bytes.Buffer) error {
			iw := NewInspectWriter(b, false)
			iw.Write(&inspect.Result{Path: "models/evil\x1b[2J.pkl", Format: "pickle", Size: 2048, Verdict: verdict.Malicious,
				Findings: []verdict.Finding{{ID: "INS-001", Severity: service.SeverityCritical, Title: "Imports `os.system`", Detail: "GLOBAL os system\nat 12", Member: "archive/data.pkl"}}})
			iw.Write(&inspect.Result{Path: "model.gguf", Format: "gguf", Size: 5 << 30, Verdict: verdict.Clean})
			return iw.Summary(inspect.Summary{Files: 2, Verdicts: map[verdict.Verdict]int{verdict.Clean: 1, verdict.Malicious: 1}, Failed: 1}, service.SeverityHigh)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.render(&b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if strings.ContainsAny(out, "\x1b\x07\u202e") {
				t.Errorf("control characters reached the output: %q", out)
			}
			if strings.HasSuffix(tt.file, ".txt") && strings.Contains(out, "`") {
				t.Errorf("a table shows a literal backtick:\n%s", out)
			}
			golden(t, filepath.Join("lists", tt.file), b.Bytes())
		})
	}
}
