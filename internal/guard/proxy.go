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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmfence/llmfence/internal/guard/meter"
	"github.com/llmfence/llmfence/internal/guard/route"
)

// The relay: the gateway's own reverse proxy. It is written by hand rather
// than on httputil.ReverseProxy because the guard must decide every byte
// that crosses it: only allow-listed headers pass in either direction, no
// protocol upgrade and no interim (1xx) response is ever relayed, metered
// bodies go through the meter, streams are flushed per upstream read and
// every write to the client carries a deadline. It also costs less per
// request than ReverseProxy (no header clone, no hop-by-hop scan), which
// is what lets the guard come near the bare ReverseProxy's throughput with
// authentication, limits, metering and the audit log on.

// proxyState is what the handler decided about one forwarded request.
type proxyState struct {
	path      string    // normalised path to forward
	body      []byte    // body to forward (rewritten for metered routes)
	upload    io.Reader // streamed instead of body (admin blob uploads)
	uploaded  atomic.Int64
	principal *Principal

	metered bool
	info    meter.RequestInfo
	budget  int64
	usage   meter.Usage

	filterModels bool

	// watch scores the streamed answer (the output watch; nil when off).
	watch *outputWatch

	// capture holds the response as relayed, for prompt/response capture
	// (nil when capture is off), up to captureCap bytes.
	capture    []byte
	captureCap int
	captureCut bool
}

// requestHeaders are the client headers passed to the upstream (plus
// Config.PassRequestHeaders). Everything else, credentials, cookies,
// method overrides, X-Original-URL and the like, client-IP claims,
// Expect, Upgrade and hop-by-hop headers included, is dropped.
var requestHeaders = []string{"Accept", "Content-Type", "User-Agent", "Traceparent", "Tracestate", "X-Request-Id"}

// responseHeaders are the upstream headers passed to the client (plus
// Config.PassResponseHeaders). Server identification (Server,
// X-Powered-By, Via), cookies, CORS answers, redirects and hop-by-hop
// headers are dropped.
var responseHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language",
	"Cache-Control", "Expires", "Last-Modified", "Etag", "Retry-After", "X-Request-Id"}

// unpassable are headers a configuration may not add to the allow lists.
var unpassable = []string{"Authorization", "Proxy-Authorization", "X-Api-Key", "Cookie", "Set-Cookie", "Host",
	"Connection", "Keep-Alive", "Proxy-Connection", "Upgrade", "Te", "Trailer", "Transfer-Encoding",
	"Content-Length", "Expect", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Real-Ip", "X-Http-Method-Override", "X-Method-Override", "X-Original-Url", "X-Rewrite-Url",
	"True-Client-Ip", "X-Client-Ip", "Http2-Settings", "Location", "Www-Authenticate"}

// passableHeader checks a header name a configuration adds to an allow
// list.
func passableHeader(name string) error {
	c := http.CanonicalHeaderKey(strings.TrimSpace(name))
	if c == "" || strings.ContainsAny(c, " :\t\r\n") {
		return fmt.Errorf("%q is not a header name", name)
	}
	for _, u := range unpassable {
		if c == u || strings.HasPrefix(c, "Access-Control-") {
			return fmt.Errorf("%s cannot be passed on (credentials, hop-by-hop, forwarding, CORS or routing)", c)
		}
	}
	return nil
}

