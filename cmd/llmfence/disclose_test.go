package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/disclose"
	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/store"
)

func TestDiscloseCommand(t *testing.T) {
	prefix := "127.113.0.0/26"
	startFleet(t, lab.Config{Seed: 5, Prefix: netip.MustParsePrefix(prefix), Live: 10})
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	if _, e, c := runCLI(t, "", "--db", db, "scan", "--rate", "0", "--progress", "never", "-p", "11434,8000,8080", prefix); c != 0 {
		t.Fatalf("scan: %s", e)
	}
	own := filepath.Join(dir, "owners.yaml")
	os.WriteFile(own, []byte("version: 1\nowners:\n  - team: lab-team\n    contact: lab@example.org\n    match: [127.113.0.0/27]\n"), 0o600)
	out := filepath.Join(dir, "reports")
	_, e, c := runCLI(t, "", "--db", db, "disclose", "latest", "--owners", own, "-o", out, "--security-txt=false")
	if c != 0 {
		t.Fatalf("disclose: %d %s", c, e)
	}
	b, err := os.ReadFile(filepath.Join(out, "lab-team.md"))
	if err != nil || !strings.Contains(string(b), "lab-team (lab@example.org, from the owners file)") {
		t.Errorf("lab-team.md: %v\n%s", err, b)
	}
	// In Japanese: the notice of a Japanese CSIRT, with the sender to answer.
	ja := filepath.Join(dir, "reports-ja")
	if _, e, c := runCLI(t, "", "--db", db, "disclose", "latest", "--owners", own, "-o", ja, "--security-txt=false", "--lang", "ja", "--from", "csirt@example.org"); c != 0 {
		t.Fatalf("disclose --lang ja: %d %s", c, e)
	}
	b, err = os.ReadFile(filepath.Join(ja, "lab-team.md"))
	for _, want := range []string{"**宛先**：lab-team ご担当者様（lab@example.org、owners ファイルの登録先）", "## 対応のお願い", "csirt@example.org までお願いいたします。"} {
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("lab-team.md in Japanese lacks %q: %v\n%s", want, err, b)
		}
	}
	// CSV is the same whatever the language.
	enCSV, _, c1 := runCLI(t, "", "--db", db, "disclose", "latest", "--owners", own, "--security-txt=false", "--format", "csv")
	jaCSV, _, c2 := runCLI(t, "", "--db", db, "disclose", "latest", "--owners", own, "--security-txt=false", "--format", "csv", "--lang", "ja")
	if c1 != 0 || c2 != 0 || enCSV != jaCSV || enCSV == "" {
		t.Errorf("CSV differs with --lang ja (%d, %d):\n%s\n---\n%s", c1, c2, enCSV, jaCSV)
	}
	os.WriteFile(own, []byte("version: 1\nowners:\n  - team: x\n    match: [not-a-cidr/99]\n"), 0o600)
	if _, e, c := runCLI(t, "", "--db", db, "disclose", "latest", "--owners", own); c != 2 || !strings.Contains(e, "owners.yaml") {
		t.Errorf("malformed owners file: %d %s", c, e)
	}
	if _, e, c := runCLI(t, "", "--db", db, "disclose", "latest", "--format", "pdf"); c != 2 {
		t.Errorf("bad format: %d %s", c, e)
	}
}

func TestDemoPointsAtServe(t *testing.T) {
	if testing.Short() {
		t.Skip("demo scans a fleet")
	}
	dir := t.TempDir()
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	_, e, c := runCLI(t, "", "--db", filepath.Join(dir, "s.db"), "demo", "--lab-hosts", "8", "--lab-prefix", "127.114.0.0/28")
	if c != 0 || !strings.Contains(e, "serve and open http://127.0.0.1:8470/") {
		t.Errorf("demo (%d) does not say how to see the run in serve:\n%s", c, e)
	}
}

// TestServeDisclosesInTheReadersLanguage: the dashboard's disclosure
// action (serve's adapter over package disclose) writes the Markdown
// notice in the language the console asks for, and CSV the same in both.
func TestServeDisclosesInTheReadersLanguage(t *testing.T) {
	prefix := "127.122.0.0/28"
	startFleet(t, lab.Config{Seed: 6, Prefix: netip.MustParsePrefix(prefix), Live: 4})
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	if _, e, c := runCLI(t, "", "--db", db, "scan", "--rate", "0", "--progress", "never", "-p", "11434,8000,8080", prefix); c != 0 {
		t.Fatalf("scan: %s", e)
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cat, err := report.Catalogue(messageSources(newRoot(&env{}))...)
	if err != nil {
		t.Fatal(err)
	}
	d := discloser{st: st, text: cat, opts: disclose.Options{From: "csirt@example.org"}}
	out := map[string]string{}
	for _, lang := range []locale.Lang{locale.English, locale.Japanese} {
		for _, format := range []string{"markdown", "csv"} {
			var b bytes.Buffer
			if err := d.Disclose(context.Background(), "latest", "", format, lang, &b); err != nil {
				t.Fatal(err)
			}
			out[string(lang)+format] = b.String()
		}
	}
	if !strings.Contains(out["jamarkdown"], "## 対応のお願い") || !strings.Contains(out["enmarkdown"], "## What we ask of you") {
		t.Errorf("notices:\n%s\n---\n%s", out["enmarkdown"], out["jamarkdown"])
	}
	if out["encsv"] != out["jacsv"] || out["encsv"] == "" {
		t.Errorf("CSV changes with the language")
	}
}
