package guard

import (
	"errors"
	"fmt"
	"github.com/llmfence/llmfence/internal/guard/abuse"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/guard/spool"
)

// Config is the gateway configuration: command-line flags and the optional
// YAML file (--config) map onto it. Durations in YAML are Go durations
// ("30s", "10m").
//
// Example file:
//
//	upstream: http://127.0.0.1:11434
//	kind: ollama
//	listen: ":11435"
//	metrics_listen: "127.0.0.1:9464"
//	allow: ["10.0.0.0/8"]
//	deny: ["10.9.0.0/16"]
//	default_limits: {rpm: 60, tpm: 40000, concurrent: 4, daily_tokens: 2000000}
//	max_body_bytes: 4194304
//	timeouts: {upstream_header: 10m}
//	redis: redis://127.0.0.1:6379/0
//	tls: {cert: /etc/llmfence/tls.crt, key: /etc/llmfence/tls.key, client_ca: /etc/llmfence/clients-ca.pem}
//	oidc: {issuer: https://login.example.com/realms/ai, audience: llmfence, admin_claim: groups=llm-admins, models_claim: llm_models}
type Config struct {
	// Upstream is the base URL of the LLM server. Not reloadable.
	Upstream string `yaml:"upstream"`
	// Kind is the upstream's API family for the route table: ollama, vllm,
	// llamacpp or openai. Not reloadable.
	Kind string `yaml:"kind"`
	// Listen and MetricsListen are listen addresses. Not reloadable.
	Listen        string `yaml:"listen"`
	MetricsListen string `yaml:"metrics_listen"`
	// Redis, when set, shares limit counters between replicas. Not
	// reloadable.
	Redis string `yaml:"redis"`

	// Allow, when not empty, admits only clients in these CIDRs; Deny
	// refuses clients in these CIDRs and wins over Allow. Plain addresses
	// are taken as single-host prefixes.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// DefaultLimits is the tier for keys without limits of their own.
	DefaultLimits limits.Limits `yaml:"default_limits"`
	// DefaultMaxTokens is what a request that names no completion limit
	// reserves against token budgets (the limiter reserves it until the
	// request ends and returns the unused part).
	DefaultMaxTokens int64 `yaml:"default_max_tokens"`
	// MaxBodyBytes caps request bodies (413 above it).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxConnsPerIP caps concurrent connections from one client IP
	// (0: no cap). Not reloadable.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// MaxConns caps concurrent client connections in total (0: no cap):
	// connections over it are closed at once. Not reloadable.
	MaxConns int `yaml:"max_conns"`
	// PromptBytesPerToken turns a prompt's size into the tokens reserved
	// for it at admission, before the upstream counts them (text bytes /
	// this, plus token IDs, per-message and per-image allowances; see
	// meter.PromptShape.Bound). 1 is a true upper bound for byte-level
	// tokenizers; the default 2 is about twice the usual count of English
	// text.
	PromptBytesPerToken int `yaml:"prompt_bytes_per_token"`
	// PassRequestHeaders and PassResponseHeaders name headers passed on
	// besides the built-in allow lists (requestHeaders, responseHeaders in
	// proxy.go); every other header is dropped in both directions.
	// Credentials, hop-by-hop and forwarding headers cannot be added.
	PassRequestHeaders  []string `yaml:"pass_request_headers"`
	PassResponseHeaders []string `yaml:"pass_response_headers"`
	// Audit configures the audit log's local spool, its fsync policy and
	// retention. Not reloadable.
	Audit AuditConfig `yaml:"audit"`
	// FilterModelList removes models a key may not use from model listings
	// (/api/tags, /api/ps, /v1/models).
	FilterModelList bool `yaml:"filter_model_list"`
	// TrustedProxies are the CIDRs of reverse proxies in front of the
	// guard whose X-Forwarded-For is believed: the client is the last
	// address in that header that is not itself a trusted proxy. The IP
	// lists, failed-auth back-off, abuse signals and the audit record use
	// that address. From any other peer, X-Forwarded-For is ignored and
	// not passed on. (The per-IP connection cap counts TCP peers.)
	TrustedProxies []string `yaml:"trusted_proxies"`
	// CORSOrigins are the browser origins (scheme://host[:port], or "*")
	// allowed to call the gateway cross-origin. Empty (the default): no
	// Access-Control-Allow-* headers are sent, so browsers refuse
	// cross-origin calls. Either way the upstream's own CORS headers (for
	// example Ollama's OLLAMA_ORIGINS) never reach the client.
	CORSOrigins []string `yaml:"cors_origins"`
	// Capture stores prompts and responses, with PII and secrets
	// redacted, for a retention period. Off by default. Not reloadable.
	Capture CaptureConfig `yaml:"capture"`

	// TLS serves the client side over TLS, optionally requiring client
	// certificates (mutual TLS). The certificate, key and client CA files
	// are re-read on reload and when they change; turning TLS or client
	// certificates on or off needs a restart.
	TLS TLSFiles `yaml:"tls"`
	// OIDC admits OpenID Connect bearer tokens (JWTs) besides API keys.
	// Not reloadable: the authenticator is built at start-up.
	OIDC OIDCConfig `yaml:"oidc"`
	// Abuse configures the LLMjacking signals (rate jump, new network,
	// abusive prompts, bulk spam) and what each does: log, alert, block.
	// Not reloadable.
	Abuse abuse.Config `yaml:"abuse"`

	// Timeouts are read when the listeners and transport start. Not
	// reloadable.
	Timeouts Timeouts    `yaml:"timeouts"`
	AuthFail AuthBackoff `yaml:"auth_backoff"`
}

