package console

import (
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/probe"
	"github.com/llmfence/llmfence/internal/probe/packs"
	"github.com/llmfence/llmfence/internal/store"
)

// Datascans and probes queued from the dashboard or the API. A datascan
// reads a path on the serve host (admin, like watched paths); a probe
// sends test prompts to the one target URL the user typed, and nowhere
// else (operator, like a scan). Nothing else here ever probes: scans stay
// passive.

// DatascanBody queues a datascan of a path on the serve host.
type DatascanBody struct {
	Path string `json:"path"`
}

// ProbeBody queues a probe of one model on one target.
type ProbeBody struct {
	Target         string   `json:"target"`
	Model          string   `json:"model"`
	Suites         []string `json:"suites,omitempty"`
	MaxRequests    int      `json:"max_requests,omitempty"`
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"`
}

func (s *Server) queueDatascan(r *http.Request, c *call, b DatascanBody) (store.DatascanRun, error) {
	if b.Path == "" || !filepath.IsAbs(b.Path) {
		return store.DatascanRun{}, errText(http.StatusBadRequest, "console.error.abs_path")
	}
	p := filepath.Clean(b.Path)
	run, err := s.eng.QueueDatascan(r.Context(), p, c.user.Name)
	if err != nil {
		return run, err
	}
	s.audit(r, c, "datascan queued", "datascan:"+itoa(run.ID), p)
	return run, nil
}

func (s *Server) queueProbe(r *http.Request, c *call, b ProbeBody) (jobs.ProbeArgs, error) {
	target, err := probe.ParseTarget(strings.TrimSpace(b.Target))
	if err != nil || b.Target == "" {
		return jobs.ProbeArgs{}, errText(http.StatusBadRequest, "console.error.probe_target")
	}
	model := strings.TrimSpace(b.Model)
	if model == "" || len(model) > 256 {
		return jobs.ProbeArgs{}, errText(http.StatusBadRequest, "console.error.probe_model")
	}
	var suites []string
	for _, x := range b.Suites {
		x = strings.ToLower(strings.TrimSpace(x))
		if x == "" {
			continue
		}
		if !slices.Contains(packs.Suites, x) {
			return jobs.ProbeArgs{}, errText(http.StatusBadRequest, "console.error.probe_suite", "suite", x, "suites", strings.Join(packs.Suites, ", "))
		}
		if !slices.Contains(suites, x) {
			suites = append(suites, x)
		}
	}
	if b.MaxRequests < 0 || b.MaxRequests > 100000 || b.TimeoutSeconds < 0 || b.TimeoutSeconds > 86400 {
		return jobs.ProbeArgs{}, errText(http.StatusBadRequest, "console.error.probe_limits")
	}
	a := jobs.ProbeArgs{Target: target, Model: model, Suites: suites, MaxRequests: b.MaxRequests, TimeoutSeconds: b.TimeoutSeconds,
		RequestedBy: c.user.Name}
	if err := s.eng.Insert(r.Context(), a, nil); err != nil {
		return a, err
	}
	s.audit(r, c, "probe queued", "probe:"+target, model)
	return a, nil
}

func (s *Server) apiDatascans(w http.ResponseWriter, r *http.Request, _ *call) error {
	p := page(r)
	items, more, err := s.st.DatascanRuns(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mkList[store.DatascanRun](items, more, p, nil))
	return nil
}

func (s *Server) apiQueueDatascan(w http.ResponseWriter, r *http.Request, c *call) error {
	var b DatascanBody
	if err := decode(r, &b); err != nil {
		return err
	}
	run, err := s.queueDatascan(r, c, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, run)
	return nil
}

