package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// judgedFixture is the fixture as the scan records it: every service
// judged by the real findings catalogue, so its findings carry their
// messages.
func judgedFixture(t *testing.T) Report {
	t.Helper()
	e, err := risk.New()
	if err != nil {
		t.Fatal(err)
	}
	r := fixture()
	// A model named and prompted in Japanese, as a Japanese owner's would be.
	r.Services[1].Models = append(r.Services[1].Models, service.Model{
		Name:                   "社内アシスタント:latest",
		SystemPrompt:           "あなたは株式会社サンプルの社内アシスタントです。" + strings.Repeat("社外秘の情報は決して開示しないでください。", 30),
		SystemPromptCategories: []string{},
	})
	for i := range r.Services {
		e.Evaluate(&r.Services[i])
	}
	return r
}

func printer(t *testing.T, lang locale.Lang) *locale.Printer {
	t.Helper()
	c, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	return c.Printer(lang)
}

// TestReportMessagesInBothLanguages: every message a scan report says
// (the report's labels, the findings catalogue, the CVE titles) has
// English and Japanese with the same placeholders.
func TestReportMessagesInBothLanguages(t *testing.T) {
	c, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	en, ja := c.Printer(locale.English), c.Printer(locale.Japanese)
	same := map[string]bool{"report.html.cors": true, "report.html.finding_id": true}
	for _, id := range c.IDs(locale.Japanese) {
		if !strings.HasPrefix(id, "report.") || same[id] {
			continue
		}
		args := map[string]string{}
		for _, f := range c.Placeholders(id) {
			args[f] = "1"
		}
		if j := ja.Message(id, args); j == en.Message(id, args) {
			t.Errorf("%s: the Japanese text is the English one: %q", id, j)
		}
	}
}

func TestJapaneseGolden(t *testing.T) {
	r := judgedFixture(t)
	ja := printer(t, locale.Japanese)
	var table, html bytes.Buffer
	if err := Table(&table, r.Services, TableOptions{Text: ja}); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.ja.golden.txt", table.Bytes())
	r.Text = ja
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.ja.golden.html", html.Bytes())
	out := html.String()
	for _, want := range []string{`<html lang="ja">`, "llmfence スキャンレポート", "2025年3月4日 10:00:00 UTC", "1分35秒",
		"2026年12月6日 時点", "対処方法", "モデル管理機能に認証なしで到達できます", "緊急", "詐欺・フィッシング"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Japanese report lacks %q", want)
		}
	}
}

// TestJapaneseTableAligned: with full-width labels and CJK text in the
// cells, every row's RISK and TOP FINDING cells start at the header's
// display column.
func TestJapaneseTableAligned(t *testing.T) {
	r := judgedFixture(t)
	// A finding title made of full-width characters only, to be cut.
	r.Services[2].Findings = []service.Finding{{ID: "LLMF-999", Severity: service.SeverityLow, Title: strings.Repeat("全角", 40)}}
	r.Services[2].Risk = service.SeverityLow
	ja := printer(t, locale.Japanese)
	var b bytes.Buffer
	if err := Table(&b, r.Services, TableOptions{Text: ja, MaxFinding: 31}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	header := lines[0]
	col := func(line, cell string) int {
		i := strings.Index(line, cell)
		if i < 0 {
			t.Fatalf("%q not in %q", cell, line)
		}
		return locale.Width(line[:i])
	}
	riskCol, topCol := col(header, "リスク"), col(header, "主な検出結果")
	sorted := SortByRisk(r.Services)
	for i, s := range sorted {
		line := lines[i+1]
		if got := col(line, "  "+risk.Severity(ja, s.Risk)+" ") + 2; got != riskCol {
			t.Errorf("row %d: risk at column %d, header at %d:\n%s\n%s", i, got, riskCol, header, line)
		}
		top := "-"
		if len(s.Findings) > 0 {
			top = locale.Truncate(risk.Title(ja, s.Findings[0]), 31)
		}
		if got := col(line, top); got != topCol {
			t.Errorf("row %d: top finding at column %d, header at %d:\n%s\n%s", i, got, topCol, header, line)
		}
		if w := locale.Width(line[strings.Index(line, top):]); w > 31 {
			t.Errorf("row %d: top finding %d columns wide, limit 31", i, w)
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], "サービス 4 件: ") {
		t.Errorf("summary %q", lines[len(lines)-1])
	}
}

// TestMachineOutputIgnoresLanguage: JSON Lines and CSV say the record in
// English with its message IDs, the same after a Japanese report was
// rendered from it.
func TestMachineOutputIgnoresLanguage(t *testing.T) {
	r := judgedFixture(t)
	machine := func() string {
		var b bytes.Buffer
		jw := JSONLines(&b)
		for i := range r.Services {
			if err := jw.Write(&r.Services[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := CSV(&b, r.Services); err != nil {
			t.Fatal(err)
		}
		if err := FindingsCSV(&b, r.Services); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	before := machine()
	r.Text = printer(t, locale.Japanese)
	if err := HTML(&bytes.Buffer{}, r); err != nil {
		t.Fatal(err)
	}
	if err := Table(&bytes.Buffer{}, r.Services, TableOptions{Text: r.Text}); err != nil {
		t.Fatal(err)
	}
	after := machine()
	if before != after {
		t.Errorf("machine-readable output changed after a Japanese rendering")
	}
	for _, want := range []string{`"title":"Model management reachable without authentication"`, `"detail_msg":{"id":"risk.detail.management_open"}`, `"remediation_msgs":[{"id":"risk.LLMF-002.fix.ollama"`} {
		if !strings.Contains(after, want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	for _, jp := range []string{"認証", "緊急", "対処"} {
		if strings.Contains(after, jp) {
			t.Errorf("machine-readable output contains Japanese %q", jp)
		}
	}
}
