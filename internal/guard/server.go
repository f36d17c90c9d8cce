package guard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/llmfence/llmfence/internal/guard/abuse"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/route"
)

// Options assemble a Server. Auth is required; the others have defaults.
type Options struct {
	Config Config
	Auth   Authenticator
	// Router defaults to the embedded route table for Config.Kind.
	Router Router
	// Limiter defaults to an in-process limits.Memory.
	Limiter Limiter
	// Sink receives audit records; nil keeps no audit log.
	Sink  UsageSink
	Audit AuditOptions
	// Transport reaches the upstream; nil means a dedicated http.Transport
	// honouring Config.Timeouts.UpstreamHeader.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Now is the clock for back-off and audit times; nil means time.Now.
	Now func() time.Time
	// Reload, when set, is called by Run on SIGHUP (and when ConfigFile
	// changes) to re-read the configuration, which then goes to
	// Server.Reload.
	Reload     func() (Config, error)
	ConfigFile string
	// Abuse, when set, screens every inference request and learns each
	// key's usage (see package abuse; Config.Abuse is what the command
	// builds it from). nil turns the signals off. Server.Close closes it.
	Abuse *abuse.Detector
}

// Server is the gateway: an http.Handler for the client side plus Run,
// which listens, serves metrics and shuts down gracefully.
type Server struct {
	upstream  *url.URL
	kind      string
	router    Router
	auth      Authenticator
	limiter   Limiter
	audit     *AuditWriter
	abuse     *abuse.Detector // nil: abuse signals off
	transport http.RoundTripper
	proxy     *httputil.ReverseProxy
	log       *slog.Logger
	now       func() time.Time
	opts      Options

	rt       atomic.Pointer[runtimeConfig]
	throttle *authThrottle
	metrics  *metrics
}

// runtimeConfig is the reloadable configuration, swapped atomically: each
// request loads it once and keeps it to the end.
type runtimeConfig struct {
	cfg Config
	ipf ipFilter
}

// New builds a Server. It does not listen; see Run or use it as a handler.
func New(opts Options) (*Server, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Auth == nil {
		return nil, errors.New("guard: an authenticator is required")
	}
	u, _ := url.Parse(cfg.Upstream) // validated
	s := &Server{
		abuse:    opts.Abuse,
		upstream: u, kind: cfg.Kind, router: opts.Router, auth: opts.Auth,
		limiter: opts.Limiter, transport: opts.Transport, log: opts.Logger,
		now: opts.Now, opts: opts, metrics: newMetrics(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.router == nil {
		t, err := route.New(cfg.Kind)
		if err != nil {
			return nil, fmt.Errorf("route table for %s: %w", cfg.Kind, err)
		}
		s.router = t
	}
	if s.limiter == nil {
		s.limiter = LimiterFrom(limits.NewMemory(limits.Options{}, s.log))
	}
	if s.transport == nil {
		s.transport = newTransport(cfg.Timeouts.UpstreamHeader)
	}
	if opts.Sink != nil {
		s.audit = newAuditWriter(opts.Sink, opts.Audit, s.log, s.metrics)
	}
	s.throttle = newAuthThrottle(s.now, 100000)
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.transport,
		FlushInterval:  -1,
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.proxyError,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func newTransport(headerTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // never send model traffic through an environment proxy
		DialContext:           d.DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // the meter must see plain bodies
	}
}

// Reload swaps the reloadable configuration atomically. Requests in flight
// keep the configuration they started with. Fields that cannot change
// without a restart (upstream, kind, listen addresses, redis, connection
// cap) are kept as they were, with a warning.
func (s *Server) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	allow, _ := parsePrefixes(cfg.Allow)
	deny, _ := parsePrefixes(cfg.Deny)
	if old := s.rt.Load(); old != nil {
		o := old.cfg
		if cfg.Upstream != o.Upstream || cfg.Kind != o.Kind || cfg.Listen != o.Listen ||
			cfg.MetricsListen != o.MetricsListen || cfg.Redis != o.Redis || cfg.MaxConnsPerIP != o.MaxConnsPerIP ||
			cfg.TLS != o.TLS || !reflect.DeepEqual(cfg.OIDC, o.OIDC) {
			s.log.Warn("config reload: upstream, kind, listen, metrics_listen, redis, max_conns_per_ip, tls and oidc need a restart; keeping the running values")
		}
		cfg.Upstream, cfg.Kind, cfg.Listen, cfg.MetricsListen, cfg.Redis, cfg.MaxConnsPerIP =
			o.Upstream, o.Kind, o.Listen, o.MetricsListen, o.Redis, o.MaxConnsPerIP
		cfg.TLS, cfg.OIDC = o.TLS, o.OIDC
		cfg.Timeouts.UpstreamHeader = o.Timeouts.UpstreamHeader
	}
	s.rt.Store(&runtimeConfig{cfg: cfg, ipf: ipFilter{allow: allow, deny: deny}})
	return nil
}

// Config returns the configuration in force.
func (s *Server) Config() Config { return s.rt.Load().cfg }

// Close flushes the audit log, waiting at most until ctx ends. Run calls it
// on shutdown; call it yourself when using the Server only as a handler.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.abuse != nil {
		errs = append(errs, s.abuse.Close(ctx))
	}
	if s.audit != nil {
		errs = append(errs, s.audit.Close(ctx))
	}
	return errors.Join(errs...)
}

