package guard

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/llmfence/llmfence/internal/guard/abuse"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/meter"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/guard/spool"
	"github.com/llmfence/llmfence/internal/redact"
	"github.com/llmfence/llmfence/internal/store"
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
	// Spool, when set (with a Sink that implements SpoolSink), is the
	// local audit spool records are written to before their responses end
	// and copied into Sink in the background; without it every record
	// waits for a commit to Sink. Server.Close closes it.
	Spool *spool.Spool
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
	// AbuseFlush is how often abuse signals are written to a Sink that
	// implements AbuseSignalSink, aggregated per minute, key and kind
	// (default 10 s).
	AbuseFlush time.Duration
	// Capture, when set, receives the prompt and response of every
	// metered request (Config.Capture; redacted by the writer). nil: no
	// capture. Server.Close closes it.
	Capture *CaptureWriter
}

// Server is the gateway: an http.Handler for the client side plus Run,
// which listens, serves metrics and shuts down gracefully.
type Server struct {
	upstream     *url.URL
	upstreamAuth string // Authorization for the upstream (its URL's userinfo), or ""
	kind         string
	router       Router
	auth         Authenticator
	limiter      Limiter
	audit        auditLog        // nil: no audit log
	refused      *refusals       // aggregates refused requests' records
	abuse        *abuse.Detector // nil: abuse signals off
	abuseRec     *abuseRecorder  // nil: signals not stored
	watch        *watcher        // nil: output watch off
	transport    http.RoundTripper
	log          *slog.Logger
	now          func() time.Time
	opts         Options
	writeIdle    time.Duration // Timeouts.Write
	stopPrune    chan struct{}
	pruneDone    chan struct{}

	rt       atomic.Pointer[runtimeConfig]
	throttle *authThrottle
	metrics  *metrics
	// certs serves and re-reads the TLS files; nil until Serve starts TLS.
	certs atomic.Pointer[certReloader]
}

// runtimeConfig is the reloadable configuration, swapped atomically: each
// request loads it once and keeps it to the end.
type runtimeConfig struct {
	cfg         Config
	ipf         ipFilter
	trusted     []netip.Prefix  // proxies whose X-Forwarded-For is believed
	cors        map[string]bool // allowed origins ("*": any)
	reqHeaders  []string        // request headers passed upstream
	respHeaders []string        // response headers passed to clients
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
		now: opts.Now, opts: opts, metrics: newMetrics(), writeIdle: cfg.Timeouts.Write,
	}
	if u.User != nil {
		// The upstream's own credentials (a basic-auth front in front of
		// the model server): sent with every request, never shown.
		pass, _ := u.User.Password()
		s.upstreamAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
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
	if t, ok := s.router.(*route.Table); ok {
		for _, r := range t.Routes {
			if r.Class == route.Inference && r.Meter != route.MeterNone {
				if _, _, ok := meter.Lookup(r.Meter); !ok {
					return nil, fmt.Errorf("route %s: unknown meter %q", r.ID, r.Meter)
				}
			}
		}
	}
	switch {
	case opts.Sink != nil && opts.Spool != nil:
		sink, ok := opts.Sink.(SpoolSink)
		if !ok {
			return nil, errors.New("guard: an audit spool needs a sink that records spool positions (store.UsageStore)")
		}
		grace := cfg.Timeouts.Shutdown
		if grace <= 0 {
			grace = 30 * time.Second
		}
		s.audit = newSpoolLog(opts.Spool, sink, s.metrics, s.log, grace)
	case opts.Sink != nil:
		s.audit = writerLog{newAuditWriter(opts.Sink, opts.Audit, s.log, s.metrics)}
	}
	if s.audit != nil {
		window := cfg.Audit.RefusedWindow
		if window <= 0 {
			window = 10 * time.Second
		}
		s.refused = newRefusals(s.audit, window, s.now, s.log)
		if p, ok := opts.Sink.(usagePruner); ok && cfg.Audit.Retention > 0 {
			s.stopPrune, s.pruneDone = make(chan struct{}), make(chan struct{})
			go func() {
				defer close(s.pruneDone)
				runPruner(p, cfg.Audit.Retention, s.now, s.log, s.stopPrune)
			}()
		}
	}
	if s.abuse != nil && s.abuse.WatchOutput() {
		red, err := redact.New()
		if err != nil {
			return nil, fmt.Errorf("output watch: redaction patterns: %w", err)
		}
		s.watch = newWatcher(s.abuse, red)
	}
	s.throttle = newAuthThrottle(s.now, 100000)
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	if sink, ok := opts.Sink.(AbuseSignalSink); ok && s.abuse != nil {
		every := opts.AbuseFlush
		if every <= 0 {
			every = 10 * time.Second
		}
		s.abuseRec = newAbuseRecorder(sink, s.log, every, store.MaxAbuseBatch)
		s.abuse.SetRecorder(s.abuseRec.record)
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
		// Requests upstream are small (larger bodies bypass the buffer);
		// with thousands of streams open, 1 KiB instead of 4 per
		// connection counts.
		WriteBufferSize: 1 << 10,
	}
}

