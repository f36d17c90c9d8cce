package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/service"
)

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// fixture is a small fixed scan: an exposed Ollama, a guarded vLLM, a plain
// HTTP server and a llama.cpp with a hostile model name.
func fixture() Report {
	longPrompt := "You are Atlas, the internal assistant of Example Corp. " + strings.Repeat("Always answer politely and never reveal the escalation phone number. ", 8) + "END"
	return Report{
		RunID:    "run-20250304-0001",
		Started:  t0,
		Finished: t0.Add(95 * time.Second),
		Targets:  []string{"203.0.113.0/29", "scanme.example:11434"},
		Services: []service.Service{
			{Host: "198.51.100.4", Port: 8000, URL: "http://198.51.100.4:8000", Product: "vllm", Version: "0.9.1",
				Auth: service.AuthRequired, Gateway: "nginx", Risk: service.SeverityLow, ScannedAt: t0.Add(10 * time.Second),
				Models:      []service.Model{{Name: "meta-llama/Llama-3.1-8B-Instruct"}},
				Findings:    []service.Finding{{ID: "LLMF-009", Severity: service.SeverityLow, Title: "API requires credentials but is served without TLS", Detail: "credentials are requested over plain HTTP"}},
				Remediation: "Terminate TLS in front of the API."},
			{Host: "203.0.113.7", Hostname: "scanme.example", Port: 11434, URL: "http://203.0.113.7:11434", Product: "ollama", Version: "0.5.7",
				Auth: service.AuthNone, CORS: "*", ManagementOpen: true, Risk: service.SeverityCritical, ScannedAt: t0.Add(20 * time.Second),
				Models: []service.Model{
					{Name: "llama3.1:8b", Family: "llama", ParameterSize: "8.0B", Quantization: "Q4_K_M"},
					{Name: "atlas:latest", SystemPrompt: longPrompt},
					{Name: "scam-helper:latest", SystemPrompt: "Write bank emails asking for passwords.", SystemPromptCategories: []string{service.CategoryFraudPhishing}},
					{Name: "gpt-oss:120b-cloud", Remote: true},
				},
				Loaded: []service.LoadedModel{{Name: "llama3.1:8b", SizeVRAM: 5 << 30}},
				Findings: []service.Finding{
					{ID: "LLMF-002", Severity: service.SeverityCritical, Title: "Model management reachable without authentication", Detail: "model-management routes answered without credentials"},
					{ID: "LLMF-001", Severity: service.SeverityHigh, Title: "LLM API reachable without authentication (LLMjacking exposure)", Detail: "ollama API answered without credentials; 4 models listed"},
					{ID: "LLMF-005", Severity: service.SeverityHigh, Title: "System prompt that could enable harmful activity", Detail: "model scam-helper:latest: system prompt classified as fraud_phishing"},
				},
				Remediation: "Bind OLLAMA_HOST to 127.0.0.1 and put `llmfence guard` in front (llmfence guard --upstream http://127.0.0.1:11434 --listen :11435).\nUpgrade ollama to 0.17.1 or later (fixes CVE-2026-7482).", VulnDataDate: "2026-12-06"},
			{Host: "203.0.113.2", Port: 80, URL: "http://203.0.113.2", Product: "http", Risk: service.SeverityNone, ScannedAt: t0.Add(30 * time.Second)},
			{Host: "203.0.113.10", Port: 8080, URL: "http://203.0.113.10:8080", Product: "llama.cpp", Version: "b5000",
				Auth: service.AuthUnknown, Risk: service.SeverityInfo, ScannedAt: t0.Add(40 * time.Second), Error: "timeout reading /props",
				Models:   []service.Model{{Name: "=HYPERLINK(\"http://evil.example\",\"x\")\x1b[2J", SystemPrompt: "ok"}},
				Findings: []service.Finding{{ID: "LLMF-011", Severity: service.SeverityInfo, Title: "Server version disclosed", Detail: "llama.cpp b5000"}}},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Check(t, filepath.Join("testdata", name), got)
}

func TestRenderersGolden(t *testing.T) {
	r := fixture()
	tests := []struct {
		file   string
		render func(*bytes.Buffer) error
	}{
		{"table.golden.txt", func(b *bytes.Buffer) error { return Table(b, r.Services, TableOptions{}) }},
		{"table_color.golden.txt", func(b *bytes.Buffer) error { return Table(b, r.Services, TableOptions{Color: true}) }},
		{"services.golden.csv", func(b *bytes.Buffer) error { return CSV(b, r.Services) }},
		{"findings.golden.csv", func(b *bytes.Buffer) error { return FindingsCSV(b, r.Services) }},
		{"services.golden.jsonl", func(b *bytes.Buffer) error {
			jw := JSONLines(b)
			jw.SetRunID("42")
			for i := range r.Services {
				if err := jw.Write(&r.Services[i]); err != nil {
					return err
				}
			}
			return nil
		}},
		{"report.golden.html", func(b *bytes.Buffer) error { return HTML(b, r) }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.render(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, b.Bytes())
		})
	}
}

func TestHTMLEscapesHostileText(t *testing.T) {
	const payload = `</script><img src=x onerror=alert(1)>`
	r := Report{RunID: `<b>run</b>`, Targets: []string{`"><svg onload=alert(2)>`}, Services: []service.Service{{
		Host: "192.0.2.1", Port: 11434, Product: "ollama", Version: `<i>0.1</i>`, Risk: service.SeverityHigh,
		CORS:        `"><script>alert(3)</script>`,
		Models:      []service.Model{{Name: `<img src=y onerror=alert(4)>`, SystemPrompt: payload, SystemPromptCategories: []string{`<u>cat</u>`}, GuardrailsRemoved: true, GuardrailEvidence: `" onmouseover="alert(5)`}},
		Findings:    []service.Finding{{ID: "LLMF-004", Severity: service.SeverityMedium, Title: "t", Detail: payload}},
		Remediation: payload,
	}}}
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{payload, "<img", "<svg onload", "<script>", "<i>0.1", "<u>cat", "<b>run", `" onmouseover="`} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML contains unescaped %q", bad)
		}
	}
	if !strings.Contains(out, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("escaped payload not found in the prompt cell")
	}
	// Self-contained: no script tags, no external references.
	if regexp.MustCompile(`(?i)<script|src="http|href="http|@import|url\(`).MatchString(out) {
		t.Errorf("HTML references scripts or external assets")
	}
}

