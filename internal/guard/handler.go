package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/meter"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/store"
)

// exchange is the state of one request as it crosses the gateway.
type exchange struct {
	rc         *runtimeConfig
	ip         netip.Addr // the client (see trusted_proxies)
	ipOK       bool
	rec        store.UsageRecord
	routeLabel string
	dialect    string // error-body dialect: meter.KindOllama or meter.KindOpenAI
	w          *statusWriter
}

// ServeHTTP answers one client request: IP filter, failed-auth back-off,
// authentication, routing, model and limit checks, then the metered proxy.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := s.rt.Load()
	start := s.now()
	ip, ipOK := rc.clientIP(r)
	x := &exchange{
		rc: rc, ip: ip, ipOK: ipOK,
		rec: store.UsageRecord{Time: start.UTC(), Method: r.Method, ClientIP: ip.String(),
			Route: r.URL.EscapedPath()},
		routeLabel: "none",
		dialect:    dialectOf(r.URL.Path),
		w:          &statusWriter{ResponseWriter: w},
	}
	s.metrics.flight(1)
	defer func() {
		s.metrics.flight(-1)
		x.rec.Status = x.w.status
		if x.rec.Status == 0 && x.rec.ClientGone {
			x.rec.Status = 499 // client closed before any answer
		}
		x.rec.LatencyMS = s.now().Sub(start).Milliseconds()
		x.rec.BytesOut = x.w.bytes
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			x.rec.ClientCert = r.TLS.PeerCertificates[0].Subject.String()
		}
		s.metrics.request(x.routeLabel, x.rec.Status)
		s.metrics.addTokens(x.rec.KeyName, x.rec.PromptTokens, x.rec.CompletionTokens)
		if s.audit != nil {
			// Before the handler returns, so before the end of the response
			// leaves: a client that saw its answer complete has its record
			// in the store.
			if err := s.audit.Record(x.rec); err != nil {
				s.log.Warn("audit record not confirmed", "key", x.rec.KeyName, "route", x.rec.Route, "err", err)
			}
		}
	}()
	s.serve(x, rc, r)
}

