// Package browsertest drives a real headless Chromium for tests of pages
// people read in Japanese and English: it finds Debian's chromium, starts
// it reaching nothing but loopback, and checks a loaded page the way a
// reader would notice problems — text cut off or spilling out of its box,
// a page wider than the window, Japanese drawn without a CJK font.
//
// Without Chromium the tests that need it skip, except under CI (CI set),
// where they fail: the checks must run there.
//
// Only tests import this package.
package browsertest

import (
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
)

// Chromium finds Debian's chromium ($LLMFENCE_CHROMIUM first). Without it
// the test skips, except under CI, where it fails.
func Chromium(t testing.TB) string {
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
		t.Fatal("chromium is not installed, and CI is set: apt-get install chromium fonts-noto-cjk")
	}
	t.Skip("chromium is not installed; the browser checks need it (apt-get install chromium fonts-noto-cjk)")
	return ""
}

// Options shape a browser.
type Options struct {
	// Width and Height are the window's size (default 1280×900).
	Width, Height int
	// AcceptLanguage is the browser's language list, sent as
	// Accept-Language ("ja", "ja,en;q=0.8"); "" leaves Chromium's default.
	AcceptLanguage string
	// Env is added to the browser's environment (FONTCONFIG_FILE=...).
	Env []string
	// Timeout bounds the whole browser session (default 90 s).
	Timeout time.Duration
}

// Browser starts a headless Chromium for the test and returns its tab.
// It reaches nothing but 127.0.0.1 (every other host name and address is
// mapped to "not found", so a page cannot load anything from elsewhere),
// fetches nothing in the background, and runs without the sandbox as root
// (Chromium refuses to sandbox as root). It is closed when the test ends.
func Browser(t testing.TB, o Options) context.Context {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.Env(o.Env...),
		chromedp.ExecPath(Chromium(t)),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(o.Width, o.Height),
	)
	if o.AcceptLanguage != "" {
		opts = append(opts, chromedp.Flag("accept-lang", o.AcceptLanguage), chromedp.Flag("lang", strings.Split(o.AcceptLanguage, ",")[0]))
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
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

// layoutScript lists every element whose content is wider than its box
// (clipped, or spilling out), every box that sticks out of its parent, a
// page wider than the window, and chart labels that run into the bars or
// out of the chart. Closed <details> are opened first, so their contents
// are checked too.
const layoutScript = `(() => {
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
    if (!vb || vb.width === 0) continue;
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBBox();
      if (t.getAttribute('x') === '0' && b.x + b.width > 148) problems.push('chart label "' + t.textContent + '" runs into the bars (' + Math.round(b.width) + 'px)');
      if (b.x + b.width > vb.width || b.y + b.height > vb.height + 2) problems.push('chart text "' + t.textContent + '" is cut off by the chart');
    }
  }
  return problems;
})()`

// LayoutProblems checks the loaded page: text cut off or spilling out of
// its box, boxes sticking out of their parents, a page wider than the
// window, chart labels cut off. Each problem names the element.
func LayoutProblems(ctx context.Context) ([]string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](layoutScript))
}

// CJKFont matches the font families that carry Japanese glyphs.
var CJKFont = regexp.MustCompile(`(?i)CJK|Noto Sans JP|Hiragino|Yu Gothic|Meiryo|IPA|Takao|VL Gothic|Droid Sans Fallback`)

// CJKRunes counts the Japanese characters (kanji, hiragana, katakana) of s.
func CJKRunes(s string) int {
	n := 0
	for _, r := range s {
		if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) {
			n++
		}
	}
	return n
}

// unrendered are elements whose text no font draws on the page (a
// document's or an SVG shape's title is a tooltip; the options of a
// closed list are not drawn, the list draws the chosen one).
var unrendered = map[string]bool{"title": true, "style": true, "script": true, "template": true, "option": true}

