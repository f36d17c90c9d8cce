package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// inspectFixture is what inspect would write for five files: one of each
// kind of table row (a finding inside an archive member, a clean file, a
// not-inspected one, an unreadable one) and the summary line.
func inspectFixture(iw *InspectWriter) error {
	results := []*inspect.Result{
		{Path: "models/evil\x1b[2J.pkl", Format: "pickle", Size: 2048, Verdict: verdict.Malicious,
			Findings: []verdict.Finding{{ID: "INS-001", Severity: service.SeverityCritical, Title: "Imports `os.system`", Detail: "GLOBAL os system\nat 12", Member: "archive/data.pkl"}}},
		{Path: "モデル/model.gguf", Format: "gguf", Size: 5 << 30, Verdict: verdict.Clean},
		{Path: "notes.bin", Format: "unknown", Size: 300, Verdict: verdict.NotInspected,
			Findings: []verdict.Finding{{ID: "INS-002", Severity: service.SeverityInfo, Title: "Format not recognised, not inspected"}}},
		{Path: "model.safetensors", Format: "safetensors", Size: 1 << 20, Verdict: verdict.Suspicious,
			Findings: []verdict.Finding{{ID: "ST-004", Severity: service.SeverityMedium, Title: "Unused bytes after the tensors"}}},
		{Path: "gone.pt", Verdict: verdict.NotInspected, Error: "open gone.pt: permission denied"},
	}
	for _, r := range results {
		if err := iw.Write(r); err != nil {
			return err
		}
	}
	return iw.Summary(inspect.Summary{Files: 5, Errors: 1, Failed: 1, Verdicts: map[verdict.Verdict]int{
		verdict.Clean: 1, verdict.NotInspected: 2, verdict.Suspicious: 1, verdict.Malicious: 1}}, service.SeverityHigh)
}

