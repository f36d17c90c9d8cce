package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmfence/llmfence/internal/guard/meter"
	"github.com/llmfence/llmfence/internal/guard/route"
)

// proxyState travels with the outgoing request (in its context) so the
// ReverseProxy hooks know what the handler decided.
type proxyState struct {
	path      string    // normalised path to forward
	body      []byte    // body to forward (rewritten for metered routes)
	upload    io.Reader // streamed instead of body (admin blob uploads)
	uploaded  atomic.Int64
	principal *Principal

	metered bool
	info    meter.RequestInfo
	budget  int64
	m       *meter.Meter // set for 2xx answers on metered routes
	usage   meter.Usage

	filterModels bool

	// capture holds the response as relayed, for prompt/response capture
	// (nil when capture is off), up to captureCap bytes.
	capture    []byte
	captureCap int
	captureCut bool

	cancel    context.CancelFunc // cancels the upstream request
	clientCtx context.Context
	x         *exchange
	sent      time.Time
	stopped   atomic.Bool // the meter stopped relaying
}

type stateKey struct{}

func withState(ctx context.Context, st *proxyState) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

func stateFrom(ctx context.Context) *proxyState {
	st, _ := ctx.Value(stateKey{}).(*proxyState)
	return st
}

// keep adds relayed bytes to the capture buffer, up to its cap.
func (st *proxyState) keep(p []byte) {
	room := st.captureCap - len(st.capture)
	if len(p) > room {
		p, st.captureCut = p[:max(room, 0)], true
	}
	st.capture = append(st.capture, p...)
}

// stop ends relaying and cancels the upstream request so it stops
// generating.
func (st *proxyState) stop() {
	st.stopped.Store(true)
	st.cancel()
}

// finish closes the meter and records what to bill. It runs even when the
// proxy aborts the handler.
func (st *proxyState) finish(x *exchange) {
	if st.m != nil {
		st.m.Close()
		st.usage = st.m.Result()
	}
	if st.clientCtx.Err() != nil {
		x.rec.ClientGone = true
	}
	if st.usage.Truncated && x.rec.Error == "" {
		x.rec.Error = "response ended by the gateway: token budget exhausted"
	}
}

// rewrite builds the upstream request: the normalised path only, the
// upstream's Host (a loopback-bound Ollama refuses other Host headers),
// X-Forwarded-For, and no client credentials.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	pr.SetURL(s.upstream)
	pr.Out.URL.Path = joinPath(s.upstream.Path, st.path)
	pr.Out.URL.RawPath = ""
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.Out.Host = s.upstream.Host
	// X-Forwarded-*: set here rather than by SetXForwarded, which would
	// pass on whatever X-Forwarded-For an untrusted client made up.
	pr.Out.Header.Set("X-Forwarded-For", st.x.rc.upstreamForwardedFor(pr.In))
	pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
	if pr.In.TLS != nil {
		pr.Out.Header.Set("X-Forwarded-Proto", "https")
	} else {
		pr.Out.Header.Set("X-Forwarded-Proto", "http")
	}
	pr.Out.Header.Del("Forwarded")
	pr.Out.Header.Del("X-Real-Ip")
	for _, h := range []string{"Authorization", "X-Api-Key", "Proxy-Authorization", "Cookie", "Accept-Encoding"} {
		pr.Out.Header.Del(h)
	}
	st.sent = s.now()
}

func joinPath(base, p string) string {
	base = strings.TrimSuffix(base, "/")
	if base == "" {
		return p
	}
	return base + p
}

// modifyResponse wires the meter in for successful metered answers and
// filters model listings.
func (s *Server) modifyResponse(resp *http.Response) error {
	st := stateFrom(resp.Request.Context())
	s.metrics.upstreamLatency(s.now().Sub(st.sent))
	// The upstream's own CORS answer (Ollama's OLLAMA_ORIGINS, vLLM's
	// --allowed-origins) is not the gateway's: cors_origins decides.
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(resp.Header, k)
		}
	}
	resp.Body = &stopBody{rc: resp.Body, st: st}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if st.metered && ok {
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		st.m = meter.NewMeter(st.info, st.budget, st.x.w, st.x.w.flush)
	}
	if st.filterModels && resp.StatusCode == http.StatusOK {
		return filterModelList(resp, st.principal)
	}
	return nil
}