// TLSFiles name PEM files for serving TLS.
//
// With ClientCA set, every client must present a certificate signed by one
// of the CAs in that file (the handshake is refused otherwise). A client
// certificate is a requirement on top of the API key or token, never a
// replacement for it; its subject is kept in the audit record
// (client_cert).
type TLSFiles struct {
	Cert     string `yaml:"cert"`      // server certificate chain
	Key      string `yaml:"key"`       // server private key
	ClientCA string `yaml:"client_ca"` // CA bundle for client certificates
}

// Enabled reports whether the client side is served over TLS.
func (t TLSFiles) Enabled() bool { return t.Cert != "" }

// OIDCConfig admits OpenID Connect / OAuth 2 JWT bearer tokens. A bearer
// that is not an llmfence API key (lf_...) is verified against the
// issuer's discovery document and JWKS: signature, issuer, audience and
// expiry. Package authn implements it.
type OIDCConfig struct {
	// Issuer is the issuer URL (https; http only for a loopback host).
	// Empty disables OIDC.
	Issuer string `yaml:"issuer"`
	// Audience must be among the token's "aud" values.
	Audience string `yaml:"audience"`
	// AdminClaim, "claim=value", grants admin when the claim equals value
	// or (for a list or space-separated string) contains it. A dotted name
	// (realm_access.roles) walks nested objects. Empty: no token is admin.
	AdminClaim string `yaml:"admin_claim"`
	// ModelsClaim names a claim holding the model globs the token may use
	// (a list of strings, or one comma- or space-separated string).
	ModelsClaim string `yaml:"models_claim"`
	// DefaultModels apply when the token lacks the models claim. Empty
	// (the default) allows no model: deny by default.
	DefaultModels []string `yaml:"default_models"`
	// AllowCloud lets tokens use Ollama cloud models.
	AllowCloud bool `yaml:"allow_cloud"`
}

// Enabled reports whether OIDC tokens are accepted.
func (o OIDCConfig) Enabled() bool { return o.Issuer != "" }

// AdminRule splits AdminClaim into claim name and wanted value.
func (o OIDCConfig) AdminRule() (claim, value string, ok bool) {
	claim, value, ok = strings.Cut(o.AdminClaim, "=")
	claim, value = strings.TrimSpace(claim), strings.TrimSpace(value)
	return claim, value, ok && claim != "" && value != ""
}

