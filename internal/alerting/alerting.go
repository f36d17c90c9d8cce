// Package alerting turns inventory changes into alerts: rules pick the
// changes worth a message (a new exposed service, authentication dropped,
// a new harmful system prompt, a version with a known CVE, a new model, an
// SLA breach, an acceptance about to expire, a missed schedule), channels
// filter them by severity, tag and owner, and deliveries go out as plain
// JSON webhooks, Slack- or Teams-shaped webhooks, or e-mail over SMTP.
//
// # Exactly once, nothing lost
//
// Alerts are queued (a delivery row and its River job) inside the
// transaction that records the change, so an alert exists if and only if
// its change does. A delivery that fails is retried by its job with
// backoff; a channel whose deliveries keep failing is disabled with a
// notice. The same (host, port, rule, subject) alerts at most once per
// DedupeWindow per channel, so one change seen by two scans, or by two
// servers, is announced once; events of accepted findings and snoozed
// hosts are recorded but raise no alert.
//
// # Where alerts may go
//
// Webhook URLs must match the operator's allow-list (Config.AllowWebhooks)
// when the channel is saved and again when each delivery is sent; URLs with
// user information are refused.
package alerting

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/llmfence/llmfence/internal/credential"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/version"
)

// Rules.
const (
	RuleExposedService = "exposed_service"
	RuleAuthDropped    = "auth_dropped"
	RuleHarmfulPrompt  = "harmful_prompt"
	RuleKnownCVE       = "known_cve"
	RuleNewModel       = "new_model"
	RulePromptChanged  = "prompt_changed"
	RuleFinding        = "finding"
	RuleSLABreach      = "sla_breach"
	RuleAcceptExpiring = "acceptance_expiring"
	RuleScheduleMissed = "schedule_missed"
	RuleDatascan       = "datascan"
	RuleProbe          = "probe"
	RuleTest           = "test"
)

// Rules lists every rule; a channel with no rules takes them all.
var Rules = []string{RuleExposedService, RuleAuthDropped, RuleHarmfulPrompt, RuleKnownCVE, RuleNewModel, RulePromptChanged,
	RuleFinding, RuleSLABreach, RuleAcceptExpiring, RuleScheduleMissed, RuleDatascan, RuleProbe}

// Channel kinds.
var Kinds = []string{"webhook", "slack", "teams", "email"}

// Config tunes alerting.
type Config struct {
	// AllowWebhooks lists the URL prefixes webhooks may go to
	// ("https://hooks.slack.com/services/", "http://127.0.0.1:9000/").
	AllowWebhooks []string
	SMTP          *SMTPConfig
	// DedupeWindow: the same change alerts a channel at most once in it.
	DedupeWindow time.Duration
	// DisableAfter consecutive failed deliveries disable a channel.
	DisableAfter int
	// MaxAttempts per delivery, and the first retry's wait (doubling).
	MaxAttempts int
	RetryBase   time.Duration
	// BaseURL of the dashboard, for links in alerts.
	BaseURL string
	Client  *http.Client
	Logger  *slog.Logger
}

// DefaultConfig: dedupe for 24 hours, disable after 5 dead deliveries,
// 8 attempts from 10 s.
func DefaultConfig() Config {
	return Config{DedupeWindow: 24 * time.Hour, DisableAfter: 5, MaxAttempts: 8, RetryBase: 10 * time.Second}
}

// Manager routes events to channels and delivers them.
type Manager struct {
	st  store.ServerStore
	eng *jobs.Engine
	cfg Config
	log *slog.Logger
}