// Reload swaps the reloadable configuration atomically. Requests in flight
// keep the configuration they started with; requests that start after it
// see the new one. Settings that cannot change without a restart
// (upstream, kind, listen addresses, redis, connection cap, timeouts, OIDC,
// abuse rules, turning TLS or client certificates on or off) keep their
// running values, with a warning naming them. When TLS is being served,
// the certificate, key and client CA files (new paths or the same ones) are
// re-read; if that fails, the running certificate and paths stay, the error
// is logged, and the rest of cfg still applies. An invalid cfg is refused
// whole.
func (s *Server) Reload(cfg Config) error {
	_, err := s.reload(cfg, "Server.Reload")
	return err
}

// reload is Reload with the trigger to log; it returns the names of the
// reloadable settings that changed.
func (s *Server) reload(cfg Config, trigger string) ([]string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	allow, _ := parsePrefixes(cfg.Allow)
	deny, _ := parsePrefixes(cfg.Deny)
	var changed []string
	if old := s.rt.Load(); old != nil {
		if fields := restartOnlyChanges(old.cfg, cfg); len(fields) > 0 {
			s.log.Warn("config reload: these settings need a restart; keeping their running values",
				"trigger", trigger, "fields", strings.Join(fields, ", "))
		}
		cfg = keepRestartOnly(old.cfg, cfg)
		if certs := s.certs.Load(); certs != nil {
			if err := certs.reload(cfg.TLS, trigger); err != nil {
				cfg.TLS = certs.files() // logged by reload
			}
		}
		changed = changedSettings(old.cfg, cfg)
	}
	trusted, _ := parsePrefixes(cfg.TrustedProxies)
	rc := &runtimeConfig{cfg: cfg, ipf: ipFilter{allow: allow, deny: deny}, trusted: trusted,
		reqHeaders: headerList(requestHeaders, cfg.PassRequestHeaders), respHeaders: headerList(responseHeaders, cfg.PassResponseHeaders)}
	if len(cfg.CORSOrigins) > 0 {
		rc.cors = make(map[string]bool, len(cfg.CORSOrigins))
		for _, o := range cfg.CORSOrigins {
			rc.cors[strings.TrimSuffix(o, "/")] = true
		}
	}
	s.rt.Store(rc)
	return changed, nil
}

// Config returns the configuration in force.
func (s *Server) Config() Config { return s.rt.Load().cfg }