// shownOption is the text a closed <select> shows: its selected option,
// else its first.
func shownOption(sel *cdp.Node) string {
	var first *cdp.Node
	var walk func(n *cdp.Node) *cdp.Node
	walk = func(n *cdp.Node) *cdp.Node {
		for _, c := range n.Children {
			if strings.EqualFold(c.NodeName, "option") {
				if first == nil {
					first = c
				}
				for i := 0; i+1 < len(c.Attributes); i += 2 {
					if c.Attributes[i] == "selected" {
						return c
					}
				}
			} else if o := walk(c); o != nil {
				return o
			}
		}
		return nil
	}
	o := walk(sel)
	if o == nil {
		o = first
	}
	if o == nil {
		return ""
	}
	text := ""
	for _, c := range o.Children {
		if c.NodeType == 3 {
			text += c.NodeValue
		}
	}
	return text
}

// FontProblems asks Chromium which fonts drew each element's own text:
// Japanese characters must come from a CJK font (not tofu, not a Latin
// font's missing-glyph box). checked is the number of elements with
// Japanese text that were looked at.
func FontProblems(ctx context.Context) (problems []string, checked int, err error) {
	_, err = chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
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
			if strings.EqualFold(n.NodeName, "select") {
				own = shownOption(n) // a closed list draws its chosen option
			}
			if want := CJKRunes(own); want > 0 && !unrendered[strings.ToLower(n.NodeName)] {
				res, err := cdp.Call(ctx, t, css.GetPlatformFontsForNode, css.GetPlatformFontsForNodeParams{NodeID: n.NodeID})
				if err != nil {
					return fmt.Errorf("fonts of <%s>: %w", strings.ToLower(n.NodeName), err)
				}
				var got float64
				var names []string
				for _, f := range res.Fonts {
					names = append(names, fmt.Sprintf("%s×%g", f.FamilyName, f.GlyphCount))
					if CJKFont.MatchString(f.FamilyName) {
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

// Screenshot saves a full-page screenshot as name.png into
// $LLMFENCE_SCREENSHOT_DIR (or $LLMFENCE_TEST_ARTIFACTS, else the system's
// temporary directory) and returns its path ("" when none could be taken).
func Screenshot(ctx context.Context, name string) string {
	dir := os.Getenv("LLMFENCE_SCREENSHOT_DIR")
	if dir == "" {
		dir = os.Getenv("LLMFENCE_TEST_ARTIFACTS")
	}
	if dir == "" {
		dir = os.TempDir()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)) // 100: PNG (lower qualities give JPEG)
	if err != nil || len(png) == 0 {
		return ""
	}
	path := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(name)+".png")
	if os.WriteFile(path, png, 0o644) != nil {
		return ""
	}
	return path
}

// CheckJapanesePage writes html to a temporary file, opens it at 1280 and
// 720 pixels wide and fails t on every layout or font problem, when the
// document's lang is not "ja", or when fewer than minJapanese elements
// with Japanese text were checked (a page that lost its translation).
// name labels the subtests and any screenshot ($LLMFENCE_SCREENSHOT_DIR).
func CheckJapanesePage(t *testing.T, name string, html []byte, minJapanese int) {
	t.Helper()
	Chromium(t)
	path := filepath.Join(t.TempDir(), name+".html")
	if err := os.WriteFile(path, html, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct{ w, h int }{{1280, 900}, {720, 900}} {
		t.Run(fmt.Sprintf("%dpx", size.w), func(t *testing.T) {
			ctx := Browser(t, Options{Width: size.w, Height: size.h, Timeout: 90 * time.Second})
			if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
				t.Fatal(err)
			}
			lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
			if err != nil {
				t.Fatal(err)
			}
			if lang != "ja" {
				t.Errorf("document lang = %q, want ja", lang)
			}
			problems, err := LayoutProblems(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("layout: %s", p)
			}
			fontProblems, checked, err := FontProblems(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if checked < minJapanese {
				t.Errorf("only %d elements with Japanese text were checked, want at least %d", checked, minJapanese)
			}
			for _, p := range fontProblems {
				t.Errorf("font: %s", p)
			}
			if os.Getenv("LLMFENCE_SCREENSHOT_DIR") != "" {
				Screenshot(ctx, fmt.Sprintf("%s.%dpx", name, size.w))
			}
		})
	}
}
