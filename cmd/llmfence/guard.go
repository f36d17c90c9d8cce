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

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/guard"
	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/guard/authn"
	gkeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/spool"
	"github.com/llmfence/llmfence/internal/redact"
)

// guardFlags are the command-line settings of `llmfence guard`; set flags
// override the --config file.
type guardFlags struct {
	config, upstream, kind, listen, metrics, redis string
	allow, deny                                    []string
	maxBody                                        int64
	filterModels                                   bool
	trustedProxies, corsOrigins                    []string
	capture                                        bool
	captureRetention                               time.Duration
	tlsCert, tlsKey, clientCA                      string
	oidcIssuer, oidcAudience, oidcAdmin            string
	oidcModels                                     string
	oidcDefaultModels                              []string
	abuseWebhook                                   string
	abuseBlock                                     []string
	auditSpool, auditFsync                         string
	createDir                                      bool
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
	def := guard.DefaultConfig()
	fl.StringVar(&f.config, "config", "", "YAML configuration `FILE` (flags override it; reloaded on SIGHUP and when it changes)")
	fl.StringVar(&f.upstream, "upstream", def.Upstream, "`URL` of the LLM server to protect")
	fl.StringVar(&f.kind, "kind", def.Kind, "upstream API: ollama, vllm, llamacpp or openai")
	fl.StringVar(&f.listen, "listen", def.Listen, "`ADDR` to serve clients on")
	fl.StringVar(&f.metrics, "metrics", def.MetricsListen, "`ADDR` for /metrics, /healthz and /readyz (\"\" to disable)")
	fl.StringVar(&f.redis, "redis", "", "share limit counters between replicas through this Redis `URL`")
	fl.StringArrayVar(&f.allow, "allow", nil, "admit only clients in this `CIDR` (repeatable)")
	fl.StringArrayVar(&f.deny, "deny", nil, "refuse clients in this `CIDR` (repeatable; wins over --allow)")
	fl.Int64Var(&f.maxBody, "max-body", def.MaxBodyBytes, "largest request body in `BYTES`")
	fl.BoolVar(&f.filterModels, "filter-models", false, "hide models a key may not use from model listings")
	fl.StringArrayVar(&f.trustedProxies, "trusted-proxy", nil, "believe X-Forwarded-For from reverse proxies in this `CIDR` (repeatable)")
	fl.StringArrayVar(&f.corsOrigins, "cors-origin", nil, "let browser pages from this `ORIGIN` (https://host[:port], or *) call the gateway (repeatable; default none)")
	fl.BoolVar(&f.capture, "capture", false, "store prompts and responses, PII and secrets redacted (llmfence captures); off by default")
	fl.Var(cli.NewDuration(&f.captureRetention, guard.DefaultCaptureRetention, cli.NonNegative), "capture-retention", "delete captured prompts and responses older than this `DURATION`")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate chain `FILE`")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `FILE` for --tls-cert")
	fl.StringVar(&f.clientCA, "client-ca", "", "require client certificates signed by a CA in this PEM `FILE` (mutual TLS, on top of the API key)")
	fl.StringVar(&f.abuseWebhook, "abuse-webhook", "", "POST abuse alerts (JSON) to this `URL`")
	fl.StringSliceVar(&f.abuseBlock, "abuse-block", nil, "refuse requests that trip these abuse signals: rate_jump, new_network, prompt_abuse, bulk_spam (default: alert or log only)")
	fl.StringVar(&f.auditSpool, "audit-spool", "", "local audit spool `DIR` (default: beside a SQLite store, <db>.audit)")
	fl.StringVar(&f.auditFsync, "audit-fsync", "interval", "when spooled audit records are forced to disk: always, interval or never")
	fl.BoolVar(&f.createDir, "create-dir", false, "create the directory of a --db file that does not exist yet")
	fl.StringVar(&f.oidcIssuer, "oidc-issuer", "", "accept OpenID Connect JWT bearer tokens from this issuer `URL`")
	fl.StringVar(&f.oidcAudience, "oidc-audience", "", "`AUD` that tokens must be issued for (required with --oidc-issuer)")
	fl.StringVar(&f.oidcAdmin, "oidc-admin-claim", "", "`CLAIM=VALUE` granting admin routes, e.g. groups=llm-admins")
	fl.StringVar(&f.oidcModels, "oidc-models-claim", "", "token `CLAIM` listing the model globs the caller may use")
	fl.StringArrayVar(&f.oidcDefaultModels, "oidc-default-models", nil, "model `GLOB` for tokens without the models claim (repeatable; none by default)")
	return cmd
}

