package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/browsertest"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/probe"
	"github.com/llmfence/llmfence/internal/probe/report"
)

func printer(t testing.TB, lang locale.Lang) *locale.Printer {
	t.Helper()
	c, err := report.Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	return c.Printer(lang)
}

// TestMessagesInBothLanguages: every message has English and Japanese
// texts with the same placeholders, and every reason internal/probe
// writes (probe.reason.*, and the vocabularies it names through _msg
// arguments) is a message.
func TestMessagesInBothLanguages(t *testing.T) {
	own, err := locale.NewCatalogue(report.Messages())
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Check(); err != nil {
		t.Fatal(err)
	}
	all, err := report.Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	if err := all.Check(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, name := range []string{"analyse.go", "backdoor.go"} {
		src, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(probe\.reason\.[a-z_.]+)"`).FindAllStringSubmatch(string(src), -1) {
			ids[m[1]] = true
		}
	}
	if len(ids) < 10 {
		t.Fatalf("found only %d reason IDs in internal/probe: %v", len(ids), ids)
	}
	for _, v := range []string{"same", "lower", "higher"} {
		ids["probe.baseline."+v] = true
	}
	for _, v := range []string{"given", "show"} {
		ids["probe.prompt_source."+v] = true
	}
	for _, v := range []string{probe.VerdictIntact, probe.VerdictWeakened, probe.VerdictRemoved, probe.VerdictClean, probe.VerdictBackdoor,
		probe.VerdictNoLeak, probe.VerdictLeak, probe.VerdictRobust, probe.VerdictFragile, probe.VerdictUnknown} {
		ids["probe.verdict."+v] = true
	}
	for _, v := range []string{probe.RoleTarget, probe.RoleBaseline, probe.RoleJudge} {
		ids["probe.role."+v] = true
	}
	for id := range ids {
		for _, l := range locale.Langs {
			if !own.Has(l, id) {
				t.Errorf("internal/probe says %s, which has no %s text", id, l)
			}
		}
	}
}

// TestReasonMessagesSayTheReason: the English of a summary's reason_msgs
// is its reason, word for word, so the Japanese says the same thing.
func TestReasonMessagesSayTheReason(t *testing.T) {
	res := result(t)
	en, ja := printer(t, locale.English), printer(t, locale.Japanese)
	for _, s := range res.Summaries {
		if len(s.ReasonMsgs) == 0 {
			t.Errorf("%s: no reason_msgs", s.Suite)
			continue
		}
		var parts []string
		for _, m := range s.ReasonMsgs {
			parts = append(parts, en.Message(m.ID, m.Args))
		}
		if got := strings.Join(parts, "; "); got != s.Reason {
			t.Errorf("%s: the messages say\n  %q\nthe reason is\n  %q", s.Suite, got, s.Reason)
		}
		jr := report.Reason(ja, s)
		if jr == s.Reason || strings.Contains(jr, "probe.reason") || !strings.ContainsAny(jr, "をはがのでし") {
			t.Errorf("%s: Japanese reason %q", s.Suite, jr)
		}
	}
}

// TestJapaneseTable: the Japanese table (golden file) is aligned by
// display width: every cell of a column starts at the same terminal
// column, however many full-width characters precede it.
func TestJapaneseTable(t *testing.T) {
	res := result(t)
	res.Journal = "/var/lib/llmfence/probe/ジャーナル.jsonl"
	var b bytes.Buffer
	if err := report.Table(&b, res, report.TableOptions{Text: printer(t, locale.Japanese), Triggers: 2}); err != nil {
		t.Fatal(err)
	}
	golden(t, "run.ja.txt", b.Bytes())
	out := b.String()
	for _, want := range []string{"判定", "ガードレール", "維持", "バックドアあり", "緊急", "カテゴリー別のガードレール:", "詐欺・フィッシング",
		"… ほか 1 件", "ジャーナル: /var/lib/llmfence/probe/ジャーナル.jsonl", "1分12秒"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Japanese table lacks %q", want)
		}
	}
	// The verdict table: the column after the suite starts at one display
	// column in every row.
	lines := strings.Split(out, "\n")
	var starts []int
	for _, l := range lines[2:7] {
		f := strings.SplitN(l, "  ", 2)
		rest := strings.TrimLeft(f[1], " ")
		starts = append(starts, locale.Width(l[:len(l)-len(rest)]))
	}
	for _, s := range starts[1:] {
		if s != starts[0] {
			t.Errorf("verdict column not aligned: starts at %v\n%s", starts, strings.Join(lines[2:7], "\n"))
			break
		}
	}
}

// TestJapaneseHTML: the Japanese report (golden file) has lang="ja", no
// English label of the report, and the answers still escaped.
func TestJapaneseHTML(t *testing.T) {
	res := result(t)
	res.Attempts[0].Excerpt = `<script>alert(1)</script>`
	var b bytes.Buffer
	if err := report.HTMLIn(&b, res, printer(t, locale.Japanese)); err != nil {
		t.Fatal(err)
	}
	golden(t, "run.ja.html", b.Bytes())
	out := b.String()
	if strings.Contains(out, "<script>") || !strings.Contains(out, "&lt;script&gt;") {
		t.Error("answer text reached the HTML unescaped")
	}
	for _, want := range []string{`<html lang="ja">`, "llmfence プローブ", "ガードレール: 拒否率", "バックドアの候補", "試行", "2025年6月1日 09:30:00 UTC", "1分12秒"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Japanese report lacks %q", want)
		}
	}
	en := printer(t, locale.English)
	ja := printer(t, locale.Japanese)
	for _, id := range en.Catalogue().IDs(locale.English) {
		if !strings.HasPrefix(id, "probe.html.") || len(en.Catalogue().Placeholders(id)) > 0 || en.T(id) == ja.T(id) {
			continue
		}
		if e := en.T(id); strings.Contains(out, ">"+e+"<") {
			t.Errorf("English %q (%s) in the Japanese report", e, id)
		}
	}
}

// TestJapaneseHTMLInChromium opens the Japanese report in headless
// Chromium at a desktop and a narrow window: Japanese text is drawn with
// a CJK font, and nothing is cut off or spills out of its box.
func TestJapaneseHTMLInChromium(t *testing.T) {
	res := result(t)
	var b bytes.Buffer
	if err := report.HTMLIn(&b, res, printer(t, locale.Japanese)); err != nil {
		t.Fatal(err)
	}
	browsertest.CheckJapanesePage(t, "probe.ja", b.Bytes(), 20)
}