// proxyError answers when the upstream could not be reached or did not
// answer in time.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	x := st.x
	if st.clientCtx.Err() != nil {
		x.rec.ClientGone = true
		x.rec.Error = "client went away before the upstream answered"
		return
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		s.log.Warn("upstream timeout", "path", st.path, "err", err)
		s.fail(x, http.StatusGatewayTimeout, "api_error", "the model server did not answer in time")
		return
	}
	s.log.Warn("upstream error", "path", st.path, "err", err)
	s.fail(x, http.StatusBadGateway, "api_error", "the model server is unreachable")
}

// stopBody ends the upstream body cleanly (EOF) once the meter stopped or
// the client left, so the ReverseProxy finishes the response normally
// instead of aborting the connection.
type stopBody struct {
	rc io.ReadCloser
	st *proxyState
}

func (b *stopBody) Read(p []byte) (int, error) {
	if b.st.stopped.Load() {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && (b.st.stopped.Load() || b.st.clientCtx.Err() != nil) {
		return n, io.EOF
	}
	return n, err
}

func (b *stopBody) Close() error { return b.rc.Close() }

// meterWriter is the ResponseWriter the ReverseProxy writes a metered
// response into: bytes go through the meter, which writes to the client.
type meterWriter struct {
	sw *statusWriter
	st *proxyState
}

func (w *meterWriter) Header() http.Header { return w.sw.Header() }
func (w *meterWriter) WriteHeader(c int)   { w.sw.WriteHeader(c) }

// Flush is a no-op while the meter relays: it flushes after each write.
func (w *meterWriter) Flush() {
	if w.st.m == nil {
		w.sw.flush()
	}
}

func (w *meterWriter) Write(p []byte) (int, error) {
	st := w.st
	if st.m == nil {
		return w.sw.Write(p)
	}
	if st.stopped.Load() {
		return len(p), nil // discarded; the body reader ends next
	}
	if st.captureCap > 0 {
		st.keep(p)
	}
	_, err := st.m.Write(p)
	if err != nil || st.m.CancelUpstream() {
		st.stop()
	}
	return len(p), nil
}

// statusWriter records the status and bytes sent to the client.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(c int) {
	if w.status == 0 {
		w.status = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() { w.flush() }
func (w *statusWriter) flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush() // net/http's own writer: no ResponseController to allocate
		return
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxListing bounds a model listing the gateway filters.
const maxListing = 32 << 20

// filterModelList removes models the key may not use from Ollama's
// /api/tags and /api/ps ("models": [{"name"|"model"}]) and OpenAI's
// /v1/models ("data": [{"id"}]). Other members are kept (their order is not).
func filterModelList(resp *http.Response, p *Principal) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxListing+1))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the model listing: %w", err)
	}
	if len(raw) > maxListing {
		return fmt.Errorf("model listing larger than %d bytes", maxListing)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("model listing is not a JSON object: %w", err)
	}
	for _, field := range []string{"models", "data"} {
		arr, ok := doc[field]
		if !ok {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(arr, &items); err != nil {
			continue
		}
		kept := []json.RawMessage{}
		for _, it := range items {
			var m struct {
				Name  string `json:"name"`
				Model string `json:"model"`
				ID    string `json:"id"`
			}
			if json.Unmarshal(it, &m) != nil {
				continue
			}
			name := m.Name
			if name == "" {
				name = m.Model
			}
			if name == "" {
				name = m.ID
			}
			if ok, _ := route.ModelAllowed(name, p.Models, p.AllowCloud); ok {
				kept = append(kept, it)
			}
		}
		b, _ := json.Marshal(kept)
		doc[field] = b
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// copyBuffers recycles the buffers ReverseProxy copies response bodies
// through (32 KiB each, otherwise allocated per request).
type copyBuffers struct{ p sync.Pool }

func (c *copyBuffers) Get() []byte {
	if b, ok := c.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (c *copyBuffers) Put(b []byte) { c.p.Put(&b) }
