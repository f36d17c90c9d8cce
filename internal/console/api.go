package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

// page reads ?limit= and ?offset= (capped by the store).
func page(r *http.Request) store.Page {
	q := r.URL.Query()
	l, _ := strconv.Atoi(q.Get("limit"))
	o, _ := strconv.Atoi(q.Get("offset"))
	if o > 1_000_000 {
		o = 1_000_000
	}
	return store.Page{Limit: l, Offset: o, After: q.Get("after")}
}

// list is a page of a list. Continue with ?after=NextAfter (any depth) or
// ?offset=NextOffset (shallow pages only).
type list[T any] struct {
	Items      []T    `json:"items"`
	More       bool   `json:"more"`
	NextOffset int    `json:"next_offset,omitempty"`
	NextAfter  string `json:"next_after,omitempty"`
}

func mkList[T any](items []T, more bool, p store.Page, cursor func(T) string) list[T] {
	l := list[T]{Items: items, More: more}
	if more {
		lim := p.Limit
		if lim <= 0 {
			lim = 50
		}
		if p.After == "" {
			l.NextOffset = p.Offset + min(lim, store.MaxPage)
		}
		if cursor != nil && len(items) > 0 {
			l.NextAfter = cursor(items[len(items)-1])
		}
	}
	return l
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errStatus(http.StatusBadRequest, "%s must be a positive number", name)
	}
	return id, nil
}

func severity(s string) (service.Severity, error) {
	if s == "" {
		return "", nil
	}
	v, ok := service.ParseSeverity(s)
	if !ok {
		return "", errStatus(http.StatusBadRequest, "severity %q: want info, low, medium, high or critical", s)
	}
	return v, nil
}

func serviceQuery(r *http.Request) (store.ServiceQuery, error) {
	q := r.URL.Query()
	sev, err := severity(q.Get("min_risk"))
	return store.ServiceQuery{State: q.Get("state"), Product: q.Get("product"), MinRisk: sev, Auth: q.Get("auth"),
		Owner: q.Get("owner"), Tag: q.Get("tag"), Search: q.Get("q"), Sort: q.Get("sort"), Page: page(r)}, err
}

func findingQuery(r *http.Request) (store.FindingQuery, error) {
	q := r.URL.Query()
	sev, err := severity(q.Get("min_severity"))
	sid, _ := strconv.ParseInt(q.Get("service"), 10, 64)
	return store.FindingQuery{Status: q.Get("status"), MinSeverity: sev, FindingID: q.Get("id"), ServiceID: sid,
		Owner: q.Get("owner"), Tag: q.Get("tag"), AcceptState: q.Get("accept"), Page: page(r)}, err
}

// Overview is the dashboard's first page.
type Overview struct {
	Services     map[string]int64 `json:"services_by_state"`
	ServiceRisk  map[string]int64 `json:"services_by_risk"`
	OpenFindings map[string]int64 `json:"open_findings_by_severity"`
	Trend        []TrendPoint     `json:"trend"`
	RecentRuns   []store.Run      `json:"recent_runs"`
}

// TrendPoint is one day of the trend charts.
type TrendPoint struct {
	Day          string `json:"day"`
	OpenFindings int64  `json:"open_findings"`
	Online       int64  `json:"online"`
}

