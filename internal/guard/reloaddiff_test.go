package guard

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/guard/limits"
)

func TestRestartOnlyAndReloadableSettings(t *testing.T) {
	tlsOn := TLSFiles{Cert: "/etc/gw.crt", Key: "/etc/gw.key"}
	mtlsOn := TLSFiles{Cert: "/etc/gw.crt", Key: "/etc/gw.key", ClientCA: "/etc/ca.pem"}
	cases := []struct {
		name        string
		running     func(*Config) // nil: DefaultConfig as is
		change      func(*Config)
		wantRestart []string
		wantChanged []string // reloadable settings that change, after the restart-only ones are kept
	}{
		{"nothing", nil, func(c *Config) {}, nil, nil},
		{"upstream and kind", nil, func(c *Config) { c.Upstream, c.Kind = "http://10.0.0.9:8000", "vllm" },
			[]string{"upstream", "kind"}, nil},
		{"listen addresses", nil, func(c *Config) { c.Listen, c.MetricsListen = ":1", "" },
			[]string{"listen", "metrics_listen"}, nil},
		{"redis and connection cap", nil, func(c *Config) { c.Redis, c.MaxConnsPerIP = "redis://127.0.0.1:6379/0", 3 },
			[]string{"redis", "max_conns_per_ip"}, nil},
		{"oidc", nil, func(c *Config) { c.OIDC.Issuer, c.OIDC.Audience = "https://login.example.com", "x" },
			[]string{"oidc.issuer", "oidc.audience"}, nil},
		{"abuse", nil, func(c *Config) { c.Abuse.BulkSpam.Action = abuse.Block }, []string{"abuse.bulk_spam.action"}, nil},
		{"timeouts", nil, func(c *Config) {
			c.Timeouts.ReadHeader, c.Timeouts.Read, c.Timeouts.Idle = time.Second, time.Second, time.Second
			c.Timeouts.UpstreamHeader, c.Timeouts.Shutdown = time.Second, time.Second
		}, []string{"timeouts.read_header", "timeouts.read", "timeouts.idle", "timeouts.upstream_header", "timeouts.shutdown"}, nil},
		{"turning TLS on", nil, func(c *Config) { c.TLS = tlsOn }, []string{"tls.cert", "tls.key"}, nil},
		{"turning TLS off", func(c *Config) { c.TLS = mtlsOn }, func(c *Config) { c.TLS = TLSFiles{} }, []string{"tls.cert", "tls.key", "tls.client_ca"}, nil},
		{"turning client certificates on", func(c *Config) { c.TLS = tlsOn }, func(c *Config) { c.TLS = mtlsOn },
			[]string{"tls.client_ca"}, nil},
		{"turning client certificates off", func(c *Config) { c.TLS = mtlsOn }, func(c *Config) { c.TLS = tlsOn },
			[]string{"tls.client_ca"}, nil},
		{"new certificate paths", func(c *Config) { c.TLS = mtlsOn }, func(c *Config) {
			c.TLS = TLSFiles{Cert: "/etc/new.crt", Key: "/etc/new.key", ClientCA: "/etc/new-ca.pem"}
		}, nil, []string{"tls.cert", "tls.key", "tls.client_ca"}},
		{"lists, limits and caps", nil, func(c *Config) {
			c.Allow, c.Deny = []string{"10.0.0.0/8"}, []string{"10.9.0.0/16"}
			c.DefaultLimits = limits.Limits{RPM: 1}
			c.DefaultMaxTokens, c.MaxBodyBytes, c.FilterModelList = 7, 64, true
			c.AuthFail.Free = 9
		}, nil, []string{"allow", "deny", "default_limits.rpm", "default_limits.concurrent", "default_max_tokens", "max_body_bytes", "filter_model_list", "auth_backoff.free"}},
		{"empty list equals none", func(c *Config) { c.Allow = nil }, func(c *Config) { c.Allow = []string{} }, nil, nil},
		{"both kinds at once", nil, func(c *Config) { c.Upstream, c.MaxBodyBytes = "http://10.0.0.9:11434", 64 },
			[]string{"upstream"}, []string{"max_body_bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			running := DefaultConfig()
			if tc.running != nil {
				tc.running(&running)
			}
			next := running
			next.Allow = append([]string(nil), running.Allow...)
			tc.change(&next)
			if got := restartOnlyChanges(running, next); !reflect.DeepEqual(got, tc.wantRestart) {
				t.Errorf("restartOnlyChanges = %q, want %q", got, tc.wantRestart)
			}
			kept := keepRestartOnly(running, next)
			if got := restartOnlyChanges(running, kept); got != nil {
				t.Errorf("after keepRestartOnly, still differing: %q", got)
			}
			if got := changedSettings(running, kept); !reflect.DeepEqual(got, tc.wantChanged) {
				t.Errorf("changedSettings = %q, want %q", got, tc.wantChanged)
			}
			// What is reloadable comes through unchanged.
			if kept.MaxBodyBytes != next.MaxBodyBytes || !reflect.DeepEqual(kept.Deny, next.Deny) ||
				!reflect.DeepEqual(kept.DefaultLimits, next.DefaultLimits) || kept.AuthFail != next.AuthFail {
				t.Errorf("keepRestartOnly dropped reloadable settings: %+v", kept)
			}
		})
	}
}