// TestInspectJapaneseGolden: the inspect table in Japanese, verdicts,
// headings, JVN's severity names and the summary translated, paths, IDs,
// sizes and the (English) finding titles as they are; columns aligned by
// display width.
func TestInspectJapaneseGolden(t *testing.T) {
	var b bytes.Buffer
	if err := inspectFixture(NewInspectWriterIn(&b, false, printer(t, locale.Japanese))); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\u202e`") {
		t.Errorf("control characters or backticks reached the table: %q", out)
	}
	for _, want := range []string{"判定", "悪性", "問題なし", "未検査", "要確認", "エラー: open gone.pt: permission denied",
		"緊急     INS-001", "[archive/data.pkl 内]", "情報", "警告", "重要以上", "5.0G", "モデル/model.gguf",
		"ファイル 5 件を検査しました: 問題なし 1 件、未検査 2 件、要確認 1 件、悪性 1 件、読み取れないもの 1 件。"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Japanese table lacks %q:\n%s", want, out)
		}
	}
	for _, english := range []string{"VERDICT", "MALICIOUS", "CLEAN", "critical", "files inspected", "at or above", "[in ", "error:"} {
		if strings.Contains(out, english) {
			t.Errorf("the Japanese table says %q:\n%s", english, out)
		}
	}
	// Every file row's FORMAT, SIZE and PATH start at the header's
	// display columns.
	lines := strings.Split(out, "\n")
	header := lines[0]
	col := func(line, cell string) int {
		i := strings.LastIndex(line, cell)
		if i < 0 {
			t.Fatalf("%q not in %q", cell, line)
		}
		return locale.Width(line[:i])
	}
	formatCol, pathCol := col(header, "形式"), col(header, "パス")
	sizeEnd := col(header, "サイズ") + locale.Width("サイズ")
	rows := map[string][3]string{
		"models/evil [2J.pkl": {"pickle", "2.0K"}, "モデル/model.gguf": {"gguf", "5.0G"},
		"notes.bin": {"unknown", "300B"}, "gone.pt": {"", "0B"},
	}
	seen := 0
	for _, line := range lines[1:] {
		for path, cells := range rows {
			if !strings.HasSuffix(line, "  "+path) {
				continue
			}
			seen++
			if cells[0] != "" {
				if got := col(line, "  "+cells[0]+" ") + 2; got != formatCol {
					t.Errorf("%s: format at column %d, header at %d:\n%s\n%s", path, got, formatCol, header, line)
				}
			}
			if got := col(line, cells[1]) + locale.Width(cells[1]); got != sizeEnd {
				t.Errorf("%s: size ends at column %d, header at %d:\n%s\n%s", path, got, sizeEnd, header, line)
			}
			if got := col(line, path); got != pathCol {
				t.Errorf("%s: path at column %d, header at %d:\n%s\n%s", path, got, pathCol, header, line)
			}
		}
	}
	if seen != len(rows) {
		t.Errorf("found %d of %d file rows:\n%s", seen, len(rows), out)
	}
	golden(t, filepath.Join("lists", "inspect.ja.golden.txt"), b.Bytes())
}

// TestInspectEnglishUnchanged: the English printer, given or not, says
// the table exactly as NewInspectWriter always has.
func TestInspectEnglishUnchanged(t *testing.T) {
	var plain, en bytes.Buffer
	if err := inspectFixture(NewInspectWriter(&plain, false)); err != nil {
		t.Fatal(err)
	}
	if err := inspectFixture(NewInspectWriterIn(&en, false, printer(t, locale.English))); err != nil {
		t.Fatal(err)
	}
	if plain.String() != en.String() {
		t.Errorf("the English printer changes the table:\n%s\nwant:\n%s", en.String(), plain.String())
	}
	for _, want := range []string{"VERDICT     FORMAT", "NOT-INSPECTED", "ERROR", "  error: open gone.pt", "  info     INS-002",
		"\n5 files inspected: 1 clean, 2 not-inspected, 1 suspicious, 1 malicious, 1 unreadable; 1 at or above high\n"} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("the English table lacks %q:\n%s", want, plain.String())
		}
	}
}

// TestInspectJSONIgnoresLanguage: JSON Lines are byte-identical whatever
// the printer's language.
func TestInspectJSONIgnoresLanguage(t *testing.T) {
	var en, ja bytes.Buffer
	if err := inspectFixture(NewInspectWriter(&en, true)); err != nil {
		t.Fatal(err)
	}
	if err := inspectFixture(NewInspectWriterIn(&ja, true, printer(t, locale.Japanese))); err != nil {
		t.Fatal(err)
	}
	if en.Len() == 0 || !bytes.Equal(en.Bytes(), ja.Bytes()) {
		t.Errorf("JSON Lines differ with the language:\n%s\nja:\n%s", en.String(), ja.String())
	}
}

// TestInspectMessages: the inspect table's messages exist in English and
// Japanese with the same placeholders, every verdict has a label and a
// name in both, and the Japanese differs from the English.
func TestInspectMessages(t *testing.T) {
	c, err := locale.NewCatalogue(Messages())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{"report.inspect.label.error": true}
	for _, v := range verdict.All {
		ids["report.inspect.label."+string(v)] = true
		ids["report.inspect.verdict."+string(v)] = true
	}
	for _, id := range c.IDs(locale.English) {
		if strings.HasPrefix(id, "report.inspect.") {
			ids[id] = true
		}
	}
	if len(ids) < 20 {
		t.Fatalf("only %d report.inspect messages", len(ids))
	}
	en, ja := c.Printer(locale.English), c.Printer(locale.Japanese)
	for id := range ids {
		for _, l := range []locale.Lang{locale.English, locale.Japanese} {
			if !c.Has(l, id) {
				t.Errorf("%s: no %s text", id, l)
			}
		}
		args := map[string]string{}
		for _, f := range c.Placeholders(id) {
			args[f] = "7"
		}
		e, j := en.Message(id, args), ja.Message(id, args)
		if e == id || j == id || strings.Contains(j+e, "<no value>") {
			t.Errorf("%s does not render: %q / %q", id, e, j)
		}
		if e == j {
			t.Errorf("%s: the Japanese is the English: %q", id, j)
		}
	}
}

// TestCannotInspect: the stderr line for an unreadable file, in English
// without a printer (never a raw message ID) and in Japanese.
func TestCannotInspect(t *testing.T) {
	if got, want := CannotInspect(nil, "a.pt", "permission denied"), "llmfence: cannot inspect a.pt: permission denied"; got != want {
		t.Errorf("no printer: %q, want %q", got, want)
	}
	if got, want := CannotInspect(printer(t, locale.Japanese), "a.pt", "permission denied"), "llmfence: a.pt を検査できません: permission denied"; got != want {
		t.Errorf("ja: %q, want %q", got, want)
	}
	var b bytes.Buffer
	if err := inspectFixture(NewInspectWriterIn(&b, false, nil)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "report.inspect") {
		t.Errorf("a nil printer printed message IDs:\n%s", b.String())
	}
}
