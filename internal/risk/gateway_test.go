package risk

import (
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

// TestFencedServiceCredentialsInClear: a gateway that asks for a basic
// password over plain HTTP rates LLMF-009 medium; one that asks for a
// bearer key keeps the base severity. Neither is an unauthenticated API.
func TestFencedServiceCredentialsInClear(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scheme string
		want   service.Severity
	}{{"basic", service.SeverityMedium}, {"bearer", service.SeverityLow}} {
		svc := &service.Service{Host: "192.0.2.10", Port: 11434, Product: "http", Auth: service.AuthRequired,
			Gateway: "nginx", Extra: map[string]any{"gateway_auth": tc.scheme}}
		e.Evaluate(svc)
		var got *service.Finding
		for i := range svc.Findings {
			if svc.Findings[i].ID == "LLMF-001" {
				t.Errorf("%s: fenced service reported as unauthenticated", tc.scheme)
			}
			if svc.Findings[i].ID == "LLMF-009" {
				got = &svc.Findings[i]
			}
		}
		if got == nil {
			t.Fatalf("%s: no LLMF-009 for credentials over plain HTTP; findings %+v", tc.scheme, svc.Findings)
		}
		if got.Severity != tc.want {
			t.Errorf("%s: LLMF-009 severity %s, want %s (%s)", tc.scheme, got.Severity, tc.want, got.Detail)
		}
	}
}
