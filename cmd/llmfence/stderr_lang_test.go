package main

import (
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAuditSendLinesLang: audit --send says what it delivered in
// the language of --lang; the figures and paths are the same.
func TestAuditSendLinesLang(t *testing.T) {
	root := auditRoot(t, true)
	env := map[string]string{EnvSendKey: "test-key"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/api/audit"
	l.Close()
	srv := httptest.NewServer(&receiver{})
	defer srv.Close()
	up := srv.URL + "/api/audit"
	for lang, wants := range map[string][]string{
		"en": {"llmfence: sent 1 kept results to " + up + "; 0 still kept in SPOOL\n", "llmfence: sent the result to " + up + "\n"},
		"ja": {"llmfence: 保管していた結果 1 件を " + up + " に送信しました。SPOOL にはまだ 0 件を保管しています\n", "llmfence: 結果を " + up + " に送信しました\n"},
	} {
		spool := filepath.Join(t.TempDir(), "spool")
		// The target is down: one result is kept.
		if code, _, errs := runLlmfence(t, env, "audit", "--lang", lang, "--root", root, "--fail-on", "critical", "--send", down, "--spool", spool); code != 2 {
			t.Fatalf("--lang %s, target down: exit %d\n%s", lang, code, errs)
		}
		code, _, errs := runLlmfence(t, env, "audit", "--lang", lang, "--root", root, "--fail-on", "critical", "--send", up, "--spool", spool)
		if code != 0 {
			t.Fatalf("--lang %s, target up: exit %d\n%s", lang, code, errs)
		}
		for _, want := range wants {
			if want = strings.ReplaceAll(want, "SPOOL", spool); !strings.Contains(errs, want) {
				t.Errorf("--lang %s: stderr lacks %q:\n%s", lang, want, errs)
			}
		}
	}
}

// TestDatascanProblemsLang: where datascan stopped reading a file is
// said in the language of --lang, at the same byte; the reason itself
// stays as the reader gave it.
func TestDatascanProblemsLang(t *testing.T) {
	data := filepath.Join(t.TempDir(), "truncated.jsonl")
	if err := os.WriteFile(data, []byte(`{"text":"hello"}`+"\n"+`{"text":"world"}`+"\n"+`{"text":"cut`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	at := map[string]*regexp.Regexp{
		"en": regexp.MustCompile(`(?m)^llmfence: ` + regexp.QuoteMeta(data) + `: (.+) \(at byte (\d+)\)$`),
		"ja": regexp.MustCompile(`(?m)^llmfence: ` + regexp.QuoteMeta(data) + `: (.+)（(\d+) バイト目）$`),
	}
	got := map[string][]string{}
	for lang, re := range at {
		_, errs, _ := runDatascanCLI(t, "--lang", lang, "--format", "json", data)
		m := re.FindStringSubmatch(errs)
		if m == nil {
			t.Fatalf("--lang %s: no line saying where reading stopped:\n%s", lang, errs)
		}
		got[lang] = m[1:]
	}
	if got["en"][0] != got["ja"][0] || got["en"][1] != got["ja"][1] || got["en"][1] == "0" {
		t.Errorf("en %q, ja %q: want the same reason and byte", got["en"], got["ja"])
	}
}
