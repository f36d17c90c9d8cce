package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/guard"
	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/guard/authn"
	gkeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/spool"
	"github.com/llmfence/llmfence/internal/redact"
	"github.com/llmfence/llmfence/internal/store"
)

// guardFlags are the command-line settings of `llmfence guard`: every
// setting of the guard's settings table (internal/guard/settings.go) has a
// flag that overrides the --config file, plus the file itself and
// --create-dir.
type guardFlags struct {
	config    string
	createDir bool
	set       *guard.Overrides
}

func newGuardCmd(e *env) *cobra.Command { return guardCommand(e, &guardFlags{}) }

// guardCommand builds the command over f, which receives the flag values.
func guardCommand(e *env, f *guardFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guard",
		Short: "Run the authenticating, metering gateway in front of an LLM server",
		Long: `guard is a reverse proxy for Ollama and OpenAI-compatible servers that
stops LLMjacking: every request needs an API key (llmfence keys create), only
inference and model listing are open to normal keys, model management needs
an admin key, and per-key rate limits and token budgets hold even mid-stream.
Usage is written to the store (llmfence usage); prompts and responses only
with --capture, redacted (llmfence captures). SIGHUP, or a change to the
--config file, reloads the configuration and the TLS certificate files
without dropping streams in flight.

TLS: --tls-cert and --tls-key serve HTTPS. --client-ca also requires every
client to present a certificate signed by that CA (mutual TLS); the handshake
is refused otherwise. A client certificate is an extra requirement on top of
the API key or token, never a replacement for it; its subject is kept in
each request's audit record.

OpenID Connect: with --oidc-issuer and --oidc-audience, a bearer token that is
not an llmfence API key (lf_...) is verified as a JWT (ID token or JWT access
token) against the issuer's discovery document and keys: signature, issuer,
audience and expiry. The caller is "oidc:<sub>", named by preferred_username,
email or sub; --oidc-admin-claim groups=llm-admins grants admin routes to
tokens whose claim holds that value; --oidc-models-claim names a claim listing
the model globs a token may use, else --oidc-default-models applies (none by
default). Token callers get the default limits tier.`,
		Example: `  llmfence guard --upstream http://127.0.0.1:11434 --listen :11435
  llmfence guard --config guard.yaml --redis redis://127.0.0.1:6379/0
  llmfence guard --tls-cert gw.crt --tls-key gw.key --client-ca clients-ca.pem
  llmfence guard --oidc-issuer https://login.example.com/realms/ai --oidc-audience llmfence \
      --oidc-admin-claim groups=llm-admins --oidc-models-claim llm_models`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGuard(cmd, e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML configuration `FILE` (flags override it; reloaded on SIGHUP and when it changes)")
	fl.BoolVar(&f.createDir, "create-dir", false, "create the directory of a --db file that does not exist yet")
	addGuardSettingFlags(cmd, f)
	return cmd
}

// addGuardSettingFlags registers one flag per setting of the table, its
// default and help taken from the table, and --abuse-block, a shorthand
// for --abuse-<signal>-action block.
func addGuardSettingFlags(cmd *cobra.Command, f *guardFlags) {
	fl := cmd.Flags()
	f.set = guard.NewOverrides()
	for _, s := range guard.Settings() {
		flag := fl.VarPF(f.set.Value(s), s.Flag, "", s.Usage())
		if s.Kind() == guard.KindBool {
			flag.NoOptDefVal = "true"
		}
	}
	fl.Var(abuseBlockFlag{f.set}, "abuse-block",
		"refuse requests that trip these abuse signals: "+strings.Join(guard.BlockableSignals(), ", ")+" (short for --abuse-SIGNAL-action block)")
}

// abuseBlockFlag is --abuse-block: a comma-separated list of signals.
type abuseBlockFlag struct{ set *guard.Overrides }

func (a abuseBlockFlag) String() string { return "" }
func (a abuseBlockFlag) Type() string   { return "SIGNALS" }
func (a abuseBlockFlag) Set(v string) error {
	for _, sig := range strings.Split(v, ",") {
		if err := a.set.BlockSignal(sig); err != nil {
			return err
		}
	}
	return nil
}

// guardConfig reads --config (if any) and lays the flags given over it.
func guardConfig(f *guardFlags) (guard.Config, error) { return guard.LoadConfig(f.config, f.set) }

func runGuard(cmd *cobra.Command, e *env, f *guardFlags) error {
	ctx := cmd.Context()
	if os.Getenv("GOGC") == "" {
		// A long-running gateway: trade a little CPU for a smaller heap
		// (peak RSS at 1,000 req/s ~55 MiB instead of ~63; see
		// docs/benchmarks.md). GOGC in the environment overrides it.
		debug.SetGCPercent(50)
	}
	cfg, err := guardConfig(f)
	if err != nil {
		return err
	}
	st, err := openGuardStore(ctx, e, storeUse{createDir: f.createDir})
	if err != nil {
		return err
	}
	defer st.Close()
	sp, spoolDir, err := openAuditSpool(ctx, e, cfg.Audit, st)
	if err != nil {
		return err
	}
	spoolOwned := true
	defer func() {
		if spoolOwned {
			sp.Close()
		}
	}()
	opts := guard.Options{Config: cfg, Sink: st, Spool: sp, Logger: e.log, ConfigFile: f.config,
		Reload: func() (guard.Config, error) { return guardConfig(f) }}
	closeLimiter, err := guardParts(ctx, e, cfg, st, &opts)
	if err != nil {
		return err
	}
	defer closeLimiter()
	srv, err := guard.New(opts)
	if err != nil {
		return err
	}
	spoolOwned = false // the server closes it
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
		if cfg.TLS.ClientCA != "" {
			scheme = "https+client-cert"
		}
	}
	fmt.Fprintf(e.stderr, "llmfence guard: %s://%s -> %s (metrics %s, audit spool %s)\n", scheme, cfg.Listen,
		guard.RedactURL(cfg.Upstream), orNone(cfg.MetricsListen), spoolDir)
	return srv.Run(ctx)
}

