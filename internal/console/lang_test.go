package console

import (
	"context"
	"html"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/browsertest"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

func testCatalogue(t *testing.T) *locale.Catalogue {
	t.Helper()
	c, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDashboardMessagesInBothLanguages: every word of the dashboard has
// English and Japanese with the same placeholders, and every message the
// templates and the handlers name exists in both.
func TestDashboardMessagesInBothLanguages(t *testing.T) {
	own, err := locale.NewCatalogue(Messages())
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Check(); err != nil {
		t.Fatal(err)
	}
	c := testCatalogue(t)
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	named := map[string]string{} // ID -> where
	tmplID := regexp.MustCompile(`\$\.(?:T|Markup) "(console\.[a-z0-9_.]+)"`)
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		b, _ := fs.ReadFile(templateFS, n)
		for _, m := range tmplID.FindAllStringSubmatch(string(b), -1) {
			named[m[1]] = n
		}
	}
	goID := regexp.MustCompile(`"(console\.[a-z0-9_]+\.[a-z0-9_.]+[a-z0-9_])"`)
	gos, _ := filepath.Glob("*.go")
	for _, n := range gos {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(n)
		for _, m := range goID.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasPrefix(m[1], "console.word.") && !strings.HasPrefix(m[1], "console.change.") && !strings.HasPrefix(m[1], "console.event.") {
				named[m[1]] = n
			}
		}
	}
	if len(named) < 200 {
		t.Errorf("only %d message IDs found in templates and handlers; the scan of them is broken", len(named))
	}
	for id, where := range named {
		for _, l := range locale.Langs {
			if !c.Has(l, id) {
				t.Errorf("%s names %s, which has no %s text", where, id, l)
			}
		}
	}
	// The vocabularies the pages say values of.
	for group, values := range map[string][]string{
		"role": {"viewer", "operator", "approver", "admin"}, "state": {"online", "offline", "stale", "expired", "all"},
		"status": {"open", "acknowledged", "accepted", "resolved", "all"}, "auth": {"none", "required", "unknown"},
		"run": {"running", "finished", "failed", "interrupted"}, "accept": {"requested", "approved"},
		"verdict": {"clean", "not-inspected", "suspicious", "invalid", "malicious"}, "pathkind": {"files", "ollama-store"},
		"event": {store.EvServiceNew, store.EvServiceBack, store.EvServiceNotObserved, store.EvServiceState, store.EvServiceVersion,
			store.EvAuthDropped, store.EvAuthAdded, store.EvModelAdded, store.EvModelRemoved, store.EvPromptChanged, store.EvFindingOpened,
			store.EvFindingReopened, store.EvFindingResolved, store.EvFindingStale, store.EvFindingAck, store.EvAcceptRequested, store.EvAccepted,
			store.EvAcceptRejected, store.EvAcceptExpiring, store.EvSLABreach, store.EvServiceSnoozed, store.EvTagged},
	} {
		for _, v := range values {
			if id := "console.word." + group + "." + wordKey(v); !c.Has(locale.Japanese, id) {
				t.Errorf("%s %q has no Japanese word (%s)", group, v, id)
			}
		}
	}
}