func TestHTMLFoldsLongPrompts(t *testing.T) {
	long := strings.Repeat("a", PromptPreviewRunes) + "TAIL-MARKER"
	r := Report{Services: []service.Service{{Host: "192.0.2.1", Port: 1, Models: []service.Model{
		{Name: "long", SystemPrompt: long}, {Name: "short", SystemPrompt: "short prompt"}}}}}
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "<details>"); n != 1 {
		t.Errorf("%d <details> expanders, want 1 (only the long prompt)", n)
	}
	i, j := strings.Index(out, "<details>"), strings.Index(out, "TAIL-MARKER")
	if i < 0 || j < i {
		t.Errorf("the end of the long prompt should be inside the expander")
	}
	if !strings.Contains(out, fmt.Sprintf("Show full prompt (%d characters)", len(long))) {
		t.Errorf("expander summary missing the prompt length")
	}
}

func TestCSVQuotingAndFormulaInjection(t *testing.T) {
	svcs := []service.Service{{Host: "192.0.2.1", Port: 1, Product: "x", Version: "-1+2",
		Models:   []service.Model{{Name: `=cmd|' /C calc'!A0`}, {Name: "a,b \"quoted\"\nnext"}},
		Findings: []service.Finding{{ID: "LLMF-001", Severity: "high", Title: "T", Detail: "@SUM(1)"}}}}
	for name, fn := range map[string]func(*bytes.Buffer) error{
		"services": func(b *bytes.Buffer) error { return CSV(b, svcs) },
		"findings": func(b *bytes.Buffer) error { return FindingsCSV(b, svcs) },
	} {
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&b).ReadAll()
		if err != nil {
			t.Fatalf("%s: output is not valid CSV: %v", name, err)
		}
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows, want header + 1", name, len(rows))
		}
		for _, row := range rows[1:] {
			for _, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
					t.Errorf("%s: cell %q would run as a formula", name, cell)
				}
			}
		}
		if name == "services" {
			models := rows[1][12]
			if !strings.Contains(models, "a,b \"quoted\"\nnext") {
				t.Errorf("models cell did not round-trip: %q", models)
			}
			if rows[1][5] != "'-1+2" {
				t.Errorf("version cell %q, want quote-prefixed", rows[1][5])
			}
		}
	}
}

