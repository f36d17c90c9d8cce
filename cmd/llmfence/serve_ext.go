package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/alerting"
	"github.com/llmfence/llmfence/internal/console"
	"github.com/llmfence/llmfence/internal/disclose"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/owners"
	"github.com/llmfence/llmfence/internal/schedule"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

// serveExtFlags are serve's optional parts: owners, alerts, schedules,
// disclosure, inventory ages, retention.
type serveExtFlags struct {
	ownersFile             string
	webhookAllow           []string
	smtpAddr, smtpFrom     string
	smtpUser, smtpPassFile string
	smtpPlain              bool
	smtpCA                 string
	baseURL                string
	offline, stale, expire string
	sla                    string
	retention              string
	keep                   int
	securityTxt            bool
	discloseFrom           string
	oidcIssuer, oidcClient string
	oidcSecretFile         string
	oidcGroups, oidcRoles  string
	defaultBase            string // set by serve: scheme://listen
}

// defaultExtFlags are the defaults of serve's optional parts (also what a
// worker registers: any process may lead River's maintenance).
func defaultExtFlags() serveExtFlags {
	return serveExtFlags{offline: "2d", stale: "7d", expire: "30d", sla: "critical=7d,high=30d,medium=90d,low=180d", retention: "0", keep: 3,
		securityTxt: true}
}

func (f *serveExtFlags) register(cmd *cobra.Command) {
	d := defaultExtFlags()
	fl := cmd.Flags()
	fl.StringVar(&f.ownersFile, "owners", "", "owners `FILE` (YAML: team, contact, CIDRs or host names) to route alerts and disclosure reports")
	fl.StringArrayVar(&f.webhookAllow, "webhook-allow", nil, "URL prefix alert webhooks may go to (e.g. https://hooks.slack.com/services/); repeatable")
	fl.StringVar(&f.smtpAddr, "smtp-addr", "", "SMTP server `HOST:PORT` for e-mail alerts (STARTTLS required)")
	fl.StringVar(&f.smtpFrom, "smtp-from", "", "sender address of e-mail alerts")
	fl.StringVar(&f.smtpUser, "smtp-user", "", "SMTP user name")
	fl.StringVar(&f.smtpPassFile, "smtp-password-file", "", "read the SMTP password from `FILE`")
	fl.BoolVar(&f.smtpPlain, "smtp-plain", false, "send mail without STARTTLS (only for a relay on loopback)")
	fl.StringVar(&f.smtpCA, "smtp-ca", "", "trust the CA certificates in `FILE` (PEM) for the SMTP server's STARTTLS, besides the system's")
	fl.StringVar(&f.baseURL, "base-url", "", "the dashboard's address as people reach it, for links in alerts (default: the listen address)")
	fl.StringVar(&f.offline, "offline-after", d.offline, "a service not seen this long is offline")
	fl.StringVar(&f.stale, "stale-after", d.stale, "a service not seen this long is stale")
	fl.StringVar(&f.expire, "expire-after", d.expire, "a service not seen this long is expired (hidden from default lists)")
	fl.StringVar(&f.sla, "sla", d.sla, "days to fix per severity")
	fl.StringVar(&f.retention, "retention", d.retention, "prune runs older than this daily (e.g. 180d; 0 keeps everything; the inventory keeps what it learnt)")
	fl.IntVar(&f.keep, "retention-keep", d.keep, "with --retention, always keep this many newest finished runs of each scope")
	fl.StringVar(&f.oidcIssuer, "oidc-issuer", "", "single sign-on: the OpenID Connect issuer URL")
	fl.StringVar(&f.oidcClient, "oidc-client-id", "", "single sign-on: this dashboard's client ID at the issuer")
	fl.StringVar(&f.oidcSecretFile, "oidc-client-secret-file", "", "single sign-on: read the client secret from `FILE`")
	fl.StringVar(&f.oidcGroups, "oidc-groups-claim", "groups", "single sign-on: the claim listing the user's groups")
	fl.StringVar(&f.oidcRoles, "oidc-roles", "", "single sign-on: group to role mapping, e.g. secops=admin,noc=operator,all-staff=viewer")
	fl.BoolVar(&f.securityTxt, "security-txt", d.securityTxt, "disclosure reports read /.well-known/security.txt of services without an owner")
	fl.StringVar(&f.discloseFrom, "disclose-from", "", "whom owners should answer (an address or team), said in the contact section of disclosure notices")
}

// serveExt holds serve's optional parts, built before the job engine (their
// workers must be registered) and attached to it after.
type serveExt struct {
	console console.Config
	alerts  *alerting.Manager
	sched   *schedule.Manager
}

func (f *serveExtFlags) policy() (store.InventoryPolicy, error) {
	p := store.DefaultInventoryPolicy()
	for _, d := range []struct {
		flag, v string
		dst     *time.Duration
	}{{"--offline-after", f.offline, &p.OfflineAfter}, {"--stale-after", f.stale, &p.StaleAfter}, {"--expire-after", f.expire, &p.ExpireAfter}} {
		v, err := parseLongDuration(d.v)
		if err != nil || v <= 0 {
			return p, fmt.Errorf("%s %q: want a positive duration such as 48h or 7d", d.flag, d.v)
		}
		*d.dst = v
	}
	if !(p.OfflineAfter <= p.StaleAfter && p.StaleAfter <= p.ExpireAfter) {
		return p, fmt.Errorf("--offline-after, --stale-after and --expire-after must grow in that order")
	}
	p.SLA = map[service.Severity]time.Duration{}
	for _, kv := range strings.Split(f.sla, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		sev, okSev := service.ParseSeverity(k)
		d, err := parseLongDuration(v)
		if !ok || !okSev || err != nil || d <= 0 {
			return p, fmt.Errorf("--sla %q: want severity=duration pairs such as critical=7d,high=30d", f.sla)
		}
		p.SLA[sev] = d
	}
	return p, nil
}