func (s *Server) apiDatascan(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	run, err := s.st.GetDatascan(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (s *Server) apiDatascanFindings(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.st.GetDatascan(r.Context(), id); err != nil {
		return err
	}
	p := page(r)
	items, more, err := s.st.DatascanFindings(r.Context(), id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mkList[store.DatascanFinding](items, more, p, nil))
	return nil
}

func (s *Server) probeRuns(r *http.Request) ([]store.ProbeRun, error) {
	f := store.ProbeRunFilter{Limit: store.MaxPage, Model: r.URL.Query().Get("model"), Host: r.URL.Query().Get("host")}
	return s.st.ProbeRuns(r.Context(), f)
}

func (s *Server) apiProbes(w http.ResponseWriter, r *http.Request, _ *call) error {
	runs, err := s.probeRuns(r)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []store.ProbeRun{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": runs, "more": false})
	return nil
}

func (s *Server) apiQueueProbe(w http.ResponseWriter, r *http.Request, c *call) error {
	var b ProbeBody
	if err := decode(r, &b); err != nil {
		return err
	}
	a, err := s.queueProbe(r, c, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "probe queued", "target": a.Target, "model": a.Model, "suites": a.Suites})
	return nil
}

func (s *Server) apiProbe(w http.ResponseWriter, r *http.Request, _ *call) error {
	run, err := s.st.GetProbeRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (s *Server) abuseSignals(r *http.Request) ([]store.AbuseSignal, bool, store.Page, error) {
	q := r.URL.Query()
	since := time.Now().Add(-30 * 24 * time.Hour)
	if d, err := strconv.Atoi(q.Get("days")); err == nil && d > 0 && d <= 3650 {
		since = time.Now().Add(-time.Duration(d) * 24 * time.Hour)
	}
	p := page(r)
	items, more, err := s.st.AbuseSignals(r.Context(), store.AbuseFilter{Since: since, Key: q.Get("key"), Kind: q.Get("kind")}, p)
	return items, more, p, err
}

func (s *Server) apiAbuseSignals(w http.ResponseWriter, r *http.Request, _ *call) error {
	items, more, p, err := s.abuseSignals(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mkList[store.AbuseSignal](items, more, p, nil))
	return nil
}

// pageDatascans lists datascans (and offers to queue one).
func (s *Server) pageDatascans(w http.ResponseWriter, r *http.Request, c *call) error {
	items, more, err := s.st.DatascanRuns(r.Context(), page(r))
	if err != nil {
		return err
	}
	s.render(w, r, c, "datascans", map[string]any{"Runs": items, "More": more, "Error": r.URL.Query().Get("error"), "Msg": r.URL.Query().Get("msg")})
	return nil
}

func (s *Server) formDatascan(w http.ResponseWriter, r *http.Request, c *call) error {
	run, err := s.queueDatascan(r, c, DatascanBody{Path: r.PostFormValue("path")})
	if err != nil {
		http.Redirect(w, r, "/datascans?error="+url.QueryEscape(s.printer(r, c).T("console.error.abs_path")), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/datascans/"+itoa(run.ID), http.StatusSeeOther)
	return nil
}

// pageDatascan shows one datascan: totals, summaries, findings worst first.
func (s *Server) pageDatascan(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	run, err := s.st.GetDatascan(r.Context(), id)
	if err != nil {
		return err
	}
	p := page(r)
	fs, more, err := s.st.DatascanFindings(r.Context(), id, p)
	if err != nil {
		return err
	}
	kinds := make([]string, 0, len(run.Counts))
	for k := range run.Counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	s.render(w, r, c, "datascan", map[string]any{"Run": run, "Kinds": kinds, "Findings": fs, "More": more,
		"Next": p.Offset + len(fs)})
	return nil
}

// pageProbes lists probe runs (and offers to queue one).
func (s *Server) pageProbes(w http.ResponseWriter, r *http.Request, c *call) error {
	runs, err := s.probeRuns(r)
	if err != nil {
		return err
	}
	s.render(w, r, c, "probes", map[string]any{"Runs": runs, "Suites": packs.Suites, "Error": r.URL.Query().Get("error"),
		"Msg": r.URL.Query().Get("msg")})
	return nil
}

func (s *Server) formProbe(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := r.ParseForm(); err != nil {
		return errStatus(http.StatusBadRequest, "form: %v", err)
	}
	maxReq, _ := strconv.Atoi(r.PostFormValue("max_requests"))
	mins, _ := strconv.Atoi(r.PostFormValue("timeout_minutes"))
	_, err := s.queueProbe(r, c, ProbeBody{Target: r.PostFormValue("target"), Model: r.PostFormValue("model"), Suites: r.PostForm["suite"],
		MaxRequests: maxReq, TimeoutSeconds: mins * 60})
	if err != nil {
		msg := err.Error()
		if he, ok := err.(*httpError); ok {
			msg = he.say(s.printer(r, c))
		}
		http.Redirect(w, r, "/probes?error="+url.QueryEscape(msg), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/probes?msg=probe_queued", http.StatusSeeOther)
	return nil
}

// pageProbe shows one probe run and its verdicts.
func (s *Server) pageProbe(w http.ResponseWriter, r *http.Request, c *call) error {
	run, err := s.st.GetProbeRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.render(w, r, c, "probe", map[string]any{"Run": run})
	return nil
}
