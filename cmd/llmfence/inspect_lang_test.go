package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestInspectLang: --lang ja says inspect's table, summary and "cannot
// inspect" line in Japanese, JSON Lines stay byte-identical to English,
// and an env without a printer (runInspectCLI skips setupLang) says
// English, never message IDs.
func TestInspectLang(t *testing.T) {
	dir := ipModelDir(t)
	missing := filepath.Join(dir, "missing.pt")

	out, errOut, code := runCLI(t, "", "inspect", "--lang", "ja", "--workers", "1", dir, missing)
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"判定", "悪性", "パス", "緊急", "[archive/data.pkl 内]", "エラー: ", "件を検査しました", "重要以上に該当するファイルは"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Japanese table lacks %q:\n%s", want, out)
		}
	}
	for _, english := range []string{"VERDICT", "MALICIOUS", "files inspected", "at or above", "report.inspect"} {
		if strings.Contains(out, english) {
			t.Errorf("the Japanese table says %q:\n%s", english, out)
		}
	}
	if !strings.Contains(errOut, "llmfence: "+missing+" を検査できません: ") {
		t.Errorf("stderr lacks the Japanese cannot-inspect line:\n%s", errOut)
	}

	enJSON, _, enCode := runCLI(t, "", "inspect", "--format", "json", "--lang", "en", "--workers", "1", dir, missing)
	jaJSON, _, jaCode := runCLI(t, "", "inspect", "--format", "json", "--lang", "ja", "--workers", "1", dir, missing)
	if enCode != jaCode || enJSON == "" || enJSON != jaJSON {
		t.Errorf("JSON Lines change with --lang (exit %d/%d):\nen:\n%s\nja:\n%s", enCode, jaCode, enJSON, jaJSON)
	}

	out, errOut, _ = runInspectCLI(t, "--workers", "1", dir, missing)
	if !strings.Contains(out, "VERDICT") || !strings.Contains(out, "files inspected") || strings.Contains(out+errOut, "report.inspect") {
		t.Errorf("without a printer the table is not English:\n%s", out)
	}
	if !strings.Contains(errOut, "llmfence: cannot inspect "+missing+": ") {
		t.Errorf("without a printer stderr lacks the English cannot-inspect line:\n%s", errOut)
	}
}
