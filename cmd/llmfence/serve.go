package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/console"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

// DefaultServeListen is where `llmfence serve` listens unless told.
const DefaultServeListen = "127.0.0.1:8470"

type serveFlags struct {
	listen, tlsCert, tlsKey string
	cookieSecure            bool
	workers                 int
	setupTTL                time.Duration
	rescueAfter, poll       time.Duration
	maintainEvery           time.Duration
	shardTarget             time.Duration
	minShardTimeout         time.Duration
	maxParallel             int
	ext                     serveExtFlags
}

func newServeCmd(e *env) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Continuous inventory: scheduled scans, alerts and a web dashboard (and its JSON API)",
		Long: `Run the llmfence service: a web dashboard and JSON API over an inventory that
tells the truth over time, scans started by hand or on cron schedules and
split into shards, alerts on changes, and disclosure reports.

With the default SQLite store the scan shards run inside this process (River's
SQLite driver is single-node). With --db postgres://… any number of
"llmfence worker" processes on other machines take shards too.

It listens on loopback unless told otherwise, and there is no default
password: create the first admin with "llmfence users create --admin NAME",
or use the one-time setup token printed at the first start.`,
		Example: `  llmfence serve
  llmfence serve --db postgres://llmfence@db.internal/llmfence --listen 0.0.0.0:8470 --tls-cert c.pem --tls-key k.pem
  llmfence users create --admin alice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runServe(cmd.Context(), e, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", DefaultServeListen, "address to serve the dashboard and API on (loopback by default)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `FILE` (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "private key `FILE` of --tls-cert")
	fl.BoolVar(&f.cookieSecure, "cookie-secure", false, "mark session cookies Secure (set behind a TLS-terminating proxy)")
	fl.IntVar(&f.workers, "workers", 2, "scan shards this process runs at once (0: leave scanning to llmfence worker processes)")
	fl.Var(cli.NewDuration(&f.setupTTL, 24*time.Hour, cli.Positive), "setup-token-ttl", "how long the first-start setup token is valid")
	fl.Var(cli.NewDuration(&f.rescueAfter, 3*time.Minute, cli.Positive), "rescue-after", "rerun a job whose worker died after this long (and after its own timeout)")
	fl.Var(cli.NewDuration(&f.poll, time.Second, cli.Positive), "poll", "how often idle workers look for jobs")
	fl.Var(cli.NewDuration(&f.maintainEvery, time.Minute, cli.Positive), "maintain-every", "period of housekeeping (stale runs, ages, expiries, schedules)")
	fl.Var(cli.NewDuration(&f.shardTarget, time.Minute, cli.Positive), "shard-target", "plan shards to take about this long each at the run's rate")
	fl.Var(cli.NewDuration(&f.minShardTimeout, 2*time.Minute, cli.Positive), "min-shard-timeout", "least time limit of one scan shard")
	fl.IntVar(&f.maxParallel, "max-parallel", 8, "most shards of one run scanning at once")
	for _, n := range []string{"rescue-after", "poll", "maintain-every", "shard-target", "min-shard-timeout", "max-parallel"} {
		fl.MarkHidden(n)
	}
	f.ext.register(cmd)
	return cmd
}

// engineConfig maps shared flags to the job engine's configuration.
func engineConfig(e *env, workers int, serve bool, rescue, poll, maintain, shardTarget time.Duration) jobs.Config {
	c := jobs.DefaultConfig()
	c.ScanWorkers, c.Serve, c.Logger = workers, serve, e.log
	c.RescueAfter, c.PollInterval, c.MaintainEvery, c.ShardTarget = rescue, poll, maintain, shardTarget
	c.Annotator = func() (scan.Annotator, error) { return newJudge() }
	return c
}

func runServe(ctx context.Context, e *env, f *serveFlags) error {
	if err := checkServeListen(e, f); err != nil {
		return err
	}
	st, err := store.OpenServer(ctx, e.db, store.Options{Logger: e.log})
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := serveEngineConfig(e, f)
	f.ext.defaultBase = "http://" + f.listen
	if f.tlsCert != "" {
		f.ext.defaultBase = "https://" + f.listen
	}
	ext, err := f.ext.build(ctx, e, st, &cfg)
	if err != nil {
		return err
	}
	eng, err := jobs.Open(ctx, st, e.db, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	ext.attach(eng)
	ccfg := ext.console
	ccfg.CookieSecure, ccfg.Logger = f.cookieSecure || f.tlsCert != "", e.log
	srv := &http.Server{Addr: f.listen, Handler: console.New(st, eng, ccfg), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
	ln, scheme, err := serveListen(f, srv)
	if err != nil {
		return err
	}
	if err := eng.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return err
	}
	url := scheme + "://" + ln.Addr().String() + "/"
	fmt.Fprintln(e.stderr, e.text.T("cli.serve.listening", "url", url, "store", storeName(e.db)))
	if err := announceSetup(ctx, e, st, url, f.setupTTL); err != nil {
		e.log.Error("cannot create a setup token", "err", err)
	}
	return serveUntilDone(ctx, e, srv, ln, eng)
}

// checkServeListen checks --listen and the TLS pair, and warns when the
// console is served beyond loopback in clear.
func checkServeListen(e *env, f *serveFlags) error {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return badKeysArg(errors.New("--tls-cert and --tls-key go together"))
	}
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return badKeysArg(fmt.Errorf("--listen %q: want host:port: %w", f.listen, err))
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && f.tlsCert == "" {
		e.log.Warn("serving beyond loopback without TLS: passwords and session cookies cross the network in clear; use --tls-cert/--tls-key or a TLS proxy with --cookie-secure", "listen", f.listen)
	}
	return nil
}

// serveEngineConfig is the job engine's configuration from the flags,
// with probe journals beside the store.
func serveEngineConfig(e *env, f *serveFlags) jobs.Config {
	cfg := engineConfig(e, f.workers, true, f.rescueAfter, f.poll, f.maintainEvery, f.shardTarget)
	cfg.MinShardTimeout, cfg.MaxParallel = f.minShardTimeout, f.maxParallel
	if dir, err := journalDir(e.db); err == nil {
		cfg.ProbeDir = dir // probe jobs' journals, beside the store as for llmfence probe
	} else {
		fmt.Fprintf(e.stderr, "llmfence serve: warning: probe jobs keep no journal: %v\n", err)
	}
	return cfg
}

// serveListen opens --listen, with TLS when --tls-cert is given, and
// returns the URL scheme.
func serveListen(f *serveFlags, srv *http.Server) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, "", fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	if f.tlsCert == "" {
		return ln, "http", nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return tls.NewListener(ln, srv.TLSConfig), "https", nil
}

// serveUntilDone serves until the context ends, then shuts the console
// and the job engine down gracefully.
func serveUntilDone(ctx context.Context, e *env, srv *http.Server, ln net.Listener, eng *jobs.Engine) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		eng.Stop(30 * time.Second)
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(e.stderr, e.text.T("cli.serve.stopping"))
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := eng.Stop(30 * time.Second); err != nil {
		e.log.Warn("jobs did not stop cleanly; their shards run again elsewhere", "err", err)
	}
	return nil
}

// announceSetup prints a one-time setup token when no user exists yet.
func announceSetup(ctx context.Context, e *env, st store.UserStore, url string, ttl time.Duration) error {
	n, err := st.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	tok, err := users.SetupToken(ctx, st, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, e.text.T("cli.serve.setup", "url", url, "ttl", e.text.Duration(ttl), "token", tok))
	fmt.Fprintln(e.stderr, e.text.T("cli.serve.setup_cli"))
	return nil
}
