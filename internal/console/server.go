// Package console is the web side of llmfence serve: a server-rendered
// dashboard (html/template, embedded assets, no CDN, readable without
// JavaScript) and a JSON API for everything the dashboard shows and does,
// described by an OpenAPI 3 document at /api/openapi.json.
//
// # Security
//
// Every route but /login, /setup, /healthz and the OpenAPI document needs a
// signed-in user. Sessions are random tokens in a cookie (HttpOnly,
// SameSite=Lax, Secure under TLS or when configured); only their SHA-256 is
// stored, so a forged cookie matches nothing and a cookie used after logout
// or expiry matches nothing. State-changing requests with a session need
// the session's CSRF token (a form field or the X-CSRF-Token header) and,
// when the browser sends one, a same-origin Origin header; API tokens
// (Authorization: Bearer) need neither. Roles gate every action, and every
// change is written to the audit log.
//
// # Limits
//
// Lists are paged on the server (store.MaxPage rows at most); counts come
// pre-computed from the store; request bodies are capped at MaxBody.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

// MaxBody caps request bodies (forms, JSON, imports).
const MaxBody = 4 << 20

// Config tunes the console.
type Config struct {
	// CookieSecure marks cookies Secure (set it behind a TLS proxy; TLS
	// served by serve itself sets it anyway).
	CookieSecure bool
	// SessionIdle and SessionMax bound a session's life.
	SessionIdle, SessionMax time.Duration
	// Policy is the inventory policy (acceptance limits).
	Policy store.InventoryPolicy
	// OIDC, when set, offers single sign-on.
	OIDC *OIDCLogin
	// Disclose writes disclosure reports (may be nil).
	Disclose Discloser
	// Alerts manages alert channels (may be nil).
	Alerts AlertAdmin
	// Schedules manages scheduled scans (may be nil).
	Schedules ScheduleAdmin
	Logger    *slog.Logger
}

// Server is the console's HTTP handler.
type Server struct {
	st      store.ServerStore
	eng     *jobs.Engine
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	routes  []route
}

// route is one registered API route, for the OpenAPI check.
type route struct{ method, pattern string }

// New builds the console over a store and a job engine.
func New(st store.ServerStore, eng *jobs.Engine, cfg Config) *Server {
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 12 * time.Hour
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = 7 * 24 * time.Hour
	}
	if cfg.Policy.SLA == nil {
		cfg.Policy = store.DefaultInventoryPolicy()
	}
	s := &Server{st: st, eng: eng, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), reg: prometheus.NewRegistry()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmfence_serve_http_requests_total",
		Help: "HTTP requests answered, by route and status class."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llmfence_serve_http_request_seconds",
		Help: "Time to answer, by route.", Buckets: []float64{.005, .01, .025, .05, .1, .2, .5, 1, 2.5}}, []string{"route"})
	s.reg.MustRegister(s.reqs, s.latency, prometheus.NewGoCollector(), newInventoryCollector(st))
	s.routesAll()
	return s
}

// Registry is the console's metrics registry (served at /metrics).
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	s.mux.ServeHTTP(w, r)
}

// need is the least role a handler needs; "" means public.
type handler func(w http.ResponseWriter, r *http.Request, c *call) error

// call is one authenticated request.
type call struct {
	user    store.User
	session *store.Session // nil for API tokens
	api     bool
}

func (c *call) actor() store.Actor { return store.Actor(c.user.Name) }

// handle registers pattern for role need. API routes answer JSON errors.
func (s *Server) handle(pattern, need string, h handler) {
	method, path, _ := strings.Cut(pattern, " ")
	api := strings.HasPrefix(path, "/api/")
	if api {
		s.routes = append(s.routes, route{method, path})
	}
	name := path
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		defer func() {
			s.reqs.WithLabelValues(name, strconv.Itoa(rec.code/100)+"xx").Inc()
			s.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}()
		c := &call{api: api}
		if need != "" {
			u, se, err := s.authenticate(r)
			if err != nil {
				s.fail(rec, r, c, err)
				return
			}
			c.user, c.session = u, se
			if !users.Allowed(u.Role, need) {
				s.fail(rec, r, c, errForbidden(need))
				return
			}
			if unsafeMethod(r.Method) {
				if err := s.checkCSRF(r, c); err != nil {
					s.fail(rec, r, c, err)
					return
				}
			}
		}
		if err := h(rec, r, c); err != nil {
			s.fail(rec, r, c, err)
		}
	})
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// httpError is an error with a status and a message for the user.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errStatus(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

var errUnauthenticated = &httpError{code: http.StatusUnauthorized, msg: "sign in first"}

func errForbidden(need string) error {
	return errStatus(http.StatusForbidden, "this needs the %s role", need)
}

// fail answers an error: JSON for the API, a page (or a redirect to the
// login page) for the dashboard.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, c *call, err error) {
	code, msg := http.StatusInternalServerError, "internal error"
	var he *httpError
	switch {
	case errors.As(err, &he):
		code, msg = he.code, he.msg
	case errors.Is(err, store.ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrRule):
		code, msg = http.StatusConflict, err.Error()
	case errors.Is(err, store.ErrBadInput), errors.Is(err, store.ErrExists):
		code, msg = http.StatusBadRequest, err.Error()
	case isUsage(err):
		code, msg = http.StatusBadRequest, err.Error()
	default:
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	if !c.api && code == http.StatusUnauthorized {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if c.api {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	s.renderError(w, r, c, code, msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// audit records a change.
func (s *Server) audit(r *http.Request, c *call, action, object, detail string) {
	if err := s.st.Audit(context.WithoutCancel(r.Context()), store.AuditEntry{Actor: c.user.Name, Action: action, Object: object,
		Detail: detail, Remote: remoteIP(r)}); err != nil {
		s.log.Error("audit entry lost", "action", action, "err", err)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// metrics serves Prometheus metrics (admin or a scrape token would be
// nicer; the metrics say counts only, so a viewer may read them).
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}