func (o OIDCConfig) validate() error {
	if !o.Enabled() {
		if o.Audience != "" || o.AdminClaim != "" || o.ModelsClaim != "" || len(o.DefaultModels) > 0 {
			return errors.New("oidc: audience, admin_claim, models_claim and default_models need an issuer")
		}
		return nil
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("oidc issuer %q: want an https:// URL", o.Issuer)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return fmt.Errorf("oidc issuer %q: plain http is only allowed for a loopback issuer; use https", o.Issuer)
		}
	default:
		return fmt.Errorf("oidc issuer %q: want an https:// URL", o.Issuer)
	}
	if strings.TrimSpace(o.Audience) == "" {
		return errors.New("oidc: an audience is required with an issuer (the client ID or API identifier tokens are issued for)")
	}
	if o.AdminClaim != "" {
		if _, _, ok := o.AdminRule(); !ok {
			return fmt.Errorf("oidc admin claim %q: want claim=value, e.g. groups=llm-admins", o.AdminClaim)
		}
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func (t TLSFiles) validate() error {
	if (t.Cert == "") != (t.Key == "") {
		return errors.New("tls: a certificate and its key go together (--tls-cert and --tls-key)")
	}
	if t.ClientCA != "" && t.Cert == "" {
		return errors.New("tls: client certificates (--client-ca) need TLS (--tls-cert and --tls-key)")
	}
	return nil
}

// AuditConfig is where audit records wait before they reach the store,
// and how long the store keeps them.
type AuditConfig struct {
	// Spool is the directory of the local audit spool (package spool);
	// "" puts it beside a SQLite store (<db>.audit) or, with PostgreSQL,
	// in the per-user state directory. One guard process per spool.
	Spool string `yaml:"spool"`
	// Fsync is when spooled records are forced to disk: interval (the
	// default: a power cut loses at most FsyncInterval; a killed process
	// loses nothing acknowledged), always (before each response ends) or
	// never (left to the kernel).
	Fsync         spool.Fsync   `yaml:"fsync"`
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// Retention deletes usage records older than this (0: keep them).
	Retention time.Duration `yaml:"retention"`
	// RefusedWindow is the period over which requests refused without
	// reaching the upstream are aggregated: the first of a kind (same
	// client network, key, status, route and reason) is recorded at once,
	// the rest as one record with a count at the end of the window.
	RefusedWindow time.Duration `yaml:"refused_window"`
}

// Timeouts bound slow clients and a stuck upstream.
type Timeouts struct {
	ReadHeader time.Duration `yaml:"read_header"` // request headers
	Read       time.Duration `yaml:"read"`        // whole request incl. body
	Idle       time.Duration `yaml:"idle"`        // keep-alive idle
	// Write drops a client that accepts no byte of its response for this
	// long (each write to it must complete within Write): a reader that
	// stops reading cannot hold its request, its upstream generation and
	// its key's concurrency slot. Streams of any length are unaffected as
	// long as the client reads.
	Write time.Duration `yaml:"write"`
	// UpstreamHeader bounds the wait for the upstream's response headers
	// (504 when exceeded). A non-streaming generation sends its headers
	// only when done, so keep it generous.
	UpstreamHeader time.Duration `yaml:"upstream_header"`
	Shutdown       time.Duration `yaml:"shutdown"` // graceful-shutdown grace
}

// AuthBackoff configures the throttling of failed authentication: after
// Free failures, each further failure blocks for Base doubled per failure,
// at most Max; failures are forgotten after Forget without any. Failures
// are counted per presented key ID (a wrong secret for a real key's ID),
// per client address for credentials that name no key, and per client
// address for requests without any credential. A request whose
// credential is valid is never refused by the back-off, so a stranger
// behind the same NAT cannot lock a valid key out; a blocked bucket
// answers its failures 429 instead of 401.
type AuthBackoff struct {
	Free   int           `yaml:"free"`
	Base   time.Duration `yaml:"base"`
	Max    time.Duration `yaml:"max"`
	Forget time.Duration `yaml:"forget"`
}

// DefaultConcurrent is the default tier's cap on a key's requests in
// flight.
const DefaultConcurrent = 16

// DefaultConfig returns the defaults every field falls back to.
func DefaultConfig() Config {
	return Config{
		Abuse:               abuse.DefaultConfig(),
		Upstream:            "http://127.0.0.1:11434",
		Kind:                "ollama",
		Listen:              "127.0.0.1:11435",
		MetricsListen:       "127.0.0.1:9464",
		DefaultMaxTokens:    4096,
		MaxBodyBytes:        8 << 20,
		MaxConnsPerIP:       64,
		MaxConns:            4096,
		PromptBytesPerToken: 2,
		Capture:             CaptureConfig{Retention: DefaultCaptureRetention, MaxBytes: DefaultCaptureMaxBytes},
		DefaultLimits:       limits.Limits{Concurrent: DefaultConcurrent},
		Audit: AuditConfig{Fsync: spool.FsyncInterval, FsyncInterval: time.Second,
			Retention: 2160 * time.Hour, RefusedWindow: 10 * time.Second},
		Timeouts: Timeouts{
			ReadHeader:     10 * time.Second,
			Read:           2 * time.Minute,
			Idle:           2 * time.Minute,
			Write:          time.Minute,
			UpstreamHeader: 10 * time.Minute,
			Shutdown:       30 * time.Second,
		},
		AuthFail: AuthBackoff{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
	}
}

// LoadConfigFile reads a YAML file over base: fields the file sets replace
// base's; unknown fields are an error.
func LoadConfigFile(path string, base Config) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading guard config: %w", err)
	}
	return ParseConfig(data, base)
}

