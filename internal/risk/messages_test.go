package risk

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
)

func catalogue(t *testing.T) *locale.Catalogue {
	t.Helper()
	c, err := locale.NewCatalogue(Messages(), vulndb.Messages())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEveryEntryInBothLanguages: every catalogue entry has its title, why
// and every fix in English and Japanese with the same placeholders, and
// every detail and label message too.
func TestEveryEntryInBothLanguages(t *testing.T) {
	c := catalogue(t)
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	for _, en := range engine(t).Catalogue() {
		ids := []string{TitleID(en.ID), WhyID(en.ID)}
		for k := range en.Fix {
			ids = append(ids, FixID(en.ID, k))
		}
		for _, id := range ids {
			for _, l := range locale.Langs {
				if !c.Has(l, id) {
					t.Errorf("%s: no %s text for %s", en.ID, l, id)
				}
			}
		}
	}
	for _, s := range []service.Severity{"none", "info", "low", "medium", "high", "critical"} {
		if !c.Has(locale.Japanese, SeverityID(s)) {
			t.Errorf("no Japanese name for severity %s", s)
		}
	}
	for _, cat := range service.Categories {
		if !c.Has(locale.Japanese, CategoryID(cat)) {
			t.Errorf("no Japanese name for category %s", cat)
		}
	}
}

// TestJapaneseTextsAreJapanese: a Japanese text that is only a copy of the
// English (or has no Japanese characters at all) is a missing translation.
func TestJapaneseTextsAreJapanese(t *testing.T) {
	c := catalogue(t)
	en, ja := c.Printer(locale.English), c.Printer(locale.Japanese)
	for _, id := range c.IDs(locale.Japanese) {
		args := map[string]string{}
		for _, f := range c.Placeholders(id) {
			args[f] = "1"
		}
		j := ja.Message(id, args)
		if j == en.Message(id, args) && !strings.HasPrefix(id, "risk.detail.version_disclosed") && !strings.HasPrefix(id, "risk.detail.guardrails_evidence") {
			t.Errorf("%s: the Japanese text is the English one: %q", id, j)
		}
		if !strings.ContainsFunc(j, func(r rune) bool { return locale.RuneWidth(r) == 2 }) && !strings.HasPrefix(id, "risk.detail.version_disclosed") && !strings.HasPrefix(id, "risk.detail.guardrails_evidence") {
			t.Errorf("%s: no Japanese characters in %q", id, j)
		}
	}
}

// TestFindingsInJapaneseGolden renders the open Ollama's findings and
// remediation in Japanese: every detail and fix has a message (no English
// left but names and commands).
func TestFindingsInJapaneseGolden(t *testing.T) {
	e := engine(t)
	svc := openOllama()
	e.Evaluate(&svc)
	ja := catalogue(t).Printer(locale.Japanese)
	var b strings.Builder
	fmt.Fprintf(&b, "リスク: %s\n", Severity(ja, svc.Risk))
	for _, f := range svc.Findings {
		if f.DetailMsg == nil || !ja.Has(f.DetailMsg.ID) {
			t.Errorf("%s: detail %q has no Japanese message", f.ID, f.Detail)
		}
		fmt.Fprintf(&b, "%s %s %s: %s\n", Severity(ja, f.Severity), f.ID, Title(ja, f), Detail(ja, f))
	}
	steps := Remediation(ja, &svc)
	if len(steps) == 0 || len(steps) != len(svc.RemediationMsgs) {
		t.Fatalf("remediation %q, messages %v", steps, svc.RemediationMsgs)
	}
	for i, s := range steps {
		fmt.Fprintf(&b, "対処 %d: %s\n", i+1, s)
	}
	goldentest.Check(t, filepath.Join("testdata", "open_ollama.ja.golden.txt"), []byte(b.String()))

	// English says exactly what was recorded.
	en := catalogue(t).Printer(locale.English)
	for _, f := range svc.Findings {
		if Title(en, f) != f.Title || Detail(en, f) != f.Detail {
			t.Errorf("%s: English differs from the record", f.ID)
		}
	}
	if strings.Join(Remediation(en, &svc), "\n") != svc.Remediation {
		t.Errorf("English remediation differs from the record")
	}
}

// TestRewrittenRemediationFallsBack: a remediation text rewritten without
// its messages is said as recorded, never mixed up with stale messages.
func TestRewrittenRemediationFallsBack(t *testing.T) {
	e := engine(t)
	svc := openOllama()
	e.Evaluate(&svc)
	svc.Remediation = "a line someone else wrote\n" + svc.Remediation
	ja := catalogue(t).Printer(locale.Japanese)
	got := Remediation(ja, &svc)
	if got[0] != "a line someone else wrote" || !strings.Contains(got[1], "OLLAMA_HOST") || strings.ContainsFunc(got[1], func(r rune) bool { return locale.RuneWidth(r) == 2 }) {
		t.Errorf("Remediation = %q", got)
	}
}

// TestOldPlaceholdersRefused: an entry written with the former {port}
// syntax is refused, not printed with the braces.
func TestOldPlaceholdersRefused(t *testing.T) {
	db, err := vulndb.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(catalogueYAML), "http://127.0.0.1:{{.port}}", "http://127.0.0.1:{port}", 1)
	if _, err := Load([]byte(bad), db); err == nil || !strings.Contains(err.Error(), "{{.port}}") {
		t.Errorf("Load = %v, want the old placeholder refused", err)
	}
}
