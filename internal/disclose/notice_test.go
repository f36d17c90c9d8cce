package disclose

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/owners"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestNoticeMessagesInBothLanguages: every word of the notice has English
// and Japanese with the same placeholders (locale's Check), and so does
// everything else a notice says (findings, CVE titles).
func TestNoticeMessagesInBothLanguages(t *testing.T) {
	own, err := locale.NewCatalogue(Messages())
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Check(); err != nil {
		t.Fatal(err)
	}
	if n := len(own.IDs(locale.Japanese)); n < 30 {
		t.Errorf("only %d notice messages in Japanese", n)
	}
	all, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	if err := all.Check(); err != nil {
		t.Fatal(err)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking the change):\n%s", name, got)
	}
}

// fixedReport is a run of three services judged by the real findings
// catalogue, two of them owned, on a fixed clock.
func fixedReport(t *testing.T) Report {
	t.Helper()
	ctx := context.Background()
	scanned := time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)
	st, err := store.OpenWith(ctx, filepath.Join(t.TempDir(), "s.db"), store.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return scanned }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := risk.New()
	if err != nil {
		t.Fatal(err)
	}
	svcs := []service.Service{
		{Host: "10.20.1.5", Port: 11434, Hostname: "gpu01.corp.example", Product: "ollama", Version: "0.1.30", Auth: service.AuthNone,
			Models: []service.Model{
				{Name: "phish:latest", SystemPrompt: prompt, SystemPromptCategories: []string{"fraud_phishing"}},
				{Name: "社内アシスタント:latest", SystemPrompt: "あなたは社内ヘルプデスクです。社外秘の情報は開示しないでください。"},
				{Name: "llama3:8b"}}},
		{Host: "10.20.7.9", Port: 8000, Product: "vllm", Version: "0.8.0", Auth: service.AuthNone, Models: []service.Model{{Name: "qwen2.5:7b"}}},
		{Host: "198.51.100.23", Port: 11434, Product: "ollama", Version: "0.6.8", Auth: service.AuthNone, Models: []service.Model{{Name: "mistral:7b"}}},
	}
	for i := range svcs {
		eng.Evaluate(&svcs[i])
	}
	run, err := st.CreateRun(ctx, store.Run{Targets: []string{"10.20.0.0/16", "198.51.100.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveServices(ctx, run.ID, svcs); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, run.ID, store.RunStats{}); err != nil {
		t.Fatal(err)
	}
	om, err := owners.Parse("o.yaml", strings.NewReader("version: 1\nowners:\n  - team: gpu-platform\n    contact: gpu@corp.example\n    match: [10.20.0.0/16]\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(ctx, st, run.ID, Options{Owners: om, From: "csirt@example.org",
		Now: func() time.Time { return time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestNoticeGolden: the English and Japanese notices of the same run, and
// its CSV and JSON, which must not change with the language.
func TestNoticeGolden(t *testing.T) {
	rep := fixedReport(t)
	cat, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range locale.Langs {
		var b bytes.Buffer
		if err := rep.Write(&b, "markdown", cat.Printer(lang)); err != nil {
			t.Fatal(err)
		}
		golden(t, "notice."+string(lang)+".golden.md", b.Bytes())
	}
	for _, format := range []string{"csv", "json"} {
		var en, ja bytes.Buffer
		if err := rep.Write(&en, format, cat.Printer(locale.English)); err != nil {
			t.Fatal(err)
		}
		if err := rep.Write(&ja, format, cat.Printer(locale.Japanese)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(en.Bytes(), ja.Bytes()) {
			t.Errorf("%s changes with the language", format)
		}
		golden(t, "report.golden."+format, en.Bytes())
	}
}

// TestJapaneseNotice: the Japanese notice reads as a CSIRT's notice (its
// sections, polite style, Japanese dates and severities), says every
// finding in Japanese, fills every placeholder, and never reproduces a
// system prompt, not even a run of one quoted in a detail's arguments.
func TestJapaneseNotice(t *testing.T) {
	rep := fixedReport(t)
	// A detail quoting the prompt, as guardrail evidence may: in the
	// English text and in the message's arguments.
	g := &rep.Groups[0]
	g.Services[0].Findings = append(g.Services[0].Findings, FindingView{ID: "LLMF-006", Severity: "high", Title: "Guardrails likely removed",
		Detail: redactPrompt("model phish:latest: "+prompt[:50], svcWithPrompt()),
		DetailMsg: &service.Message{ID: "risk.detail.guardrails_evidence", Args: map[string]string{"model": "phish:latest",
			"evidence": redactPrompt(prompt[10:70], svcWithPrompt())}}})
	cat, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.Markdown(&b, cat.Printer(locale.Japanese)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"**件名**：", "**宛先**：gpu-platform ご担当者様（gpu@corp.example、owners ファイルの登録先）", "**発信日**：2026年12月2日",
		"## 概要", "## 検出内容", "## 影響", "## 対応のお願い", "## 連絡先", "平素より大変お世話になっております。", "以上、よろしくお願いいたします。",
		"リスク：緊急", "認証：なし", "2026年12月1日 00:30:00 UTC", "分類：詐欺・フィッシング", "［システムプロンプトのため非表示］",
		"本件に関するお問い合わせは csirt@example.org までお願いいたします。", "ご担当者様\n", "OLLAMA_HOST を 127.0.0.1", "`llmfence guard`"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Japanese notice lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"PhishBot", "harvest passwords", "bank login", "社外秘", "{{", "<no value>", "Why it matters", "Authentication", "system prompt"} {
		if strings.Contains(out, bad) {
			t.Errorf("the Japanese notice contains %q:\n%s", bad, out)
		}
	}
	// Polite style: every sentence the notice itself writes ends in です/ます
	// form (or is a heading, a list item or a header field).
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, "。") && !strings.HasPrefix(line, "-") && !strings.HasPrefix(line, "  -") && !regexp.MustCompile(`^\d+\. `).MatchString(line) {
			for _, s := range strings.SplitAfter(line, "。") {
				if s != "" && !regexp.MustCompile(`(です|ます|ました|ません|ください|いたします|ございます|でした)(（[^）]*）)?。$`).MatchString(s) {
					t.Errorf("not in です/ます form: %q", s)
				}
			}
		}
	}
	// Every finding's title is said in Japanese.
	for _, e := range g.Services {
		for _, f := range e.Findings {
			if !strings.Contains(out, risk.Title(cat.Printer(locale.Japanese), service.Finding{ID: f.ID, Title: f.Title})) {
				t.Errorf("finding %s's Japanese title is missing", f.ID)
			}
		}
	}
	// The English notice and the machine formats do not carry the prompt either.
	for _, format := range []string{"markdown", "csv", "json"} {
		var b bytes.Buffer
		if err := rep.Write(&b, format, cat.Printer(locale.English)); err != nil {
			t.Fatal(err)
		}
		if s := b.String(); strings.Contains(s, "PhishBot") || strings.Contains(s, "harvest passwords") || strings.Contains(s, "社外秘") {
			t.Errorf("%s leaks a system prompt:\n%s", format, s)
		}
	}
	// CSV: one row per finding, fixes filled (no placeholders).
	var c bytes.Buffer
	rep.CSV(&c)
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:] {
		if strings.Contains(r[12], "{{") {
			t.Errorf("CSV fix with a placeholder: %q", r[12])
		}
	}
	var back Report
	var j bytes.Buffer
	rep.JSON(&j)
	if err := json.Unmarshal(j.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if f := back.Groups[0].Services[0].Findings[0]; f.FixMsg == nil || !strings.HasPrefix(f.FixMsg.ID, "risk.") || f.Fix == "" {
		t.Errorf("JSON finding without its fix and message: %+v", f)
	}
}

func svcWithPrompt() service.Service {
	return service.Service{Models: []service.Model{{Name: "phish:latest", SystemPrompt: prompt}}}
}
