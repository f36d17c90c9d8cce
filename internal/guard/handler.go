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
	w          statusWriter
	// forwarded: the request went to the upstream, so its record is
	// written on its own; a refused one is aggregated (see refusals).
	forwarded bool
	reason    string // why it was refused (the metric's reason)
}

// maxTargetBytes bounds the request target (path and query): longer ones
// are answered 414 before anything else is done for them.
const maxTargetBytes = 8 << 10

// ServeHTTP answers one client request in named steps: admit the client
// (address, request shape, failed-auth back-off), authenticate, route,
// then the metered or plain relay; the audit record is written last,
// before the end of the response leaves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := s.rt.Load()
	start := s.now()
	x := &exchange{rc: rc, routeLabel: "none"}
	x.w.init(w, s.writeIdle)
	x.ip, x.ipOK = rc.clientIP(r)
	x.dialect = s.dialectOf(r.URL.Path)
	x.rec = store.UsageRecord{Time: start.UTC(), Method: clip(r.Method, 16), ClientIP: x.ip.String(),
		Route: clip(r.URL.EscapedPath(), maxRouteChars)}
	s.metrics.flight(1)
	defer s.finish(x, r, start)
	s.serve(x, r)
}

// finish completes the audit record and writes it: before the handler
// returns, so before the end of the response leaves, a client that saw
// its answer complete has its record (in the spool, or the store).
func (s *Server) finish(x *exchange, r *http.Request, start time.Time) {
	s.metrics.flight(-1)
	rec := &x.rec
	rec.Status = x.w.status
	if rec.Status == 0 && rec.ClientGone {
		rec.Status = 499 // client closed before any answer
	}
	rec.LatencyMS = s.now().Sub(start).Milliseconds()
	rec.BytesOut = x.w.bytes
	rec.Error = clip(rec.Error, maxErrorChars)
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		rec.ClientCert = clip(r.TLS.PeerCertificates[0].Subject.String(), maxErrorChars)
	}
	s.metrics.request(x.routeLabel, rec.Status)
	s.metrics.addTokens(rec.KeyName, rec.PromptTokens, rec.CompletionTokens)
	if s.audit == nil {
		return
	}
	if !x.forwarded && s.refused != nil {
		s.refused.add(refusalKey{net: networkOf(x.ip), keyID: rec.KeyID, status: rec.Status, method: rec.Method,
			route: x.routeLabel, reason: x.reason, dialect: x.dialect}, rec)
		return
	}
	if err := s.audit.Record(rec); err != nil {
		s.log.Warn("audit record not written", "key", rec.KeyName, "route", rec.Route, "err", err)
	}
}

// dialectOf picks the error dialect by the upstream kind: Ollama's native
// routes answer Ollama-shaped errors, its /v1 routes and every other kind
// (vLLM, llama.cpp, generic) OpenAI-shaped ones.
func (s *Server) dialectOf(p string) string {
	if s.kind != "ollama" {
		return meter.KindOpenAI
	}
	if p == "/v1" || strings.HasPrefix(p, "/v1/") {
		return meter.KindOpenAI
	}
	return meter.KindOllama
}

// refuse answers a request the gateway does not forward, counting why.
func (s *Server) refuse(x *exchange, reason string, status int, typ, msg string) {
	x.reason = reason
	s.metrics.deny(reason)
	s.fail(x, status, typ, msg)
}

