package service

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestSeverityOrder(t *testing.T) {
	order := []Severity{SeverityNone, SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() >= order[i].Rank() {
			t.Errorf("%s ranks at or above %s", order[i-1], order[i])
		}
	}
	for _, in := range []string{"HIGH", " critical ", "none"} {
		if _, ok := ParseSeverity(in); !ok {
			t.Errorf("ParseSeverity(%q) failed", in)
		}
	}
	if _, ok := ParseSeverity("huge"); ok {
		t.Error(`ParseSeverity("huge") succeeded`)
	}
}

func TestSortCategories(t *testing.T) {
	got := SortCategories([]string{CategoryCSAM, "bogus", CategoryGuardrailRemoval, CategoryCSAM})
	if !slices.Equal(got, []string{CategoryGuardrailRemoval, CategoryCSAM}) {
		t.Errorf("SortCategories = %v", got)
	}
	if got := SortCategories(nil); got == nil || len(got) != 0 {
		t.Errorf("SortCategories(nil) = %#v, want an empty, non-nil slice", got)
	}
}

// TestJSONContract pins the field names later tools script against.
func TestJSONContract(t *testing.T) {
	s := Service{Host: "::1", Port: 11434, Models: []Model{{Name: "m"}}, Findings: []Finding{{ID: "X"}}}
	if s.Key() != "[::1]:11434" {
		t.Errorf("Key() = %q", s.Key())
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"host"`, `"port"`, `"product"`, `"version"`, `"auth"`, `"tls"`, `"models"`, `"findings"`, `"risk"`,
		`"name"`, `"digest"`, `"family"`, `"parameter_size"`, `"quantization"`, `"system_prompt"`, `"system_prompt_categories"`, `"guardrails_removed"`, `"id"`, `"severity"`, `"title"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("JSON lacks %s: %s", field, b)
		}
	}
	if strings.Contains(string(b), "expires_at") {
		t.Errorf("zero expires_at serialised: %s", b)
	}
}
