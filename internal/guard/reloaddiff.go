package guard

import (
	"reflect"
	"slices"
)

// What a configuration reload may change, and what needs a restart.
//
// A reload (SIGHUP, a changed --config file, or a call of Server.Reload)
// takes effect for requests that start after it: allow and deny lists,
// default limits, default_max_tokens, max_body_bytes, filter_model_list,
// trusted_proxies, cors_origins, auth_backoff, prompt_bytes_per_token,
// pass_request_headers, pass_response_headers, and the TLS certificate,
// key and client CA files (re-read
// even when their paths stay the same). The settings below are built into
// listeners, the transport, the authenticator or the abuse detector at
// start-up; a reload that changes them keeps the running values and logs a
// warning naming them.

// settingDiff is one configuration setting, named as in the YAML file.
type settingDiff struct {
	name    string
	differs func(a, b *Config) bool
	// keep copies the setting from src to dst; nil for reloadable ones.
	keep func(dst, src *Config)
}

// restartOnlySettings are the settings a reload cannot change.
func restartOnlySettings() []settingDiff {
	return []settingDiff{
		{"upstream", func(a, b *Config) bool { return a.Upstream != b.Upstream },
			func(d, s *Config) { d.Upstream = s.Upstream }},
		{"kind", func(a, b *Config) bool { return a.Kind != b.Kind },
			func(d, s *Config) { d.Kind = s.Kind }},
		{"listen", func(a, b *Config) bool { return a.Listen != b.Listen },
			func(d, s *Config) { d.Listen = s.Listen }},
		{"metrics_listen", func(a, b *Config) bool { return a.MetricsListen != b.MetricsListen },
			func(d, s *Config) { d.MetricsListen = s.MetricsListen }},
		{"redis", func(a, b *Config) bool { return a.Redis != b.Redis },
			func(d, s *Config) { d.Redis = s.Redis }},
		{"max_conns_per_ip", func(a, b *Config) bool { return a.MaxConnsPerIP != b.MaxConnsPerIP },
			func(d, s *Config) { d.MaxConnsPerIP = s.MaxConnsPerIP }},
		{"max_conns", func(a, b *Config) bool { return a.MaxConns != b.MaxConns },
			func(d, s *Config) { d.MaxConns = s.MaxConns }},
		{"audit", func(a, b *Config) bool { return a.Audit != b.Audit },
			func(d, s *Config) { d.Audit = s.Audit }},
		{"timeouts.write", func(a, b *Config) bool { return a.Timeouts.Write != b.Timeouts.Write },
			func(d, s *Config) { d.Timeouts.Write = s.Timeouts.Write }},
		// Turning TLS, or client certificates, on or off changes what the
		// listener speaks; new file paths alone are reloadable.
		{"tls", func(a, b *Config) bool { return a.TLS.Enabled() != b.TLS.Enabled() },
			func(d, s *Config) { d.TLS = s.TLS }},
		{"tls.client_ca", func(a, b *Config) bool {
			return a.TLS.Enabled() && b.TLS.Enabled() && (a.TLS.ClientCA == "") != (b.TLS.ClientCA == "")
		}, func(d, s *Config) { d.TLS = s.TLS }},
		{"oidc", func(a, b *Config) bool { return !reflect.DeepEqual(a.OIDC, b.OIDC) },
			func(d, s *Config) { d.OIDC = s.OIDC }},
		{"abuse", func(a, b *Config) bool { return !reflect.DeepEqual(a.Abuse, b.Abuse) },
			func(d, s *Config) { d.Abuse = s.Abuse }},
		{"capture", func(a, b *Config) bool { return a.Capture != b.Capture },
			func(d, s *Config) { d.Capture = s.Capture }},
		// The HTTP server's timeouts and the shutdown grace are read when
		// it starts, the upstream header timeout when the transport is
		// built.
		{"timeouts.read_header", func(a, b *Config) bool { return a.Timeouts.ReadHeader != b.Timeouts.ReadHeader },
			func(d, s *Config) { d.Timeouts.ReadHeader = s.Timeouts.ReadHeader }},
		{"timeouts.read", func(a, b *Config) bool { return a.Timeouts.Read != b.Timeouts.Read },
			func(d, s *Config) { d.Timeouts.Read = s.Timeouts.Read }},
		{"timeouts.idle", func(a, b *Config) bool { return a.Timeouts.Idle != b.Timeouts.Idle },
			func(d, s *Config) { d.Timeouts.Idle = s.Timeouts.Idle }},
		{"timeouts.upstream_header", func(a, b *Config) bool { return a.Timeouts.UpstreamHeader != b.Timeouts.UpstreamHeader },
			func(d, s *Config) { d.Timeouts.UpstreamHeader = s.Timeouts.UpstreamHeader }},
		{"timeouts.shutdown", func(a, b *Config) bool { return a.Timeouts.Shutdown != b.Timeouts.Shutdown },
			func(d, s *Config) { d.Timeouts.Shutdown = s.Timeouts.Shutdown }},
	}
}

