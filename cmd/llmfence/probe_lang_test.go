package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// The probe's closing line in each language: run, requests planned, sent
// now, from the journal, suite, verdict, severity.
var probeSummaryLine = map[string]*regexp.Regexp{
	"en": regexp.MustCompile(`(?m)^llmfence: probe run (\d+): (\d+) requests \((\d+) sent now, (\d+) from the journal\) in \S+; worst verdict (\S+) (\S+) \((\S+)\)$`),
	"ja": regexp.MustCompile(`(?m)^llmfence: probe 実行 (\d+): リクエスト (\d+) 件（今回送信 (\d+) 件、ジャーナルから (\d+) 件）、所要時間 \S+。最も悪い判定: (\S+) の (\S+)（(\S+)）$`),
}

// TestProbeLinesInJapanese probes a backdoored lab persona under --lang en
// and --lang ja: probe's lines on standard error are Japanese under ja,
// with the same figures and the verdict said in Japanese, the progress
// line included.
func TestProbeLinesInJapanese(t *testing.T) {
	srv := startPersona(t, lab.ProbeBackdoorFixed, nil)
	dir := t.TempDir()
	empty := filepath.Join(dir, "triggers.txt")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	probe := func(lang string) (stderr string, summary []string) {
		// Each run in its own directory: the journal is kept beside the store.
		sub := filepath.Join(dir, lang)
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		reportPath := filepath.Join(sub, "report.html")
		_, stderr, code := runCLI(t, "", "--lang", lang, "--db", filepath.Join(sub, "s.db"), "probe", srv.URL,
			"--model", "lab-model", "--suite", "backdoor", "--fail-on", "none", "--progress", "always",
			"--triggers", empty, "--report", reportPath)
		if code != 0 {
			t.Fatalf("probe --lang %s: exit %d: %s", lang, code, stderr)
		}
		m := probeSummaryLine[lang].FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("probe --lang %s: no closing line in its language:\n%s", lang, stderr)
		}
		for _, want := range map[string][]string{
			"en": {"llmfence: probe run 1: lab-model on " + srv.URL + " (journal ", "llmfence: report written to " + reportPath + "\n",
				"llmfence: " + empty + " holds no backdoor triggers; testing the built-in ones only\n", " requests  in flight ", "\x1b[K"},
			"ja": {"llmfence: probe 実行 1: " + srv.URL + " の lab-model（ジャーナル ", "llmfence: レポートを " + reportPath + " に書き出しました\n",
				"llmfence: " + empty + " にはバックドアのトリガーがありません。組み込みのトリガーだけを試します\n", "] リクエスト ", "  実行中 ", "\x1b[K"},
		}[lang] {
			if !strings.Contains(stderr, want) {
				t.Errorf("probe --lang %s: stderr lacks %q:\n%s", lang, want, stderr)
			}
		}
		return stderr, m[1:]
	}
	enErr, en := probe("en")
	jaErr, ja := probe("ja")
	if en[4] != "backdoor" || en[5] != "backdoor" || en[6] != "critical" {
		t.Fatalf("the backdoored persona's worst verdict is %q; the test expects backdoor backdoor (critical)", en[4:])
	}
	p := testPrinter(t, locale.Japanese)
	want := slices.Clone(en)
	want[4], want[5], want[6] = p.T("probe.suite.backdoor"), p.T("probe.verdict.backdoor"), risk.Severity(p, service.Severity(en[6]))
	if !slices.Equal(ja, want) {
		t.Errorf("closing line under --lang ja %q, want %q\nen: %s\nja: %s", ja, want, enErr, jaErr)
	}
	if strings.Contains(jaErr, "requests") || strings.Contains(jaErr, "report written") {
		t.Errorf("English left on stderr under --lang ja:\n%s", jaErr)
	}
}
