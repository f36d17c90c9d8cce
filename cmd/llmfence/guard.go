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
		"refuse requests that trip these abuse signals: rate_jump, new_network, prompt_abuse, bulk_spam (short for --abuse-SIGNAL-action block)")
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
func guardConfig(f *guardFlags) (guard.Config, error) {
	cfg := guard.DefaultConfig()
	if f.config != "" {
		var err error
		if cfg, err = guard.LoadConfigFile(f.config, cfg); err != nil {
			return guard.Config{}, err
		}
	}
	if err := f.set.Apply(&cfg); err != nil {
		return guard.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return guard.Config{}, err
	}
	return cfg, nil
}

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

	// The audit spool: records of answered requests wait here before they
	// reach the store. What an earlier run left is copied first, so the
	// budgets restored below count it.
	spoolOpts := spool.Options{Fsync: cfg.Audit.Fsync, FsyncInterval: cfg.Audit.FsyncInterval, Logger: e.log}
	spoolDir := cfg.Audit.Spool
	var sp *spool.Spool
	if spoolDir != "" {
		if sp, err = spool.Open(spoolDir, spoolOpts); err != nil {
			return err
		}
	} else {
		// The default place; a second guard on the same store (replicas
		// on one host) takes the next free one, and whichever guard starts
		// next copies what a crashed one left.
		base, err := guard.DefaultSpoolDir(e.db)
		if err != nil {
			return err
		}
		for i := 1; sp == nil; i++ {
			spoolDir = base
			if i > 1 {
				spoolDir = fmt.Sprintf("%s.%d", base, i)
			}
			sp, err = spool.Open(spoolDir, spoolOpts)
			if err != nil && (!errors.Is(err, spool.ErrInUse) || i == 16) {
				return err
			}
		}
	}
	spoolOwned := true
	defer func() {
		if spoolOwned {
			sp.Close()
		}
	}()
	if rs, err := sp.Replay(ctx, st, 0); err != nil {
		return fmt.Errorf("copying the audit spool %s into the store: %w", spoolDir, err)
	} else if rs.Records > 0 || rs.Lost > 0 {
		e.log.Info("audit spool replayed", "dir", spoolDir, "records", rs.Records, "bytes_lost", rs.Lost)
	}

	var lim guard.Limiter
	if cfg.Redis != "" {
		opt, err := redis.ParseURL(cfg.Redis)
		if err != nil {
			return fmt.Errorf("--redis %q: %w", cfg.Redis, err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("redis at %s is unreachable: %w", opt.Addr, err)
		}
		lim = guard.LimiterFrom(limits.NewRedis(rdb, limits.RedisOptions{Logger: e.log}))
	} else {
		// Without Redis the counters live in this process: the current
		// day's, month's and minute's usage is read back from the audit
		// log, so a restart does not hand every key a fresh budget.
		mem := limits.NewMemory(limits.Options{}, e.log)
		n, err := guard.RestoreBudgets(ctx, mem, st, time.Now())
		if err != nil {
			return err
		}
		if n > 0 {
			e.log.Info("token budgets restored from the audit log", "keys", n)
		}
		lim = guard.LimiterFrom(mem)
	}

	if cfg.TLS.Enabled() {
		// Fail before listening when the files are wrong.
		if _, err := guard.ServerTLSConfig(cfg.TLS); err != nil {
			return err
		}
	}
	auth := guard.KeysAuthenticator(gkeys.NewManager(st, gkeys.Options{Logger: e.log}))
	if cfg.OIDC.Enabled() {
		o, err := authn.NewOIDC(cfg.OIDC, authn.OIDCOptions{Logger: e.log})
		if err != nil {
			return err
		}
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := o.Discover(dctx); err != nil {
			// Not fatal: discovery is retried on use, and API keys work.
			fmt.Fprintf(e.stderr, "llmfence guard: warning: %v (token requests get 503 until it answers)\n", err)
		}
		cancel()
		auth = authn.Chain(auth, o)
	}

	detector, err := abuse.New(cfg.Abuse, abuse.Options{Logger: e.log, Background: true})
	if err != nil {
		return fmt.Errorf("abuse rules: %w", err)
	}
	var capture *guard.CaptureWriter
	if cfg.Capture.Enabled {
		red, err := redact.New()
		if err != nil {
			return fmt.Errorf("redaction patterns: %w", err)
		}
		capture = guard.NewCaptureWriter(st, cfg.Capture, red, e.log, nil)
		keep := cfg.Capture.Retention
		if keep == 0 {
			keep = guard.DefaultCaptureRetention
		}
		fmt.Fprintf(e.stderr, "llmfence guard: capturing prompts and responses (redacted, kept %s; see llmfence captures)\n", keep)
	}
	srv, err := guard.New(guard.Options{
		Capture:    capture,
		Abuse:      detector,
		Config:     cfg,
		Auth:       auth,
		Limiter:    lim,
		Sink:       st,
		Spool:      sp,
		Logger:     e.log,
		Reload:     func() (guard.Config, error) { return guardConfig(f) },
		ConfigFile: f.config,
	})
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

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
