package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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
	path := filepath.Join(t.TempDir(), "report.ja.html")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct{ w, h int }{{1280, 900}, {720, 900}} {
		t.Run(fmt.Sprintf("%dpx", size.w), func(t *testing.T) {
			ctx := browsertest.Browser(t, browsertest.Options{Width: size.w, Height: size.h, Timeout: 60 * time.Second})
			if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
				t.Fatal(err)
			}
			lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
			if err != nil {
				t.Fatal(err)
			}
			problems, err := browsertest.LayoutProblems(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if lang != "ja" {
				t.Errorf("lang = %q", lang)
			}
			for _, p := range problems {
				t.Errorf("layout: %s", p)
			}
			fontProblems, checked, err := browsertest.FontProblems(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if checked < 20 {
				t.Errorf("only %d elements with Japanese text were checked; the report should have many", checked)
			}
			for _, p := range fontProblems {
				t.Errorf("font: %s", p)
			}
			if dir := os.Getenv("LLMFENCE_SCREENSHOT_DIR"); dir != "" {
				png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("report.ja.%d.png", size.w)), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