func (s *Server) overview(r *http.Request) (Overview, error) {
	c, err := s.st.Counts(r.Context())
	if err != nil {
		return Overview{}, err
	}
	o := Overview{Services: map[string]int64{}, ServiceRisk: map[string]int64{}, OpenFindings: map[string]int64{}}
	days := map[string]*TrendPoint{}
	for k, n := range c {
		switch {
		case strings.HasPrefix(k, "services.state."):
			o.Services[strings.TrimPrefix(k, "services.state.")] = n
		case strings.HasPrefix(k, "services.risk."):
			o.ServiceRisk[strings.TrimPrefix(k, "services.risk.")] = n
		case strings.HasPrefix(k, "findings.open."), strings.HasPrefix(k, "findings.acknowledged."):
			sev := k[strings.LastIndex(k, ".")+1:]
			o.OpenFindings[sev] += n
		case strings.HasPrefix(k, "trend."):
			parts := strings.SplitN(k, ".", 3)
			if len(parts) != 3 {
				continue
			}
			tp := days[parts[1]]
			if tp == nil {
				tp = &TrendPoint{Day: parts[1]}
				days[parts[1]] = tp
			}
			if parts[2] == "open_findings" {
				tp.OpenFindings = n
			} else {
				tp.Online = n
			}
		}
	}
	for _, tp := range days {
		o.Trend = append(o.Trend, *tp)
	}
	sortTrend(o.Trend)
	if len(o.Trend) > 90 {
		o.Trend = o.Trend[len(o.Trend)-90:]
	}
	o.RecentRuns, err = s.st.Runs(r.Context(), 10)
	return o, err
}

func sortTrend(t []TrendPoint) {
	for i := 1; i < len(t); i++ {
		for j := i; j > 0 && t[j].Day < t[j-1].Day; j-- {
			t[j], t[j-1] = t[j-1], t[j]
		}
	}
}

