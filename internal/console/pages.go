package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var static embed.FS

func staticFS() fs.FS {
	sub, _ := fs.Sub(static, "static")
	return sub
}

// funcs are the templates' helpers that say nothing in a language;
// words, dates and findings are the view's methods (lang.go).
var funcs = template.FuncMap{
	"sev":  func(s any) string { return "sev-" + strings.ToLower(fmt.Sprint(s)) },
	"join": strings.Join,
	"add":  func(a, b int) int { return a + b },
	"q": func(kv ...string) template.URL { // query string from pairs
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
	"allowed": users.Allowed,
	"bars":    bars,
	"itoa":    func(n int64) string { return strconv.FormatInt(n, 10) },
	"list":    func(s ...string) []string { return s },
}

// pages holds one template set per page, each the layout plus the page.
var pages = func() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	out := map[string]*template.Template{}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return out
}()

// view is what every page template gets: the page's data, and the
// reader's language, said through the view's methods (lang.go).
type view struct {
	User  *store.User
	CSRF  string
	Path  string
	Data  any
	Query url.Values
	// Lang is the page's language (<html lang>).
	Lang locale.Lang
	p    *locale.Printer
}

// printer is the printer of the request's reader: the signed-in user's
// language, else the browser's, else English.
func (s *Server) printer(r *http.Request, c *call) *locale.Printer {
	var u *store.User
	if c != nil && c.user.ID != 0 {
		u = &c.user
	}
	return s.cat.Printer(readerLang(r, u))
}