func (s *Server) serve(x *exchange, r *http.Request) {
	if !s.admitClient(x, r) {
		return
	}
	p := s.authenticate(x, r)
	if p == nil {
		return
	}
	x.rec.KeyID, x.rec.KeyName = p.ID, p.Name
	cfg := &x.rc.cfg

	d := s.router.Decide(r.Method, r.URL.EscapedPath())
	if d.Path != "" {
		x.rec.Route = clip(d.Path, maxRouteChars)
		x.dialect = s.dialectOf(d.Path)
	}
	switch d.Class {
	case route.Denied:
		x.routeLabel = "denied"
		status := d.Status
		if status == 0 {
			status = http.StatusNotFound
		}
		if d.Allow != "" && status == http.StatusMethodNotAllowed {
			x.w.Header().Set("Allow", d.Allow)
		}
		s.refuse(x, "route", status, "invalid_request_error", d.Reason)
		return
	case route.Admin:
		x.routeLabel = d.Route
		if !p.Admin {
			s.refuse(x, "admin_required", http.StatusForbidden, "permission_error",
				fmt.Sprintf("%s is a model-management route: an admin key is required", d.Path))
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
		s.admitAndForward(x, r, p, st)
		x.rec.BytesIn = st.uploaded.Load()
		return
	}
	body, ok := s.readBody(x, r, cfg.MaxBodyBytes)
	if !ok {
		return
	}
	x.rec.BytesIn = int64(len(body))

	if d.Class == route.Inference {
		s.inference(x, r, p, d, body)
		return
	}
	st := &proxyState{path: d.Path, body: body, principal: p}
	if d.Class == route.Listing {
		if !s.listingModel(x, r, p, d, body) {
			return
		}
		st.filterModels = !allowsEverything(p) &&
			(d.ModelList == route.ModelListAlways || (d.ModelList == route.ModelListFiltered && cfg.FilterModelList))
	}
	s.admitAndForward(x, r, p, st)
}

// admitClient checks what the gateway knows before authentication: the
// address, the request's shape, and the back-off for requests without a
// credential. It answers CORS preflights, the same way for every path.
func (s *Server) admitClient(x *exchange, r *http.Request) bool {
	if !x.ipOK || !x.rc.ipf.permits(x.ip) {
		s.refuse(x, "ip", http.StatusForbidden, "permission_error", "your address may not use this gateway")
		return false
	}
	if len(r.URL.EscapedPath())+len(r.URL.RawQuery) > maxTargetBytes {
		s.refuse(x, "uri_too_long", http.StatusRequestURITooLong, "invalid_request_error",
			fmt.Sprintf("request target longer than %d bytes", maxTargetBytes))
		return false
	}
	if isUpgrade(r) {
		s.refuse(x, "upgrade", http.StatusBadRequest, "invalid_request_error",
			"protocol upgrades (WebSocket, h2c) are not supported by this gateway")
		return false
	}
	corsOK := s.cors(x, r)
	if r.Method == http.MethodOptions {
		// CORS preflight: answered here, never forwarded, and the same for
		// every path, so it tells a stranger nothing about which routes
		// exist. Only origins in cors_origins get Access-Control-Allow-*.
		x.routeLabel = "preflight"
		x.reason = "preflight"
		h := x.w.Header()
		h.Set("Allow", "GET, HEAD, POST, DELETE, OPTIONS")
		if corsOK {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, X-API-Key, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
		}
		x.w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}

// authenticate returns the caller, or nil having answered. See
// throttle.go for how failures are counted and why a valid credential is
// never refused by the back-off.
func (s *Server) authenticate(x *exchange, r *http.Request) *Principal {
	cfg := &x.rc.cfg
	key := presentedKey(r)
	if key == "" {
		b := keylessBucket(x.ip)
		if wait, blocked := s.throttle.blocked(b, cfg.AuthFail); blocked {
			x.w.Header().Set("Retry-After", retryAfter(wait))
			s.refuse(x, "auth_backoff", http.StatusTooManyRequests, "rate_limit_error",
				"too many requests without an API key from your network; retry later")
			return nil
		}
		s.throttle.fail(b, cfg.AuthFail)
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="llmfence"`)
		s.refuse(x, "no_key", http.StatusUnauthorized, "authentication_error",
			"an API key is required (Authorization: Bearer <key> or X-API-Key)")
		return nil
	}
	p, err := s.auth.Authenticate(r.Context(), key)
	if err == nil && p != nil {
		return p
	}
	if err != nil && !errors.Is(err, ErrInvalidKey) {
		s.log.Error("authentication failed", "err", err)
		s.refuse(x, "auth_unavailable", http.StatusServiceUnavailable, "api_error", "the key store is unavailable; retry later")
		return nil
	}
	b := credentialBucket(key, x.ip)
	if wait, blocked := s.throttle.blocked(b, cfg.AuthFail); blocked {
		x.w.Header().Set("Retry-After", retryAfter(wait))
		s.refuse(x, "auth_backoff", http.StatusTooManyRequests, "rate_limit_error",
			"too many failed authentication attempts with this credential; retry later")
		return nil
	}
	s.throttle.fail(b, cfg.AuthFail)
	x.w.Header().Set("WWW-Authenticate", `Bearer realm="llmfence", error="invalid_token"`)
	s.refuse(x, "bad_key", http.StatusUnauthorized, "authentication_error",
		"the API key or token is not valid (unknown, expired or revoked)")
	return nil
}

// listingModel applies the key's model rules to a listing route that names
// a model (POST /api/show's body, /v1/models/{id}'s path); false means it
// answered.
func (s *Server) listingModel(x *exchange, r *http.Request, p *Principal, d route.Decision, body []byte) bool {
	model := d.Model
	if model == "" && len(body) > 0 {
		m, err := bodyModel(body)
		if err != nil {
			s.refuse(x, "bad_request", http.StatusBadRequest, "invalid_request_error", "request body: "+err.Error())
			return false
		}
		if m == "" && r.Method != http.MethodPost {
			return true
		}
		model = m
	} else if model == "" {
		return true
	}
	x.rec.Model = clip(model, maxRouteChars)
	if allowed, why := s.modelAllowed(model, p); !allowed {
		if d.Model != "" && x.rc.cfg.FilterModelList {
			// Hidden from this key's listings: answer as for a model that
			// does not exist.
			s.refuse(x, "model", http.StatusNotFound, "invalid_request_error", fmt.Sprintf("model %q not found", model))
			return false
		}
		s.refuse(x, "model", http.StatusForbidden, "permission_error", why)
		return false
	}
	return true
}

// admitAndForward forwards a listing or admin request. They spend no
// tokens but count against the key's requests per minute and concurrency,
// so a key cannot hammer the model server with them either.
func (s *Server) admitAndForward(x *exchange, r *http.Request, p *Principal, st *proxyState) {
	lim := limits.Resolve(p.Limits, x.rc.cfg.DefaultLimits)
	res, err := s.limiter.Admit(r.Context(), p.ID, limits.Limits{RPM: lim.RPM, Concurrent: lim.Concurrent}, limits.Want{})
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
	n interface{ Add(int64) int64 }
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
// the model, reserve the prompt and the completion against the limits,
// relay through the meter, bill what was relayed.
func (s *Server) inference(x *exchange, r *http.Request, p *Principal, d route.Decision, body []byte) {
	cfg := &x.rc.cfg
	lim := limits.Resolve(p.Limits, cfg.DefaultLimits)
	if d.Meter == route.MeterNone || d.Meter == "" {
		s.unmetered(x, r, p, d, lim, body)
		return
	}
	req, err := meter.ParseMetered(d.Meter, d.Path, body)
	if err != nil {
		s.refuse(x, "bad_request", http.StatusBadRequest, "invalid_request_error", requestProblem(err))
		return
	}
	info := req.Info()
	x.rec.Model = clip(info.Model, maxRouteChars)
	if allowed, why := s.modelAllowed(info.Model, p); !allowed {
		s.refuse(x, "model", http.StatusForbidden, "permission_error", why)
		return
	}
	if !s.screen(x, r, p, d, body) {
		return
	}
	want := limits.Want{Prompt: info.Prompt.Bound(int64(cfg.PromptBytesPerToken))}
	switch {
	case info.Endpoint == meter.EndpointEmbed:
		want.Completion = 1
	case info.MaxTokens > 0:
		want.Completion = info.MaxTokens * max(info.Choices, 1)
	default:
		want.Completion = cfg.DefaultMaxTokens * max(info.Choices, 1)
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
	admitted := want.Completion
	if n, capped := res.MaxTokens(); capped {
		budget, admitted = n, n
	}
	newBody, info2, err := req.Encode(budget)
	if err != nil {
		settled = true
		res.Release(context.WithoutCancel(r.Context()))
		if errors.Is(err, meter.ErrBudgetExhausted) {
			s.metrics.limit("budget")
			x.reason = "budget"
			s.fail(x, http.StatusTooManyRequests, "insufficient_quota", "token budget exhausted for this key")
			return
		}
		s.refuse(x, "bad_request", http.StatusBadRequest, "invalid_request_error", requestProblem(err))
		return
	}
	info2.CompletionCap = admitted
	st := &proxyState{path: d.Path, body: newBody, principal: p, info: info2, budget: budget, metered: true,
		watch: s.watch.start(info2)}
	if s.opts.Capture != nil {
		// Enough of the relayed body for the stored response text
		// (which the writer cuts to max_bytes) plus its JSON framing.
		st.captureCap = 8*s.opts.Capture.maxBytes() + 64<<10
	}
	// Billing runs even if the relay panics.
	defer func() {
		settled = true
		u := st.usage
		switch {
		case x.forwarded && x.w.status == 0:
			// The client left before any answer: the upstream has read
			// the prompt (and was cancelled then); bill the prompt.
			u = meter.Usage{Prompt: info.PromptEstimate, PromptEstimated: true, ClientGone: true}
		case x.w.status >= 300:
			// Not a metered answer: an upstream error.
			u = meter.Usage{}
		}
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
		s.watch.finish(st.watch, abuse.OutputEvent{KeyID: p.ID, KeyName: p.Name, ClientIP: x.ip, Route: d.Path,
			Model: info.Model}, body)
		if st.captureCap > 0 {
			s.opts.Capture.Submit(store.Capture{Time: x.rec.Time, KeyID: p.ID, KeyName: p.Name,
				ClientIP: x.rec.ClientIP, Route: d.Path, Model: info.Model, Status: x.w.status,
				Prompt: meter.RequestText(body), Response: meter.ResponseText(st.info, st.capture),
				ResponseTruncated: st.captureCut})
		}
	}()
	s.forward(x, r, st)
}

// unmetered forwards an inference route the meter cannot bill
// (/v1/responses): only keys without any token limit may use it, and it
// still counts against RPM and concurrency.
func (s *Server) unmetered(x *exchange, r *http.Request, p *Principal, d route.Decision, lim limits.Limits, body []byte) {
	if lim.TPM > 0 || lim.Daily > 0 || lim.Monthly > 0 {
		s.refuse(x, "unmetered_route", http.StatusForbidden, "permission_error",
			fmt.Sprintf("%s cannot be metered, so keys with token limits may not use it", d.Path))
		return
	}
	model, err := bodyModel(body)
	if err != nil {
		s.refuse(x, "bad_request", http.StatusBadRequest, "invalid_request_error", "request body: "+err.Error())
		return
	}
	x.rec.Model = clip(model, maxRouteChars)
	if allowed, why := s.modelAllowed(model, p); !allowed {
		s.refuse(x, "model", http.StatusForbidden, "permission_error", why)
		return
	}
	if !s.screen(x, r, p, d, body) {
		return
	}
	s.admitAndForward(x, r, p, &proxyState{path: d.Path, body: body, principal: p})
}

// screen runs the abuse signals; false means a blocking rule refused the
// request.
func (s *Server) screen(x *exchange, r *http.Request, p *Principal, d route.Decision, body []byte) bool {
	if s.abuse == nil {
		return true
	}
	v := s.abuse.Before(r.Context(), abuse.Request{KeyID: p.ID, KeyName: p.Name, ClientIP: x.ip, Route: d.Path, Body: body})
	if sig, blocked := v.Blocked(); blocked {
		s.refuse(x, "abuse", http.StatusForbidden, "permission_error", "request refused by abuse rule "+sig.Kind+": "+sig.Detail)
		return false
	}
	return true
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
		x.reason = "limit_" + string(le.Reason)
		if le.Exceeds {
			s.fail(x, http.StatusRequestEntityTooLarge, "invalid_request_error", le.Error())
			return
		}
		x.w.Header().Set("Retry-After", strconv.FormatInt(le.RetryAfterSeconds(), 10))
		s.fail(x, http.StatusTooManyRequests, "rate_limit_error", le.Error())
		return
	}
	s.log.Error("limiter unavailable", "err", err)
	s.metrics.limit("unavailable")
	x.reason = "limit_unavailable"
	s.fail(x, http.StatusServiceUnavailable, "api_error", "limits cannot be checked right now; retry later")
}

// readBody reads the whole request body, capped; false means the answer
// was already written.
func (s *Server) readBody(x *exchange, r *http.Request, limit int64) ([]byte, bool) {
	if r.ContentLength > limit {
		s.refuse(x, "body_too_large", http.StatusRequestEntityTooLarge, "invalid_request_error", fmt.Sprintf("request body larger than %d bytes", limit))
		return nil, false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(&x.w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.refuse(x, "body_too_large", http.StatusRequestEntityTooLarge, "invalid_request_error", fmt.Sprintf("request body larger than %d bytes", limit))
			return nil, false
		}
		s.refuse(x, "bad_request", http.StatusBadRequest, "invalid_request_error", "could not read the request body: "+err.Error())
		return nil, false
	}
	return buf.Bytes(), true
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

// fail writes an error answer in the client's dialect.
func (s *Server) fail(x *exchange, status int, typ, msg string) {
	if x.rec.Error == "" {
		x.rec.Error = msg
	}
	writeError(&x.w, x.dialect, status, typ, msg)
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
