package browsertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestChecksCatchProblems: the layout and font checks fail on a page that
// clips a table column, overflows a box and draws Japanese with a
// Latin-only font, so a passing run means something.
func TestChecksCatchProblems(t *testing.T) {
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
	ctx := Browser(t, Options{Width: 800, Height: 600})
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
		t.Fatal(err)
	}
	problems, err := LayoutProblems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(problems, "\n")
	for _, want := range []string{`p "モデル管理機能`, `td "既知の脆弱性`} {
		if !strings.Contains(joined, want) {
			t.Errorf("the layout check missed %s; it found:\n%s", want, joined)
		}
	}
	fontProblems, _, err := FontProblems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fontProblems) != 0 {
		t.Errorf("with the CJK fonts installed: %v", fontProblems)
	}

	// The same page on a machine whose only fonts are Latin (a fontconfig
	// that knows DejaVu alone): Japanese is drawn as missing glyphs, and
	// the font check says so.
	if _, err := os.Stat("/usr/share/fonts/truetype/dejavu"); err != nil {
		t.Skip("fonts-dejavu-core is not installed; the missing-font case needs a Latin-only font directory")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "fonts.conf")
	if err := os.WriteFile(conf, []byte(`<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>
<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>`+dir+`</cachedir></fontconfig>`), 0o644); err != nil {
		t.Fatal(err)
	}
	latin := Browser(t, Options{Width: 800, Height: 600, Env: []string{"FONTCONFIG_FILE=" + conf}})
	if err := chromedp.Do(latin, chromedp.Navigate("file://"+path), chromedp.WaitReady("footer")); err != nil {
		t.Fatal(err)
	}
	fontProblems, _, err = FontProblems(latin)
	if err != nil {
		t.Fatal(err)
	}
	if len(fontProblems) < 3 {
		t.Errorf("without CJK fonts the check found %d problems, want one per Japanese element: %v", len(fontProblems), fontProblems)
	}
	if CJKFont.MatchString("DejaVu Sans") || !CJKFont.MatchString("Noto Sans CJK JP") {
		t.Errorf("CJKFont does not tell CJK fonts apart")
	}
}