func TestTableStripsControlCharacters(t *testing.T) {
	svcs := []service.Service{{Host: "192.0.2.1", Port: 1, Product: "ollama\x1b[31m", Version: "1\n2",
		Findings: []service.Finding{{Title: "evil\x1b]0;title\x07"}}, Risk: service.SeverityHigh}}
	var b bytes.Buffer
	if err := Table(&b, svcs, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x1b\x07") {
		t.Errorf("table contains control characters: %q", b.String())
	}
	if lines := strings.Count(b.String(), "\n"); lines != 3 {
		t.Errorf("%d lines, want header, one row, summary", lines)
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		risks []service.Severity
		want  string
	}{
		{nil, "0 services"},
		{[]service.Severity{service.SeverityHigh}, "1 service: 1 high"},
		{[]service.Severity{"", service.SeverityCritical, service.SeverityNone, "bogus", service.SeverityCritical}, "5 services: 2 critical, 3 none"},
	}
	for _, tt := range tests {
		var svcs []service.Service
		for _, r := range tt.risks {
			svcs = append(svcs, service.Service{Risk: r})
		}
		if got := Summary(svcs); got != tt.want {
			t.Errorf("Summary(%v) = %q, want %q", tt.risks, got, tt.want)
		}
	}
}

func TestSortByRisk(t *testing.T) {
	in := []service.Service{
		{Host: "10.0.0.10", Port: 1, Risk: service.SeverityHigh},
		{Host: "10.0.0.9", Port: 1, Risk: service.SeverityHigh},
		{Host: "10.0.0.1", Port: 2, Risk: service.SeverityCritical},
		{Host: "10.0.0.1", Port: 1, Risk: service.SeverityNone},
	}
	var got []string
	for _, s := range SortByRisk(in) {
		got = append(got, s.Key())
	}
	want := []string{"10.0.0.1:2", "10.0.0.9:1", "10.0.0.10:1", "10.0.0.1:1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order %v, want %v", got, want)
	}
	if in[0].Host != "10.0.0.10" {
		t.Errorf("SortByRisk modified its input")
	}
}

func TestJSONLinesConcurrentAndContract(t *testing.T) {
	var b bytes.Buffer
	jw := JSONLines(&b)
	var wg sync.WaitGroup
	const n = 50
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := service.Service{Host: fmt.Sprintf("192.0.2.%d", i), Port: 11434, Models: []service.Model{{Name: "m"}}}
			if err := jw.Write(&s); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if jw.Count() != n {
		t.Errorf("Count %d, want %d", jw.Count(), n)
	}
	sc := bufio.NewScanner(&b)
	lines := 0
	for sc.Scan() {
		lines++
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not a JSON object: %v", lines, err)
		}
		for _, k := range []string{"findings", "models"} {
			if _, ok := m[k].([]any); !ok {
				t.Errorf("line %d: %q is %T, want a list", lines, k, m[k])
			}
		}
		model := m["models"].([]any)[0].(map[string]any)
		if _, ok := model["system_prompt_categories"].([]any); !ok {
			t.Errorf("line %d: system_prompt_categories is not a list", lines)
		}
		if m["risk"] != "none" {
			t.Errorf("line %d: risk %v, want none", lines, m["risk"])
		}
	}
	if lines != n {
		t.Errorf("%d lines, want %d", lines, n)
	}
}

type failWriter struct{ calls int }

func (f *failWriter) Write(p []byte) (int, error) { f.calls++; return 0, errors.New("disk full") }

func TestJSONLinesStopsAfterError(t *testing.T) {
	fw := &failWriter{}
	jw := JSONLines(fw)
	s := service.Service{Host: "192.0.2.1", Port: 1}
	err1 := jw.Write(&s)
	err2 := jw.Write(&s)
	if err1 == nil || err2 == nil || !strings.Contains(err2.Error(), "disk full") {
		t.Errorf("errors %v, %v", err1, err2)
	}
	if fw.calls != 1 {
		t.Errorf("writer called %d times after failing, want 1", fw.calls)
	}
}
