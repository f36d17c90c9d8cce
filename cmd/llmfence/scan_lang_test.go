package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/service"
)

// testPrinter is the printer a run of llmfence would use for lang.
func testPrinter(t *testing.T, lang locale.Lang) *locale.Printer {
	t.Helper()
	cat, err := report.Catalogue(messageSources(newRoot(&env{}))...)
	if err != nil {
		t.Fatal(err)
	}
	return cat.Printer(lang)
}

// The summary line's counts and worst risk, in each language.
var scanSummaryLine = map[string]*regexp.Regexp{
	"en": regexp.MustCompile(`(?m)^llmfence: run (\d+): (\d+) pairs tried, (\d+) open, (\d+) LLM services, (\d+) fenced by a gateway, (\d+) open but unidentified, worst risk (\S+); discovery \S+, all fingerprints \S+$`),
	"ja": regexp.MustCompile(`(?m)^llmfence: 実行 (\d+): 試行した組 (\d+) 件、開いていたもの (\d+) 件、LLM サービス (\d+) 件、ゲートウェイで保護されたもの (\d+) 件、開いているが特定できなかったもの (\d+) 件、最も高いリスク: (\S+)。探索 \S+、全フィンガープリント完了まで \S+$`),
}

var answerTime = regexp.MustCompile(`\b1[0-9]{9}\b|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})`)

// TestScanLinesInJapanese scans a small lab fleet under --lang en and
// --lang ja: the lines on standard error are Japanese under ja and carry
// the same figures, and the JSON Lines on standard output are the same
// records (all but the time each service was scanned).
func TestScanLinesInJapanese(t *testing.T) {
	prefix := "127.118.0.0/28"
	startFleet(t, lab.Config{Seed: 7, Prefix: netip.MustParsePrefix(prefix), Live: 6, HostileFraction: 0})
	dir := t.TempDir()
	type result struct {
		stdout, stderr string
		summary        []string // run, tried, open, services, fenced, unidentified, worst
	}
	scan := func(lang string) result {
		reportPath := filepath.Join(dir, lang+".html")
		stdout, stderr, code := runCLI(t, "", "scan", "--lang", lang, "--db", filepath.Join(dir, lang+".db"),
			"--format", "json", "--progress", "never", "--rate", "0", "--timeout", "5s", "--target-budget", "20s",
			"--seed", "3", "--report", reportPath, prefix)
		if code != 0 {
			t.Fatalf("scan --lang %s exited %d: %s", lang, code, stderr)
		}
		m := scanSummaryLine[lang].FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("scan --lang %s: no summary line in its language:\n%s", lang, stderr)
		}
		for _, want := range map[string][]string{
			"en": {"llmfence: run 1: scanning ", " address:port pairs (store: ", "llmfence: report written to " + reportPath + "\n"},
			"ja": {"llmfence: 実行 1: アドレス:ポートの組 ", " 件をスキャンします（ストア: ", "llmfence: レポートを " + reportPath + " に書き出しました\n"},
		}[lang] {
			if !strings.Contains(stderr, want) {
				t.Errorf("scan --lang %s: stderr lacks %q:\n%s", lang, want, stderr)
			}
		}
		return result{stdout: stdout, stderr: stderr, summary: m[1:]}
	}
	en, ja := scan("en"), scan("ja")

	if en.summary[3] == "0" {
		t.Fatalf("the scan found no LLM service; the comparison would show little:\n%s", en.stderr)
	}
	// The same figures; the worst risk said in Japanese (JVN's names).
	want := slices.Clone(en.summary)
	want[6] = risk.Severity(testPrinter(t, locale.Japanese), service.Severity(en.summary[6]))
	if want[6] == en.summary[6] {
		t.Errorf("worst risk %q has no Japanese name", en.summary[6])
	}
	if !slices.Equal(ja.summary, want) {
		t.Errorf("summary under --lang ja %q, want %q (from --lang en)\nen: %s\nja: %s", ja.summary, want, en.stderr, ja.stderr)
	}
	if strings.Contains(ja.stderr, "pairs tried") || strings.Contains(ja.stderr, "report written") {
		t.Errorf("English left on stderr under --lang ja:\n%s", ja.stderr)
	}

	// JSON Lines: the same records under both languages.
	if a, b := normalJSONL(t, en.stdout), normalJSONL(t, ja.stdout); a != b || a == "" {
		t.Errorf("JSON Lines differ between --lang en and --lang ja:\nen: %.600s\nja: %.600s", a, b)
	}
}

