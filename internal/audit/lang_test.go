package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
)

func auditPrinter(t *testing.T, lang locale.Lang) *locale.Printer {
	t.Helper()
	cat, err := locale.NewCatalogue(Messages(), risk.Messages(), vulndb.Messages())
	if err != nil {
		t.Fatal(err)
	}
	return cat.Printer(lang)
}

// TestFixMessages: every audit.fix.* message the fix code names exists in
// both languages, and for the fixture machine the English of each fix
// line's message is the line itself, so the Japanese says the same fix
// with the same commands.
func TestFixMessages(t *testing.T) {
	own, err := locale.NewCatalogue(Messages())
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Check(); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("remedy.go")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`"(audit\.fix\.[a-z_.]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(ids) < 10 {
		t.Fatalf("found %d fix messages in remedy.go", len(ids))
	}
	for _, m := range ids {
		for _, l := range locale.Langs {
			if !own.Has(l, m[1]) {
				t.Errorf("remedy.go names %s, which has no %s text", m[1], l)
			}
		}
	}

	res := runFixture(t, fixtureMachine(t), Options{Prober: &fakeProber{}})
	en, ja := auditPrinter(t, locale.English), auditPrinter(t, locale.Japanese)
	said := 0
	for _, rt := range res.Runtimes {
		lines := strings.Split(rt.Remediation, "\n")
		if len(rt.RemediationMsgs) != len(lines) {
			t.Errorf("%s: %d lines, %d messages", rt.Product, len(lines), len(rt.RemediationMsgs))
			continue
		}
		for i, m := range rt.RemediationMsgs {
			if !strings.HasPrefix(m.ID, "audit.fix.") {
				continue
			}
			said++
			// English: K_msg arguments are not followed, K is the English.
			if got := en.Message(m.ID, m.Args); got != lines[i] {
				t.Errorf("%s: message %s says\n  %q\nthe line is\n  %q", rt.Product, m.ID, got, lines[i])
			}
			jt := ja.Message(m.ID, m.Args)
			if jt == lines[i] || !strings.ContainsAny(jt, "をてでし") {
				t.Errorf("%s: Japanese of %s: %q", rt.Product, m.ID, jt)
			}
			for _, cmd := range []string{"llmfence guard --upstream", "docker run -p", "systemctl edit --full"} {
				if strings.Contains(lines[i], cmd) && !strings.Contains(jt, cmd) {
					t.Errorf("the Japanese of %s lost the command %q: %s", m.ID, cmd, jt)
				}
			}
			if strings.Contains(jt, "It was started") || strings.Contains(jt, "add --host") {
				t.Errorf("English phrase inside the Japanese fix: %s", jt)
			}
		}
	}
	if said < 6 {
		t.Errorf("only %d fix lines carry audit.fix messages", said)
	}
}

// TestJapaneseHTML: the audit's HTML report in Japanese (golden file):
// lang="ja", labels, severities, findings and fixes in Japanese.
func TestJapaneseHTML(t *testing.T) {
	res := runFixture(t, fixtureMachine(t), Options{Prober: &fakeProber{}})
	var b bytes.Buffer
	if err := WriteHTMLIn(&b, res, auditPrinter(t, locale.Japanese)); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, filepath.Join("testdata", "fixture_machine.ja.golden.html"), b.Bytes())
	out := b.String()
	for _, want := range []string{`<html lang="ja">`, "llmfence による fixture-host の監査", "まず対処してください:", "緊急", "モデルストア（",
		"必要なクライアント向けに llmfence guard を前段に置いてください", "2026年1月2日 03:04:05 UTC"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Japanese audit report lacks %q", want)
		}
	}
	en := auditPrinter(t, locale.English)
	for _, id := range en.Catalogue().IDs(locale.English) {
		if !strings.HasPrefix(id, "audit.html.") || len(en.Catalogue().Placeholders(id)) > 0 || en.T(id) == auditPrinter(t, locale.Japanese).T(id) {
			continue
		}
		if e := en.T(id); strings.Contains(out, ">"+e+"<") || strings.Contains(out, ">"+e+" ") {
			t.Errorf("English %q (%s) in the Japanese audit report", e, id)
		}
	}
	if strings.Contains(out, "sk-in-argv") || strings.Contains(out, "sk-envfile-secret") {
		t.Error("the report shows a secret")
	}
}

// TestEveryNamedMessage: every audit.* message the code names (notes,
// details, sources, fixes, parts, reasons) exists in both languages with
// the same placeholders (Check), and every exposure value has a name.
func TestEveryNamedMessage(t *testing.T) {
	own, err := locale.NewCatalogue(Messages())
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Check(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.go")
	named := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(audit\.[a-z_]+\.[a-z_.]+)"`).FindAllStringSubmatch(string(src), -1) {
			named++
			for _, l := range locale.Langs {
				if !own.Has(l, m[1]) {
					t.Errorf("%s names %s, which has no %s text", f, m[1], l)
				}
			}
		}
	}
	if named < 80 {
		t.Errorf("found only %d message IDs in the code", named)
	}
	for _, e := range []string{ExposureAll, ExposureNetwork, ExposureLoopback, ExposureNotListening, ExposureNotRunning, ExposureUnknown} {
		for _, l := range locale.Langs {
			if !own.Has(l, "audit.exposure."+e) {
				t.Errorf("exposure %s has no %s name", e, l)
			}
		}
	}
}