// TestTemplatesHaveNoHardCodedWords: a page template says nothing
// itself: every word a person reads, in text or in the placeholder,
// title and aria-label attributes, comes from a message. Product and
// format names and the language's own name in the language switch are
// the exceptions.
func TestTemplatesHaveNoHardCodedWords(t *testing.T) {
	allowed := map[string]bool{"llmfence": true, "API": true, "CSV": true, "JSON": true, "JSONL": true, "English": true}
	action := regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	tag := regexp.MustCompile(`(?s)<[^>]*>`)
	attr := regexp.MustCompile(`(?:placeholder|title|aria-label|alt)="([^"]*)"`)
	word := regexp.MustCompile(`\b[A-Za-z][a-z]*[A-Za-z]\b`)
	check := func(name, where, text string) {
		for _, tok := range strings.Fields(text) {
			if strings.ContainsAny(tok, "./:0123456789*") {
				continue // data shapes: 10.20.0.0/16, db.internal:11434, 0 3 * * *
			}
			for _, w := range word.FindAllString(tok, -1) {
				if !allowed[w] {
					t.Errorf("%s: %s says %q itself (in %q); say it through a message", name, where, w, strings.TrimSpace(text))
				}
			}
		}
	}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		b, _ := fs.ReadFile(templateFS, n)
		src := action.ReplaceAllString(string(b), " ")
		for _, m := range attr.FindAllStringSubmatch(src, -1) {
			check(n, "an attribute", m[1])
		}
		check(n, "the text", html.UnescapeString(tag.ReplaceAllString(src, " ")))
	}
}

// pageView is a client's view of a dashboard page: status, language and the
// words a person reads (text and placeholder, title, aria-label).
type pageView struct {
	code      int
	lang, raw string
	text      string
}

var (
	reHTMLLang = regexp.MustCompile(`<html lang="([a-z]+)">`)
	reReadable = regexp.MustCompile(`(?:placeholder|title|aria-label|alt)="([^"]*)"`)
	reMarkup   = regexp.MustCompile(`(?s)<style.*?</style>|<[^>]*>`)
)

func (c *client) page(path string) pageView {
	c.h.t.Helper()
	r := c.get(path)
	b := body(r)
	p := pageView{code: r.StatusCode, raw: b}
	if m := reHTMLLang.FindStringSubmatch(b); m != nil {
		p.lang = m[1]
	}
	var attrs []string
	for _, m := range reReadable.FindAllStringSubmatch(b, -1) {
		attrs = append(attrs, m[1])
	}
	p.text = html.UnescapeString(reMarkup.ReplaceAllString(b, " ") + " " + strings.Join(attrs, " "))
	p.text = strings.Join(strings.Fields(p.text), " ")
	return p
}

// englishWords are the English texts of the dashboard's words that a
// Japanese page must not show: the fixed parts of every console message
// whose English differs from its Japanese, at least two words or one
// long word (a short single word such as "service" is as likely to be
// data: an audit object service:8).
func englishWords(t *testing.T, c *locale.Catalogue) []*regexp.Regexp {
	en, ja := c.Printer(locale.English), c.Printer(locale.Japanese)
	var out []string
	for _, id := range c.IDs(locale.English) {
		if !strings.HasPrefix(id, "console.") || strings.Contains(id, "{{") {
			continue
		}
		fields := c.Placeholders(id)
		kv := []string{}
		for _, f := range fields {
			kv = append(kv, f, "\x00")
		}
		e, j := en.T(id, kv...), ja.T(id, kv...)
		// Cut at placeholders: the fixed parts are what must not show.
		for _, part := range strings.Split(e, "\x00") {
			part = strings.TrimSpace(strings.Trim(part, " :;,.()—“”"))
			if part == "" || strings.Contains(j, part) {
				continue
			}
			if strings.Count(part, " ") >= 1 || (len(part) >= 8 && !strings.ContainsAny(part, "0123456789")) {
				out = append(out, part)
			}
		}
	}
	sort.Strings(out)
	res := make([]*regexp.Regexp, 0, len(out))
	for _, e := range out {
		// Whole words only: "Language" is not in "Accept-Language".
		res = append(res, regexp.MustCompile(`(?:^|[^A-Za-z-])`+regexp.QuoteMeta(e)+`(?:[^A-Za-z-]|$)`))
	}
	return res
}

