package guard

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/guard/spool"
)

//go:generate go test -run TestSettingsDocUpToDate -update .

// Reload says what a configuration reload (SIGHUP, a changed --config
// file, Server.Reload) does with a setting.
type Reload uint8

const (
	// Reloads: the new value applies to requests that start after the
	// reload.
	Reloads Reload = iota + 1
	// NeedsRestart: the value is built into a listener, the transport, the
	// authenticator, the abuse detector or the audit spool at start-up; a
	// reload keeps the running value and logs a warning naming the
	// setting.
	NeedsRestart
	// ReloadsFile: a file path whose file is re-read on every reload (and
	// when the file changes); turning it on or off (empty to set, or back)
	// needs a restart, as for NeedsRestart.
	ReloadsFile
)

// String is the reload class as the settings reference shows it.
func (r Reload) String() string {
	switch r {
	case Reloads:
		return "reload"
	case NeedsRestart:
		return "restart"
	case ReloadsFile:
		return "reload (restart to turn on or off)"
	}
	return "unknown"
}

// Kind is the type of a setting's value.
type Kind string

// The kinds of value a setting holds.
const (
	KindString   Kind = "string"
	KindList     Kind = "list"     // a list of strings; the flag is repeatable
	KindInt      Kind = "int"      // a whole number
	KindFloat    Kind = "float"    // a decimal number
	KindBool     Kind = "bool"     // the flag is a switch (--x, --x=false)
	KindDuration Kind = "duration" // see ParseDuration
	KindChoice   Kind = "choice"   // one of Setting.Choices
)

// Setting is one entry of the settings table (see Settings): one leaf of
// the YAML configuration, with its flag, help, reload class and typed
// access to its Config field.
type Setting struct {
	// Key is the YAML path, dotted: "timeouts.write" is
	// timeouts: {write: ...}.
	Key string
	// Flag is the command-line flag, without dashes. Empty in the table
	// literal means the key with "." and "_" turned into "-"; Settings
	// fills it in.
	Flag string
	// Arg names the flag's value in help (URL, ADDR, CIDR, N, DURATION);
	// empty for a switch.
	Arg string
	// Help is one line for --help and the settings reference.
	Help string
	// Reload is what a reload does with the setting.
	Reload Reload
	v      value
}

// value is typed access to one Config field.
type value interface {
	kind() Kind
	choices() []string
	// text is the field's value as a flag or the reference shows it; ""
	// for an empty string or list.
	text(c *Config) string
	// set replaces the field with args, the flag's values in the order
	// given: a list takes them all, any other kind the last.
	set(c *Config, args []string) error
	equal(a, b *Config) bool
	copy(dst, src *Config)
}

// Kind is the type of the setting's value.
func (s Setting) Kind() Kind { return s.v.kind() }

// Choices are the accepted values of a KindChoice setting.
func (s Setting) Choices() []string { return s.v.choices() }

// Default is the setting's value in DefaultConfig, as text ("" for an
// empty string or list, "0" for a zero duration).
func (s Setting) Default() string {
	c := DefaultConfig()
	return s.v.text(&c)
}

// Text is the setting's value in c, as text.
func (s Setting) Text(c *Config) string { return s.v.text(c) }

// Set replaces the setting in c with args, the values given for its flag
// in order: a list setting takes them all, any other the last one. The
// error names the flag.
func (s Setting) Set(c *Config, args ...string) error {
	if len(args) == 0 {
		return nil
	}
	if err := s.v.set(c, args); err != nil {
		return fmt.Errorf("--%s: %w", s.Flag, err)
	}
	return nil
}

// Usage is the flag's help: Help, plus the accepted values of a choice
// and "repeatable" for a list.
func (s Setting) Usage() string {
	u := s.Help
	switch s.Kind() {
	case KindChoice:
		u += " (" + strings.Join(s.Choices(), ", ") + ")"
	case KindList:
		u += " (repeatable)"
	}
	return u
}

