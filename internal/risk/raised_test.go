package risk

import (
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

// TestRaisedEntries raises every caller-raised entry alone on a quiet
// service: the finding carries the catalogue's title, the base or variant
// severity, the detail, and its fix leads the remediation.
func TestRaisedEntries(t *testing.T) {
	e := engine(t)
	tests := []struct {
		id, variant string
		sev         service.Severity
		fixHas      string
	}{
		{"LLMF-013", "", service.SeverityHigh, "zz-llmfence-loopback.conf"},
		{"LLMF-013", "auth_required", service.SeverityMedium, "OLLAMA_HOST=127.0.0.1:11434"},
		{"LLMF-014", "", service.SeverityMedium, "OLLAMA_ORIGINS"},
		{"LLMF-015", "", service.SeverityMedium, "User=ollama"},
		{"LLMF-016", "", service.SeverityHigh, "o-w"},
		{"LLMF-017", "", service.SeverityMedium, "OLLAMA_NO_CLOUD=1"},
		{"LLMF-017", "exposed", service.SeverityHigh, "ollama signout"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		svc := service.Service{Product: "ollama", Port: 11434, Auth: service.AuthRequired, TLS: true}
		if err := e.EvaluateWith(&svc, Adjust{Raise: []Raised{{ID: tt.id, Variant: tt.variant, Detail: "seen on this machine"}}}); err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		fs := find(svc.Findings, tt.id)
		en, _ := e.Entry(tt.id)
		if len(fs) != 1 || fs[0].Severity != tt.sev || fs[0].Title != en.Title || fs[0].Detail != "seen on this machine" {
			t.Errorf("%s/%s: findings %+v, want one %s with the catalogue title", tt.id, tt.variant, svc.Findings, tt.sev)
		}
		if svc.Risk.Rank() < tt.sev.Rank() {
			t.Errorf("%s: risk %s below the raised %s", tt.id, svc.Risk, tt.sev)
		}
		if !strings.Contains(strings.Split(svc.Remediation, "\n")[0], tt.fixHas) {
			t.Errorf("%s: remediation should start with the fix mentioning %q:\n%s", tt.id, tt.fixHas, svc.Remediation)
		}
		seen[tt.id] = true

		// Evaluate alone never raises it.
		plain := service.Service{Product: "ollama", Version: "0.6.8", Port: 11434, Auth: service.AuthNone, CORS: "*"}
		e.Evaluate(&plain)
		if len(find(plain.Findings, tt.id)) != 0 {
			t.Errorf("%s fired from a service record", tt.id)
		}
	}
	for _, en := range e.Catalogue() {
		if CallerRaised(en.ID) && !seen[en.ID] {
			t.Errorf("caller-raised entry %s has no test case", en.ID)
		}
	}
}

func TestEvaluateWithOmitAndErrors(t *testing.T) {
	e := engine(t)
	open := openOllama()
	if err := e.EvaluateWith(&open, Adjust{Omit: []string{"LLMF-001", "LLMF-002"}}); err != nil {
		t.Fatal(err)
	}
	if len(find(open.Findings, "LLMF-001"))+len(find(open.Findings, "LLMF-002")) != 0 {
		t.Errorf("omitted findings present: %v", ids(open.Findings))
	}
	if strings.Contains(open.Remediation, "Bind OLLAMA_HOST to 127.0.0.1 and put") {
		t.Errorf("remediation still carries the omitted LLMF-001 fix:\n%s", open.Remediation)
	}
	if len(find(open.Findings, "LLMF-003")) == 0 {
		t.Errorf("the CVE findings of a known version must stay: %v", ids(open.Findings))
	}

	before := openOllama()
	e.Evaluate(&before)
	for _, bad := range []Raised{{ID: "LLMF-099"}, {ID: "LLMF-001"}, {ID: "LLMF-013", Variant: "nope"}} {
		svc := before
		if err := e.EvaluateWith(&svc, Adjust{Raise: []Raised{bad}}); err == nil {
			t.Errorf("raising %+v: no error", bad)
		}
		if len(svc.Findings) != len(before.Findings) || svc.Risk != before.Risk {
			t.Errorf("a refused raise changed the service")
		}
	}
	if err := e.EvaluateWith(nil, Adjust{}); err != nil {
		t.Errorf("nil service: %v", err)
	}

	j, err := NewJudge()
	if err != nil {
		t.Fatal(err)
	}
	svc := &service.Service{Product: "ollama", Version: "0.6.8", Auth: service.AuthUnknown,
		Models: []service.Model{{Name: "huihui_ai/llama3.2-abliterated:3b"}}}
	if err := j.AnnotateWith(svc, Adjust{Raise: []Raised{{ID: "LLMF-015", Detail: "uid 0"}}}); err != nil {
		t.Fatal(err)
	}
	if !svc.Models[0].GuardrailsRemoved || len(find(svc.Findings, "LLMF-006")) == 0 || len(find(svc.Findings, "LLMF-015")) == 0 {
		t.Errorf("AnnotateWith should classify the models and keep the raised finding: %+v", svc.Findings)
	}
	if j.Engine() == nil {
		t.Errorf("Judge.Engine is nil")
	}
}