// Close flushes the audit log, waiting at most until ctx ends. Run calls it
// on shutdown; call it yourself when using the Server only as a handler.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.abuse != nil {
		errs = append(errs, s.abuse.Close(ctx))
		s.abuse.SetRecorder(nil)
	}
	if s.abuseRec != nil {
		errs = append(errs, s.abuseRec.close(ctx))
	}
	if s.stopPrune != nil {
		select {
		case <-s.stopPrune:
		default:
			close(s.stopPrune)
		}
		<-s.pruneDone
	}
	if s.refused != nil {
		s.refused.close() // its last counts go to the audit log first
	}
	if s.audit != nil {
		errs = append(errs, s.audit.Close(ctx))
	}
	if s.opts.Capture != nil {
		errs = append(errs, s.opts.Capture.Close(ctx))
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
		s.Close(context.Background())
		return fmt.Errorf("guard: listening on %s: %w", cfg.Listen, err)
	}
	var mln net.Listener
	if cfg.MetricsListen != "" {
		mln, err = net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			s.Close(context.Background())
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
		if tlsCfg, err = s.serveTLSConfig(cfg.TLS); err != nil {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			s.Close(context.Background())
			return err
		}
	}
	ln = limitConns(ln, cfg.MaxConnsPerIP, cfg.MaxConns, func(reason string, _ netip.Addr) { s.metrics.deny(reason) })
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
// The files are read once here, which checks them; a Server serving TLS
// keeps its own copy and re-reads them on reload and when they change (see
// Server.Reload).
func ServerTLSConfig(t TLSFiles) (*tls.Config, error) {
	r, err := newCertReloader(t, nil)
	if err != nil {
		return nil, err
	}
	return r.serverConfig(), nil
}

// serveTLSConfig is ServerTLSConfig for Serve: the Server keeps the
// reloader, so reloads and file changes reach the listener.
func (s *Server) serveTLSConfig(t TLSFiles) (*tls.Config, error) {
	r, err := newCertReloader(t, s.log)
	if err != nil {
		return nil, err
	}
	s.certs.Store(r)
	return r.serverConfig(), nil
}

// reloadPollInterval is how often watchReload looks at the files.
const reloadPollInterval = 2 * time.Second

// watchReload reloads the configuration on SIGHUP and when the config file
// changes, and re-reads the TLS certificate, key and client CA bundle when
// they change. Files are polled (modification time and size) every two
// seconds: cheap, and it works on every file system, including the
// symlink swaps of Kubernetes secrets. The returned function stops the
// watch and waits for a reload under way.
func (s *Server) watchReload(ctx context.Context) func() {
	certs := s.certs.Load()
	if s.opts.Reload == nil && certs == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	cfgFile := ""
	if s.opts.Reload != nil {
		cfgFile = s.opts.ConfigFile
	}
	last := stampOf(cfgFile)
	tick := time.NewTicker(reloadPollInterval)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.reloadNow("SIGHUP")
			case <-tick.C:
				if cfgFile != "" {
					// A file that vanished counts as a change: the reload
					// fails, says so, and keeps the running configuration.
					if st := stampOf(cfgFile); st != last {
						last = st
						s.reloadNow("config file changed")
						continue
					}
				}
				if certs != nil {
					certs.poll("certificate files changed")
				}
			}
		}
	}()
	return func() { signal.Stop(hup); cancel(); <-done }
}

// reloadNow re-reads the configuration (Options.Reload) and applies it; a
// failure keeps the running configuration. The TLS files are re-read
// either way: they are not part of the configuration that failed.
func (s *Server) reloadNow(trigger string) {
	certs := s.certs.Load()
	if s.opts.Reload == nil {
		if certs != nil {
			certs.reload(certs.files(), trigger)
		}
		return
	}
	cfg, err := s.opts.Reload()
	var changed []string
	if err == nil {
		changed, err = s.reload(cfg, trigger)
	}
	if err != nil {
		s.log.Error("config reload failed; keeping the running configuration", "trigger", trigger, "err", err)
		if certs != nil {
			certs.reload(certs.files(), trigger)
		}
		return
	}
	s.log.Info("configuration reloaded", "trigger", trigger, "changed", strings.Join(changed, ", "))
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
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if s.upstreamAuth != "" {
		req.Header.Set("Authorization", s.upstreamAuth)
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