// differs reports whether the setting differs between a and b.
func (s Setting) differs(a, b *Config) bool { return !s.v.equal(a, b) }

// needsRestart reports whether a reload from running to next changes the
// setting in a way only a restart applies.
func (s Setting) needsRestart(running, next *Config) bool {
	switch s.Reload {
	case NeedsRestart:
		return s.differs(running, next)
	case ReloadsFile:
		return (s.v.text(running) == "") != (s.v.text(next) == "")
	}
	return false
}

// ParseDuration reads a duration flag. Every duration setting goes through
// it, so one parser serves them all.
// It is internal/cli's parser: Go durations plus d and w ("30d", "1w").
func ParseDuration(s string) (time.Duration, error) { return cli.ParseDuration(s) }

// FormatDuration writes d the short way: "2m", "720h", "1h30m"; "0" for
// zero.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// field is a value of a comparable type.
type field[T comparable] struct {
	at     func(*Config) *T
	k      Kind
	parse  func(string) (T, error)
	format func(T) string
	names  []string
}

func (f field[T]) kind() Kind            { return f.k }
func (f field[T]) choices() []string     { return f.names }
func (f field[T]) text(c *Config) string { return f.format(*f.at(c)) }
func (f field[T]) equal(a, b *Config) bool {
	return *f.at(a) == *f.at(b)
}
func (f field[T]) copy(dst, src *Config) { *f.at(dst) = *f.at(src) }
func (f field[T]) set(c *Config, args []string) error {
	v, err := f.parse(strings.TrimSpace(args[len(args)-1]))
	if err != nil {
		return err
	}
	*f.at(c) = v
	return nil
}

// list is a []string value.
type list struct{ at func(*Config) *[]string }

func (list) kind() Kind                { return KindList }
func (list) choices() []string         { return nil }
func (l list) text(c *Config) string   { return strings.Join(*l.at(c), ",") }
func (l list) equal(a, b *Config) bool { return slices.Equal(*l.at(a), *l.at(b)) }
func (l list) copy(dst, src *Config)   { *l.at(dst) = slices.Clone(*l.at(src)) }
func (l list) set(c *Config, args []string) error {
	*l.at(c) = slices.Clone(args)
	return nil
}

func str(at func(*Config) *string) value {
	return field[string]{at: at, k: KindString, parse: func(s string) (string, error) { return s, nil },
		format: func(s string) string { return s }}
}

func strs(at func(*Config) *[]string) value { return list{at} }

func integer[T int | int64](at func(*Config) *T) value {
	return field[T]{at: at, k: KindInt,
		parse: func(s string) (T, error) {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || int64(T(n)) != n {
				return 0, fmt.Errorf("%q is not a whole number", s)
			}
			return T(n), nil
		},
		format: func(n T) string { return strconv.FormatInt(int64(n), 10) }}
}

func float(at func(*Config) *float64) value {
	return field[float64]{at: at, k: KindFloat,
		parse: func(s string) (float64, error) {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a number", s)
			}
			return f, nil
		},
		format: func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }}
}

func boolean(at func(*Config) *bool) value {
	return field[bool]{at: at, k: KindBool,
		parse: func(s string) (bool, error) {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return false, fmt.Errorf("%q: want true or false", s)
			}
			return b, nil
		},
		format: strconv.FormatBool}
}

func duration(at func(*Config) *time.Duration) value {
	return field[time.Duration]{at: at, k: KindDuration,
		parse: func(s string) (time.Duration, error) {
			d, err := ParseDuration(s)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration (e.g. 90s, 15m, 720h, 30d)", s)
			}
			return d, nil
		},
		format: FormatDuration}
}

