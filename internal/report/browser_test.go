package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"

	"github.com/llmfence/llmfence/internal/locale"
)

// chromiumPath finds Debian's chromium. Without it the browser tests skip,
// except under CI, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("LLMFENCE_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium fonts-noto-cjk); CI needs it for the report's browser checks")
	}
	t.Skip("chromium is not installed; the browser checks of the HTML report need it (apt-get install chromium fonts-noto-cjk)")
	return ""
}

// browser starts a headless Chromium that can reach nothing: no
// background networking, every host name unresolvable. The page is a file.
func browser(t *testing.T, width, height int, env ...string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.Env(env...),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"),
		chromedp.WindowSize(width, height),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// layoutProblems lists every element whose content is wider than its box
// (clipped, or spilling out), every box that sticks out of its parent,
// a page wider than the window, and chart labels that run into the bars
// or out of the chart. Closed <details> are opened first, so the full
// prompts are checked too.
const layoutProblems = `(() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const problems = [];
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '') +
    ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
  const de = document.documentElement;
  if (de.scrollWidth > de.clientWidth + 1) problems.push('the page scrolls sideways: ' + de.scrollWidth + 'px in a ' + de.clientWidth + 'px window');
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none') continue;
    if (cs.display !== 'inline' && el.scrollWidth > el.clientWidth + 1) {
      problems.push(name(el) + ': content ' + el.scrollWidth + 'px wide in a ' + el.clientWidth + 'px box');
    }
    const p = el.parentElement;
    if (p && p !== document.body && getComputedStyle(p).display !== 'inline') {
      const r = el.getBoundingClientRect(), pr = p.getBoundingClientRect();
      if (r.width > 0 && (r.right > pr.right + 1 || r.left < pr.left - 1)) {
        problems.push(name(el) + ': sticks out of ' + name(p) + ' (' + Math.round(r.left) + '..' + Math.round(r.right) + ' in ' + Math.round(pr.left) + '..' + Math.round(pr.right) + ')');
      }
    }
  }
  for (const svg of document.querySelectorAll('svg')) {
    const vb = svg.viewBox.baseVal;
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBBox();
      if (t.getAttribute('x') === '0' && b.x + b.width > 148) problems.push('chart label "' + t.textContent + '" runs into the bars (' + Math.round(b.width) + 'px)');
      if (b.x + b.width > vb.width || b.y + b.height > vb.height + 2) problems.push('chart text "' + t.textContent + '" is cut off by the chart');
    }
  }
  return problems;
})()`

// cjkFont matches the families that carry Japanese glyphs.
var cjkFont = regexp.MustCompile(`(?i)CJK|Noto Sans JP|Hiragino|Yu Gothic|Meiryo|IPA|Takao|VL Gothic|Droid Sans Fallback`)

// cjkRunes counts the Japanese characters of an element's own text.
func cjkRunes(s string) int {
	n := 0
	for _, r := range s {
		if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) {
			n++
		}
	}
	return n
}