func TestReloadWarnsAboutRestartOnlySettings(t *testing.T) {
	up := newUpstream(t, nil)
	logs := &lockedBuf{}
	g := newGateway(t, up, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	running := g.srv.Config()

	cfg := running
	cfg.MaxBodyBytes = 64
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "need a restart") {
		t.Errorf("a reloadable change warned:\n%s", logs.String())
	}

	cfg.Upstream, cfg.MaxConnsPerIP, cfg.MaxBodyBytes = "http://127.0.0.2:1", 1, 100
	cfg.Abuse.RateJump.Action = abuse.Block
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `need a restart; keeping their running values" trigger=Server.Reload fields="upstream, max_conns_per_ip, abuse.rate_jump.action"`) {
		t.Errorf("warning does not name the settings:\n%s", logs.String())
	}
	got := g.srv.Config()
	if got.Upstream != running.Upstream || got.MaxConnsPerIP != running.MaxConnsPerIP ||
		!reflect.DeepEqual(got.Abuse, running.Abuse) {
		t.Errorf("restart-only settings changed: %+v", got)
	}
	if got.MaxBodyBytes != 100 {
		t.Errorf("max_body_bytes = %d, want the reloaded 100", got.MaxBodyBytes)
	}
	// The running upstream still serves.
	if resp, body := g.do(t, "GET", "/api/tags", userKey, ""); resp.StatusCode != 200 {
		t.Errorf("after the reload: %d %s", resp.StatusCode, body)
	}
}

func TestReloadNowLogsTheOutcome(t *testing.T) {
	up := newUpstream(t, nil)
	logs := &lockedBuf{}
	var next func() (Config, error)
	g := newGateway(t, up, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		o.Reload = func() (Config, error) { return next() }
	})
	running := g.srv.Config()
	bad := running
	bad.MaxBodyBytes = -1
	good := running
	good.MaxBodyBytes, good.FilterModelList = 64, true
	cases := []struct {
		name    string
		reload  func() (Config, error)
		trigger string
		wantLog string
		wantMax int64
	}{
		{"file unreadable", func() (Config, error) { return Config{}, errors.New("reading guard config: gone") },
			"SIGHUP", `msg="config reload failed; keeping the running configuration" trigger=SIGHUP err="reading guard config: gone"`,
			running.MaxBodyBytes},
		{"invalid value", func() (Config, error) { return bad, nil },
			"config file changed", `msg="config reload failed; keeping the running configuration" trigger="config file changed" err="max_body_bytes must be positive, got -1"`,
			running.MaxBodyBytes},
		{"good", func() (Config, error) { return good, nil },
			"SIGHUP", `msg="configuration reloaded" trigger=SIGHUP changed="max_body_bytes, filter_model_list"`, 64},
	}
	for _, tc := range cases {
		next = tc.reload
		g.srv.reloadNow(tc.trigger)
		if !strings.Contains(logs.String(), tc.wantLog) {
			t.Errorf("%s: log lacks %s:\n%s", tc.name, tc.wantLog, logs.String())
		}
		if got := g.srv.Config().MaxBodyBytes; got != tc.wantMax {
			t.Errorf("%s: max_body_bytes = %d, want %d", tc.name, got, tc.wantMax)
		}
	}
}