// choice is a value read by its type's UnmarshalText from one of names;
// it is written as the first of names that reads as it.
func choice[T comparable, P interface {
	*T
	UnmarshalText([]byte) error
}](at func(*Config) *T, names ...string) value {
	parse := func(s string) (T, error) {
		var v T
		if err := P(&v).UnmarshalText([]byte(s)); err != nil {
			return v, fmt.Errorf("%q: want one of %s", s, strings.Join(names, ", "))
		}
		return v, nil
	}
	return field[T]{at: at, k: KindChoice, parse: parse, names: names,
		format: func(v T) string {
			for _, n := range names {
				if w, err := parse(n); err == nil && w == v {
					return n
				}
			}
			return fmt.Sprint(v)
		}}
}

// actions are the names of abuse.Action values.
var actions = []string{"off", "log", "alert", "block"}

func action(at func(*Config) *abuse.Action) value { return choice(at, actions...) }

// Settings returns the settings table: every leaf of the YAML
// configuration, in the order the reference (docs/guard.md) lists them.
// Flags, their defaults and help, the overriding of the file by flags,
// the reload rules and the reference are all read from it.
func Settings() []Setting {
	t := settingsTable()
	for i := range t {
		if t[i].Flag == "" {
			t[i].Flag = strings.NewReplacer(".", "-", "_", "-").Replace(t[i].Key)
		}
	}
	return t
}