// headerList is an allow list with the configured names added.
func headerList(base, extra []string) []string {
	out := append([]string(nil), base...)
	for _, h := range extra {
		c := http.CanonicalHeaderKey(strings.TrimSpace(h))
		if !containsString(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isUpgrade reports whether a request asks to switch protocols (WebSocket,
// h2c): the gateway never relays that.
func isUpgrade(r *http.Request) bool {
	if len(r.Header["Upgrade"]) > 0 || len(r.Header["Http2-Settings"]) > 0 {
		return true
	}
	for _, v := range r.Header["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// forward relays the request (with the body the handler decided on) to
// the upstream and its answer back, through the meter for metered routes.
func (s *Server) forward(x *exchange, r *http.Request, st *proxyState) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out, err := s.outRequest(ctx, x, r, st)
	if err != nil {
		s.fail(x, http.StatusBadGateway, "api_error", "the request could not be forwarded")
		return
	}
	x.forwarded = true
	sent := s.now()
	resp, err := s.transport.RoundTrip(out)
	if err != nil {
		s.upstreamError(x, r, st, err)
		return
	}
	defer resp.Body.Close()
	s.metrics.upstreamLatency(s.now().Sub(sent))
	if resp.StatusCode < 200 {
		// 101 to a request that asked for no upgrade, or a stray 1xx.
		s.log.Warn("upstream answered with an interim status", "path", st.path, "status", resp.StatusCode)
		s.fail(x, http.StatusBadGateway, "api_error", "the model server answered with an unexpected status")
		return
	}
	h := x.w.Header()
	for _, k := range x.rc.respHeaders {
		if v := resp.Header[k]; len(v) > 0 {
			h[k] = v
		}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	switch {
	case st.filterModels && resp.StatusCode == http.StatusOK:
		s.relayFiltered(x, resp, st)
	case st.metered && ok:
		s.relayMetered(ctx, cancel, x, resp, st)
	default:
		s.relayPlain(x, resp)
	}
	if r.Context().Err() != nil {
		x.rec.ClientGone = true
	}
}

// outRequest builds the upstream request: the normalised path only, the
// upstream's Host (a loopback-bound Ollama refuses other Host headers),
// the allow-listed headers, X-Forwarded-*, the upstream's own credentials
// (userinfo of --upstream) and never the client's.
func (s *Server) outRequest(ctx context.Context, x *exchange, r *http.Request, st *proxyState) (*http.Request, error) {
	var body io.Reader
	switch {
	case st.upload != nil:
		body = st.upload
	case len(st.body) > 0 || (r.Method != http.MethodGet && r.Method != http.MethodHead):
		body = bytes.NewReader(st.body)
	}
	u := &url.URL{Scheme: s.upstream.Scheme, Host: s.upstream.Host, Path: joinPath(s.upstream.Path, st.path),
		RawQuery: r.URL.RawQuery}
	out := (&http.Request{Method: r.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Host: s.upstream.Host}).WithContext(ctx)
	switch b := body.(type) {
	case nil:
		out.Body = http.NoBody
	case *bytes.Reader:
		out.ContentLength = int64(b.Len())
		if out.ContentLength == 0 {
			out.Body = http.NoBody
		} else {
			out.Body = io.NopCloser(b)
		}
	default:
		out.Body = io.NopCloser(b)
		out.ContentLength = r.ContentLength
	}
	hdr := make(http.Header, len(x.rc.reqHeaders)+5)
	for _, k := range x.rc.reqHeaders {
		if v := r.Header[k]; len(v) > 0 {
			hdr[k] = v
		}
	}
	hdr["X-Forwarded-For"] = []string{x.rc.upstreamForwardedFor(r)}
	if r.Host != "" {
		hdr["X-Forwarded-Host"] = []string{r.Host}
	}
	if r.TLS != nil {
		hdr["X-Forwarded-Proto"] = []string{"https"}
	} else {
		hdr["X-Forwarded-Proto"] = []string{"http"}
	}
	if s.upstreamAuth != "" {
		hdr["Authorization"] = []string{s.upstreamAuth}
	}
	out.Header = hdr
	return out, nil
}

func joinPath(base, p string) string {
	base = strings.TrimSuffix(base, "/")
	if base == "" {
		return p
	}
	return base + p
}

// upstreamError answers when the upstream could not be reached or did not
// answer in time.
func (s *Server) upstreamError(x *exchange, r *http.Request, st *proxyState, err error) {
	if r.Context().Err() != nil {
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

// copyBuffers recycles the buffers response bodies are copied through:
// 4 KiB, since a stream holds its buffer for its whole life (2,000 streams
// of token lines need 8 MiB of them, not 64).
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// relayPlain copies an unmetered answer. A body of unknown length (a
// stream) is flushed after every upstream read; a body of known length is
// not, so its end leaves only when the handler returns, after the audit
// record is written.
func (s *Server) relayPlain(x *exchange, resp *http.Response) {
	if resp.ContentLength >= 0 {
		x.w.Header()["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	x.w.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := x.w.Write(buf[:n]); err != nil {
				x.rec.ClientGone = true
				return
			}
			if stream {
				x.w.flush()
			}
		}
		if rerr != nil {
			if rerr != io.EOF && x.rec.Error == "" {
				x.rec.Error = "the upstream response broke off: " + rerr.Error()
			}
			return
		}
	}
}

// relayMetered relays a successful answer of a metered route through the
// meter, which counts tokens, ends a stream at the budget and reports when
// the upstream must be cancelled.
func (s *Server) relayMetered(ctx context.Context, cancel context.CancelFunc, x *exchange, resp *http.Response, st *proxyState) {
	x.w.WriteHeader(resp.StatusCode) // no Content-Length: the meter may end the body early
	var m *meter.Meter
	if st.watch != nil {
		m = meter.NewMeter(st.info, st.budget, &x.w, x.w.flush, meter.WithText(st.watch.feed))
	} else {
		m = meter.NewMeter(st.info, st.budget, &x.w, x.w.flush)
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	var src io.Reader = resp.Body
	if st.captureCap > 0 {
		src = &captureReader{r: resp.Body, st: st}
	}
	_, err := m.RelayWith(ctx, src, *bp)
	if err != nil {
		cancel() // the meter stopped or the body broke: stop the generation
	}
	st.usage = m.Result()
	if st.usage.Truncated && x.rec.Error == "" {
		x.rec.Error = cutMessage(st.usage.Cut)
	}
}

func cutMessage(cut string) string {
	if cut == meter.CutLineTooLong {
		return "response ended by the gateway: an upstream line was too long"
	}
	return "response ended by the gateway: token budget exhausted"
}

// captureReader keeps what the upstream sent, for capture.
type captureReader struct {
	r  io.Reader
	st *proxyState
}

func (c *captureReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.st.keep(p[:n])
	}
	return n, err
}

// keep adds relayed bytes to the capture buffer, up to its cap.
func (st *proxyState) keep(p []byte) {
	room := st.captureCap - len(st.capture)
	if len(p) > room {
		p, st.captureCut = p[:max(room, 0)], true
	}
	st.capture = append(st.capture, p...)
}

// maxListing bounds a model listing the gateway filters.
const maxListing = 32 << 20

// relayFiltered answers a model listing with the models the key may not
// use removed.
func (s *Server) relayFiltered(x *exchange, resp *http.Response, st *proxyState) {
	out, err := filterModelList(resp.Body, st.principal)
	if err != nil {
		s.log.Warn("model listing not filtered", "path", st.path, "err", err)
		s.fail(x, http.StatusBadGateway, "api_error", "the model server's model list could not be read")
		return
	}
	x.w.Header()["Content-Length"] = []string{strconv.Itoa(len(out))}
	x.w.WriteHeader(http.StatusOK)
	x.w.Write(out)
}

// filterModelList removes models the key may not use from Ollama's
// /api/tags and /api/ps ("models": [{"name"|"model"}]) and OpenAI's
// /v1/models ("data": [{"id"}]). Other members are kept (their order is not).
func filterModelList(body io.Reader, p *Principal) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(body, maxListing+1))
	if err != nil {
		return nil, fmt.Errorf("reading the model listing: %w", err)
	}
	if len(raw) > maxListing {
		return nil, fmt.Errorf("model listing larger than %d bytes", maxListing)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("model listing is not a JSON object: %w", err)
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
			// Every name the entry gives must be allowed.
			allowed := m.Name != "" || m.Model != "" || m.ID != ""
			for _, name := range []string{m.Name, m.Model, m.ID} {
				if name == "" {
					continue
				}
				if ok, _ := route.ModelAllowed(name, p.Models, p.AllowCloud); !ok {
					allowed = false
				}
			}
			if allowed {
				kept = append(kept, it)
			}
		}
		b, _ := json.Marshal(kept)
		doc[field] = b
	}
	return json.Marshal(doc)
}

// statusWriter records the status and bytes sent to the client and puts a
// deadline on every write (Timeouts.Write), so a client that stops reading
// fails its writes instead of holding the request.
type statusWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController // nil: no write deadline
	idle    time.Duration
	armed   time.Time // when the deadline was last moved
	status  int
	bytes   int64
	flusher http.Flusher
}

func (w *statusWriter) init(rw http.ResponseWriter, idle time.Duration) {
	w.ResponseWriter = rw
	w.flusher, _ = rw.(http.Flusher)
	if idle > 0 {
		w.rc = http.NewResponseController(rw)
		w.idle = idle
		w.arm(time.Now())
	}
}

// arm moves the write deadline to now+idle (at most every idle/8, so the
// allowance is between 7/8 of idle and idle).
func (w *statusWriter) arm(now time.Time) {
	if w.rc == nil || now.Sub(w.armed) < w.idle/8 {
		return
	}
	w.armed = now
	_ = w.rc.SetWriteDeadline(now.Add(w.idle))
}

func (w *statusWriter) WriteHeader(c int) {
	if c < 200 {
		return // interim answers are never relayed
	}
	if w.status == 0 {
		w.status = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.rc != nil {
		w.arm(time.Now())
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() { w.flush() }
func (w *statusWriter) flush() {
	if w.rc != nil {
		w.arm(time.Now())
	}
	if w.flusher != nil {
		w.flusher.Flush() // net/http's own writer: no ResponseController to allocate
		return
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
