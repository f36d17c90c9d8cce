// Package transport provides the client side of `llmfence probe`: one
// target, spoken to through the Ollama native API (/api/chat,
// /api/generate, /api/show, /api/version) or an OpenAI-compatible API
// (/v1/chat/completions, /v1/completions, /v1/models), directly or through
// `llmfence guard` with an API key.
//
// Every answer is streamed and bounded: a line (NDJSON) or event (SSE) is
// at most Limits.MaxLineBytes, the answer text at most
// Limits.MaxAnswerBytes, a stream that keeps producing chunks far past the
// requested token count is cut (Response.Cut = CutRunaway), a stream that
// goes silent for Limits.IdleTimeout is ended, and error bodies are read up
// to a few KiB. Nothing the server sends can grow the client's memory
// without bound. Redirects are never followed, so a request never leaves
// the one target.
//
// Options are deterministic by default (the caller sets seed and
// temperature; the probe runner uses temperature 0 and a fixed seed).
// Log-probabilities are requested only where the server has them: Ollama's
// native API from 0.12.11 on; OpenAI-compatible servers are asked, and a
// server that rejects the field is asked again without it.
//
// The package is hand-written on net/http and encoding/json rather than an
// SDK: the probe needs per-line caps, idle timeouts, first-token timing and
// server-side queue timing that the SDKs hide.
package transport

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// APIs a Client can speak.
const (
	APIOllama = "ollama"
	APIOpenAI = "openai"
)

// Errors callers test with errors.Is. Each is wrapped with a message in the
// user's terms.
var (
	// ErrUnreachable: no TCP/TLS connection to the target.
	ErrUnreachable = errors.New("target unreachable")
	// ErrUnauthorized: the target (or a guard in front of it) wants a
	// valid API key.
	ErrUnauthorized = errors.New("target refused the request: credentials needed or wrong")
	// ErrModelNotFound: the target does not serve the model.
	ErrModelNotFound = errors.New("model not found on the target")
	// ErrProtocol: the answer is not the API the client speaks.
	ErrProtocol = errors.New("answer does not follow the API")
	// ErrBusy: the server is overloaded (429, 503); worth retrying later.
	ErrBusy = errors.New("server busy")
	// ErrServer: any other non-2xx answer.
	ErrServer = errors.New("server error")
	// ErrNotLLM: the target answers HTTP but neither API.
	ErrNotLLM = errors.New("target speaks neither the Ollama nor an OpenAI-compatible API")
	// ErrSilent: the server sent nothing for Limits.IdleTimeout.
	ErrSilent = errors.New("the server went silent")
)

// Limits bound what one answer may cost. Zero fields take the defaults.
type Limits struct {
	// MaxAnswerBytes caps the answer text kept; the stream is ended when
	// it is reached (Response.Cut = CutAnswerCap). Default 64 KiB.
	MaxAnswerBytes int
	// MaxLineBytes caps one NDJSON line or SSE event. Default 1 MiB.
	MaxLineBytes int
	// ExtraChunks is how many chunks beyond Request.NumPredict a stream may
	// send before it is cut as runaway (servers that ignore num_predict, or
	// stream forever). Default 64.
	ExtraChunks int
	// IdleTimeout ends a request when the server sends nothing for this
	// long (before the headers, or inside a stream). Default 60s.
	IdleTimeout time.Duration
	// MaxShowBytes caps a model description (/api/show with verbose, which
	// carries the vocabulary). Default 64 MiB.
	MaxShowBytes int64
	// MaxLogprobs caps the per-token log-probabilities kept. Default 4096.
	MaxLogprobs int
}

const (
	defaultMaxAnswer   = 64 << 10
	defaultMaxLine     = 1 << 20
	defaultExtraChunks = 64
	defaultIdle        = 60 * time.Second
	defaultMaxShow     = 64 << 20
	defaultMaxLogprobs = 4096
	maxErrorBody       = 4 << 10
	maxSmallBody       = 8 << 20 // version, tags, models listings
)

func (l Limits) withDefaults() Limits {
	if l.MaxAnswerBytes <= 0 {
		l.MaxAnswerBytes = defaultMaxAnswer
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = defaultMaxLine
	}
	if l.ExtraChunks <= 0 {
		l.ExtraChunks = defaultExtraChunks
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = defaultIdle
	}
	if l.MaxShowBytes <= 0 {
		l.MaxShowBytes = defaultMaxShow
	}
	if l.MaxLogprobs <= 0 {
		l.MaxLogprobs = defaultMaxLogprobs
	}
	return l
}

// Config says how to reach the target.
type Config struct {
	// BaseURL is scheme://host[:port][/prefix] of the target (or of the
	// guard in front of it).
	BaseURL string
	// API is APIOllama, APIOpenAI, or "" to detect it.
	API string
	// APIKey, when set, is sent as "Authorization: Bearer KEY" (what
	// `llmfence guard` and most OpenAI-compatible servers accept).
	APIKey string
	// UserAgent is sent with every request.
	UserAgent string
	// InsecureTLS skips certificate verification (self-signed lab or
	// internal servers).
	InsecureTLS bool
	// HTTPClient, when set, is used as is (tests); its redirect policy is
	// replaced so redirects are never followed.
	HTTPClient *http.Client
	Limits     Limits
}

// Client talks to one target. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	key    string
	ua     string
	hc     *http.Client
	limits Limits

	mu     sync.Mutex
	server Server
	// noLogprobs is set when an OpenAI-compatible server rejected the
	// logprobs field once.
	noLogprobs bool
}