// New returns a manager; Attach the engine once it exists.
func New(st store.ServerStore, cfg Config) *Manager {
	d := DefaultConfig()
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = d.DedupeWindow
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = d.DisableAfter
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = d.MaxAttempts
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = d.RetryBase
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	m := &Manager{st: st, cfg: cfg, log: cfg.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m
}

// Attach connects the job engine.
func (m *Manager) Attach(e *jobs.Engine) { m.eng = e }

// Alert is what a delivery carries.
type Alert struct {
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity"`
	Summary   string    `json:"summary"`
	Host      string    `json:"host,omitempty"`
	Port      int       `json:"port,omitempty"`
	Owner     string    `json:"owner,omitempty"`
	FindingID int64     `json:"finding_id,omitempty"`
	ServiceID int64     `json:"service_id,omitempty"`
	RunID     string    `json:"run_id,omitempty"`
	EventSeq  int64     `json:"event_seq,omitempty"`
	At        time.Time `json:"at"`
	Link      string    `json:"link,omitempty"`
}

// ruleOf maps an event to its rule and the subject it is about.
func ruleOf(ev store.Event) (rule, subject string, ok bool) {
	var d map[string]any
	_ = json.Unmarshal(ev.Detail, &d)
	str := func(k string) string { s, _ := d[k].(string); return s }
	switch ev.Kind {
	case store.EvServiceNew:
		if str("auth") == string(service.AuthNone) {
			return RuleExposedService, "", true
		}
	case store.EvAuthDropped:
		return RuleAuthDropped, "", true
	case store.EvModelAdded:
		return RuleNewModel, str("model"), true
	case store.EvPromptChanged:
		return RulePromptChanged, str("model"), true
	case store.EvFindingOpened, store.EvFindingReopened:
		subj := strconv.FormatInt(ev.FindingID, 10) + ":" + ev.Kind
		switch str("finding") {
		case "LLMF-005":
			return RuleHarmfulPrompt, subj, true
		case "LLMF-003":
			return RuleKnownCVE, subj, true
		}
		return RuleFinding, subj, true
	case store.EvSLABreach:
		return RuleSLABreach, strconv.FormatInt(ev.FindingID, 10), true
	case store.EvAcceptExpiring:
		return RuleAcceptExpiring, strconv.FormatInt(ev.FindingID, 10), true
	case "schedule.missed":
		return RuleScheduleMissed, ev.Summary, true
	case jobs.EvDatascanFindings:
		return RuleDatascan, "datascan:" + strconv.FormatFloat(num(d["datascan"]), 'f', 0, 64), true
	case jobs.EvProbeVerdict:
		return RuleProbe, "probe:" + str("probe"), true
	}
	return "", "", false
}

func num(v any) float64 { f, _ := v.(float64); return f }

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// matches says whether channel c takes an event of rule.
func matches(c store.Channel, rule string, ev store.Event) bool {
	if !c.Enabled {
		return false
	}
	if rs := splitList(c.Rules); len(rs) > 0 && !slices.Contains(rs, rule) {
		return false
	}
	sev := service.Severity(ev.Severity)
	if ev.Severity == "" {
		sev = service.SeverityMedium
	}
	if min, ok := service.ParseSeverity(c.MinSeverity); ok && sev.Rank() < min.Rank() {
		return false
	}
	if ts := splitList(c.Tags); len(ts) > 0 {
		have := splitList(ev.Tags)
		if !slices.ContainsFunc(ts, func(t string) bool { return slices.Contains(have, t) }) {
			return false
		}
	}
	if os := splitList(c.Owners); len(os) > 0 && !slices.Contains(os, ev.Owner) {
		return false
	}
	return true
}

// Hook queues alerts for events inside the store transaction that records
// them (jobs.Hooks.Alerts).
func (m *Manager) Hook(ctx context.Context, e *jobs.Engine, tx *sql.Tx, events []store.Event) error {
	var chans []store.Channel
	loaded := false
	for _, ev := range events {
		if ev.Silent {
			continue
		}
		rule, subject, ok := ruleOf(ev)
		if !ok {
			continue
		}
		if !loaded {
			var err error
			if chans, err = m.channelsTx(ctx, tx); err != nil {
				return err
			}
			loaded = true
		}
		a := m.alertOf(rule, ev)
		payload, _ := json.Marshal(a)
		for _, c := range chans {
			if !matches(c, rule, ev) {
				continue
			}
			id, err := m.st.QueueAlert(ctx, tx, c.ID, rule, ev.Host, ev.Port, subject, string(payload), m.cfg.DedupeWindow, c.DigestMinutes > 0)
			if err != nil {
				return err
			}
			if id > 0 {
				if err := e.InsertTx(ctx, tx, DeliverArgs{DeliveryID: id}, m.deliverOpts()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// channelsTx reads the channels inside tx (the same snapshot as the
// change; SQLite allows no second connection to write meanwhile).
func (m *Manager) channelsTx(ctx context.Context, tx *sql.Tx) ([]store.Channel, error) {
	return m.st.ChannelsTx(ctx, tx)
}

func (m *Manager) alertOf(rule string, ev store.Event) Alert {
	a := Alert{Rule: rule, Severity: ev.Severity, Summary: ev.Summary, Host: ev.Host, Port: ev.Port, Owner: ev.Owner,
		FindingID: ev.FindingID, ServiceID: ev.ServiceID, RunID: ev.RunID, EventSeq: ev.Seq, At: ev.At.UTC()}
	if m.cfg.BaseURL != "" {
		switch {
		case ev.FindingID > 0:
			a.Link = strings.TrimRight(m.cfg.BaseURL, "/") + "/findings/" + strconv.FormatInt(ev.FindingID, 10)
		case ev.ServiceID > 0:
			a.Link = strings.TrimRight(m.cfg.BaseURL, "/") + "/services/" + strconv.FormatInt(ev.ServiceID, 10)
		case ev.Kind == jobs.EvDatascanFindings || ev.Kind == jobs.EvProbeVerdict:
			var d struct {
				Datascan int64  `json:"datascan"`
				Probe    string `json:"probe"`
			}
			_ = json.Unmarshal(ev.Detail, &d)
			if d.Datascan > 0 {
				a.Link = strings.TrimRight(m.cfg.BaseURL, "/") + "/datascans/" + strconv.FormatInt(d.Datascan, 10)
			} else if d.Probe != "" {
				a.Link = strings.TrimRight(m.cfg.BaseURL, "/") + "/probes/" + url.PathEscape(d.Probe)
			}
		}
	}
	return a
}

func (m *Manager) deliverOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: jobs.QueueAlerts, MaxAttempts: m.cfg.MaxAttempts}
}

// DeliverArgs sends one delivery.
type DeliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

func (DeliverArgs) Kind() string { return "alert_deliver" }

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	m *Manager
}

func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return 30 * time.Second }

func (w *deliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	d := w.m.cfg.RetryBase << min(job.Attempt-1, 10)
	return time.Now().Add(min(d, 10*time.Minute))
}

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	d, c, err := w.m.st.GetDelivery(ctx, job.Args.DeliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status != "pending" {
		return nil // sent already (a retry after a crash between send and record)
	}
	final := job.Attempt >= job.MaxAttempts
	if !c.Enabled {
		_, err := w.m.st.DeliveryDone(ctx, d.ID, false, true, "channel disabled: "+c.DisabledReason, 0)
		return err
	}
	sendErr := w.m.send(ctx, c, d)
	disabled, err := w.m.st.DeliveryDone(context.WithoutCancel(ctx), d.ID, sendErr == nil, final, errText(sendErr), w.m.cfg.DisableAfter)
	if err != nil {
		return err
	}
	if disabled {
		w.m.log.Warn("alert channel disabled after repeated failures", "channel", c.Name, "err", sendErr)
		_ = w.m.st.Audit(ctx, store.AuditEntry{Actor: "alerting", Action: "alert channel disabled", Object: "channel:" + c.Name,
			Detail: errText(sendErr)})
	}
	if sendErr != nil {
		return fmt.Errorf("alert to %s: %w", c.Name, sendErr)
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return credential.Text(err.Error())
}

// send delivers one delivery to its channel.
func (m *Manager) send(ctx context.Context, c store.Channel, d store.Delivery) error {
	var alerts []Alert
	var one Alert
	if err := json.Unmarshal([]byte(d.Payload), &one); err == nil && one.Rule != "" {
		alerts = []Alert{one}
	} else if err := json.Unmarshal([]byte(d.Payload), &alerts); err != nil {
		return fmt.Errorf("stored alert: %w", err)
	}
	if c.Kind == "email" {
		return m.sendMail(ctx, c, alerts)
	}
	if err := m.Allowed(c.Endpoint); err != nil {
		return err
	}
	body, err := render(c.Kind, alerts, d.Payload)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llmfence/"+version.String())
	req.Header.Set("X-Llmfence-Delivery", strconv.FormatInt(d.ID, 10))
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return nil
}

// render shapes alerts for a channel kind.
func render(kind string, alerts []Alert, raw string) ([]byte, error) {
	lines := make([]string, 0, len(alerts))
	worst := service.SeverityNone
	for _, a := range alerts {
		line := fmt.Sprintf("[%s] %s: %s", strings.ToUpper(orDash(a.Severity)), strings.ReplaceAll(a.Rule, "_", " "), a.Summary)
		if a.Link != "" {
			line += " — " + a.Link
		}
		lines = append(lines, line)
		if s := service.Severity(a.Severity); s.Rank() > worst.Rank() {
			worst = s
		}
	}
	title := "llmfence: " + strconv.Itoa(len(alerts)) + " alerts"
	if len(alerts) == 1 {
		title = "llmfence: " + strings.ReplaceAll(alerts[0].Rule, "_", " ")
	}
	switch kind {
	case "webhook":
		if len(alerts) == 1 {
			return []byte(raw), nil
		}
		return json.Marshal(map[string]any{"digest": alerts})
	case "slack":
		text := title + "\n" + strings.Join(lines, "\n")
		return json.Marshal(map[string]any{"text": text,
			"blocks": []any{map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": "*" + title + "*\n" + strings.Join(lines, "\n")}}}})
	case "teams":
		colors := map[service.Severity]string{service.SeverityCritical: "B91C1C", service.SeverityHigh: "EA580C", service.SeverityMedium: "CA8A04"}
		color := colors[worst]
		if color == "" {
			color = "2563EB"
		}
		return json.Marshal(map[string]any{"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": title,
			"themeColor": color, "title": title, "text": strings.Join(lines, "\n\n")})
	}
	return nil, fmt.Errorf("unknown channel kind %q", kind)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Allowed checks a webhook URL against the allow-list.
func (m *Manager) Allowed(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL %q: want http(s)://host/path: %w", credential.URL(raw), store.ErrBadInput)
	}
	if u.User != nil {
		return fmt.Errorf("webhook URL with user information refused: %w", store.ErrBadInput)
	}
	for _, a := range m.cfg.AllowWebhooks {
		p, err := url.Parse(strings.TrimSpace(a))
		if err != nil || p.Host == "" {
			continue
		}
		if strings.EqualFold(p.Scheme, u.Scheme) && strings.EqualFold(p.Host, u.Host) && strings.HasPrefix(u.EscapedPath(), p.EscapedPath()) {
			return nil
		}
	}
	return fmt.Errorf("webhook URL %s://%s… is not in the allowed list (serve --webhook-allow): %w", u.Scheme, u.Host, store.ErrBadInput)
}

// ChannelBody is a channel as the API and dashboard give it.
type ChannelBody struct {
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	URL           string `json:"url"`
	MinSeverity   string `json:"min_severity,omitempty"`
	Rules         string `json:"rules,omitempty"`
	Tags          string `json:"tags,omitempty"`
	Owners        string `json:"owners,omitempty"`
	DigestMinutes int    `json:"digest_minutes,omitempty"`
}

// ChannelView is a channel as shown: the endpoint without its secret
// parts (Slack and Teams put the secret in the path).
type ChannelView struct {
	store.Channel
	Endpoint string `json:"endpoint"`
}

// Channels lists channels (console.AlertAdmin).
func (m *Manager) Channels(ctx context.Context) (any, error) {
	cs, err := m.st.Channels(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ChannelView, len(cs))
	for i, c := range cs {
		out[i] = ChannelView{Channel: c, Endpoint: showEndpoint(c.Endpoint)}
	}
	return out, nil
}

func showEndpoint(e string) string {
	u, err := url.Parse(e)
	if err != nil || u.Scheme == "mailto" {
		return e
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// SaveChannel checks and saves a channel (console.AlertAdmin).
func (m *Manager) SaveChannel(ctx context.Context, raw []byte, actor string) (any, error) {
	var b ChannelBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("alert channel: %v: %w", err, store.ErrBadInput)
	}
	b.Name = strings.TrimSpace(b.Name)
	if b.Name == "" || !slices.Contains(Kinds, b.Kind) {
		return nil, fmt.Errorf("alert channel: give a name and a kind (%s): %w", strings.Join(Kinds, ", "), store.ErrBadInput)
	}
	if b.MinSeverity == "" {
		b.MinSeverity = "high"
	}
	if _, ok := service.ParseSeverity(b.MinSeverity); !ok {
		return nil, fmt.Errorf("alert channel: min_severity %q: %w", b.MinSeverity, store.ErrBadInput)
	}
	for _, r := range splitList(b.Rules) {
		if !slices.Contains(Rules, r) {
			return nil, fmt.Errorf("alert channel: rule %q: want some of %s: %w", r, strings.Join(Rules, ", "), store.ErrBadInput)
		}
	}
	if b.DigestMinutes < 0 || b.DigestMinutes > 7*24*60 {
		return nil, fmt.Errorf("alert channel: digest_minutes from 0 to a week: %w", store.ErrBadInput)
	}
	if b.Kind == "email" {
		if err := m.checkMail(b.URL); err != nil {
			return nil, err
		}
	} else if err := m.Allowed(b.URL); err != nil {
		return nil, err
	}
	c, err := m.st.SaveChannel(ctx, store.Channel{Name: b.Name, Kind: b.Kind, Endpoint: b.URL, MinSeverity: b.MinSeverity, Rules: b.Rules,
		Tags: b.Tags, Owners: b.Owners, DigestMinutes: b.DigestMinutes, CreatedBy: actor})
	if err != nil {
		return nil, err
	}
	return ChannelView{Channel: c, Endpoint: showEndpoint(c.Endpoint)}, nil
}

// TestChannel queues a test ping (console.AlertAdmin).
func (m *Manager) TestChannel(ctx context.Context, id int64) error {
	c, err := m.st.GetChannel(ctx, id)
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(Alert{Rule: RuleTest, Severity: "info", Summary: "test ping from llmfence serve to channel " + c.Name, At: time.Now().UTC()})
	return m.st.WithTx(ctx, func(tx *sql.Tx) error {
		did, err := m.st.QueueDelivery(ctx, tx, c.ID, RuleTest, string(payload))
		if err != nil {
			return err
		}
		return m.eng.InsertTx(ctx, tx, DeliverArgs{DeliveryID: did}, m.deliverOpts())
	})
}

// DigestArgs sends the digests that are due.
type DigestArgs struct{}

func (DigestArgs) Kind() string { return "alert_digest" }
func (DigestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueAlerts, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: 30 * time.Second}}
}

type digestWorker struct {
	river.WorkerDefaults[DigestArgs]
	m *Manager
}

func (w *digestWorker) Work(ctx context.Context, _ *river.Job[DigestArgs]) error {
	return w.m.SendDigests(ctx)
}

// SendDigests queues one delivery per channel whose oldest waiting alert
// has waited its digest period.
func (m *Manager) SendDigests(ctx context.Context) error {
	ids, err := m.st.DigestChannels(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		c, err := m.st.GetChannel(ctx, id)
		if err != nil {
			return err
		}
		err = m.st.WithTx(ctx, func(tx *sql.Tx) error {
			entries, err := m.st.TakeDigest(ctx, tx, id, time.Now().Add(-time.Duration(c.DigestMinutes)*time.Minute))
			if err != nil || len(entries) == 0 {
				return err
			}
			var alerts []json.RawMessage
			for _, e := range entries {
				alerts = append(alerts, json.RawMessage(e))
			}
			payload, _ := json.Marshal(alerts)
			did, err := m.st.QueueDelivery(ctx, tx, id, "digest", string(payload))
			if err != nil {
				return err
			}
			return m.eng.InsertTx(ctx, tx, DeliverArgs{DeliveryID: did}, m.deliverOpts())
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Register adds the alert workers (jobs.Hooks.Register).
func (m *Manager) Register(w *river.Workers) {
	river.AddWorker(w, &deliverWorker{m: m})
	river.AddWorker(w, &digestWorker{m: m})
}

// Periodic sends digests every minute (jobs.Hooks.Periodic).
func (m *Manager) Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Minute), func() (river.JobArgs, *river.InsertOpts) {
		return DigestArgs{}, nil
	}, &river.PeriodicJobOpts{ID: "alert_digest"})}
}
