package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/guard"
	gkeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/store"
)

// guardFlags are the command-line settings of `llmfence guard`; set flags
// override the --config file.
type guardFlags struct {
	config, upstream, kind, listen, metrics, redis string
	allow, deny                                    []string
	maxBody                                        int64
	filterModels                                   bool
}

func newGuardCmd(e *env) *cobra.Command {
	var f guardFlags
	cmd := &cobra.Command{
		Use:   "guard",
		Short: "Run the authenticating, metering gateway in front of an LLM server",
		Long: `guard is a reverse proxy for Ollama and OpenAI-compatible servers that
stops LLMjacking: every request needs an API key (llmfence keys create), only
inference and model listing are open to normal keys, model management needs
an admin key, and per-key rate limits and token budgets hold even mid-stream.
Usage is written to the store (llmfence usage). SIGHUP reloads --config.`,
		Example: `  llmfence guard --upstream http://127.0.0.1:11434 --listen :11435
  llmfence guard --config guard.yaml --redis redis://127.0.0.1:6379/0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGuard(cmd, e, &f)
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
	if err := cfg.Validate(); err != nil {
		return guard.Config{}, err
	}
	return cfg, nil
}

func runGuard(cmd *cobra.Command, e *env, f *guardFlags) error {
	ctx := cmd.Context()
	cfg, err := guardConfig(cmd, f)
	if err != nil {
		return err
	}
	st, err := store.OpenGuard(ctx, e.db)
	if err != nil {
		return err
	}
	defer st.Close()

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
		lim = guard.LimiterFrom(limits.NewMemory(limits.Options{}, e.log))
	}

	srv, err := guard.New(guard.Options{
		Config:     cfg,
		Auth:       guard.KeysAuthenticator(gkeys.NewManager(st, gkeys.Options{Logger: e.log})),
		Limiter:    lim,
		Sink:       st,
		Logger:     e.log,
		Reload:     func() (guard.Config, error) { return guardConfig(cmd, f) },
		ConfigFile: f.config,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "llmfence guard: %s -> %s (metrics %s)\n", cfg.Listen, cfg.Upstream, orNone(cfg.MetricsListen))
	return srv.Run(ctx)
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