// Server is what Detect learned about the target.
type Server struct {
	API     string `json:"api"`
	Version string `json:"version,omitempty"`
	// Logprobs says whether generation answers can carry per-token
	// log-probabilities (false = unknown or unsupported).
	Logprobs bool `json:"logprobs"`
}

// New checks cfg and returns a client. It sends nothing.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil {
		return nil, fmt.Errorf("target URL %q: %w", cfg.BaseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target URL %q: scheme must be http or https", cfg.BaseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("target URL %q has no host", cfg.BaseURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("target URL %q: put credentials in --api-key, not in the URL", cfg.BaseURL)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	switch cfg.API {
	case "", APIOllama, APIOpenAI:
	default:
		return nil, fmt.Errorf("API %q: want %s or %s", cfg.API, APIOllama, APIOpenAI)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := &http.Transport{
			Proxy:                 nil, // the target is named; never detour through a proxy
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 0,                                                // bounded by IdleTimeout per request
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: cfg.InsecureTLS}, //nolint:gosec // opt-in flag
		}
		hc = &http.Client{Transport: tr}
	} else {
		c := *hc
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{base: u, key: cfg.APIKey, ua: cfg.UserAgent, hc: hc, limits: cfg.Limits.withDefaults()}
	c.server.API = cfg.API
	return c, nil
}

// Limits returns the limits in force.
func (c *Client) Limits() Limits { return c.limits }

// Server returns what Detect learned (API is set even before Detect when
// Config.API was given).
func (c *Client) Server() Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server
}

// Target is the base URL requests go to, without credentials.
func (c *Client) Target() string { return c.base.String() }

func (c *Client) endpoint(path string) string {
	u := *c.base
	u.Path = c.base.Path + path
	return u.String()
}

// newRequest builds a request with the client's headers.
func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, c.endpoint(path), strings.NewReader(string(body)))
	} else {
		req, err = http.NewRequestWithContext(ctx, method, c.endpoint(path), nil)
	}
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/x-ndjson, text/event-stream")
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	return req, nil
}

// do sends req with an idle timer: the request is cancelled if no response
// headers arrive within the idle timeout. The caller must stop the
// returned timer when it is done with the body, and touch it on every read
// of a stream.
func (c *Client) do(parent context.Context, method, path string, body []byte) (*http.Response, *idleTimer, error) {
	ctx, cancel := context.WithCancelCause(parent)
	it := newIdleTimer(c.limits.IdleTimeout, cancel)
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		it.stop()
		return nil, nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		it.stop()
		return nil, nil, c.transportError(parent, ctx, method, path, err)
	}
	it.touch()
	return resp, it, nil
}

// transportError says why a request failed before or while reading its
// answer: the caller gave up, the server went silent, no connection, or
// bytes that are not HTTP.
func (c *Client) transportError(parent, ctx context.Context, method, path string, err error) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s %s: %w", method, path, context.Cause(parent))
	case errors.Is(context.Cause(ctx), errIdle):
		return fmt.Errorf("%s %s: nothing received for %v: %w", method, path, c.limits.IdleTimeout, ErrSilent)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%s %s: %w: %w", method, path, ErrUnreachable, unwrapURLError(err))
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return fmt.Errorf("%s %s: %w (use --insecure for a self-signed certificate): %w", method, path, ErrUnreachable, unwrapURLError(err))
	}
	return fmt.Errorf("%s %s: the connection broke or the answer was not HTTP: %w: %w", method, path, ErrProtocol, unwrapURLError(err))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

var errIdle = ErrSilent

// idleTimer cancels a request after a period without progress.
type idleTimer struct {
	d      time.Duration
	t      *time.Timer
	cancel context.CancelCauseFunc
}

func newIdleTimer(d time.Duration, cancel context.CancelCauseFunc) *idleTimer {
	it := &idleTimer{d: d, cancel: cancel}
	it.t = time.AfterFunc(d, func() { cancel(errIdle) })
	return it
}

func (it *idleTimer) touch() { it.t.Reset(it.d) }

// stop ends the timer and releases the request context.
func (it *idleTimer) stop() {
	it.t.Stop()
	it.cancel(context.Canceled)
}

// statusError turns a non-2xx answer into an error carrying the server's
// message (read up to maxErrorBody).
func statusError(method, path string, resp *http.Response, body []byte) error {
	msg := errorMessage(body)
	base := ErrServer
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		base = ErrUnauthorized
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		base = ErrBusy
	case resp.StatusCode == http.StatusNotFound && strings.Contains(strings.ToLower(msg), "not found") &&
		strings.Contains(strings.ToLower(msg), "model"):
		base = ErrModelNotFound
	}
	if msg == "" {
		return fmt.Errorf("%s %s: %s: %w", method, path, resp.Status, base)
	}
	return fmt.Errorf("%s %s: %s: %q: %w", method, path, resp.Status, msg, base)
}

// errorMessage pulls the message out of an error body: Ollama's
// {"error":"..."}, OpenAI's {"error":{"message":"..."}}, FastAPI's
// {"detail":"..."}, or the text itself.
func errorMessage(body []byte) string {
	var v struct {
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		for _, raw := range []json.RawMessage{v.Error, v.Detail} {
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "" {
				return validPrefix(s, 300)
			}
			var o struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(raw, &o) == nil && o.Message != "" {
				return validPrefix(o.Message, 300)
			}
		}
	}
	return validPrefix(strings.TrimSpace(string(body)), 300)
}