// normalJSONL parses JSON Lines of services and writes them back sorted,
// with what differs between two scans of the same fleet masked: the time
// each was scanned, and the times the lab servers put in their answers
// (quoted in evidence and extra: unix seconds, RFC 3339 stamps).
func normalJSONL(t *testing.T, out string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var svc map[string]any
		if err := json.Unmarshal([]byte(l), &svc); err != nil {
			t.Fatalf("not JSON: %v: %.200s", err, l)
		}
		if _, ok := svc["scanned_at"]; !ok {
			t.Fatalf("a record without scanned_at: %.200s", l)
		}
		delete(svc, "scanned_at")
		b, _ := json.Marshal(svc)
		lines = append(lines, answerTime.ReplaceAllString(string(b), "TIME"))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// scan --list says its comment lines in Japanese under --lang ja; the
// ranges themselves stay as they are.
func TestScanListInJapanese(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	args := []string{"scan", "--list", "--db", db, "--rate", "100", "-p", "11434,8000", "127.118.0.8/30", "192.0.2.0/24"}
	en, stderr, code := runCLI(t, "", append([]string{"--lang", "en"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ja, stderr, code := runCLI(t, "", append([]string{"--lang", "ja"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"# 8 address:port pairs in 1 ranges, visiting order seed ", "; nothing sent\n",
		"# connect sweep at --rate 100/s: at least ", "# left out 256 addresses in 192.0.2.0/24 (", "; --allow-reserved scans them\n"} {
		if !strings.Contains(en, want) {
			t.Errorf("--lang en lacks %q:\n%s", want, en)
		}
	}
	for _, want := range []string{"# アドレス:ポートの組 8 件（範囲 1 個）、巡回順序のシード ", "。何も送信していません\n",
		"# 接続による探索（--rate 100/s）: 最短 ", "# 次を対象から外しました: 192.0.2.0/24（", "のアドレス 256 個。--allow-reserved を付けるとスキャンします\n"} {
		if !strings.Contains(ja, want) {
			t.Errorf("--lang ja lacks %q:\n%s", want, ja)
		}
	}
	// The data lines are the same in both.
	data := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				out = append(out, l)
			}
		}
		return out
	}
	if d := data(en); !slices.Equal(d, data(ja)) || len(d) != 1 || d[0] != "127.118.0.8/30\tports 8000,11434" && d[0] != "127.118.0.8/30\tports 11434,8000" {
		t.Errorf("ranges differ or are wrong: en %q, ja %q", d, data(ja))
	}
}

// The question before a large scan, in each language; the answer stays
// y or yes.
func TestConfirmScanLang(t *testing.T) {
	o := scanrun.DefaultOptions()
	pairs := uint64(confirmAbove + 1)
	f, s := scanrun.Estimate(pairs, o)
	for _, tc := range []struct {
		lang  locale.Lang
		wants []string
	}{
		{locale.English, []string{"llmfence: this scan tries 65537 address:port pairs; connect sweep at ", "\nllmfence: scan them? Only scan networks you are authorised to scan. [y/N] "}},
		{locale.Japanese, []string{"llmfence: このスキャンはアドレス:ポートの組 65537 件を試行します。接続による探索", "\nllmfence: スキャンしますか？ スキャンする権限のあるネットワークだけを対象にしてください。[y/N] "}},
	} {
		var errb bytes.Buffer
		e := &env{stdin: strings.NewReader("y\n"), stdout: io.Discard, stderr: &errb, log: slog.New(slog.DiscardHandler), text: testPrinter(t, tc.lang)}
		if err := confirmScan(e, scanrun.Plan{Pairs: pairs, Fastest: f, Slowest: s}, o); err != nil {
			t.Errorf("%s: answered y: %v", tc.lang, err)
		}
		for _, want := range tc.wants {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("%s: the question lacks %q:\n%q", tc.lang, want, errb.String())
			}
		}
		if !strings.HasSuffix(errb.String(), "[y/N] ") {
			t.Errorf("%s: the question does not end in %q: %q", tc.lang, "[y/N] ", errb.String())
		}
	}
}
