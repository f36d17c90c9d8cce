package console

import (
	"io"
	"net/http"
	"strconv"

	"github.com/llmfence/llmfence/internal/users"
)

const (
	viewer   = users.RoleViewer
	operator = users.RoleOperator
	approver = users.RoleApprover
	admin    = users.RoleAdmin
)

func (s *Server) routesAll() {
	// Public.
	s.handle("GET /login", "", s.loginPage)
	s.handle("POST /login", "", s.loginPost)
	s.handle("GET /setup", "", s.setupPage)
	s.handle("POST /setup", "", s.setupPost)
	s.handle("GET /auth/oidc", "", s.oidcStart)
	s.handle("GET /auth/oidc/callback", "", s.oidcCallback)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	s.mux.HandleFunc("GET /api/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPIDoc)
	})
	s.handle("GET /metrics", viewer, func(w http.ResponseWriter, r *http.Request, _ *call) error {
		s.metricsHandler().ServeHTTP(w, r)
		return nil
	})
	s.handle("POST /logout", viewer, s.logout)

	// JSON API.
	s.handle("GET /api/me", viewer, s.apiMe)
	s.handle("PATCH /api/me", viewer, s.apiMeChange)
	s.handle("GET /api/overview", viewer, s.apiOverview)
	s.handle("GET /api/services", viewer, s.apiServices)
	s.handle("GET /api/services/{id}", viewer, s.apiService)
	s.handle("PATCH /api/services/{id}", operator, s.apiServiceChange)
	s.handle("GET /api/services/{id}/timeline", viewer, s.apiTimeline)
	s.handle("GET /api/findings", viewer, s.apiFindings)
	s.handle("GET /api/findings/{id}", viewer, s.apiFinding)
	s.handle("POST /api/findings/{id}/{action}", operator, s.apiFindingAction)
	s.handle("POST /api/findings/import", operator, s.apiImport)
	s.handle("GET /api/runs", viewer, s.apiRuns)
	s.handle("GET /api/runs/{id}", viewer, s.apiRun)
	s.handle("GET /api/runs/{id}/disclosure", operator, s.apiDisclose)
	s.handle("GET /api/diff", viewer, s.apiDiff)
	s.handle("POST /api/scans", operator, s.apiStartScan)
	s.handle("GET /api/changes", viewer, s.apiChanges)
	s.handle("GET /api/export/{what}/{format}", viewer, s.apiExport)
	s.handle("GET /api/schedules", viewer, s.apiSchedules)
	s.handle("POST /api/schedules", operator, s.apiSaveSchedule)
	s.handle("DELETE /api/schedules/{id}", operator, s.apiDeleteSchedule)
	s.handle("GET /api/channels", admin, s.apiChannels)
	s.handle("POST /api/channels", admin, s.apiSaveChannel)
	s.handle("POST /api/channels/{id}/test", admin, s.apiTestChannel)
	s.handle("GET /api/paths", viewer, s.apiPaths)
	s.handle("POST /api/paths", admin, s.apiSavePath)
	s.handle("DELETE /api/paths/{id}", admin, s.apiDeletePath)
	s.handle("POST /api/paths/{id}/inspect", admin, s.apiInspectNow)
	s.handle("GET /api/paths/{id}/results", viewer, s.apiPathResults)
	s.handle("GET /api/datascans", viewer, s.apiDatascans)
	s.handle("POST /api/datascans", admin, s.apiQueueDatascan)
	s.handle("GET /api/datascans/{id}", viewer, s.apiDatascan)
	s.handle("GET /api/datascans/{id}/findings", viewer, s.apiDatascanFindings)
	s.handle("GET /api/probes", viewer, s.apiProbes)
	s.handle("POST /api/probes", operator, s.apiQueueProbe)
	s.handle("GET /api/probes/{id}", viewer, s.apiProbe)
	s.handle("GET /api/guard/signals", viewer, s.apiAbuseSignals)
	s.handle("GET /api/audit", admin, s.apiAudit)
	s.handle("GET /api/users", admin, s.apiUsers)
	s.handle("POST /api/users", admin, s.apiCreateUser)

	// Dashboard.
	s.handle("GET /{$}", viewer, s.pageOverview)
	s.handle("GET /services", viewer, s.pageServices)
	s.handle("GET /services/{id}", viewer, s.pageService)
	s.handle("POST /services/{id}", operator, s.formService)
	s.handle("GET /findings", viewer, s.pageFindings)
	s.handle("GET /findings/{id}", viewer, s.pageFinding)
	s.handle("POST /findings/{id}", operator, s.formFinding)
	s.handle("GET /scans", viewer, s.pageScans)
	s.handle("POST /scans", operator, s.formScan)
	s.handle("GET /scans/{id}", viewer, s.pageRun)
	s.handle("GET /diff", viewer, s.pageDiff)
	s.handle("POST /schedules", operator, s.formSchedule)
	s.handle("GET /alerts", admin, s.pageAlerts)
	s.handle("POST /alerts", admin, s.formAlerts)
	s.handle("GET /settings", admin, s.pageSettings)
	s.handle("POST /settings/users", admin, s.formUser)
	s.handle("GET /account", viewer, s.pageAccount)
	s.handle("POST /account", viewer, s.formAccount)
	s.handle("GET /guard", viewer, s.pageGuard)
	s.handle("GET /results", viewer, s.pageResults)
	s.handle("POST /results", admin, s.formResults)
	s.handle("GET /datascans", viewer, s.pageDatascans)
	s.handle("POST /datascans", admin, s.formDatascan)
	s.handle("GET /datascans/{id}", viewer, s.pageDatascan)
	s.handle("GET /probes", viewer, s.pageProbes)
	s.handle("POST /probes", operator, s.formProbe)
	s.handle("GET /probes/{id}", viewer, s.pageProbe)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