// checkFonts asks Chromium which fonts drew each element's own text: the
// Japanese characters must come from a CJK font (not tofu, not a Latin
// font's missing-glyph box).
func checkFonts(ctx context.Context) ([]string, int, error) {
	var problems []string
	checked := 0
	_, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, dom.Enable, dom.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		if _, err := cdp.Call(ctx, t, css.Enable, cdp.Empty{}); err != nil {
			return chromedp.Void{}, err
		}
		depth := int64(-1)
		doc, err := cdp.Call(ctx, t, dom.GetDocument, dom.GetDocumentParams{Depth: &depth})
		if err != nil {
			return chromedp.Void{}, err
		}
		var walk func(n *cdp.Node) error
		walk = func(n *cdp.Node) error {
			own := ""
			for _, c := range n.Children {
				if c.NodeType == 3 { // a text node
					own += c.NodeValue
				}
			}
			if want := cjkRunes(own); want > 0 && n.NodeName != "TITLE" && n.NodeName != "STYLE" {
				res, err := cdp.Call(ctx, t, css.GetPlatformFontsForNode, css.GetPlatformFontsForNodeParams{NodeID: n.NodeID})
				if err != nil {
					return fmt.Errorf("fonts of <%s>: %w", strings.ToLower(n.NodeName), err)
				}
				var got float64
				var names []string
				for _, f := range res.Fonts {
					names = append(names, fmt.Sprintf("%s×%g", f.FamilyName, f.GlyphCount))
					if cjkFont.MatchString(f.FamilyName) {
						got += f.GlyphCount
					}
				}
				checked++
				if got < float64(want) {
					text := []rune(strings.TrimSpace(own))
					problems = append(problems, fmt.Sprintf("<%s> %q: %d Japanese characters, %g drawn with a CJK font (fonts: %s)",
						strings.ToLower(n.NodeName), string(text[:min(len(text), 30)]), want, got, strings.Join(names, ", ")))
				}
			}
			for _, c := range n.Children {
				if err := walk(c); err != nil {
					return err
				}
			}
			return nil
		}
		return chromedp.Void{}, walk(doc.Root)
	})
	return problems, checked, err
}

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
			ctx := browser(t, size.w, size.h)
			if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
				t.Fatal(err)
			}
			lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
			if err != nil {
				t.Fatal(err)
			}
			problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](layoutProblems))
			if err != nil {
				t.Fatal(err)
			}
			if lang != "ja" {
				t.Errorf("lang = %q", lang)
			}
			for _, p := range problems {
				t.Errorf("layout: %s", p)
			}
			fontProblems, checked, err := checkFonts(ctx)
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

// TestBrowserChecksCatchProblems: the layout and font checks fail on a
// page that clips a table column, overflows a box and draws Japanese
// with a Latin-only font, so a passing run means something.
func TestBrowserChecksCatchProblems(t *testing.T) {
	page := `<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><style>
body{font-family:"DejaVu Sans",sans-serif}
.narrow{width:120px}
td{max-width:60px;overflow:hidden;white-space:nowrap}
.latin{font-family:"DejaVu Sans"}
</style></head><body><main>
<div class="narrow"><p style="width:300px">モデル管理機能に認証なしで到達できます</p></div>
<table><tr><td>既知の脆弱性があるバージョンです</td></tr></table>
<p class="latin" lang="en">認証</p>
<footer>end</footer></main></body></html>`
	path := filepath.Join(t.TempDir(), "bad.html")
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
		t.Fatal(err)
	}
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](layoutProblems))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(problems, "\n")
	for _, want := range []string{`p "モデル管理機能`, `td "既知の脆弱性`} {
		if !strings.Contains(joined, want) {
			t.Errorf("the layout check missed %s; it found:\n%s", want, joined)
		}
	}
	fontProblems, _, err := checkFonts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fontProblems) != 0 {
		t.Errorf("with the CJK fonts installed: %v", fontProblems)
	}

	// The same page on a machine whose only fonts are Latin (a fontconfig
	// that knows DejaVu alone): Japanese is drawn as missing glyphs, and
	// the font check says so.
	dir := t.TempDir()
	conf := filepath.Join(dir, "fonts.conf")
	if err := os.WriteFile(conf, []byte(`<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>
<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>`+dir+`</cachedir></fontconfig>`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/share/fonts/truetype/dejavu"); err != nil {
		t.Skip("fonts-dejavu-core is not installed; the missing-font case needs a Latin-only font directory")
	}
	latin := browser(t, 800, 600, "FONTCONFIG_FILE="+conf)
	if err := chromedp.Do(latin, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
		t.Fatal(err)
	}
	fontProblems, _, err = checkFonts(latin)
	if err != nil {
		t.Fatal(err)
	}
	if len(fontProblems) < 3 {
		t.Errorf("without CJK fonts the check found %d problems, want one per Japanese element: %v", len(fontProblems), fontProblems)
	}
	if cjkFont.MatchString("DejaVu Sans") || !cjkFont.MatchString("Noto Sans CJK JP") {
		t.Errorf("cjkFont does not tell CJK fonts apart")
	}
}