func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request, _ *call) error {
	o, err := s.overview(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (s *Server) apiServices(w http.ResponseWriter, r *http.Request, _ *call) error {
	q, err := serviceQuery(r)
	if err != nil {
		return err
	}
	items, more, err := s.st.ListServices(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mkList(items, more, q.Page, func(v store.InvService) string { return store.ServiceCursor(q.Sort, v) }))
	return nil
}

// ServiceDetail is one service with its latest observation.
type ServiceDetail struct {
	store.InvService
	Latest service.Service `json:"latest"`
}

func (s *Server) apiService(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	v, doc, err := s.st.GetService(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ServiceDetail{InvService: v, Latest: doc})
	return nil
}

func (s *Server) apiTimeline(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, _, err := s.st.GetService(r.Context(), id); err != nil {
		return err
	}
	before, _ := strconv.ParseInt(r.URL.Query().Get("cursor"), 10, 64)
	evs, _, err := s.st.Events(r.Context(), before, id, page(r).Limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": evs})
	return nil
}

func (s *Server) apiFindings(w http.ResponseWriter, r *http.Request, _ *call) error {
	q, err := findingQuery(r)
	if err != nil {
		return err
	}
	items, more, err := s.st.ListFindings(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mkList(items, more, q.Page, store.FindingCursor))
	return nil
}

func (s *Server) apiFinding(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	f, err := s.st.GetFinding(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// decode reads a JSON body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errStatus(http.StatusBadRequest, "request body: %v", err)
	}
	return nil
}

// FindingAction is the body of the workflow endpoints.
type FindingAction struct {
	Note   string    `json:"note,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Until  time.Time `json:"until,omitzero"`
}

// findingAction runs one workflow step; the same code serves the API and
// the dashboard's forms, and the rules live in the store.
func (s *Server) findingAction(r *http.Request, c *call, id int64, action string, a FindingAction) error {
	hook := s.eng.AlertHook()
	var err error
	switch action {
	case "acknowledge":
		err = s.st.Acknowledge(r.Context(), id, c.actor(), a.Note, hook)
	case "accept":
		err = s.st.RequestAcceptance(r.Context(), id, c.actor(), a.Reason, a.Until, s.cfg.Policy, hook)
	case "approve":
		if !users.Allowed(c.user.Role, users.RoleApprover) {
			return errForbidden(users.RoleApprover)
		}
		err = s.st.ApproveAcceptance(r.Context(), id, c.actor(), hook)
	case "reject":
		if !users.Allowed(c.user.Role, users.RoleApprover) {
			return errForbidden(users.RoleApprover)
		}
		err = s.st.RejectAcceptance(r.Context(), id, c.actor(), hook)
	default:
		return errStatus(http.StatusNotFound, "no action %q", action)
	}
	if err != nil {
		return err
	}
	s.audit(r, c, "finding "+action, "finding:"+strconv.FormatInt(id, 10), strings.TrimSpace(a.Note+" "+a.Reason))
	return nil
}

func (s *Server) apiFindingAction(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var a FindingAction
	if err := decode(r, &a); err != nil {
		return err
	}
	if err := s.findingAction(r, c, id, r.PathValue("action"), a); err != nil {
		return err
	}
	f, err := s.st.GetFinding(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// ImportLine is one line of an acceptance import (JSON Lines).
type ImportLine struct {
	Fingerprint string    `json:"fingerprint,omitempty"`
	ID          int64     `json:"id,omitempty"`
	Reason      string    `json:"reason"`
	Until       time.Time `json:"until"`
}

// apiImport takes acceptance requests in bulk (JSON Lines). Each goes
// through the same rules as one made by hand; approval stays separate.
func (s *Server) apiImport(w http.ResponseWriter, r *http.Request, c *call) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	type result struct {
		Line  int    `json:"line"`
		ID    int64  `json:"id,omitempty"`
		Error string `json:"error,omitempty"`
	}
	var out []result
	ok := 0
	for line := 1; line <= 10000; line++ {
		var l ImportLine
		err := dec.Decode(&l)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out = append(out, result{Line: line, Error: err.Error()})
			break
		}
		id := l.ID
		if id == 0 {
			id, err = s.findingByFP(r, l.Fingerprint)
		}
		if err == nil {
			err = s.st.RequestAcceptance(r.Context(), id, store.Actor("import:"+c.user.Name), l.Reason, l.Until, s.cfg.Policy, s.eng.AlertHook())
		}
		res := result{Line: line, ID: id}
		if err != nil {
			res.Error = err.Error()
		} else {
			ok++
		}
		out = append(out, res)
	}
	s.audit(r, c, "acceptances imported", "", fmt.Sprintf("%d requested, %d refused", ok, len(out)-ok))
	writeJSON(w, http.StatusOK, map[string]any{"requested": ok, "results": out})
	return nil
}

func (s *Server) findingByFP(r *http.Request, fp string) (int64, error) {
	if fp == "" {
		return 0, fmt.Errorf("give the finding's id or fingerprint: %w", store.ErrBadInput)
	}
	// Fingerprints are unique; the list API filters by status only, so
	// look it up among all statuses page by page is wasteful: the store
	// indexes fp, use a direct query through the finding list.
	f, err := s.st.FindingByFP(r.Context(), fp)
	return f.ID, err
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request, _ *call) error {
	p := page(r)
	lim := p.Limit
	if lim <= 0 || lim > store.MaxPage {
		lim = 50
	}
	runs, err := s.st.Runs(r.Context(), lim)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": runs})
	return nil
}

// RunDetail is a run with its aggregated progress.
type RunDetail struct {
	store.Run
	Progress *store.RunProgress `json:"progress,omitempty"`
	// PreviousRunID is the previous finished run of the same scope: the
	// run to diff this one against.
	PreviousRunID string `json:"previous_run_id,omitempty"`
}

func (s *Server) runDetail(r *http.Request, id string) (RunDetail, error) {
	run, err := s.st.GetRun(r.Context(), id)
	if err != nil {
		return RunDetail{}, err
	}
	d := RunDetail{Run: run}
	if prev, err := s.st.PreviousRun(r.Context(), run.ID); err == nil {
		d.PreviousRunID = prev.ID
	}
	if run.Shards > 0 {
		p, err := s.st.RunProgress(r.Context(), run.ID)
		if err != nil {
			return d, err
		}
		d.Progress = &p
	}
	return d, nil
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request, _ *call) error {
	d, err := s.runDetail(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) apiDiff(w http.ResponseWriter, r *http.Request, _ *call) error {
	a, b := r.URL.Query().Get("a"), r.URL.Query().Get("b")
	if a == "" || b == "" {
		return errStatus(http.StatusBadRequest, "give two runs: ?a=RUN&b=RUN")
	}
	d, err := s.st.Diff(r.Context(), a, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// ScanBody starts a sharded scan.
type ScanBody struct {
	Targets []string `json:"targets"`
	Exclude []string `json:"exclude,omitempty"`
	Ports   string   `json:"ports,omitempty"`
	Rate    *float64 `json:"rate,omitempty"`
	Shards  int      `json:"shards,omitempty"`
	Seed    uint64   `json:"seed,omitempty"`
	// Timeout and TargetBudget are Go durations ("3s"); "" keeps the
	// defaults.
	Timeout      string `json:"timeout,omitempty"`
	TargetBudget string `json:"target_budget,omitempty"`
}

func (b ScanBody) request() (jobs.ScanRequest, error) {
	o := scanrun.DefaultOptions()
	o.Ports, o.Seed = b.Ports, b.Seed
	for _, d := range []struct {
		s   string
		dst *time.Duration
		n   string
	}{{b.Timeout, &o.Timeout, "timeout"}, {b.TargetBudget, &o.TargetBudget, "target_budget"}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v <= 0 {
			return jobs.ScanRequest{}, errStatus(http.StatusBadRequest, "%s %q: want a positive duration such as 3s", d.n, d.s)
		}
		*d.dst = v
	}
	if b.Rate != nil {
		o.Rate = *b.Rate
	}
	return jobs.ScanRequest{Targets: scanrun.Targets{Include: b.Targets, Exclude: b.Exclude}, Options: o, Shards: b.Shards}, nil
}

func (s *Server) apiStartScan(w http.ResponseWriter, r *http.Request, c *call) error {
	var b ScanBody
	if err := decode(r, &b); err != nil {
		return err
	}
	req, err := b.request()
	if err != nil {
		return err
	}
	req.Args = []string{"serve: scan requested by " + c.user.Name}
	run, err := s.eng.StartScan(r.Context(), req)
	if err != nil {
		return err
	}
	s.audit(r, c, "scan started", "run:"+run.ID, strings.Join(b.Targets, " "))
	writeJSON(w, http.StatusAccepted, run)
	return nil
}

func (s *Server) apiChanges(w http.ResponseWriter, r *http.Request, _ *call) error {
	cur, err := strconv.ParseInt(r.URL.Query().Get("cursor"), 10, 64)
	if err != nil && r.URL.Query().Get("cursor") != "" {
		return errStatus(http.StatusBadRequest, "cursor must be a number from a previous answer (or 0)")
	}
	evs, next, err := s.st.Events(r.Context(), cur, 0, page(r).Limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": evs, "cursor": next})
	return nil
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, _ *call) error {
	p := page(r)
	items, more, err := s.st.AuditLog(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mkList[store.AuditEntry](items, more, p, nil))
	return nil
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request, c *call) error {
	out := map[string]any{"name": c.user.Name, "role": c.user.Role}
	if c.session != nil {
		out["csrf"] = c.session.CSRF
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ServiceChange is the body of PATCH /api/services/{id}.
type ServiceChange struct {
	Tags         *[]string  `json:"tags,omitempty"`
	SnoozedUntil *time.Time `json:"snoozed_until,omitempty"`
}

func (s *Server) apiServiceChange(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var b ServiceChange
	if err := decode(r, &b); err != nil {
		return err
	}
	if b.Tags != nil {
		if err := s.st.SetServiceTags(r.Context(), id, *b.Tags, c.actor()); err != nil {
			return err
		}
		s.audit(r, c, "tags set", "service:"+strconv.FormatInt(id, 10), strings.Join(*b.Tags, ","))
	}
	if b.SnoozedUntil != nil {
		if err := s.st.SnoozeService(r.Context(), id, *b.SnoozedUntil, c.actor()); err != nil {
			return err
		}
		s.audit(r, c, "snoozed", "service:"+strconv.FormatInt(id, 10), b.SnoozedUntil.String())
	}
	v, _, err := s.st.GetService(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
