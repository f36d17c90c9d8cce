package console

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/llmfence/llmfence/internal/browsertest"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/schedule"
	"github.com/llmfence/llmfence/internal/store"
)

// browserSteps are the helpers of a browser test: run actions, read text,
// and on failure save a screenshot and stop.
type browserSteps struct {
	t   *testing.T
	ctx context.Context
}

func (b browserSteps) fail(name string, err error) {
	b.t.Helper()
	if path := browsertest.Screenshot(b.ctx, fmt.Sprintf("llmfence-browser-%s-%d", name, time.Now().Unix())); path != "" {
		b.t.Fatalf("%s: %v (screenshot: %s)", name, err, path)
	}
	b.t.Fatalf("%s: %v (no screenshot)", name, err)
}

func (b browserSteps) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fail(name, err)
	}
}

func (b browserSteps) text(name, css string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.fail(name, err)
	}
	return s
}

func (b browserSteps) eval(name, js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.fail(name, err)
	}
	return s
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// TestDashboardInABrowser drives the dashboard in a real browser: sign in,
// see the inventory, open a host's timeline, acknowledge a finding, create
// a schedule and see its run appear. A failure saves a screenshot.
func TestDashboardInABrowser(t *testing.T) {
	browsertest.Chromium(t)
	var sched *schedule.Manager
	h := newHarnessWith(t, Config{}, func(st store.ServerStore, jc *jobs.Config) func(*jobs.Engine) {
		sched = schedule.New(st)
		sched.Tick = time.Second
		jc.Hooks.Register, jc.Hooks.Periodic = sched.Register, sched.Periodic()
		return sched.Attach
	})
	h.srv.cfg.Schedules = sched
	prefix := "127.107.0.0/26"
	h.scanFleet(h.login("alice"), prefix, 10)

	b := browserSteps{t: t, ctx: browsertest.Browser(t, browsertest.Options{Width: 1280, Height: 1000, AcceptLanguage: "en-US,en"})}
	base := h.ts.URL
	b.step("sign in",
		chromedp.Navigate(base+"/services"),
		chromedp.WaitVisible(css(`input[name=name]`)),
		chromedp.SendKeys(css(`input[name=name]`), "olga"),
		chromedp.SendKeys(css(`input[name=password]`), testPassword),
		chromedp.Click(css(`#signin`)),
		chromedp.WaitVisible(css(`#services`)))
	text := b.text("sign in", `#services`)
	if !strings.Contains(text, "127.107.0.") {
		t.Fatalf("inventory after sign-in lists no fleet host:\n%s", text)
	}
	b.step("open a host's timeline",
		chromedp.Click(css(`#services tr:nth-child(2) td a`)),
		chromedp.WaitVisible(css(`#timeline li[data-kind="service.new"]`)))
	if text = b.text("timeline", `#timeline`); !strings.Contains(text, "new service") {
		t.Fatalf("timeline lacks the first sighting:\n%s", text)
	}
	b.step("acknowledge a finding",
		chromedp.Navigate(base+"/findings?status=open"),
		chromedp.WaitVisible(css(`#findings`)),
		chromedp.Click(css(`#findings tr:nth-child(2) td:nth-child(2) a`)),
		chromedp.WaitVisible(css(`#acknowledge`)),
		chromedp.SendKeys(css(`input[name=note]`), "ticket SEC-42"),
		chromedp.Click(css(`#acknowledge`)),
		chromedp.WaitNotPresent(css(`#acknowledge`)),
		chromedp.WaitVisible(css(`#status`)))
	if text = b.text("finding status", `#status`); !strings.HasPrefix(strings.TrimSpace(text), "acknowledged") {
		t.Fatalf("finding status after acknowledging: %q", text)
	}
	b.step("create a schedule",
		chromedp.Navigate(base+"/scans"),
		chromedp.WaitVisible(css(`#schedule-form`)),
		chromedp.SendKeys(css(`#schedule-form input[name=name]`), "nightly-lab"),
		chromedp.SendKeys(css(`#schedule-form input[name=cron]`), "0 3 * * *"),
		chromedp.SendKeys(css(`#schedule-form input[name=targets]`), prefix),
		chromedp.SendKeys(css(`#schedule-form input[name=ports]`), "11434,8000,8080"),
		chromedp.SetValue(css(`#schedule-form input[name=rate]`), "0"),
		chromedp.Submit(css(`#schedule-form input[name=name]`)),
		chromedp.WaitVisible(css(`#schedules`)))
	// The form posts and redirects back to /scans: wait for the new page.
	for i := 0; i < 50; i++ {
		if text = b.text("schedules", `#schedules`); strings.Contains(text, "nightly-lab") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(text, "nightly-lab") {
		t.Fatalf("schedules table after saving:\n%s\npage: %s", text, b.text("page", "main"))
	}
	// 03:00 arrives: move the stored next run to now (the clock, not the
	// code, is what the test skips).
	if _, err := h.st.DB().Exec(`UPDATE schedules SET next_run = ? WHERE name = 'nightly-lab'`, time.Now().UTC().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		b.step("see the schedule's run", chromedp.Navigate(base+"/scans"), chromedp.WaitVisible(css(`#runs`)))
		text = b.text("runs", `#runs`)
		if strings.Contains(text, prefix) && strings.Contains(text, "finished") && strings.Count(text, "#") >= 2 {
			if sch := b.text("schedule row", `#schedules`); strings.Contains(sch, "#") {
				break
			}
		}
		if time.Now().After(deadline) {
			b.fail("the scheduled run never appeared", fmt.Errorf("runs:\n%s", text))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestJapaneseDashboardInABrowser signs in with a browser whose language
// is Japanese and reads every page in Japanese: <html lang="ja">, the
// Japanese drawn with a CJK font, nothing cut off or spilling out of its
// box, at a desktop and a narrow window (the checks of the HTML report's
// browser test, internal/browsertest). Then the user switches their own
// setting to English — the pages follow it although the browser still
// asks for Japanese — and back to Japanese.
func TestJapaneseDashboardInABrowser(t *testing.T) {
	browsertest.Chromium(t)
	h := newHarness(t, Config{})
	alice := h.login("alice")
	run := h.scanFleet(alice, "127.108.0.0/26", 8)
	var fl list[store.InvFinding]
	alice.getJSON("/api/findings?limit=1", &fl)
	if len(fl.Items) == 0 {
		t.Fatal("the fleet gave no findings")
	}
	f := fl.Items[0]
	alice.send("POST", "/api/findings/"+itoa(f.ID)+"/acknowledge", FindingAction{Note: "チケット SEC-42"})

	b := browserSteps{t: t, ctx: browsertest.Browser(t, browsertest.Options{Width: 1280, Height: 900, AcceptLanguage: "ja"})}
	base := h.ts.URL
	b.step("open the sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css(`#signin`)))
	if lang := b.eval("sign-in page", `document.documentElement.lang`); lang != "ja" {
		t.Errorf("the sign-in page for a Japanese browser is %q", lang)
	}
	if s := b.text("sign-in button", `#signin`); s != "サインイン" {
		t.Errorf("sign-in button %q", s)
	}
	b.step("sign in",
		chromedp.SendKeys(css(`input[name=name]`), "alice"),
		chromedp.SendKeys(css(`input[name=password]`), testPassword),
		chromedp.Click(css(`#signin`)),
		chromedp.WaitVisible(css(`#account`)))

	pages := []string{"/", "/services", "/services/" + itoa(f.ServiceID), "/findings", "/findings/" + itoa(f.ID), "/scans",
		"/scans/" + run, "/diff?a=" + run + "&b=" + run, "/guard", "/results", "/alerts", "/settings", "/account"}
	for _, width := range []int{1280, 720} {
		b.step(fmt.Sprintf("window %d px", width), chromedp.EmulateViewport(int64(width), 900))
		for _, p := range pages {
			name := fmt.Sprintf("%s at %d px", p, width)
			b.step(name, chromedp.Navigate(base+p), chromedp.WaitReady(css(`footer`)))
			if lang := b.eval(name, `document.documentElement.lang`); lang != "ja" {
				t.Errorf("%s: <html lang=%q>", name, lang)
			}
			problems, err := browsertest.LayoutProblems(b.ctx)
			if err != nil {
				b.fail(name, err)
			}
			for _, pr := range problems {
				t.Errorf("%s: layout: %s", name, pr)
			}
			fonts, checked, err := browsertest.FontProblems(b.ctx)
			if err != nil {
				b.fail(name, err)
			}
			if checked < 8 {
				t.Errorf("%s: only %d elements with Japanese text", name, checked)
			}
			for _, pr := range fonts {
				t.Errorf("%s: font: %s", name, pr)
			}
			if t.Failed() {
				b.fail(name, fmt.Errorf("see the errors above"))
			}
			if os.Getenv("LLMFENCE_SCREENSHOT_DIR") != "" {
				browsertest.Screenshot(b.ctx, fmt.Sprintf("dashboard.ja%s.%d", strings.NewReplacer("/", "-", "?", "-", "&", "-", "=", "-").Replace(p), width))
			}
		}
	}

	// The user's own setting: English, although the browser asks for Japanese.
	b.step("choose English",
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(css(`#lang-form`)),
		chromedp.Click(css(`#lang-form input[value=en]`)),
		chromedp.Click(css(`#save-lang`)),
		chromedp.WaitVisible(css(`main [role=status]`)))
	b.step("overview in English", chromedp.Navigate(base+"/"), chromedp.WaitReady(css(`footer`)))
	if lang, nav := b.eval("overview", `document.documentElement.lang`), b.text("nav", `nav`); lang != "en" || !strings.Contains(nav, "Overview") || !strings.Contains(nav, "Findings") {
		t.Errorf("after choosing English: lang %q, nav %q", lang, nav)
	}
	b.step("finding in English", chromedp.Navigate(base+"/findings/"+itoa(f.ID)), chromedp.WaitVisible(css(`#why`)))
	if s := b.text("why", `#why h2`); s != "Why it matters" {
		t.Errorf("finding page after choosing English: %q", s)
	}
	// And back to Japanese.
	b.step("choose Japanese",
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(css(`#lang-form`)),
		chromedp.Click(css(`#lang-form input[value=ja]`)),
		chromedp.Click(css(`#save-lang`)),
		chromedp.WaitVisible(css(`main [role=status]`)))
	if s := b.text("saved", `main [role=status]`); s != "" && !strings.Contains(s, "保存しました") {
		t.Logf("notice %q", s)
	}
	b.step("finding in Japanese again", chromedp.Navigate(base+"/findings/"+itoa(f.ID)), chromedp.WaitVisible(css(`#why`)))
	if lang, s := b.eval("finding", `document.documentElement.lang`), b.text("why", `#why h2`); lang != "ja" || s != "影響" {
		t.Errorf("after choosing Japanese again: lang %q, heading %q", lang, s)
	}
}