func (f *serveExtFlags) build(ctx context.Context, e *env, st store.ServerStore, cfg *jobs.Config) (*serveExt, error) {
	x := &serveExt{}
	pol, err := f.policy()
	if err != nil {
		return nil, err
	}
	om, err := owners.Load(f.ownersFile)
	if err != nil {
		return nil, fmt.Errorf("--owners: %w", err)
	}
	smtp, err := f.smtpConfig()
	if err != nil {
		return nil, err
	}
	if f.retention != "0" {
		d, err := parseLongDuration(f.retention)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--retention %q: want 0 or a duration such as 180d", f.retention)
		}
		cfg.Retention = store.PrunePolicy{OlderThan: d, Keep: f.keep}
	}
	x.alerts = alerting.New(st, alerting.Config{AllowWebhooks: f.webhookAllow, SMTP: smtp, BaseURL: f.baseURL, Logger: e.log})
	x.sched = schedule.New(st)
	cfg.Hooks.Policy = pol
	cfg.Hooks.Owner = om.Team
	cfg.Hooks.Alerts = x.alerts.Hook
	cfg.Hooks.Register = func(w *river.Workers) {
		x.alerts.Register(w)
		x.sched.Register(w)
	}
	cfg.Hooks.Periodic = append(x.alerts.Periodic(), x.sched.Periodic()...)
	x.console = console.Config{Policy: pol, Alerts: x.alerts, Schedules: x.sched,
		Text:     e.text.Catalogue(),
		Disclose: discloser{st: st, text: e.text.Catalogue(), opts: disclose.Options{Owners: om, SecurityTxt: f.securityTxt, From: f.discloseFrom}}}
	if f.oidcIssuer != "" {
		if x.console.OIDC, err = f.oidcLogin(ctx, st); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// smtpConfig is the mail relay of --smtp-*; nil without --smtp-addr.
func (f *serveExtFlags) smtpConfig() (*alerting.SMTPConfig, error) {
	if f.smtpAddr == "" {
		return nil, nil
	}
	if f.smtpFrom == "" {
		return nil, fmt.Errorf("--smtp-addr needs --smtp-from")
	}
	if _, err := mail.ParseAddress(f.smtpFrom); err != nil {
		return nil, fmt.Errorf("--smtp-from %q: %w", f.smtpFrom, err)
	}
	smtp := &alerting.SMTPConfig{Addr: f.smtpAddr, From: f.smtpFrom, User: f.smtpUser, InsecureNoTLS: f.smtpPlain}
	if f.smtpCA != "" {
		pem, err := os.ReadFile(f.smtpCA)
		if err != nil {
			return nil, fmt.Errorf("--smtp-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--smtp-ca: no PEM certificate in %s", f.smtpCA)
		}
		smtp.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if f.smtpPassFile != "" {
		b, err := os.ReadFile(f.smtpPassFile)
		if err != nil {
			return nil, fmt.Errorf("--smtp-password-file: %w", err)
		}
		smtp.Password = strings.TrimSpace(string(b))
	}
	return smtp, nil
}

// oidcLogin sets up single sign-on with --oidc-issuer.
func (f *serveExtFlags) oidcLogin(ctx context.Context, st store.ServerStore) (*console.OIDCLogin, error) {
	roles, err := users.ParseGroupRoles(f.oidcRoles)
	if err != nil {
		return nil, fmt.Errorf("--oidc-roles: %w", err)
	}
	secret := ""
	if f.oidcSecretFile != "" {
		b, err := os.ReadFile(f.oidcSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	base := f.baseURL
	if base == "" {
		base = f.defaultBase
	}
	o, err := users.NewOIDC(ctx, st, users.OIDCConfig{Issuer: f.oidcIssuer, ClientID: f.oidcClient, ClientSecret: secret,
		RedirectURL: strings.TrimRight(base, "/") + "/auth/oidc/callback", GroupsClaim: f.oidcGroups, Roles: roles,
		Secure: strings.HasPrefix(base, "https://")})
	if err != nil {
		return nil, fmt.Errorf("single sign-on: %w", err)
	}
	return &console.OIDCLogin{Start: o.Start, Finish: o.Finish}, nil
}

func (x *serveExt) attach(eng *jobs.Engine) {
	x.alerts.Attach(eng)
	x.sched.Attach(eng)
}

// discloser adapts package disclose to the console.
type discloser struct {
	st   store.Store
	text *locale.Catalogue
	opts disclose.Options
}

func (d discloser) Disclose(ctx context.Context, runID, owner, format string, lang locale.Lang, w interface{ Write([]byte) (int, error) }) error {
	rep, err := disclose.Build(ctx, d.st, runID, d.opts)
	if err != nil {
		return err
	}
	if owner != "" {
		rep = rep.Only(owner)
	}
	return rep.Write(w, format, d.text.Printer(lang))
}