// LoadConfig is the configuration a command line asks for: the YAML file
// at path (none when path is "") over DefaultConfig, the flags given over
// that, validated as a whole, so a flag can complete what the file leaves
// out.
func LoadConfig(path string, flags *Overrides) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("reading guard config: %w", err)
		}
		if cfg, err = decodeConfig(data, cfg); err != nil {
			return Config{}, err
		}
	}
	if err := flags.Apply(&cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ParseConfig is LoadConfigFile on bytes.
func ParseConfig(data []byte, base Config) (Config, error) {
	cfg, err := decodeConfig(data, base)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeConfig lays the YAML in data over base, without validating.
func decodeConfig(data []byte, base Config) (Config, error) {
	cfg := base
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("guard config: %w", err)
	}
	return cfg, nil
}

// Validate checks the configuration and says what is wrong in the user's
// terms.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream %q: want an http:// or https:// URL", RedactURL(c.Upstream))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("upstream %q: a query or fragment is not allowed", RedactURL(c.Upstream))
	}
	if _, err := route.New(c.Kind); err != nil {
		return fmt.Errorf("kind %q: want one of %s: %w", c.Kind, strings.Join(route.Kinds(), ", "), err)
	}
	if _, err := parsePrefixes(c.Allow); err != nil {
		return fmt.Errorf("allow list: %w", err)
	}
	if _, err := parsePrefixes(c.Deny); err != nil {
		return fmt.Errorf("deny list: %w", err)
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("cors_origins: %q is not an origin; want scheme://host[:port] or *", o)
		}
	}
	if err := c.Capture.withDefaults().validate(); err != nil {
		return err
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("max_body_bytes must be positive, got %d", c.MaxBodyBytes)
	}
	if c.DefaultMaxTokens <= 0 {
		return fmt.Errorf("default_max_tokens must be positive, got %d", c.DefaultMaxTokens)
	}
	if c.MaxConnsPerIP < 0 || c.MaxConns < 0 {
		return fmt.Errorf("max_conns_per_ip and max_conns must not be negative")
	}
	if c.PromptBytesPerToken < 1 || c.PromptBytesPerToken > 16 {
		return fmt.Errorf("prompt_bytes_per_token %d: want 1 to 16", c.PromptBytesPerToken)
	}
	for _, list := range []struct {
		name  string
		names []string
	}{{"pass_request_headers", c.PassRequestHeaders}, {"pass_response_headers", c.PassResponseHeaders}} {
		for _, h := range list.names {
			if err := passableHeader(h); err != nil {
				return fmt.Errorf("%s: %w", list.name, err)
			}
		}
	}
	if c.Audit.RefusedWindow <= 0 || c.Audit.Retention < 0 {
		return fmt.Errorf("audit: refused_window must be positive and retention not negative")
	}
	if c.Audit.Fsync == spool.FsyncInterval && c.Audit.FsyncInterval <= 0 {
		return fmt.Errorf("audit: fsync_interval must be positive with fsync: interval")
	}
	if c.Timeouts.Write < 0 {
		return fmt.Errorf("timeouts.write must not be negative")
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if err := c.OIDC.validate(); err != nil {
		return err
	}
	if c.AuthFail.Base <= 0 || c.AuthFail.Max < c.AuthFail.Base || c.AuthFail.Free < 0 {
		return fmt.Errorf("auth_backoff: want free >= 0 and 0 < base <= max")
	}
	return nil
}

// parsePrefixes reads CIDRs; a bare address is a single-host prefix.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ipFilter is the compiled allow/deny lists.
type ipFilter struct{ allow, deny []netip.Prefix }

// permits says whether a client address may use the gateway: deny wins,
// then an empty allow list admits everyone.
func (f ipFilter) permits(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.deny {
		if p.Contains(a) {
			return false
		}
	}
	if len(f.allow) == 0 {
		return true
	}
	for _, p := range f.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr extracts the client IP from a RemoteAddr. X-Forwarded-For is
// not trusted: the gateway is meant to face clients directly.
func clientAddr(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