// TestJapaneseDashboard: with a Japanese browser every page is Japanese
// (<html lang="ja">, no English word of the dashboard on it, findings
// with their Japanese titles, details, why and fix; dates as 2026年1月2日),
// the user's own setting wins over the browser, and the JSON API, the
// exports and machine formats of the disclosure are the same whatever
// the language.
func TestJapaneseDashboard(t *testing.T) {
	var disclosed []locale.Lang
	h := newHarness(t, Config{Disclose: fakeDiscloser{langs: &disclosed}})
	alice := h.login("alice")
	run := h.scanFleet(alice, "127.109.0.0/26", 10)
	bob := h.login("bob")
	ja := h.login("olga")
	ja.header = http.Header{"Accept-Language": {"ja,en-US;q=0.8,en;q=0.5"}}
	cat := testCatalogue(t)
	jp := cat.Printer(locale.Japanese)

	var fl list[store.InvFinding]
	alice.getJSON("/api/findings?limit=50", &fl)
	var withMsg, other store.InvFinding
	for _, f := range fl.Items {
		if f.DetailMsg != nil && withMsg.ID == 0 && f.FindingID == "LLMF-001" {
			withMsg = f
		} else if other.ID == 0 && f.FindingID != withMsg.FindingID {
			other = f
		}
	}
	if withMsg.ID == 0 || other.ID == 0 {
		t.Fatalf("the fleet gave no LLMF-001 finding with its detail's message: %+v", fl.Items)
	}
	// Workflow, so the timeline and the audit trail have every kind of entry.
	if r := ja.send("POST", "/api/findings/"+itoa(withMsg.ID)+"/acknowledge", FindingAction{Note: "チケット SEC-42"}); r.StatusCode != 200 {
		t.Fatalf("acknowledge: %d %s", r.StatusCode, body(r))
	}
	if r := ja.send("POST", "/api/findings/"+itoa(withMsg.ID)+"/accept", FindingAction{Reason: "検証用の隔離ネットワークです", Until: time.Now().Add(10 * 24 * time.Hour)}); r.StatusCode != 200 {
		t.Fatalf("accept: %d %s", r.StatusCode, body(r))
	}
	if r := bob.send("POST", "/api/findings/"+itoa(withMsg.ID)+"/approve", FindingAction{}); r.StatusCode != 200 {
		t.Fatalf("approve: %d %s", r.StatusCode, body(r))
	}
	ja.send("POST", "/api/findings/"+itoa(other.ID)+"/accept", FindingAction{Reason: "a reason long enough", Until: time.Now().Add(5 * 24 * time.Hour)})
	bob.send("POST", "/api/findings/"+itoa(other.ID)+"/reject", FindingAction{})
	tags := []string{"gpu", "研究所"}
	ja.send("PATCH", "/api/services/"+itoa(withMsg.ServiceID), ServiceChange{Tags: &tags})
	until := time.Now().Add(72 * time.Hour)
	ja.send("PATCH", "/api/services/"+itoa(withMsg.ServiceID), ServiceChange{SnoozedUntil: &until})
	ja.send("PATCH", "/api/services/"+itoa(withMsg.ServiceID), ServiceChange{SnoozedUntil: &time.Time{}})

	admin := h.login("alice")
	admin.header = ja.header
	english := englishWords(t, cat)
	if len(english) < 150 {
		t.Fatalf("only %d English phrases to look for", len(english))
	}
	paths := []string{"/", "/services", "/services?state=all&sort=host", "/services/" + itoa(withMsg.ServiceID), "/findings",
		"/findings?status=all", "/findings/" + itoa(withMsg.ID), "/findings/" + itoa(other.ID), "/scans", "/scans/" + run,
		"/diff?a=" + run + "&b=" + run, "/guard", "/results", "/account", "/settings", "/alerts", "/findings/99999999"}
	for _, p := range paths {
		c := ja
		if p == "/settings" || p == "/alerts" || p == "/results" {
			c = admin
		}
		pg := c.page(p)
		if pg.code != 200 && !(p == "/findings/99999999" && pg.code == 404) {
			t.Errorf("%s: %d\n%s", p, pg.code, pg.raw)
			continue
		}
		if pg.lang != "ja" {
			t.Errorf("%s: <html lang=%q>", p, pg.lang)
		}
		for _, e := range english {
			if m := e.FindString(pg.text); m != "" {
				t.Errorf("%s: the Japanese page says %q in English", p, strings.TrimSpace(m))
			}
		}
		if browsertest.CJKRunes(pg.text) < 20 {
			t.Errorf("%s: hardly any Japanese: %s", p, pg.text)
		}
	}
	// Findings in Japanese: title, detail, why and fix.
	fp := ja.page("/findings/" + itoa(withMsg.ID))
	f := service.Finding{ID: withMsg.FindingID, Title: withMsg.Title, Detail: withMsg.Detail, DetailMsg: withMsg.DetailMsg}
	for _, want := range []string{risk.Title(jp, f), risk.Detail(jp, f), risk.Why(jp, f.ID), "127.0.0.1:",
		"確認者 olga", "承認済み: 申請者 olga、承認者 bob", jp.Date(time.Now().UTC())} {
		if !strings.Contains(fp.text, want) {
			t.Errorf("the finding page lacks %q:\n%s", want, fp.text)
		}
	}
	for _, bad := range []string{withMsg.Title, withMsg.Detail} {
		if strings.Contains(fp.text, bad) {
			t.Errorf("the Japanese finding page shows the English %q", bad)
		}
	}
	if !regexp.MustCompile(`id="fix"[^>]*><h2>対処方法</h2><p class="wrap">[^<]*OLLAMA_HOST|id="fix"[^>]*><h2>対処方法</h2><p class="wrap">[^<]*127\.0\.0\.1`).MatchString(fp.raw) {
		t.Errorf("the finding page has no Japanese fix:\n%s", fp.raw)
	}
	// The timeline says every event in Japanese: none of the recorded
	// English summaries shows (a version change reads the same).
	var tl struct {
		Items []store.Event `json:"items"`
	}
	ja.getJSON("/api/services/"+itoa(withMsg.ServiceID)+"/timeline?limit=200", &tl)
	sp := ja.page("/services/" + itoa(withMsg.ServiceID))
	kinds := map[string]bool{}
	for _, e := range tl.Items {
		kinds[e.Kind] = true
		if e.Kind != store.EvServiceVersion && strings.Contains(sp.text, e.Summary) {
			t.Errorf("timeline: %s is said in English: %q", e.Kind, e.Summary)
		}
	}
	for _, k := range []string{store.EvServiceNew, store.EvFindingOpened, store.EvFindingAck, store.EvAcceptRequested, store.EvAccepted,
		store.EvTagged, store.EvServiceSnoozed} {
		if !kinds[k] {
			t.Errorf("the timeline has no %s event to check", k)
		}
	}
	// The run page offers the notice in the reader's language.
	if rp := ja.page("/scans/" + run); !strings.Contains(rp.raw, "disclosure?format=markdown&amp;lang=ja") {
		t.Errorf("the run page's notice link is not Japanese:\n%s", rp.raw)
	}
	ja.get("/api/runs/" + run + "/disclosure?format=markdown&lang=ja")
	ja.get("/api/runs/" + run + "/disclosure?format=markdown")
	if len(disclosed) != 2 || disclosed[0] != locale.Japanese || disclosed[1] != locale.English {
		t.Errorf("disclosure languages %v, want [ja en]", disclosed)
	}
	if r := ja.get("/api/runs/" + run + "/disclosure?lang=fr"); r.StatusCode != 400 {
		t.Errorf("lang=fr: %d", r.StatusCode)
	}

	// The API, the exports and API errors never change with the language.
	en := h.login("olga")
	for _, p := range []string{"/api/findings?limit=20", "/api/services?limit=20", "/api/overview", "/api/export/findings/csv",
		"/api/export/services/jsonl", "/api/services/" + itoa(withMsg.ServiceID) + "/timeline", "/api/findings/99999999"} {
		a, b := body(en.get(p)), body(ja.get(p))
		if a != b {
			t.Errorf("%s differs with the language:\n%s\n---\n%s", p, a, b)
		}
	}
	if b := body(ja.get("/api/findings/99999999")); browsertest.CJKRunes(b) > 0 {
		t.Errorf("an API error in Japanese: %s", b)
	}

	// The user's setting wins over the browser; "" follows it again.
	for _, tt := range []struct {
		set, accept, want string
	}{{"en", "ja", "en"}, {"ja", "en-US", "ja"}, {"", "ja", "ja"}, {"", "en", "en"}} {
		if r := ja.send("PATCH", "/api/me", map[string]string{"lang": tt.set}); r.StatusCode != 200 {
			t.Fatalf("PATCH /api/me %q: %d %s", tt.set, r.StatusCode, body(r))
		}
		ja.header = http.Header{"Accept-Language": {tt.accept}}
		if got := ja.page("/findings").lang; got != tt.want {
			t.Errorf("setting %q, browser %q: page in %q, want %q", tt.set, tt.accept, got, tt.want)
		}
	}
	if r := ja.send("PATCH", "/api/me", map[string]string{"lang": "fr"}); r.StatusCode != 400 {
		t.Errorf("lang fr: %d", r.StatusCode)
	}
	var me map[string]string
	ja.getJSON("/api/me", &me)
	if me["lang"] != "" {
		t.Errorf("/api/me lang = %q", me["lang"])
	}
	// The form: a viewer sets Japanese for herself; the audit trail says so.
	vic := h.login("vic")
	if r := vic.form("/account", url.Values{"csrf": {vic.csrf}, "lang": {"ja"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /account: %d %s", r.StatusCode, body(r))
	}
	if pg := vic.page("/account?msg=lang_saved"); pg.lang != "ja" || !strings.Contains(pg.text, "表示言語を保存しました。") {
		t.Errorf("after choosing Japanese: lang %q\n%s", pg.lang, pg.text)
	}
	if pg := admin.page("/settings"); !strings.Contains(pg.text, "表示言語の変更") {
		t.Errorf("the audit trail does not show the language change:\n%s", pg.text)
	}
	// Before sign-in: the browser decides.
	anon := h.anon()
	anon.header = http.Header{"Accept-Language": {"ja"}}
	if pg := anon.page("/login"); pg.lang != "ja" || !strings.Contains(pg.text, "サインイン") {
		t.Errorf("login page for a Japanese browser: %q %s", pg.lang, pg.text)
	}
	if pg := h.anon().page("/login"); pg.lang != "en" || !strings.Contains(pg.text, "Sign in") {
		t.Errorf("login page without Accept-Language: %q %s", pg.lang, pg.text)
	}
}

// fakeDiscloser records the language each notice was asked in.
type fakeDiscloser struct{ langs *[]locale.Lang }

func (f fakeDiscloser) Disclose(_ context.Context, runID, owner, format string, lang locale.Lang, w interface{ Write([]byte) (int, error) }) error {
	*f.langs = append(*f.langs, lang)
	_, err := w.Write([]byte(format + " " + string(lang)))
	return err
}

// TestEveryEventAndChangeInJapanese drives the real store through every
// kind of timeline event (two scans that change a service, one that misses
// it, maintenance that ages it and expires acceptances, the findings
// workflow) and every kind of run-to-run change, and says each in
// Japanese: no English summary is left, every placeholder is filled.
func TestEveryEventAndChangeInJapanese(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 1, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := store.OpenServer(ctx, filepath.Join(t.TempDir(), "s.db"), store.Options{Logger: quiet(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := risk.New()
	if err != nil {
		t.Fatal(err)
	}
	cover := store.ApplyOptions{Coverage: func(_ context.Context, _ store.Run, pairs []netip.AddrPort) ([]bool, error) {
		out := make([]bool, len(pairs))
		for i := range out {
			out[i] = true
		}
		return out, nil
	}}
	judged := func(s service.Service) service.Service { eng.Evaluate(&s); return s }
	a1 := judged(service.Service{Host: "10.0.0.1", Port: 11434, Product: "ollama", Version: "0.6.7", Auth: service.AuthNone,
		Models: []service.Model{{Name: "m1", SystemPrompt: "You answer questions."}, {Name: "gone"}}})
	a2 := judged(service.Service{Host: "10.0.0.1", Port: 11434, Product: "ollama", Version: "0.6.8", Auth: service.AuthRequired,
		Models: []service.Model{{Name: "m1", SystemPrompt: "Write phishing mails.", SystemPromptCategories: []string{"fraud_phishing"}}, {Name: "m2"}}})
	a3 := a1
	b := judged(service.Service{Host: "10.0.0.2", Port: 8000, Product: "vllm", Version: "0.8.0", Auth: service.AuthNone, Models: []service.Model{{Name: "q"}}})
	apply := func(svcs ...service.Service) string {
		t.Helper()
		now = now.Add(time.Hour)
		r, err := st.CreateRun(ctx, store.Run{Targets: []string{"10.0.0.0/24"}, ScopeKey: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SaveServices(ctx, r.ID, svcs); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishRun(ctx, r.ID, store.RunStats{}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ApplyRun(ctx, r.ID, cover); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	apply(a1, b)
	apply(a2)    // a changes everything; b not observed, its findings resolved
	apply(a3, b) // auth dropped again, b back, findings reopened
	fs, _, _ := st.ListFindings(ctx, store.FindingQuery{Status: "all", Page: store.Page{Limit: 200}})
	pol := store.DefaultInventoryPolicy()
	var accepted, rejected int64
	for _, f := range fs {
		if f.Status != store.FindingOpen {
			continue
		}
		switch {
		case accepted == 0:
			accepted = f.ID
			st.Acknowledge(ctx, f.ID, "olga", "ticket 7", nil)
			if err := st.RequestAcceptance(ctx, f.ID, "olga", "isolated lab network", now.Add(8*24*time.Hour), pol, nil); err != nil {
				t.Fatal(err)
			}
			if err := st.ApproveAcceptance(ctx, f.ID, "bob", nil); err != nil {
				t.Fatal(err)
			}
		case rejected == 0:
			rejected = f.ID
			st.RequestAcceptance(ctx, f.ID, "olga", "isolated lab network", now.Add(8*24*time.Hour), pol, nil)
			st.RejectAcceptance(ctx, f.ID, "bob", nil)
		}
	}
	svcs, _, _ := st.ListServices(ctx, store.ServiceQuery{State: "all"})
	for _, s := range svcs {
		st.SetServiceTags(ctx, s.ID, []string{"lab"}, "olga")
		st.SnoozeService(ctx, s.ID, now.Add(time.Hour), "olga")
		st.SnoozeService(ctx, s.ID, time.Time{}, "olga")
	}
	// A day later the acceptance warns; past the SLA and the acceptance,
	// and unseen for weeks, maintenance moves everything on.
	for _, d := range []time.Duration{2 * 24 * time.Hour, 40 * 24 * time.Hour} {
		now = now.Add(d)
		if _, err := st.Maintain(ctx, pol, nil); err != nil {
			t.Fatal(err)
		}
	}
	evs, _, err := st.Events(ctx, 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	cat := testCatalogue(t)
	v := view{p: cat.Printer(locale.Japanese)}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Kind] = true
		got := v.Event(e)
		if e.Kind != store.EvServiceVersion && (got == e.Summary || browsertest.CJKRunes(got) == 0) {
			t.Errorf("%s is not said in Japanese: %q", e.Kind, got)
		}
		if strings.Contains(got, "{{") || strings.Contains(got, "<no value>") || strings.Contains(got, "console.event.") {
			t.Errorf("%s: %q", e.Kind, got)
		}
		if en := (view{p: cat.Printer(locale.English)}).Event(e); en != e.Summary {
			t.Errorf("English %s: %q, want the recorded %q", e.Kind, en, e.Summary)
		}
	}
	for _, k := range []string{store.EvServiceNew, store.EvServiceBack, store.EvServiceNotObserved, store.EvServiceState, store.EvServiceVersion,
		store.EvAuthDropped, store.EvAuthAdded, store.EvModelAdded, store.EvModelRemoved, store.EvPromptChanged, store.EvFindingOpened,
		store.EvFindingReopened, store.EvFindingResolved, store.EvFindingAck, store.EvAcceptRequested, store.EvAccepted, store.EvAcceptRejected,
		store.EvAcceptExpiring, store.EvSLABreach, store.EvServiceSnoozed, store.EvTagged} {
		if !seen[k] {
			t.Errorf("no %s event was produced to check", k)
		}
	}

	// Every kind of change between two runs.
	x := a1
	x.TLS, x.CORS = false, ""
	y := a2
	y.TLS, y.ManagementOpen, y.CORS, y.Product, y.Risk = true, true, "*", "ollama-fork", service.SeverityLow
	y.Models = append(y.Models, service.Model{Name: "new-with-prompt", SystemPrompt: "新しいプロンプト"})
	x.Models[0].Digest, y.Models[0].Digest = "sha256:aaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbb"
	z := x
	z.Host = "10.0.0.9"
	zz := z
	zz.Models = []service.Model{{Name: "m1"}}
	d := store.DiffServices([]service.Service{x, z}, []service.Service{y, zz})
	kinds := map[store.ChangeKind]bool{}
	for _, sc := range d.Changed {
		for _, ch := range sc.Changes {
			kinds[ch.Kind] = true
			got := v.Change(ch, sc.After)
			if got == ch.Text || browsertest.CJKRunes(got) == 0 && ch.Kind != store.ChangeTLS {
				t.Errorf("change %s is not said in Japanese: %q", ch.Kind, got)
			}
			if strings.Contains(got, "{{") || strings.Contains(got, "<no value>") || strings.Contains(got, "console.") {
				t.Errorf("change %s: %q", ch.Kind, got)
			}
		}
	}
	for _, k := range []store.ChangeKind{store.ChangeProduct, store.ChangeVersion, store.ChangeAuth, store.ChangeTLS, store.ChangeManagement,
		store.ChangeCORS, store.ChangeRisk, store.ChangeModelAdded, store.ChangeModelRemoved, store.ChangeModelDigest, store.ChangeSystemPromptNew,
		store.ChangeSystemPromptChanged, store.ChangeSystemPromptRemoved, store.ChangeFindingAdded, store.ChangeFindingRemoved} {
		if !kinds[k] {
			t.Errorf("no %s change was produced to check", k)
		}
	}
}

// TestMarkupEscapesTheMessageNotItsMarkup: a message said around markup
// written in a template keeps the markup and escapes its own text.
func TestMarkupEscapesTheMessageNotItsMarkup(t *testing.T) {
	c, err := locale.NewCatalogue(func(b *locale.Builder) error {
		if err := b.AddText(locale.English, "test", "m", `Run {{.cmd}} & see <b>{{.link}}</b>.`); err != nil {
			return err
		}
		return b.AddText(locale.Japanese, "test", "m", `{{.cmd}} を実行し、{{.link}} を見てください。`)
	})
	if err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[locale.Lang]string{
		locale.English:  `Run <code>llmfence serve</code> &amp; see &lt;b&gt;<a href="/setup">/setup</a>&lt;/b&gt;.`,
		locale.Japanese: `<code>llmfence serve</code> を実行し、<a href="/setup">/setup</a> を見てください。`,
	} {
		v := view{p: c.Printer(lang)}
		if got := string(v.Markup("m", "cmd", "<code>llmfence serve</code>", "link", `<a href="/setup">/setup</a>`)); got != want {
			t.Errorf("%s: %s, want %s", lang, got, want)
		}
	}
}