// guardParts builds the limiter, authenticator, abuse detector and capture
// writer into opts; the function returned closes the limiter's Redis
// client.
func guardParts(ctx context.Context, e *env, cfg guard.Config, st store.GuardStore, opts *guard.Options) (func(), error) {
	lim, closeLimiter, err := guardLimiter(ctx, e, cfg, st)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			closeLimiter()
		}
	}()
	if cfg.TLS.Enabled() {
		// Fail before listening when the files are wrong.
		if _, err := guard.ServerTLSConfig(cfg.TLS); err != nil {
			return nil, err
		}
	}
	if opts.Auth, err = guardAuthenticator(ctx, e, cfg, st); err != nil {
		return nil, err
	}
	if opts.Abuse, err = abuse.New(cfg.Abuse, abuse.Options{Logger: e.log, Background: true}); err != nil {
		return nil, fmt.Errorf("abuse rules: %w", err)
	}
	if cfg.Capture.Enabled {
		red, err := redact.New()
		if err != nil {
			return nil, fmt.Errorf("redaction patterns: %w", err)
		}
		opts.Capture = guard.NewCaptureWriter(st, cfg.Capture, red, e.log, nil)
		keep := cfg.Capture.Retention
		if keep == 0 {
			keep = guard.DefaultCaptureRetention
		}
		fmt.Fprintf(e.stderr, "llmfence guard: capturing prompts and responses (redacted, kept %s; see llmfence captures)\n", keep)
	}
	opts.Limiter, ok = lim, true
	return closeLimiter, nil
}

// openAuditSpool opens the audit spool, where records of answered requests
// wait before they reach the store, and copies what an earlier run left
// into the store first, so the budgets restored afterwards count it.
func openAuditSpool(ctx context.Context, e *env, ac guard.AuditConfig, st store.GuardStore) (*spool.Spool, string, error) {
	opts := spool.Options{Fsync: ac.Fsync, FsyncInterval: ac.FsyncInterval, Logger: e.log}
	dir := ac.Spool
	var sp *spool.Spool
	var err error
	if dir != "" {
		if sp, err = spool.Open(dir, opts); err != nil {
			return nil, "", err
		}
	} else {
		// The default place; a second guard on the same store (replicas
		// on one host) takes the next free one, and whichever guard starts
		// next copies what a crashed one left.
		base, err := guard.DefaultSpoolDir(e.db)
		if err != nil {
			return nil, "", err
		}
		for i := 1; sp == nil; i++ {
			dir = base
			if i > 1 {
				dir = fmt.Sprintf("%s.%d", base, i)
			}
			sp, err = spool.Open(dir, opts)
			if err != nil && (!errors.Is(err, spool.ErrInUse) || i == 16) {
				return nil, "", err
			}
		}
	}
	if rs, err := sp.Replay(ctx, st, 0); err != nil {
		sp.Close()
		return nil, "", fmt.Errorf("copying the audit spool %s into the store: %w", dir, err)
	} else if rs.Records > 0 || rs.Lost > 0 {
		e.log.Info("audit spool replayed", "dir", dir, "records", rs.Records, "bytes_lost", rs.Lost)
	}
	return sp, dir, nil
}

// guardLimiter shares the limit counters through Redis, or keeps them in
// this process, seeded from the audit log so that a restart does not hand
// every key a fresh budget. The function returned closes the Redis client.
func guardLimiter(ctx context.Context, e *env, cfg guard.Config, st store.GuardStore) (guard.Limiter, func(), error) {
	if cfg.Redis == "" {
		mem := limits.NewMemory(limits.Options{}, e.log)
		n, err := guard.RestoreBudgets(ctx, mem, st, time.Now())
		if err != nil {
			return nil, nil, err
		}
		if n > 0 {
			e.log.Info("token budgets restored from the audit log", "keys", n)
		}
		return guard.LimiterFrom(mem), func() {}, nil
	}
	opt, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		return nil, nil, fmt.Errorf("--redis %q: %w", cfg.Redis, err)
	}
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("redis at %s is unreachable: %w", opt.Addr, err)
	}
	return guard.LimiterFrom(limits.NewRedis(rdb, limits.RedisOptions{Logger: e.log})), func() { rdb.Close() }, nil
}

// guardAuthenticator checks API keys against the store and, with an OIDC
// issuer, JWT bearer tokens.
func guardAuthenticator(ctx context.Context, e *env, cfg guard.Config, st store.GuardStore) (guard.Authenticator, error) {
	auth := guard.KeysAuthenticator(gkeys.NewManager(st, gkeys.Options{Logger: e.log}))
	if !cfg.OIDC.Enabled() {
		return auth, nil
	}
	o, err := authn.NewOIDC(cfg.OIDC, authn.OIDCOptions{Logger: e.log})
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := o.Discover(dctx); err != nil {
		// Not fatal: discovery is retried on use, and API keys work.
		fmt.Fprintf(e.stderr, "llmfence guard: warning: %v (token requests get 503 until it answers)\n", err)
	}
	return authn.Chain(auth, o), nil
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