func (s *Server) serve(x *exchange, rc *runtimeConfig, r *http.Request) {
	cfg := rc.cfg
	ip := x.ip
	if !x.ipOK || !rc.ipf.permits(ip) {
		s.metrics.deny("ip")
		s.fail(x, http.StatusForbidden, "permission_error", "your address may not use this gateway")
		return
	}
	if wait, blocked := s.throttle.blocked(ip, cfg.AuthFail); blocked {
		s.metrics.deny("auth_backoff")
		x.w.Header().Set("Retry-After", retryAfter(wait))
		s.fail(x, http.StatusTooManyRequests, "rate_limit_error", "too many failed authentication attempts from your address; retry later")
		return
	}
	corsOK := s.cors(x, r)
	if r.Method == http.MethodOptions {
		// CORS preflight: answered here, never forwarded. Only origins in
		// cors_origins get Access-Control-Allow-* headers; browsers refuse
		// cross-origin calls from any other.
		d := s.router.Decide(r.Method, r.URL.EscapedPath())
		x.routeLabel = "preflight"
		if d.Allow != "" {
			x.w.Header().Set("Allow", d.Allow)
		}
		if corsOK {
			h := x.w.Header()
			methods := d.Allow
			if methods == "" {
				methods = "GET, POST, DELETE"
			}
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", "Authorization, X-API-Key, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
		}
		x.w.WriteHeader(http.StatusNoContent)
		return
	}

	key := presentedKey(r)
	if key == "" {
		s.metrics.deny("no_key")
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="llmfence"`)
		s.fail(x, http.StatusUnauthorized, "authentication_error", "an API key is required (Authorization: Bearer <key> or X-API-Key)")
		return
	}
	p, err := s.auth.Authenticate(r.Context(), key)
	if err != nil || p == nil {
		if err == nil || errors.Is(err, ErrInvalidKey) {
			s.metrics.deny("bad_key")
			s.throttle.fail(ip, cfg.AuthFail)
			x.w.Header().Set("WWW-Authenticate", `Bearer realm="llmfence", error="invalid_token"`)
			s.fail(x, http.StatusUnauthorized, "authentication_error", "the API key or token is not valid (unknown, expired or revoked)")
			return
		}
		s.log.Error("authentication failed", "err", err)
		s.fail(x, http.StatusServiceUnavailable, "api_error", "the key store is unavailable; retry later")
		return
	}
	x.rec.KeyID, x.rec.KeyName = p.ID, p.Name

	d := s.router.Decide(r.Method, r.URL.EscapedPath())
	if d.Path != "" {
		x.rec.Route = d.Path
		x.dialect = dialectOf(d.Path)
	}
	switch d.Class {
	case route.Denied:
		x.routeLabel = "denied"
		s.metrics.deny("route")
		status := d.Status
		if status == 0 {
			status = http.StatusNotFound
		}
		if d.Allow != "" && status == http.StatusMethodNotAllowed {
			x.w.Header().Set("Allow", d.Allow)
		}
		s.fail(x, status, "invalid_request_error", d.Reason)
		return
	case route.Admin:
		x.routeLabel = d.Route
		if !p.Admin {
			s.metrics.deny("admin_required")
			s.fail(x, http.StatusForbidden, "permission_error", fmt.Sprintf("%s is a model-management route: an admin key is required", d.Path))
			return
		}
	default:
		x.routeLabel = d.Route
	}

	if d.Class == route.Admin && isBlobUpload(r.Method, d.Path) {
		// A model file: streamed to the upstream (which checks it against
		// the digest in the path), neither buffered nor held to
		// max_body_bytes. Only admin keys get here.
		st := &proxyState{path: d.Path, principal: p}
		st.upload = &countingReader{r: r.Body, n: &st.uploaded}
		s.admitAndForward(x, r, p, cfg, st)
		x.rec.BytesIn = st.uploaded.Load()
		return
	}
	body, ok := s.readBody(x, r, cfg.MaxBodyBytes)
	if !ok {
		return
	}
	x.rec.BytesIn = int64(len(body))

	if d.Class == route.Inference {
		s.inference(x, r, p, d, cfg, body)
		return
	}
	if d.Class == route.Listing && len(body) > 0 {
		// POST /api/show names a model: apply the key's model rules.
		model, err := bodyModel(body)
		if err != nil {
			s.fail(x, http.StatusBadRequest, "invalid_request_error", "request body: "+err.Error())
			return
		}
		if model != "" || r.Method == http.MethodPost {
			x.rec.Model = model
			if allowed, why := s.modelAllowed(model, p); !allowed {
				s.metrics.deny("model")
				s.fail(x, http.StatusForbidden, "permission_error", why)
				return
			}
		}
	}
	st := &proxyState{path: d.Path, body: body, principal: p}
	if d.Class == route.Listing && cfg.FilterModelList && !allowsEverything(p) {
		st.filterModels = true
	}
	s.admitAndForward(x, r, p, cfg, st)
}

// admitAndForward forwards a listing or admin request. They spend no
// tokens but count against the key's requests per minute and concurrency,
// so a key cannot hammer the model server with them either.
func (s *Server) admitAndForward(x *exchange, r *http.Request, p *Principal, cfg Config, st *proxyState) {
	lim := limits.Resolve(p.Limits, cfg.DefaultLimits)
	res, err := s.limiter.Admit(r.Context(), p.ID, limits.Limits{RPM: lim.RPM, Concurrent: lim.Concurrent}, 0)
	if err != nil {
		s.limitError(x, err)
		return
	}
	defer res.Release(context.WithoutCancel(r.Context()))
	s.forward(x, r, st)
}

// isBlobUpload: Ollama's POST /api/blobs/sha256:<digest> carries a model
// file.
func isBlobUpload(method, path string) bool {
	return method == http.MethodPost && strings.HasPrefix(path, "/api/blobs/")
}

// countingReader counts the bytes read through it into n (atomically: the
// transport may still be reading when the handler looks).
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// cors sets Access-Control-Allow-Origin for a request from an allowed
// origin (cors_origins) and reports whether it did.
func (s *Server) cors(x *exchange, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || x.rc.cors == nil {
		return false
	}
	h := x.w.Header()
	h.Add("Vary", "Origin")
	switch {
	case x.rc.cors[origin]:
		h.Set("Access-Control-Allow-Origin", origin)
	case x.rc.cors["*"]:
		h.Set("Access-Control-Allow-Origin", "*")
	default:
		return false
	}
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	return true
}

// inference handles a metered route: validate and clamp the body, check
// the model, admit against limits, relay through the meter, bill.
func (s *Server) inference(x *exchange, r *http.Request, p *Principal, d route.Decision, cfg Config, body []byte) {
	dialect := dialectOf(d.Path)
	req, err := meter.ParseRequest(dialect, d.Path, body)
	var info meter.RequestInfo
	metered := true
	switch {
	case errors.Is(err, meter.ErrUnsupportedRoute):
		metered = false
		model, perr := bodyModel(body)
		if perr != nil {
			s.fail(x, http.StatusBadRequest, "invalid_request_error", "request body: "+perr.Error())
			return
		}
		info = meter.RequestInfo{Model: model}
	case err != nil:
		s.metrics.deny("bad_request")
		s.fail(x, http.StatusBadRequest, "invalid_request_error", requestProblem(err))
		return
	default:
		info = req.Info()
	}
	x.rec.Model = info.Model
	if allowed, why := s.modelAllowed(info.Model, p); !allowed {
		s.metrics.deny("model")
		s.fail(x, http.StatusForbidden, "permission_error", why)
		return
	}
	if s.abuse != nil {
		v := s.abuse.Before(r.Context(), abuse.Request{KeyID: p.ID, KeyName: p.Name, ClientIP: x.ip, Route: d.Path, Body: body})
		if sig, blocked := v.Blocked(); blocked {
			s.metrics.deny("abuse")
			s.fail(x, http.StatusForbidden, "permission_error", "request refused by abuse rule "+sig.Kind+": "+sig.Detail)
			return
		}
	}
	lim := limits.Resolve(p.Limits, cfg.DefaultLimits)
	if !metered && (lim.TPM > 0 || lim.Daily > 0 || lim.Monthly > 0) {
		s.metrics.deny("unmetered_route")
		s.fail(x, http.StatusForbidden, "permission_error",
			fmt.Sprintf("%s cannot be metered, so keys with token limits may not use it", d.Path))
		return
	}
	want := cfg.DefaultMaxTokens
	switch {
	case info.Endpoint == meter.EndpointEmbed:
		want = 1
	case info.MaxTokens > 0:
		want = info.MaxTokens * max(info.Choices, 1)
	}
	res, err := s.limiter.Admit(r.Context(), p.ID, lim, want)
	if err != nil {
		s.limitError(x, err)
		return
	}
	settled := false
	defer func() {
		if !settled { // a panic or an early return before forwarding
			res.Release(context.WithoutCancel(r.Context()))
		}
	}()
	budget := meter.Unlimited
	if n, capped := res.MaxTokens(); capped {
		budget = n
	}
	st := &proxyState{path: d.Path, body: body, principal: p}
	if metered {
		newBody, info2, err := req.Encode(budget)
		if err != nil {
			settled = true
			res.Release(context.WithoutCancel(r.Context()))
			if errors.Is(err, meter.ErrBudgetExhausted) {
				s.metrics.limit("budget")
				s.fail(x, http.StatusTooManyRequests, "insufficient_quota", "token budget exhausted for this key")
				return
			}
			s.fail(x, http.StatusBadRequest, "invalid_request_error", requestProblem(err))
			return
		}
		st.body, st.info, st.budget, st.metered = newBody, info2, budget, true
		if s.opts.Capture != nil {
			// Enough of the relayed body for the stored response text
			// (which the writer cuts to max_bytes) plus its JSON framing.
			st.captureCap = 8*s.opts.Capture.maxBytes() + 64<<10
		}
	}
	// Billing runs even if the proxy aborts the handler (panic).
	defer func() {
		settled = true
		u := st.usage
		ctx := context.WithoutCancel(r.Context())
		if err := res.Commit(ctx, u.Prompt, u.Completion); err != nil {
			s.log.Error("could not bill tokens", "key", p.Name, "prompt", u.Prompt, "completion", u.Completion, "err", err)
		}
		if s.abuse != nil {
			s.abuse.After(ctx, abuse.Completed{KeyID: p.ID, PromptTokens: u.Prompt, CompletionTokens: u.Completion, At: s.now()})
		}
		x.rec.PromptTokens, x.rec.CompletionTokens = u.Prompt, u.Completion
		x.rec.Truncated = u.Truncated
		x.rec.ClientGone = x.rec.ClientGone || u.ClientGone
		if st.captureCap > 0 {
			s.opts.Capture.Submit(store.Capture{Time: x.rec.Time, KeyID: p.ID, KeyName: p.Name,
				ClientIP: x.rec.ClientIP, Route: d.Path, Model: info.Model, Status: x.w.status,
				Prompt: meter.RequestText(body), Response: meter.ResponseText(st.info, st.capture),
				ResponseTruncated: st.captureCut})
		}
	}()
	s.forward(x, r, st)
}

// forward proxies the request with the (rewritten) body.
func (s *Server) forward(x *exchange, r *http.Request, st *proxyState) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	st.cancel = cancel
	st.clientCtx = r.Context()
	st.x = x
	out := r.WithContext(withState(ctx, st))
	out.Body = io.NopCloser(bytes.NewReader(st.body))
	out.ContentLength = int64(len(st.body))
	switch {
	case st.upload != nil:
		out.Body = io.NopCloser(st.upload)
		out.ContentLength = r.ContentLength
	case len(st.body) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		out.Body = http.NoBody
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Content-Length")
	out.Header.Del("Transfer-Encoding")
	out.TransferEncoding = nil

	var w http.ResponseWriter = x.w
	if st.metered {
		w = &meterWriter{sw: x.w, st: st}
	}
	func() {
		defer st.finish(x)
		s.proxy.ServeHTTP(w, out)
	}()
}

func (s *Server) modelAllowed(model string, p *Principal) (bool, string) {
	if model == "" {
		// No model named: the upstream picks its default (vLLM's only
		// model). Only a key allowed every model may do that.
		if allowsEverything(p) {
			return true, ""
		}
		return false, "the request names no model, and this key is limited to some models"
	}
	return route.ModelAllowed(model, p.Models, p.AllowCloud)
}

func allowsEverything(p *Principal) bool {
	for _, g := range p.Models {
		if g == "*" {
			return true
		}
	}
	return false
}

func (s *Server) limitError(x *exchange, err error) {
	var le *limits.LimitError
	if errors.As(err, &le) {
		s.metrics.limit(string(le.Reason))
		x.w.Header().Set("Retry-After", strconv.FormatInt(le.RetryAfterSeconds(), 10))
		s.fail(x, http.StatusTooManyRequests, "rate_limit_error", le.Error())
		return
	}
	s.log.Error("limiter unavailable", "err", err)
	s.metrics.limit("unavailable")
	s.fail(x, http.StatusServiceUnavailable, "api_error", "limits cannot be checked right now; retry later")
}

// readBody reads the whole request body, capped; false means the answer
// was already written.
func (s *Server) readBody(x *exchange, r *http.Request, limit int64) ([]byte, bool) {
	if r.ContentLength > limit {
		s.metrics.deny("body_too_large")
		s.fail(x, http.StatusRequestEntityTooLarge, "invalid_request_error", fmt.Sprintf("request body larger than %d bytes", limit))
		return nil, false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(x.w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.metrics.deny("body_too_large")
			s.fail(x, http.StatusRequestEntityTooLarge, "invalid_request_error", fmt.Sprintf("request body larger than %d bytes", limit))
			return nil, false
		}
		s.fail(x, http.StatusBadRequest, "invalid_request_error", "could not read the request body: "+err.Error())
		return nil, false
	}
	return body, true
}

// bodyModel reads "model" (or Ollama's older "name") from a JSON object
// body; an empty body names no model.
func bodyModel(body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	var v struct {
		Model *string `json:"model"`
		Name  *string `json:"name"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("not a valid JSON object: %w", err)
	}
	switch {
	case v.Model != nil && *v.Model != "":
		return *v.Model, nil
	case v.Name != nil:
		return *v.Name, nil
	}
	return "", nil
}

func requestProblem(err error) string {
	var re *meter.RequestError
	if errors.As(err, &re) {
		return re.Error()
	}
	return err.Error()
}

// dialectOf picks the error dialect: OpenAI for /v1 paths, Ollama else.
func dialectOf(p string) string {
	if p == "/v1" || strings.HasPrefix(p, "/v1/") {
		return meter.KindOpenAI
	}
	return meter.KindOllama
}

// fail writes an error answer in the client's dialect.
func (s *Server) fail(x *exchange, status int, typ, msg string) {
	if x.rec.Error == "" {
		x.rec.Error = msg
	}
	writeError(x.w, x.dialect, status, typ, msg)
}

func writeError(w http.ResponseWriter, dialect string, status int, typ, msg string) {
	var v any
	if dialect == meter.KindOpenAI {
		v = map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": status}}
	} else {
		v = map[string]string{"error": msg}
	}
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func retryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