// render writes a page. c may be nil (login, setup).
func (s *Server) render(w http.ResponseWriter, r *http.Request, c *call, name string, data any) {
	t, ok := pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	p := s.printer(r, c)
	v := view{Path: r.URL.Path, Data: data, Query: r.URL.Query(), Lang: p.Lang(), p: p}
	if c != nil && c.user.ID != 0 {
		v.User = &c.user
		if c.session != nil {
			v.CSRF = c.session.CSRF
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", string(p.Lang()))
	h.Set("Vary", "Accept-Language, Cookie")
	h.Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// renderError writes the error page: the error's message in the reader's
// language when it has one, else as the code that failed wrote it.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, c *call, code int, err error) {
	p := s.printer(r, c)
	msg := err.Error()
	var he *httpError
	switch {
	case code == http.StatusInternalServerError:
		msg = p.T("console.error.internal")
	case errors.As(err, &he):
		msg = he.say(p)
	case p.Lang() != locale.English:
		// The store and the scan engine explain in English: lead with
		// what kind of refusal it is in the reader's language.
		msg = p.T("console.error.lead."+strconv.Itoa(code), "reason", msg)
	}
	w.WriteHeader(code)
	s.render(w, r, c, "error", map[string]any{"Code": code, "Message": msg})
}

// bar is one bar of a server-drawn chart.
type bar struct {
	Label string
	N     int64
	Pct   int
	Class string
}

// bars turns counts into bars in a fixed order, widths relative to the
// largest.
func bars(m map[string]int64, order ...string) []bar {
	var mx int64 = 1
	for _, k := range order {
		mx = max(mx, m[k])
	}
	out := make([]bar, 0, len(order))
	for _, k := range order {
		out = append(out, bar{Label: k, N: m[k], Pct: int(m[k] * 100 / mx), Class: "sev-" + k})
	}
	return out
}

func (s *Server) pageOverview(w http.ResponseWriter, r *http.Request, c *call) error {
	o, err := s.overview(r)
	if err != nil {
		return err
	}
	var mx int64 = 1
	for _, t := range o.Trend {
		mx = max(mx, t.OpenFindings)
	}
	type tp struct {
		TrendPoint
		Pct int
	}
	var trend []tp
	for _, t := range o.Trend {
		trend = append(trend, tp{t, int(t.OpenFindings * 100 / mx)})
	}
	s.render(w, r, c, "overview", map[string]any{"O": o, "Trend": trend})
	return nil
}

func (s *Server) pageServices(w http.ResponseWriter, r *http.Request, c *call) error {
	q, err := serviceQuery(r)
	if err != nil {
		return err
	}
	items, more, err := s.st.ListServices(r.Context(), q)
	if err != nil {
		return err
	}
	l := mkList(items, more, q.Page, func(v store.InvService) string { return store.ServiceCursor(q.Sort, v) })
	s.render(w, r, c, "services", map[string]any{"Items": items, "More": more, "Next": l.NextAfter})
	return nil
}

func (s *Server) pageService(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	v, doc, err := s.st.GetService(r.Context(), id)
	if err != nil {
		return err
	}
	tl, _, err := s.st.Events(r.Context(), 0, id, store.MaxPage)
	if err != nil {
		return err
	}
	fs, _, err := s.st.ListFindings(r.Context(), store.FindingQuery{Status: "all", ServiceID: id, Page: store.Page{Limit: store.MaxPage}})
	if err != nil {
		return err
	}
	s.render(w, r, c, "service", map[string]any{"S": v, "Doc": doc, "Timeline": tl, "Findings": fs,
		"Remediation": risk.Remediation(s.printer(r, c), &doc)})
	return nil
}

func (s *Server) formService(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	switch r.PostFormValue("action") {
	case "tags":
		tags := strings.Split(r.PostFormValue("tags"), ",")
		if err := s.st.SetServiceTags(r.Context(), id, tags, c.actor()); err != nil {
			return err
		}
		s.audit(r, c, "tags set", "service:"+itoa(id), r.PostFormValue("tags"))
	case "snooze":
		days, err := strconv.Atoi(r.PostFormValue("days"))
		if err != nil || days < 0 || days > 365 {
			return errText(http.StatusBadRequest, "console.error.snooze_days")
		}
		until := time.Time{}
		if days > 0 {
			until = time.Now().Add(time.Duration(days) * 24 * time.Hour)
		}
		if err := s.st.SnoozeService(r.Context(), id, until, c.actor()); err != nil {
			return err
		}
		s.audit(r, c, "snoozed", "service:"+itoa(id), strconv.Itoa(days)+" days")
	default:
		return errText(http.StatusBadRequest, "console.error.unknown_action")
	}
	http.Redirect(w, r, "/services/"+itoa(id), http.StatusSeeOther)
	return nil
}

func (s *Server) pageFindings(w http.ResponseWriter, r *http.Request, c *call) error {
	q, err := findingQuery(r)
	if err != nil {
		return err
	}
	items, more, err := s.st.ListFindings(r.Context(), q)
	if err != nil {
		return err
	}
	l := mkList(items, more, q.Page, store.FindingCursor)
	s.render(w, r, c, "findings", map[string]any{"Items": items, "More": more, "Next": l.NextAfter})
	return nil
}

func (s *Server) pageFinding(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	f, err := s.st.GetFinding(r.Context(), id)
	if err != nil {
		return err
	}
	_, doc, err := s.st.GetService(r.Context(), f.ServiceID)
	if err != nil {
		return err
	}
	data := s.findingPage(s.printer(r, c), f, doc, time.Now())
	data["Error"] = r.URL.Query().Get("error")
	s.render(w, r, c, "finding", data)
	return nil
}

// findingPage is what the finding page shows of f, found on the service
// whose latest observation is doc: the finding, why it matters and how to
// fix it on that service, in p's language.
func (s *Server) findingPage(p *locale.Printer, f store.InvFinding, doc service.Service, now time.Time) map[string]any {
	data := map[string]any{"F": f, "DefaultUntil": now.Add(30 * 24 * time.Hour).Format("2006-01-02"), "Why": risk.Why(p, f.FindingID)}
	if s.judge != nil {
		data["Fix"] = s.judge.Fix(p, service.Finding{ID: f.FindingID, Title: f.Title, Detail: f.Detail, DetailMsg: f.DetailMsg}, &doc)
	}
	return data
}

func (s *Server) formFinding(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a := FindingAction{Note: r.PostFormValue("note"), Reason: r.PostFormValue("reason")}
	if u := r.PostFormValue("until"); u != "" {
		t, err := time.Parse("2006-01-02", u)
		if err != nil {
			return errText(http.StatusBadRequest, "console.error.expiry", "value", u)
		}
		a.Until = t.Add(23*time.Hour + 59*time.Minute)
	}
	target := "/findings/" + itoa(id)
	if err := s.findingAction(r, c, id, r.PostFormValue("action"), a); err != nil {
		var he *httpError
		if ok := asHTTP(err, &he); ok && he.code == http.StatusForbidden {
			return err
		}
		if isRule(err) {
			http.Redirect(w, r, target+"?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
			return nil
		}
		return err
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

func (s *Server) pageScans(w http.ResponseWriter, r *http.Request, c *call) error {
	runs, err := s.st.Runs(r.Context(), 50)
	if err != nil {
		return err
	}
	var scheds any
	if s.cfg.Schedules != nil {
		if scheds, err = s.cfg.Schedules.Schedules(r.Context()); err != nil {
			return err
		}
	}
	running := false
	for _, run := range runs {
		running = running || run.Status == store.StatusRunning
	}
	s.render(w, r, c, "scans", map[string]any{"Runs": runs, "Schedules": scheds, "Running": running, "Error": r.URL.Query().Get("error")})
	return nil
}

func (s *Server) formScan(w http.ResponseWriter, r *http.Request, c *call) error {
	b := ScanBody{Targets: strings.Fields(strings.ReplaceAll(r.PostFormValue("targets"), ",", " ")),
		Exclude: strings.Fields(strings.ReplaceAll(r.PostFormValue("exclude"), ",", " ")), Ports: strings.TrimSpace(r.PostFormValue("ports"))}
	if rs := strings.TrimSpace(r.PostFormValue("rate")); rs != "" {
		v, err := strconv.ParseFloat(rs, 64)
		if err != nil || v < 0 {
			return errText(http.StatusBadRequest, "console.error.rate", "value", rs)
		}
		b.Rate = &v
	}
	req, err := b.request()
	if err != nil {
		return err
	}
	req.Args = []string{"serve: scan requested by " + c.user.Name}
	run, err := s.eng.StartScan(r.Context(), req)
	if err != nil {
		if isUsage(err) {
			http.Redirect(w, r, "/scans?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
			return nil
		}
		return err
	}
	s.audit(r, c, "scan started", "run:"+run.ID, strings.Join(b.Targets, " "))
	http.Redirect(w, r, "/scans/"+run.ID, http.StatusSeeOther)
	return nil
}

func (s *Server) formSchedule(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Schedules == nil {
		return errNoSchedules
	}
	if id := r.PostFormValue("delete"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return errText(http.StatusBadRequest, "console.error.bad_id", "what", "schedule", "what_msg", "console.word.object.schedule")
		}
		if err := s.cfg.Schedules.DeleteSchedule(r.Context(), n); err != nil {
			return err
		}
		s.audit(r, c, "schedule deleted", "schedule:"+id, "")
		http.Redirect(w, r, "/scans", http.StatusSeeOther)
		return nil
	}
	body := fmt.Sprintf(`{"name":%q,"cron":%q,"targets":%s,"exclude":%s,"ports":%q,"rate":%s}`,
		r.PostFormValue("name"), r.PostFormValue("cron"), jsonList(r.PostFormValue("targets")), jsonList(r.PostFormValue("exclude")),
		strings.TrimSpace(r.PostFormValue("ports")), numOr(r.PostFormValue("rate"), "null"))
	if _, err := s.cfg.Schedules.SaveSchedule(r.Context(), []byte(body), c.user.Name); err != nil {
		if isRule(err) || isUsage(err) || isBadInput(err) {
			http.Redirect(w, r, "/scans?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
			return nil
		}
		return err
	}
	s.audit(r, c, "schedule saved", "", body)
	http.Redirect(w, r, "/scans", http.StatusSeeOther)
	return nil
}

func jsonList(s string) string {
	var parts []string
	for _, f := range strings.Fields(strings.ReplaceAll(s, ",", " ")) {
		parts = append(parts, strconv.Quote(f))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func numOr(s, def string) string {
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return def
	}
	return s
}

func (s *Server) pageRun(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.runDetail(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	svcs, err := s.st.Services(r.Context(), d.ID)
	if err != nil {
		return err
	}
	if len(svcs) > store.MaxPage {
		svcs = svcs[:store.MaxPage]
	}
	pct := 0
	if d.Progress != nil && d.Progress.Total > 0 {
		pct = int(d.Progress.Done * 100 / d.Progress.Total)
	}
	s.render(w, r, c, "run", map[string]any{"R": d, "Services": svcs, "Pct": pct, "Running": d.Status == store.StatusRunning})
	return nil
}

func (s *Server) pageDiff(w http.ResponseWriter, r *http.Request, c *call) error {
	a, b := r.URL.Query().Get("a"), r.URL.Query().Get("b")
	if a == "" || b == "" {
		return errText(http.StatusBadRequest, "console.error.two_runs")
	}
	d, err := s.st.Diff(r.Context(), a, b)
	if err != nil {
		return err
	}
	s.render(w, r, c, "diff", map[string]any{"D": d})
	return nil
}

func (s *Server) pageAlerts(w http.ResponseWriter, r *http.Request, c *call) error {
	var chans any
	if s.cfg.Alerts != nil {
		var err error
		if chans, err = s.cfg.Alerts.Channels(r.Context()); err != nil {
			return err
		}
	}
	s.render(w, r, c, "alerts", map[string]any{"Channels": chans, "Enabled": s.cfg.Alerts != nil, "Error": r.URL.Query().Get("error"),
		"Msg": r.URL.Query().Get("msg")})
	return nil
}

func (s *Server) formAlerts(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	if id := r.PostFormValue("test"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return errText(http.StatusBadRequest, "console.error.bad_id", "what", "channel", "what_msg", "console.word.object.channel")
		}
		if err := s.cfg.Alerts.TestChannel(r.Context(), n); err != nil {
			http.Redirect(w, r, "/alerts?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
			return nil
		}
		s.audit(r, c, "alert channel test", "channel:"+id, "")
		http.Redirect(w, r, "/alerts?msg=test_queued", http.StatusSeeOther)
		return nil
	}
	body := fmt.Sprintf(`{"name":%q,"kind":%q,"url":%q,"min_severity":%q}`, r.PostFormValue("name"), r.PostFormValue("kind"),
		r.PostFormValue("url"), r.PostFormValue("min_severity"))
	if _, err := s.cfg.Alerts.SaveChannel(r.Context(), []byte(body), c.user.Name); err != nil {
		http.Redirect(w, r, "/alerts?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
		return nil
	}
	s.audit(r, c, "alert channel saved", "", r.PostFormValue("name"))
	http.Redirect(w, r, "/alerts", http.StatusSeeOther)
	return nil
}

func (s *Server) pageSettings(w http.ResponseWriter, r *http.Request, c *call) error {
	us, err := s.st.Users(r.Context())
	if err != nil {
		return err
	}
	audit, _, err := s.st.AuditLog(r.Context(), store.Page{Limit: 100})
	if err != nil {
		return err
	}
	s.render(w, r, c, "settings", map[string]any{"Users": us, "Audit": audit, "Roles": users.Roles, "Error": r.URL.Query().Get("error")})
	return nil
}

func (s *Server) formUser(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := users.Create(r.Context(), s.st, r.PostFormValue("name"), r.PostFormValue("password"), r.PostFormValue("role"))
	if err != nil {
		http.Redirect(w, r, "/settings?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
		return nil
	}
	s.audit(r, c, "user created", "user:"+u.Name, "role "+u.Role)
	http.Redirect(w, r, "/settings", http.StatusSeeOther)
	return nil
}

// pageGuard shows llmfence guard's keys and usage from the same store.
func (s *Server) pageGuard(w http.ResponseWriter, r *http.Request, c *call) error {
	data := map[string]any{}
	if gs, ok := s.st.(store.GuardStore); ok {
		keys, err := gs.ListKeys(r.Context())
		if err != nil {
			return err
		}
		if len(keys) > store.MaxPage {
			keys = keys[:store.MaxPage]
		}
		data["Keys"] = keys
		sum, err := gs.SummarizeUsage(r.Context(), store.UsageFilter{Since: time.Now().Add(-30 * 24 * time.Hour)})
		if err == nil {
			sort.Slice(sum, func(i, j int) bool {
				return sum[i].PromptTokens+sum[i].CompletionTokens > sum[j].PromptTokens+sum[j].CompletionTokens
			})
			if len(sum) > 20 {
				sum = sum[:20]
			}
			data["Usage"] = sum
		}
	}
	sigs, more, err := s.st.AbuseSignals(r.Context(), store.AbuseFilter{Since: time.Now().Add(-30 * 24 * time.Hour)}, store.Page{Limit: 100})
	if err != nil {
		return err
	}
	data["Signals"], data["MoreSignals"] = sigs, more
	s.render(w, r, c, "guard", data)
	return nil
}

func asHTTP(err error, he **httpError) bool {
	e, ok := err.(*httpError)
	if ok {
		*he = e
	}
	return ok
}

func isRule(err error) bool     { return errors.Is(err, store.ErrRule) }
func isBadInput(err error) bool { return errors.Is(err, store.ErrBadInput) }