// guardConfig reads --config (if any) and applies the flags that were set.
func guardConfig(cmd *cobra.Command, f *guardFlags) (guard.Config, error) {
	cfg := guard.DefaultConfig()
	if f.config != "" {
		var err error
		if cfg, err = guard.LoadConfigFile(f.config, cfg); err != nil {
			return guard.Config{}, err
		}
	}
	ch := cmd.Flags().Changed
	if ch("upstream") {
		cfg.Upstream = f.upstream
	}
	if ch("kind") {
		cfg.Kind = f.kind
	}
	if ch("listen") {
		cfg.Listen = f.listen
	}
	if ch("metrics") {
		cfg.MetricsListen = f.metrics
	}
	if ch("redis") {
		cfg.Redis = f.redis
	}
	if ch("allow") {
		cfg.Allow = f.allow
	}
	if ch("deny") {
		cfg.Deny = f.deny
	}
	if ch("max-body") {
		cfg.MaxBodyBytes = f.maxBody
	}
	if ch("filter-models") {
		cfg.FilterModelList = f.filterModels
	}
	if ch("trusted-proxy") {
		cfg.TrustedProxies = f.trustedProxies
	}
	if ch("cors-origin") {
		cfg.CORSOrigins = f.corsOrigins
	}
	if ch("capture") {
		cfg.Capture.Enabled = f.capture
	}
	if ch("capture-retention") {
		cfg.Capture.Retention = f.captureRetention
	}
	if ch("tls-cert") {
		cfg.TLS.Cert = f.tlsCert
	}
	if ch("tls-key") {
		cfg.TLS.Key = f.tlsKey
	}
	if ch("client-ca") {
		cfg.TLS.ClientCA = f.clientCA
	}
	if ch("abuse-webhook") {
		cfg.Abuse.Webhook = f.abuseWebhook
	}
	if ch("audit-spool") {
		cfg.Audit.Spool = f.auditSpool
	}
	if ch("audit-fsync") {
		if err := cfg.Audit.Fsync.UnmarshalText([]byte(f.auditFsync)); err != nil {
			return cfg, fmt.Errorf("--audit-fsync: %w", err)
		}
	}
	for _, sig := range f.abuseBlock {
		switch strings.TrimSpace(sig) {
		case "rate_jump":
			cfg.Abuse.RateJump.Action = abuse.Block
		case "new_network":
			cfg.Abuse.NewNetwork.Action = abuse.Block
		case "prompt_abuse":
			cfg.Abuse.PromptAbuse.Action = abuse.Block
		case "bulk_spam":
			cfg.Abuse.BulkSpam.Action = abuse.Block
		default:
			return cfg, fmt.Errorf("--abuse-block %q: want rate_jump, new_network, prompt_abuse or bulk_spam", sig)
		}
	}
	if ch("oidc-issuer") {
		cfg.OIDC.Issuer = f.oidcIssuer
	}
	if ch("oidc-audience") {
		cfg.OIDC.Audience = f.oidcAudience
	}
	if ch("oidc-admin-claim") {
		cfg.OIDC.AdminClaim = f.oidcAdmin
	}
	if ch("oidc-models-claim") {
		cfg.OIDC.ModelsClaim = f.oidcModels
	}
	if ch("oidc-default-models") {
		cfg.OIDC.DefaultModels = f.oidcDefaultModels
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
	cfg, err := guardConfig(cmd, f)
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
		Reload:     func() (guard.Config, error) { return guardConfig(cmd, f) },
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