// reloadableSettings are the settings a reload changes.
func reloadableSettings() []settingDiff {
	return []settingDiff{
		{name: "allow", differs: func(a, b *Config) bool { return !slices.Equal(a.Allow, b.Allow) }},
		{name: "deny", differs: func(a, b *Config) bool { return !slices.Equal(a.Deny, b.Deny) }},
		{name: "default_limits", differs: func(a, b *Config) bool { return !reflect.DeepEqual(a.DefaultLimits, b.DefaultLimits) }},
		{name: "default_max_tokens", differs: func(a, b *Config) bool { return a.DefaultMaxTokens != b.DefaultMaxTokens }},
		{name: "max_body_bytes", differs: func(a, b *Config) bool { return a.MaxBodyBytes != b.MaxBodyBytes }},
		{name: "filter_model_list", differs: func(a, b *Config) bool { return a.FilterModelList != b.FilterModelList }},
		{name: "trusted_proxies", differs: func(a, b *Config) bool { return !slices.Equal(a.TrustedProxies, b.TrustedProxies) }},
		{name: "cors_origins", differs: func(a, b *Config) bool { return !slices.Equal(a.CORSOrigins, b.CORSOrigins) }},
		{name: "auth_backoff", differs: func(a, b *Config) bool { return !reflect.DeepEqual(a.AuthFail, b.AuthFail) }},
		{name: "prompt_bytes_per_token", differs: func(a, b *Config) bool { return a.PromptBytesPerToken != b.PromptBytesPerToken }},
		{name: "pass_request_headers", differs: func(a, b *Config) bool { return !slices.Equal(a.PassRequestHeaders, b.PassRequestHeaders) }},
		{name: "pass_response_headers", differs: func(a, b *Config) bool { return !slices.Equal(a.PassResponseHeaders, b.PassResponseHeaders) }},
		{name: "tls.cert", differs: func(a, b *Config) bool { return a.TLS.Cert != b.TLS.Cert }},
		{name: "tls.key", differs: func(a, b *Config) bool { return a.TLS.Key != b.TLS.Key }},
		{name: "tls.client_ca", differs: func(a, b *Config) bool { return a.TLS.ClientCA != b.TLS.ClientCA }},
	}
}

// restartOnlyChanges names the settings of next that differ from running
// but take effect only after a restart.
func restartOnlyChanges(running, next Config) []string {
	var out []string
	for _, s := range restartOnlySettings() {
		if s.differs(&running, &next) {
			out = append(out, s.name)
		}
	}
	return out
}

// keepRestartOnly returns next with the restart-only settings of running.
func keepRestartOnly(running, next Config) Config {
	for _, s := range restartOnlySettings() {
		if s.differs(&running, &next) {
			s.keep(&next, &running)
		}
	}
	return next
}

// changedSettings names the reloadable settings that differ between the
// running configuration and the one replacing it.
func changedSettings(running, next Config) []string {
	var out []string
	for _, s := range reloadableSettings() {
		if s.differs(&running, &next) {
			out = append(out, s.name)
		}
	}
	return out
}