// Run listens on Config.Listen (client side) and Config.MetricsListen
// (metrics, health; skipped when empty) and serves until ctx ends, then
// shuts down gracefully: it stops accepting, lets requests and streams in
// flight finish for up to Timeouts.Shutdown, and flushes the audit log.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.Config()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("guard: listening on %s: %w", cfg.Listen, err)
	}
	var mln net.Listener
	if cfg.MetricsListen != "" {
		mln, err = net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("guard: metrics listener on %s: %w", cfg.MetricsListen, err)
		}
	}
	return s.Serve(ctx, ln, mln)
}

// Serve is Run on listeners the caller opened; mln may be nil.
func (s *Server) Serve(ctx context.Context, ln, mln net.Listener) error {
	cfg := s.Config()
	var tlsCfg *tls.Config
	if cfg.TLS.Enabled() {
		var err error
		if tlsCfg, err = ServerTLSConfig(cfg.TLS); err != nil {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			return err
		}
	}
	ln = limitPerIP(ln, cfg.MaxConnsPerIP, func(netip.Addr) { s.metrics.deny("conn_limit") })
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.Timeouts.ReadHeader,
		ReadTimeout:       cfg.Timeouts.Read,
		IdleTimeout:       cfg.Timeouts.Idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		TLSConfig:         tlsCfg,
	}
	var msrv *http.Server
	errc := make(chan error, 2)
	go func() {
		if tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	if mln != nil {
		msrv = &http.Server{Handler: s.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		go func() { errc <- msrv.Serve(mln) }()
	}
	stopWatch := s.watchReload(ctx)
	defer stopWatch()
	s.log.Info("guard listening", "listen", ln.Addr().String(), "upstream", s.upstream.Redacted(),
		"tls", tlsCfg != nil, "client_certs", tlsCfg != nil && tlsCfg.ClientAuth == tls.RequireAndVerifyClientCert)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	grace := cfg.Timeouts.Shutdown
	if grace <= 0 {
		grace = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if msrv != nil {
		msrv.Shutdown(sctx)
	}
	closeErr := s.Close(sctx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("guard: serving: %w", serveErr)
	}
	if shutErr != nil {
		return fmt.Errorf("guard: shutdown: streams still open after %s: %w", grace, shutErr)
	}
	return closeErr
}

// ServerTLSConfig loads the certificate, key and client CA bundle named by
// t. With a client CA, the handshake requires and verifies a client
// certificate (tls.RequireAndVerifyClientCert). TLS 1.2 is the minimum.
func ServerTLSConfig(t TLSFiles) (*tls.Config, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: loading certificate %s and key %s: %w", t.Cert, t.Key, err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls: reading client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA bundle %s holds no PEM certificate", t.ClientCA)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// watchReload reloads on SIGHUP and when the config file changes (polled
// every two seconds: cheap, and works on every file system).
func (s *Server) watchReload(ctx context.Context) func() {
	if s.opts.Reload == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var lastMod time.Time
	var lastSize int64
	if fi, err := os.Stat(s.opts.ConfigFile); s.opts.ConfigFile != "" && err == nil {
		lastMod, lastSize = fi.ModTime(), fi.Size()
	}
	tick := time.NewTicker(2 * time.Second)
	go func() {
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.reloadNow("SIGHUP")
			case <-tick.C:
				if s.opts.ConfigFile == "" {
					continue
				}
				fi, err := os.Stat(s.opts.ConfigFile)
				if err != nil || (fi.ModTime().Equal(lastMod) && fi.Size() == lastSize) {
					continue
				}
				lastMod, lastSize = fi.ModTime(), fi.Size()
				s.reloadNow("config file changed")
			}
		}
	}()
	return func() { signal.Stop(hup); cancel() }
}

func (s *Server) reloadNow(why string) {
	cfg, err := s.opts.Reload()
	if err == nil {
		err = s.Reload(cfg)
	}
	if err != nil {
		s.log.Error("config reload failed; keeping the running configuration", "trigger", why, "err", err)
		return
	}
	s.log.Info("configuration reloaded", "trigger", why)
}

// MetricsHandler serves /metrics (Prometheus text format), /healthz (the
// process is up) and /readyz (the upstream answers).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.checkUpstream(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "upstream not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// checkUpstream asks the upstream's root path; any answer below 500 means
// it is up.
func (s *Server) checkUpstream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	u := *s.upstream
	if u.Path == "" {
		u.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("%s unreachable: %w", s.upstream.Redacted(), err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%s answered %s", s.upstream.Redacted(), resp.Status)
	}
	return nil
}

// presentedKey reads the API key from Authorization: Bearer or X-API-Key.
func presentedKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(rest)
		}
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}