// settingsTable is the table literal; a test checks it covers every YAML
// field of Config once.
func settingsTable() []Setting {
	return []Setting{
		// Where the gateway listens and what it protects.
		{Key: "upstream", Arg: "URL", Reload: NeedsRestart, Help: "URL of the LLM server to protect",
			v: str(func(c *Config) *string { return &c.Upstream })},
		{Key: "kind", Arg: "KIND", Reload: NeedsRestart, Help: "upstream API, which picks the route table: " + strings.Join(route.Kinds(), ", "),
			v: str(func(c *Config) *string { return &c.Kind })},
		{Key: "listen", Arg: "ADDR", Reload: NeedsRestart, Help: "address to serve clients on",
			v: str(func(c *Config) *string { return &c.Listen })},
		{Key: "metrics_listen", Flag: "metrics", Arg: "ADDR", Reload: NeedsRestart, Help: `address for /metrics, /healthz and /readyz ("" turns it off)`,
			v: str(func(c *Config) *string { return &c.MetricsListen })},
		{Key: "redis", Arg: "URL", Reload: NeedsRestart, Help: "share limit counters between replicas through this Redis URL (redis://host:6379/0)",
			v: str(func(c *Config) *string { return &c.Redis })},

		// Who may connect.
		{Key: "allow", Arg: "CIDR", Reload: Reloads, Help: "admit only clients in this network; an empty list admits everyone",
			v: strs(func(c *Config) *[]string { return &c.Allow })},
		{Key: "deny", Arg: "CIDR", Reload: Reloads, Help: "refuse clients in this network; wins over allow",
			v: strs(func(c *Config) *[]string { return &c.Deny })},
		{Key: "trusted_proxies", Flag: "trusted-proxy", Arg: "CIDR", Reload: Reloads, Help: "believe X-Forwarded-For from reverse proxies in this network",
			v: strs(func(c *Config) *[]string { return &c.TrustedProxies })},
		{Key: "cors_origins", Flag: "cors-origin", Arg: "ORIGIN", Reload: Reloads, Help: "let browser pages from this origin (https://host[:port], or *) call the gateway; none by default",
			v: strs(func(c *Config) *[]string { return &c.CORSOrigins })},
		{Key: "max_conns_per_ip", Arg: "N", Reload: NeedsRestart, Help: "concurrent connections per TCP peer (0: no cap)",
			v: integer(func(c *Config) *int { return &c.MaxConnsPerIP })},
		{Key: "max_conns", Arg: "N", Reload: NeedsRestart, Help: "concurrent client connections in all (0: no cap)",
			v: integer(func(c *Config) *int { return &c.MaxConns })},

		// Limits for keys without their own (0: no limit).
		{Key: "default_limits.rpm", Arg: "N", Reload: Reloads, Help: "default tier: requests per sliding minute, all routes (0: no limit)",
			v: integer(func(c *Config) *int { return &c.DefaultLimits.RPM })},
		{Key: "default_limits.tpm", Arg: "N", Reload: Reloads, Help: "default tier: tokens, prompt and completion, per sliding minute (0: no limit)",
			v: integer(func(c *Config) *int { return &c.DefaultLimits.TPM })},
		{Key: "default_limits.concurrent", Arg: "N", Reload: Reloads, Help: "default tier: requests in flight at once, all routes (0: no limit)",
			v: integer(func(c *Config) *int { return &c.DefaultLimits.Concurrent })},
		{Key: "default_limits.daily_tokens", Arg: "N", Reload: Reloads, Help: "default tier: tokens per calendar day, UTC (0: no limit)",
			v: integer(func(c *Config) *int64 { return &c.DefaultLimits.Daily })},
		{Key: "default_limits.monthly_tokens", Arg: "N", Reload: Reloads, Help: "default tier: tokens per calendar month, UTC (0: no limit)",
			v: integer(func(c *Config) *int64 { return &c.DefaultLimits.Monthly })},
		{Key: "default_max_tokens", Arg: "N", Reload: Reloads, Help: "tokens reserved for a request that names no completion limit",
			v: integer(func(c *Config) *int64 { return &c.DefaultMaxTokens })},
		{Key: "prompt_bytes_per_token", Arg: "N", Reload: Reloads, Help: "prompt reserved at admission: text bytes / N, plus token IDs and per-message and per-image allowances (1 to 16)",
			v: integer(func(c *Config) *int { return &c.PromptBytesPerToken })},
		{Key: "max_body_bytes", Flag: "max-body", Arg: "BYTES", Reload: Reloads, Help: "largest request body (413 above it)",
			v: integer(func(c *Config) *int64 { return &c.MaxBodyBytes })},
		{Key: "filter_model_list", Flag: "filter-models", Reload: Reloads, Help: "hide models a key may not use from model listings",
			v: boolean(func(c *Config) *bool { return &c.FilterModelList })},
		{Key: "pass_request_headers", Arg: "HEADER", Reload: Reloads, Help: "pass this client header upstream besides the built-in allow list",
			v: strs(func(c *Config) *[]string { return &c.PassRequestHeaders })},
		{Key: "pass_response_headers", Arg: "HEADER", Reload: Reloads, Help: "pass this upstream header back besides the built-in allow list",
			v: strs(func(c *Config) *[]string { return &c.PassResponseHeaders })},

		// Failed authentication.
		{Key: "auth_backoff.free", Arg: "N", Reload: Reloads, Help: "failed authentications allowed before the back-off starts",
			v: integer(func(c *Config) *int { return &c.AuthFail.Free })},
		{Key: "auth_backoff.base", Arg: "DURATION", Reload: Reloads, Help: "first back-off, doubled per further failure",
			v: duration(func(c *Config) *time.Duration { return &c.AuthFail.Base })},
		{Key: "auth_backoff.max", Arg: "DURATION", Reload: Reloads, Help: "longest back-off",
			v: duration(func(c *Config) *time.Duration { return &c.AuthFail.Max })},
		{Key: "auth_backoff.forget", Arg: "DURATION", Reload: Reloads, Help: "failures are forgotten after this long without one",
			v: duration(func(c *Config) *time.Duration { return &c.AuthFail.Forget })},

		// The audit log.
		{Key: "audit.spool", Arg: "DIR", Reload: NeedsRestart, Help: "local audit spool directory (default: beside a SQLite store, <db>.audit, or the user state directory)",
			v: str(func(c *Config) *string { return &c.Audit.Spool })},
		{Key: "audit.fsync", Arg: "WHEN", Reload: NeedsRestart, Help: "when spooled audit records are forced to disk",
			v: choice(func(c *Config) *spool.Fsync { return &c.Audit.Fsync }, "always", "interval", "never")},
		{Key: "audit.fsync_interval", Arg: "DURATION", Reload: NeedsRestart, Help: "with fsync interval: the most a power cut loses",
			v: duration(func(c *Config) *time.Duration { return &c.Audit.FsyncInterval })},
		{Key: "audit.retention", Arg: "DURATION", Reload: NeedsRestart, Help: "delete usage records older than this (0: keep them)",
			v: duration(func(c *Config) *time.Duration { return &c.Audit.Retention })},
		{Key: "audit.refused_window", Arg: "DURATION", Reload: NeedsRestart, Help: "refused requests: the first of a kind is recorded at once, the rest counted per window",
			v: duration(func(c *Config) *time.Duration { return &c.Audit.RefusedWindow })},

		// Timeouts.
		{Key: "timeouts.read_header", Arg: "DURATION", Reload: NeedsRestart, Help: "time a client has to send its request headers",
			v: duration(func(c *Config) *time.Duration { return &c.Timeouts.ReadHeader })},
		{Key: "timeouts.read", Arg: "DURATION", Reload: NeedsRestart, Help: "time a client has to send its whole request, body included",
			v: duration(func(c *Config) *time.Duration { return &c.Timeouts.Read })},
		{Key: "timeouts.idle", Arg: "DURATION", Reload: NeedsRestart, Help: "keep-alive connections idle this long are closed",
			v: duration(func(c *Config) *time.Duration { return &c.Timeouts.Idle })},
		{Key: "timeouts.write", Arg: "DURATION", Reload: NeedsRestart, Help: "a client that accepts no byte of its response this long is dropped (streams that are read are unaffected)",
			v: duration(func(c *Config) *time.Duration { return &c.Timeouts.Write })},
		{Key: "timeouts.upstream_header", Arg: "DURATION", Reload: NeedsRestart, Help: "wait for the upstream's response headers (504 after it; a non-streaming generation answers only when done)",
			v: duration(func(c *Config) *time.Duration { return &c.Timeouts.UpstreamHeader })},
		{Key: "timeouts.shutdown", Arg: "DURATION", Reload: NeedsRestart, Help: "grace for streams in flight on SIGTERM",
			v: duration(func(c *Config) *time.Duration { return &c.Timeouts.Shutdown })},

		// TLS on the client side.
		{Key: "tls.cert", Arg: "FILE", Reload: ReloadsFile, Help: "serve HTTPS with this PEM certificate chain",
			v: str(func(c *Config) *string { return &c.TLS.Cert })},
		{Key: "tls.key", Arg: "FILE", Reload: ReloadsFile, Help: "PEM private key of the certificate",
			v: str(func(c *Config) *string { return &c.TLS.Key })},
		{Key: "tls.client_ca", Flag: "client-ca", Arg: "FILE", Reload: ReloadsFile, Help: "require client certificates signed by a CA in this PEM file (mutual TLS, on top of the API key)",
			v: str(func(c *Config) *string { return &c.TLS.ClientCA })},

		// OpenID Connect.
		{Key: "oidc.issuer", Arg: "URL", Reload: NeedsRestart, Help: "accept OpenID Connect JWT bearer tokens from this issuer",
			v: str(func(c *Config) *string { return &c.OIDC.Issuer })},
		{Key: "oidc.audience", Arg: "AUD", Reload: NeedsRestart, Help: "audience tokens must be issued for (required with an issuer)",
			v: str(func(c *Config) *string { return &c.OIDC.Audience })},
		{Key: "oidc.admin_claim", Arg: "CLAIM=VALUE", Reload: NeedsRestart, Help: "claim granting admin routes, e.g. groups=llm-admins",
			v: str(func(c *Config) *string { return &c.OIDC.AdminClaim })},
		{Key: "oidc.models_claim", Arg: "CLAIM", Reload: NeedsRestart, Help: "token claim listing the model globs the caller may use",
			v: str(func(c *Config) *string { return &c.OIDC.ModelsClaim })},
		{Key: "oidc.default_models", Arg: "GLOB", Reload: NeedsRestart, Help: "model glob for tokens without the models claim; none by default",
			v: strs(func(c *Config) *[]string { return &c.OIDC.DefaultModels })},
		{Key: "oidc.allow_cloud", Reload: NeedsRestart, Help: "let tokens use Ollama cloud models",
			v: boolean(func(c *Config) *bool { return &c.OIDC.AllowCloud })},

		// LLMjacking signals.
		{Key: "abuse.webhook", Arg: "URL", Reload: NeedsRestart, Help: "POST abuse alerts (JSON) to this URL (empty: alerts are logged only)",
			v: str(func(c *Config) *string { return &c.Abuse.Webhook })},
		{Key: "abuse.webhook_timeout", Arg: "DURATION", Reload: NeedsRestart, Help: "time the webhook has to answer",
			v: duration(func(c *Config) *time.Duration { return &c.Abuse.WebhookTimeout })},
		{Key: "abuse.queue_size", Arg: "N", Reload: NeedsRestart, Help: "alerts waiting for the webhook; more are dropped and logged",
			v: integer(func(c *Config) *int { return &c.Abuse.QueueSize })},
		{Key: "abuse.cooldown", Arg: "DURATION", Reload: NeedsRestart, Help: "one signal per key and kind at most this often",
			v: duration(func(c *Config) *time.Duration { return &c.Abuse.Cooldown })},
		{Key: "abuse.max_keys", Arg: "N", Reload: NeedsRestart, Help: "keys whose signal state is kept",
			v: integer(func(c *Config) *int { return &c.Abuse.MaxKeys })},
		{Key: "abuse.max_prompt_bytes", Arg: "BYTES", Reload: NeedsRestart, Help: "prompt text classified per request",
			v: integer(func(c *Config) *int { return &c.Abuse.MaxPromptBytes })},
		{Key: "abuse.max_body_bytes", Arg: "BYTES", Reload: NeedsRestart, Help: "largest request body read for prompt signals",
			v: integer(func(c *Config) *int { return &c.Abuse.MaxBodyBytes })},
		{Key: "abuse.rate_jump.action", Arg: "ACTION", Reload: NeedsRestart, Help: "action when a key's token rate jumps far above its own average",
			v: action(func(c *Config) *abuse.Action { return &c.Abuse.RateJump.Action })},
		{Key: "abuse.rate_jump.factor", Arg: "X", Reload: NeedsRestart, Help: "rate jump: how many times the average (more than 1)",
			v: float(func(c *Config) *float64 { return &c.Abuse.RateJump.Factor })},
		{Key: "abuse.rate_jump.half_life", Arg: "DURATION", Reload: NeedsRestart, Help: "rate jump: half-life of the average (at least 1m)",
			v: duration(func(c *Config) *time.Duration { return &c.Abuse.RateJump.HalfLife })},
		{Key: "abuse.rate_jump.warmup_minutes", Arg: "N", Reload: NeedsRestart, Help: "rate jump: minutes of history a key needs first",
			v: integer(func(c *Config) *int { return &c.Abuse.RateJump.WarmupMinutes })},
		{Key: "abuse.rate_jump.warmup_requests", Arg: "N", Reload: NeedsRestart, Help: "rate jump: requests a key needs first",
			v: integer(func(c *Config) *int { return &c.Abuse.RateJump.WarmupRequests })},
		{Key: "abuse.rate_jump.min_tokens_per_minute", Arg: "N", Reload: NeedsRestart, Help: "rate jump: token rates below this never signal",
			v: integer(func(c *Config) *int64 { return &c.Abuse.RateJump.MinTokensPerMinute })},
		{Key: "abuse.rate_jump.min_requests_per_minute", Arg: "N", Reload: NeedsRestart, Help: "rate jump: request rates below this never signal",
			v: integer(func(c *Config) *int64 { return &c.Abuse.RateJump.MinRequestsPerMinute })},
		{Key: "abuse.new_network.action", Arg: "ACTION", Reload: NeedsRestart, Help: "action when a key is used from a client network it was not used from before",
			v: action(func(c *Config) *abuse.Action { return &c.Abuse.NewNetwork.Action })},
		{Key: "abuse.new_network.max_networks", Arg: "N", Reload: NeedsRestart, Help: "new network: networks remembered per key",
			v: integer(func(c *Config) *int { return &c.Abuse.NewNetwork.MaxNetworks })},
		{Key: "abuse.prompt_abuse.action", Arg: "ACTION", Reload: NeedsRestart, Help: "action when a prompt is classified in a flagged category",
			v: action(func(c *Config) *abuse.Action { return &c.Abuse.PromptAbuse.Action })},
		{Key: "abuse.prompt_abuse.categories", Arg: "CATEGORY", Reload: NeedsRestart, Help: "prompt abuse: a flagged prompt category",
			v: strs(func(c *Config) *[]string { return &c.Abuse.PromptAbuse.Categories })},
		{Key: "abuse.bulk_spam.action", Arg: "ACTION", Reload: NeedsRestart, Help: "action when a key sends many near-duplicate prompts",
			v: action(func(c *Config) *abuse.Action { return &c.Abuse.BulkSpam.Action })},
		{Key: "abuse.bulk_spam.threshold", Arg: "N", Reload: NeedsRestart, Help: "bulk spam: near-duplicates in the window, this one included (at least 2)",
			v: integer(func(c *Config) *int { return &c.Abuse.BulkSpam.Threshold })},
		{Key: "abuse.bulk_spam.window", Arg: "DURATION", Reload: NeedsRestart, Help: "bulk spam: the window",
			v: duration(func(c *Config) *time.Duration { return &c.Abuse.BulkSpam.Window })},
		{Key: "abuse.bulk_spam.max_distance", Arg: "BITS", Reload: NeedsRestart, Help: "bulk spam: prompt hashes this close (of 64 bits) are near-duplicates",
			v: integer(func(c *Config) *int { return &c.Abuse.BulkSpam.MaxDistance })},
		{Key: "abuse.bulk_spam.max_prompts", Arg: "N", Reload: NeedsRestart, Help: "bulk spam: prompt hashes kept per key",
			v: integer(func(c *Config) *int { return &c.Abuse.BulkSpam.MaxPrompts })},
		{Key: "abuse.bulk_spam.min_chars", Arg: "N", Reload: NeedsRestart, Help: "bulk spam: shorter prompts are not compared",
			v: integer(func(c *Config) *int { return &c.Abuse.BulkSpam.MinChars })},
		{Key: "abuse.output_watch.action", Arg: "ACTION", Reload: NeedsRestart, Help: "action when a streamed answer turns to gibberish; block is refused",
			v: action(func(c *Config) *abuse.Action { return &c.Abuse.OutputWatch.Action })},
		{Key: "abuse.output_watch.prompt_chars", Arg: "N", Reload: NeedsRestart, Help: "output watch: characters of the end of the prompt the signal carries (redacted)",
			v: integer(func(c *Config) *int { return &c.Abuse.OutputWatch.PromptChars })},

		// Prompt and response capture.
		{Key: "capture.enabled", Flag: "capture", Reload: NeedsRestart, Help: "store prompts and responses, PII and secrets redacted (llmfence captures); off by default",
			v: boolean(func(c *Config) *bool { return &c.Capture.Enabled })},
		{Key: "capture.retention", Arg: "DURATION", Reload: NeedsRestart, Help: "delete captured prompts and responses older than this",
			v: duration(func(c *Config) *time.Duration { return &c.Capture.Retention })},
		{Key: "capture.max_bytes", Arg: "BYTES", Reload: NeedsRestart, Help: "per prompt and per response; longer text is cut and marked truncated",
			v: integer(func(c *Config) *int { return &c.Capture.MaxBytes })},
	}
}
