package risk

import (
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// TestFixOfOneFinding: a finding's fix is the remediation step the judge
// wrote for it, placeholders filled, in either language; a finding the
// remediation left out gets the catalogue's fix for the product; a fix
// that needs the judge's fixed version is not guessed.
func TestFixOfOneFinding(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := locale.NewCatalogue(Messages(), vulndb.Messages())
	if err != nil {
		t.Fatal(err)
	}
	en, ja := cat.Printer(locale.English), cat.Printer(locale.Japanese)
	svc := &service.Service{Host: "10.0.0.1", Port: 11434, Product: "ollama", Version: "0.1.30", Auth: service.AuthNone,
		Models: []service.Model{{Name: "llama3:8b"}}}
	e.Evaluate(svc)
	byID := map[string]service.Finding{}
	for _, f := range svc.Findings {
		byID[f.ID] = f
	}
	open, ok := byID["LLMF-001"]
	if !ok {
		t.Fatalf("no LLMF-001 on an open Ollama: %+v", svc.Findings)
	}
	got := e.Fix(en, open, svc)
	if !strings.Contains(got, "OLLAMA_HOST") || !strings.Contains(got, "127.0.0.1:11434") || strings.Contains(got, "{{") {
		t.Errorf("English fix of LLMF-001: %q", got)
	}
	if !strings.Contains(svc.Remediation, got) {
		t.Errorf("the fix %q is not the remediation step the judge wrote:\n%s", got, svc.Remediation)
	}
	if j := e.Fix(ja, open, svc); j == got || !strings.Contains(j, "127.0.0.1:11434") || locale.Width(j) == len(j) {
		t.Errorf("Japanese fix of LLMF-001: %q", j)
	}

	// A known-vulnerability fix comes from the judge's remediation, with
	// the fixed version it found.
	cve, ok := byID["LLMF-003"]
	if !ok {
		t.Fatalf("no LLMF-003 on Ollama 0.1.30: %+v", svc.Findings)
	}
	if got := e.Fix(en, cve, svc); !strings.Contains(got, "Upgrade ollama to 0.") || strings.Contains(got, "{{") {
		t.Errorf("English fix of LLMF-003: %q", got)
	}

	// Without the judge's remediation: the catalogue's fix for the product.
	bare := &service.Service{Port: 8000, Product: "vllm"}
	if got := e.Fix(en, service.Finding{ID: "LLMF-001"}, bare); !strings.Contains(got, "--api-key") || !strings.Contains(got, "127.0.0.1:8000") {
		t.Errorf("catalogue fix for vLLM: %q", got)
	}
	// A known-vulnerability fix needs the fixed version only the judge knew.
	if m, ok := e.FixMessage(service.Finding{ID: "LLMF-003"}, bare); ok {
		t.Errorf("LLMF-003 without a remediation gave %+v", m)
	}
	if got := e.Fix(en, service.Finding{ID: "LLMF-999"}, bare); got != "" {
		t.Errorf("unknown finding: %q", got)
	}
}
