package fingerprint

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	maxHeaderBytes  = 64 << 10
	maxConnsPerHost = 4
)

// target is everything one Probe call keeps for its host:port: the
// transport (keep-alive inside the target only), the response cache and
// counters. It is discarded when the probe ends.
type target struct {
	opts     *Options
	addr     netip.AddrPort
	hostname string
	useTLS   bool
	log      *slog.Logger

	mu        sync.Mutex
	preConn   net.Conn
	transport *http.Transport
	client    *http.Client
	cache     map[string]*Response
	consecErr int

	bytesRead atomic.Int64 // bytes read from target sockets
	requests  atomic.Int64 // requests sent
	oversized atomic.Bool  // a body went over MaxBody
	tlsState  *tls.ConnectionState
}

func newTarget(opts *Options, addr netip.AddrPort, hostname string, conn net.Conn, log *slog.Logger) *target {
	return &target{opts: opts, addr: addr, hostname: hostname, preConn: conn, log: log, cache: map[string]*Response{}}
}

// setScheme (re)builds the transport for plain HTTP or TLS and forgets
// cached responses of the other scheme.
func (t *target) setScheme(useTLS bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.transport != nil {
		t.transport.CloseIdleConnections()
	}
	t.useTLS = useTLS
	t.cache = map[string]*Response{}
	t.consecErr = 0
	tr := &http.Transport{
		Proxy:                  nil, // never an environment proxy
		DialContext:            t.dial,
		DisableCompression:     true, // bodies are decompressed here, bounded
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConns:           maxConnsPerHost,
		MaxIdleConnsPerHost:    maxConnsPerHost,
		MaxConnsPerHost:        maxConnsPerHost,
		IdleConnTimeout:        t.opts.Timeout,
		ResponseHeaderTimeout:  t.opts.Timeout,
		TLSHandshakeTimeout:    t.opts.Timeout,
		ExpectContinueTimeout:  0,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
	if useTLS {
		tr.DialTLSContext = t.dialTLS
	}
	t.transport = tr
	t.client = &http.Client{
		Transport: tr,
		// Never follow redirects: the target decides nothing about where
		// we connect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (t *target) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.transport != nil {
		t.transport.CloseIdleConnections()
	}
	if t.preConn != nil {
		_ = t.preConn.Close()
		t.preConn = nil
	}
}

// dial always connects to the target address, whatever the URL says. The
// connection the caller handed over is used first.
func (t *target) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	t.mu.Lock()
	c := t.preConn
	t.preConn = nil
	t.mu.Unlock()
	if c == nil {
		d := net.Dialer{Timeout: t.opts.Timeout}
		var err error
		c, err = d.DialContext(ctx, "tcp", t.addr.String())
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", t.addr, err)
		}
	}
	return newCountingConn(c, &t.bytesRead), nil
}

func (t *target) dialTLS(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := t.dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // identification only; the certificate is recorded, not trusted
		MinVersion:         tls.VersionTLS10,
		NextProtos:         []string{"http/1.1"},
	}
	if t.hostname != "" {
		if _, perr := netip.ParseAddr(t.hostname); perr != nil {
			cfg.ServerName = t.hostname
		}
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", t.addr, err)
	}
	st := tc.ConnectionState()
	t.mu.Lock()
	if t.tlsState == nil {
		t.tlsState = &st
	}
	t.mu.Unlock()
	return tc, nil
}

// countingConn counts the bytes read from a target and refuses servers
// that speak first.
//
// An HTTP (or TLS) server never sends anything before the client's first
// request. Tarpits, and every banner protocol (SSH, SMTP, FTP, MySQL...),
// do. net/http starts reading a new connection before it writes the
// request; if bytes are already waiting it logs "Unsolicited response
// received on idle HTTP channel" with them through the standard logger —
// hostile bytes on stderr — and otherwise waits for a response header
// that a tarpit drips forever; and if the banner lands just after the
// request went out, it is read as the response. So reads wait until the
// first write has been decided: just before it, the socket is peeked
// (without consuming or blocking), and if bytes are already there every
// read fails with ErrSpokeFirst, which ends the probe of such a server at
// once, silently, and the same way whatever the goroutines' timing.
type countingConn struct {
	net.Conn
	n           *atomic.Int64
	once        sync.Once
	gate        chan struct{} // closed at the first write, or at Close
	bannerFirst atomic.Bool   // bytes were waiting before the first write
}

func newCountingConn(c net.Conn, n *atomic.Int64) *countingConn {
	return &countingConn{Conn: c, n: n, gate: make(chan struct{})}
}

// errSpokeFirst is the read error for a server that sent data before any
// request.
var errSpokeFirst = errors.New("the server sent data before any request")

// spokeFirstError carries the first bytes such a server sent, for debug
// logs.
type spokeFirstError struct{ banner string }

func (e *spokeFirstError) Error() string {
	return fmt.Sprintf("%v (not HTTP): %q", errSpokeFirst, e.banner)
}

