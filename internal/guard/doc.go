// Package guard provides the llmfence gateway: an authenticating, metering
// reverse proxy that sits in front of a self-hosted LLM server (Ollama, vLLM,
// llama.cpp server or any OpenAI-compatible server) and stops LLMjacking.
//
// A [Server] composes the pieces built in the subpackages behind small
// consumer-side interfaces:
//
//   - [Authenticator] turns the presented API key (Authorization: Bearer or
//     X-API-Key) into a [Principal]; failures are throttled per client IP
//     with exponential back-off so keys cannot be guessed. Package authn
//     adds OpenID Connect JWT bearer tokens ([OIDCConfig]) and a chain that
//     sends lf_ API keys to the key store and other bearers to OIDC.
//   - [Router] (the route table of package route) classes the normalised
//     path: Denied, Listing, Inference or Admin. Only the normalised path is
//     ever forwarded. Admin routes need an admin key; inference and
//     POST /api/show are checked against the key's model globs, and Ollama
//     cloud models are refused unless the key allows them.
//   - [Limiter] (package limits) admits inference requests against the
//     key's RPM, TPM, concurrency and daily/monthly budgets and hands out the
//     token allowance the request body is clamped to; listing and admin
//     requests count against RPM and concurrency only.
//   - The meter (package meter) validates and rewrites request bodies and
//     relays the response stream event by event, counting tokens and ending
//     a stream that would overrun the budget with a final error event in the
//     client's dialect. When it stops, or the client goes away, the upstream
//     request is cancelled so the GPU stops, and the client is billed for
//     what was relayed.
//   - [UsageSink] receives one audit record per request from a group-commit
//     writer; a request's record is committed before its response ends
//     (see [AuditWriter]).
//   - [CaptureWriter], only when [CaptureConfig] turns it on, stores the
//     prompt and response text of metered requests, redacted by package
//     redact, and prunes them after the retention period. Off by default:
//     then no prompt or response text is kept anywhere.
//
// The client's address is the TCP peer, or, behind reverse proxies listed
// in Config.TrustedProxies, the last untrusted X-Forwarded-For hop; it is
// what the IP lists, back-off, abuse signals and audit see. Browser access
// needs Config.CORSOrigins; the upstream's CORS headers are always removed.
//
// The client side can be served over TLS ([TLSFiles]); with a client CA,
// every connection must present a certificate from that CA (mutual TLS), in
// addition to, not instead of, the API key or token.
//
// Metrics (Prometheus text format), /healthz and /readyz are served on a
// separate listener by [Server.MetricsHandler].
//
// The reloadable part of the configuration (CIDR lists, trusted proxies,
// CORS origins, default limits, body cap, back-off settings, TLS certificate
// files) is swapped atomically by [Server.Reload], on SIGHUP and when the
// config file changes; requests in flight keep the configuration they
// started with. Settings that need a restart are kept, with a warning.
//
// # The settings table
//
// [Config] is what the YAML file decodes into. [Settings] is the one
// table that says, for each leaf of it, its YAML key, its command-line
// flag, the help line, the [Reload] class and typed access to the field;
// the default is read from [DefaultConfig]. The command registers one flag
// per entry ([Overrides.Value]) and lays the flags given over the file in
// one loop ([Overrides.Apply], again on every reload), the reload rules
// read each entry's class, and the settings reference in docs/guard.md is
// generated from it (go generate; a test fails when it is stale). Tests
// hold the table to Config: every YAML field is an entry exactly once,
// and for every entry the YAML key and the flag reach the same field and
// the flag wins.
//
// The table is Go code, not struct tags read by reflection (zgrab2's
// flag structs, Caddy's field comments): each entry's accessor is a typed
// closure, so a wrong field is a compile error and flag parsing and
// comparison need no reflection, and the entries can carry what tags
// cannot (reload classes, choices read by the field type's own
// UnmarshalText). Every duration flag reads through [ParseDuration].
package guard
