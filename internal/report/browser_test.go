package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/llmfence/llmfence/internal/browsertest"
	"github.com/llmfence/llmfence/internal/locale"
)

// TestJapaneseReportInChromium opens the Japanese HTML report in headless
// Chromium at a desktop and a narrow window: Japanese text is drawn with
// a CJK font, and nothing is cut off or spills out of its box.
func TestJapaneseReportInChromium(t *testing.T) {
	r := judgedFixture(t)
	r.Text = printer(t, locale.Japanese)
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	browsertest.CheckJapanesePage(t, "report.ja", b.Bytes(), 20)
}

// TestIDsDoNotWrapInChromium opens the English report in headless
// Chromium at a narrow window: every finding ID (LLMF-012) and every
// host:port in the summary table stays on one line, and remediation
// code spans are drawn as <code> (no literal backticks on the page).
func TestIDsDoNotWrapInChromium(t *testing.T) {
	r := judgedFixture(t)
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.Browser(t, browsertest.Options{Width: 480, Height: 900, Timeout: 60 * time.Second})
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
		t.Fatal(err)
	}
	// A wrapped inline element has more than one client rect.
	wrapped, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		const cells = document.querySelectorAll('td.id code, td.nowrap code');
		for (const el of cells) {
			if (el.getClientRects().length !== 1) out.push(el.textContent);
		}
		if (cells.length === 0) out.push('no ID cells found');
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wrapped {
		t.Errorf("wraps at 480px: %q", w)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "`") {
		t.Errorf("the page shows a literal backtick")
	}
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('ol.fix code').length`))
	if err != nil {
		t.Fatal(err)
	}
	if codes == 0 {
		t.Errorf("no code spans in the remediation lists")
	}
}
