package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/schedule"
	"github.com/llmfence/llmfence/internal/store"
)

// chromium finds Debian's chromium ($LLMFENCE_CHROMIUM overrides); the
// browser test skips without it, except under CI.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LLMFENCE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI is set: apt-get install chromium")
	}
	t.Skip("chromium not installed")
	return ""
}

// TestDashboardInABrowser drives the dashboard in a real browser: sign in,
// see the inventory, open a host's timeline, acknowledge a finding, create
// a schedule and see its run appear. A failure saves a screenshot.
func TestDashboardInABrowser(t *testing.T) {
	bin := chromium(t)
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

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	shot := func(name string, err error) {
		t.Helper()
		sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		png, _ := chromedp.Run(sctx, chromedp.FullScreenshot(80))
		c()
		dir := os.Getenv("LLMFENCE_TEST_ARTIFACTS")
		if dir == "" {
			dir = os.TempDir()
		}
		path := filepath.Join(dir, fmt.Sprintf("llmfence-browser-%s-%d.png", strings.ReplaceAll(name, " ", "-"), time.Now().Unix()))
		if len(png) > 0 && os.WriteFile(path, png, 0o644) == nil {
			t.Fatalf("%s: %v (screenshot: %s)", name, err, path)
		}
		t.Fatalf("%s: %v (no screenshot)", name, err)
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot(name, err)
		}
	}
	textOf := func(name, css string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			shot(name, err)
		}
		return s
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	base := h.ts.URL
	step("sign in",
		chromedp.Navigate(base+"/services"),
		chromedp.WaitVisible(css(`input[name=name]`)),
		chromedp.SendKeys(css(`input[name=name]`), "olga"),
		chromedp.SendKeys(css(`input[name=password]`), testPassword),
		chromedp.Click(css(`#signin`)),
		chromedp.WaitVisible(css(`#services`)))
	text := textOf("sign in", `#services`)
	if !strings.Contains(text, "127.107.0.") {
		t.Fatalf("inventory after sign-in lists no fleet host:\n%s", text)
	}
	step("open a host's timeline",
		chromedp.Click(css(`#services tr:nth-child(2) td a`)),
		chromedp.WaitVisible(css(`#timeline`)))
	text = textOf("timeline", `#timeline`)
	if !strings.Contains(text, "service.new") {
		t.Fatalf("timeline lacks the first sighting:\n%s", text)
	}
	step("acknowledge a finding",
		chromedp.Navigate(base+"/findings?status=open"),
		chromedp.WaitVisible(css(`#findings`)),
		chromedp.Click(css(`#findings tr:nth-child(2) td:nth-child(2) a`)),
		chromedp.WaitVisible(css(`#acknowledge`)),
		chromedp.SendKeys(css(`input[name=note]`), "ticket SEC-42"),
		chromedp.Click(css(`#acknowledge`)),
		chromedp.WaitNotPresent(css(`#acknowledge`)),
		chromedp.WaitVisible(css(`#status`)))
	text = textOf("finding status", `#status`)
	if !strings.HasPrefix(strings.TrimSpace(text), "acknowledged") {
		t.Fatalf("finding status after acknowledging: %q", text)
	}
	step("create a schedule",
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
		if text = textOf("schedules", `#schedules`); strings.Contains(text, "nightly-lab") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(text, "nightly-lab") {
		t.Fatalf("schedules table after saving:\n%s\npage: %s", text, textOf("page", "main"))
	}
	// 03:00 arrives: move the stored next run to now (the clock, not the
	// code, is what the test skips).
	if _, err := h.st.DB().Exec(`UPDATE schedules SET next_run = ? WHERE name = 'nightly-lab'`, time.Now().UTC().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		step("see the schedule's run", chromedp.Navigate(base+"/scans"), chromedp.WaitVisible(css(`#runs`)))
		text = textOf("runs", `#runs`)
		if strings.Contains(text, prefix) && strings.Contains(text, "finished") && strings.Count(text, "#") >= 2 {
			if sch := textOf("schedule row", `#schedules`); strings.Contains(sch, "#") {
				break
			}
		}
		if time.Now().After(deadline) {
			shot("the scheduled run never appeared", fmt.Errorf("runs:\n%s", text))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