func (e *spokeFirstError) Unwrap() error { return errSpokeFirst }

func (c *countingConn) Read(p []byte) (int, error) {
	<-c.gate
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	if n > 0 && c.bannerFirst.Load() {
		return 0, &spokeFirstError{banner: snippet(p[:min(n, 48)], 48)}
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.once.Do(func() {
		if bytesWaiting(c.Conn) {
			c.bannerFirst.Store(true)
		}
		close(c.gate)
	})
	return c.Conn.Write(p)
}

// Close releases a reader still waiting for the first write.
func (c *countingConn) Close() error {
	c.once.Do(func() { close(c.gate) })
	return c.Conn.Close()
}

// baseURL is the scheme://host:port the prober talks to.
func (t *target) baseURL() string {
	scheme := "http"
	if t.useTLS {
		scheme = "https"
	}
	return scheme + "://" + t.hostPort()
}

func (t *target) hostPort() string {
	h := t.hostname
	if h == "" {
		h = t.addr.Addr().Unmap().String()
	}
	return net.JoinHostPort(h, strconv.Itoa(int(t.addr.Port())))
}

// errPassive is returned for requests that would change state or generate
// while the prober is passive.
var errPassive = errors.New("request refused: it could change the target and the probe is passive")

// fetch makes one request (or returns the cached response) and never
// returns nil.
func (t *target) fetch(ctx context.Context, req Request) *Response {
	key := req.Key()
	t.mu.Lock()
	if r, ok := t.cache[key]; ok {
		t.mu.Unlock()
		return r
	}
	t.mu.Unlock()
	r := t.do(ctx, req, nil)
	t.mu.Lock()
	t.cache[key] = r
	if r.Err != nil {
		t.consecErr++
	} else {
		t.consecErr = 0
	}
	t.mu.Unlock()
	return r
}

// failing reports whether the target stopped answering.
func (t *target) failing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.consecErr >= 3
}

// do sends a request without caching. extra headers are added as given.
func (t *target) do(ctx context.Context, req Request, extra http.Header) *Response {
	if ctx.Err() != nil {
		return &Response{Err: fmt.Errorf("%s: target budget spent: %w", req, ctx.Err())}
	}
	if !t.opts.Active && !passiveAllowed(req) {
		return &Response{Err: fmt.Errorf("%s: %w", req, errPassive)}
	}
	rctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(rctx, req.Method, t.baseURL()+req.Path, body)
	if err != nil {
		return &Response{Err: fmt.Errorf("building %s: %w", req, err)}
	}
	hr.Host = t.hostPort()
	hr.Header.Set("User-Agent", t.opts.UserAgent)
	hr.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.5")
	hr.Header.Set("Accept-Encoding", "identity")
	if req.Body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range extra {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	t.requests.Add(1)
	resp, err := t.client.Do(hr)
	if err != nil {
		t.log.Debug("request failed", "target", t.addr, "request", req.String(), "err", err)
		return &Response{Err: fmt.Errorf("%s: %w", req, err)}
	}
	defer resp.Body.Close()
	// Once a target has sent one body over the cap it is not answering
	// like an API (endless bodies, bombs): later bodies are read only up to
	// a matching prefix, so it costs neither time nor memory.
	limit := t.opts.MaxBody
	if t.oversized.Load() {
		limit = min(limit, keepTruncated)
	}
	b, truncated, rerr := readBounded(resp, limit)
	if rerr != nil {
		t.log.Debug("reading body stopped", "target", t.addr, "request", req.String(), "err", rerr)
	}
	if truncated {
		t.oversized.Store(true)
		// A truncated body is never valid JSON; keep only the prefix the
		// matchers' regular expressions can use, and let the large buffer
		// go. Responses are cached for the whole probe.
		if len(b) > keepTruncated {
			b = bytes.Clone(b[:keepTruncated])
		}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Truncated: truncated}
}

// keepTruncated is how much of a body over the cap is kept for matching.
const keepTruncated = 64 << 10

// passiveAllowed says whether a request is safe without Options.Active.
func passiveAllowed(r Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return readOnlyPOST(r.Path)
	}
	return false
}

// readBounded reads at most max body bytes from the wire and, for
// compressed bodies, at most max decompressed bytes. A body that stops
// early (timeout, reset) keeps what arrived.
func readBounded(resp *http.Response, max int64) ([]byte, bool, error) {
	raw := io.LimitReader(resp.Body, max+1)
	var r io.Reader = raw
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, false, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		r = zr
	case "deflate":
		fr := flate.NewReader(raw)
		defer fr.Close()
		r = fr
	}
	var buf bytes.Buffer
	_, err := io.Copy(&buf, io.LimitReader(r, max+1))
	b := buf.Bytes()
	truncated := int64(len(b)) > max
	if truncated {
		b = b[:max]
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return b, truncated, err
}
