package classify

import (
	"slices"
	"testing"
	"unicode"

	"github.com/llmfence/llmfence/internal/service"
)

// TestRuleExamples checks every rule on its own examples from rules.yaml:
// it must fire on each positive and stay silent on each negative.
func TestRuleExamples(t *testing.T) {
	c := mustNew(t)
	if c.Version() < 1 {
		t.Fatalf("rules version %d", c.Version())
	}
	for _, r := range c.rules {
		t.Run(r.id, func(t *testing.T) {
			if len(r.positive) == 0 || len(r.negative) == 0 {
				t.Fatalf("rule needs at least one positive and one negative example")
			}
			if r.description == "" {
				t.Errorf("rule has no description")
			}
			if len(r.langs) == 0 {
				t.Errorf("rule has no langs")
			}
			for _, ex := range r.positive {
				if _, ok := r.match(newDoc(Normalize(ex), c)); !ok {
					t.Errorf("does not fire on positive example %q", ex)
				}
				checkLang(t, r.langs, ex)
			}
			for _, ex := range r.negative {
				if m, ok := r.match(newDoc(Normalize(ex), c)); ok {
					t.Errorf("fires on negative example %q (span %q)", ex, m.Text)
				}
			}
		})
	}
}

// checkLang makes sure Japanese rules are exercised with Japanese text and
// English rules with English text.
func checkLang(t *testing.T, langs []string, ex string) {
	t.Helper()
	ja := false
	for _, r := range ex {
		if unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han) {
			ja = true
			break
		}
	}
	if ja && !slices.Contains(langs, "ja") {
		t.Errorf("Japanese example %q for a rule with langs %v", ex, langs)
	}
	if !ja && !slices.Contains(langs, "en") {
		t.Errorf("non-Japanese example %q for a rule with langs %v", ex, langs)
	}
}

// TestEveryCategoryHasRules makes sure each category can be assigned in both
// languages.
func TestEveryCategoryHasRules(t *testing.T) {
	c := mustNew(t)
	for _, cat := range service.Categories {
		for _, lang := range []string{"en", "ja"} {
			found := false
			for _, r := range c.rules {
				if r.category == cat && slices.Contains(r.langs, lang) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s rule for category %s", lang, cat)
			}
		}
	}
}

// TestLineageExamples checks every lineage marker on its own examples.
func TestLineageExamples(t *testing.T) {
	c := mustNew(t)
	for _, mk := range c.lineage {
		t.Run(mk.id, func(t *testing.T) {
			if len(mk.positive) == 0 || len(mk.negative) == 0 || mk.reason == "" {
				t.Fatalf("marker needs a reason and positive and negative examples")
			}
			for _, ex := range mk.positive {
				if !mk.re.MatchString(Normalize(ex)) {
					t.Errorf("does not match positive example %q", ex)
				}
			}
			for _, ex := range mk.negative {
				if got, _, ok := c.lineageMarker(ex); ok {
					t.Errorf("negative example %q matches marker %s", ex, got.id)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
	}{
		{"no version", "rules: []\n"},
		{"unknown category", "version: 1\nrules:\n  - id: x\n    category: nope\n    patterns: [a]\n"},
		{"duplicate id", "version: 1\nrules:\n  - id: x\n    category: csam\n    patterns: [a]\n  - id: x\n    category: csam\n    patterns: [b]\n"},
		{"bad regex", "version: 1\nrules:\n  - id: x\n    category: csam\n    patterns: ['(']\n"},
		{"unknown fragment", "version: 1\nrules:\n  - id: x\n    category: csam\n    patterns: ['{{nope}}']\n"},
		{"no patterns", "version: 1\nrules:\n  - id: x\n    category: csam\n"},
		{"unknown field", "version: 1\nrulez: []\n"},
		{"bad lineage regex", "version: 1\nlineage:\n  - id: x\n    pattern: '('\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parse([]byte(tt.yaml)); err == nil {
				t.Errorf("parse accepted invalid rules")
			}
		})
	}
}

func newDoc(n string, c *Classifier) *doc {
	return c.newDoc(n)
}