// TestRecordMessages: for the fixture machine every note, detail the
// audit wrote and setting source pairs with a message whose English is
// the recorded text, and whose Japanese is Japanese.
func TestRecordMessages(t *testing.T) {
	res := runFixture(t, fixtureMachine(t), Options{Prober: &fakeProber{}})
	en, ja := auditPrinter(t, locale.English), auditPrinter(t, locale.Japanese)
	jaText := regexp.MustCompile(`[\p{Hiragana}\p{Katakana}\p{Han}]`)
	said := 0
	check := func(where, english string, m service.Message) {
		t.Helper()
		said++
		if m.ID == "" {
			t.Errorf("%s: %q has no message", where, english)
			return
		}
		if got := en.Message(m.ID, m.Args); got != english {
			t.Errorf("%s: %s says %q, the record %q", where, m.ID, got, english)
		}
		if j := ja.Message(m.ID, m.Args); !jaText.MatchString(j) && m.ID != "audit.source.environment_file" {
			t.Errorf("%s: the Japanese of %s is not Japanese: %q", where, m.ID, j)
		}
	}
	notes := func(where string, ns []string, ms []service.Message) {
		if len(ns) != len(ms) {
			t.Errorf("%s: %d notes, %d messages", where, len(ns), len(ms))
			return
		}
		for i := range ns {
			check(where+" note", ns[i], ms[i])
		}
	}
	notes("machine", res.Machine.Notes, res.Machine.NoteMsgs)
	for _, rt := range res.Runtimes {
		notes(rt.Product, rt.Notes, rt.NoteMsgs)
		for k, src := range rt.SettingSources {
			check(rt.Product+" "+k, src, rt.SettingSourceMsgs[k])
		}
		for _, f := range rt.Findings {
			if f.DetailMsg == nil && risk.CallerRaised(f.ID) {
				t.Errorf("%s: %s %q has no message", rt.Product, f.ID, f.Detail)
			} else if f.DetailMsg != nil && strings.HasPrefix(f.DetailMsg.ID, "audit.") {
				check(rt.Product+" "+f.ID, f.Detail, *f.DetailMsg)
			}
		}
	}
	for _, st := range res.Stores {
		notes(st.Path, st.Notes, st.NoteMsgs)
	}
	if said < 20 {
		t.Errorf("only %d texts checked", said)
	}
}
