package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// receiver is the webhook endpoint the test runs: it fails the first
// `fail` requests of each path, then records what it accepts.
type receiver struct {
	mu       sync.Mutex
	fail     map[string]int
	got      map[string][]map[string]any // path -> accepted bodies
	delivery map[string]int              // delivery ID -> accepted count
	attempts int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.fail[req.URL.Path] != 0 {
		if r.fail[req.URL.Path] > 0 {
			r.fail[req.URL.Path]--
		}
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var body map[string]any
	json.NewDecoder(req.Body).Decode(&body)
	r.got[req.URL.Path] = append(r.got[req.URL.Path], body)
	r.delivery[req.Header.Get("X-Llmfence-Delivery")]++
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) bodies(path string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.got[path]...)
}

type rig struct {
	st  store.ServerStore
	eng *jobs.Engine
	m   *Manager
	rcv *receiver
	url string
}

func newRig(t *testing.T) *rig { return newRigWith(t, nil) }

func newRigWith(t *testing.T, owner func(string, int) string) *rig {
	t.Helper()
	ctx := context.Background()
	rcv := &receiver{fail: map[string]int{"/hook": 2, "/dead": -1}, got: map[string][]map[string]any{}, delivery: map[string]int{}}
	ts := httptest.NewServer(rcv)
	t.Cleanup(ts.Close)
	dsn := filepath.Join(t.TempDir(), "s.db")
	st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := New(st, Config{AllowWebhooks: []string{ts.URL + "/"}, RetryBase: 100 * time.Millisecond, MaxAttempts: 4, DisableAfter: 2, Logger: quiet()})
	cfg := jobs.DefaultConfig()
	cfg.Serve, cfg.PollInterval, cfg.Logger = true, 50*time.Millisecond, quiet()
	cfg.Hooks.Alerts, cfg.Hooks.Register, cfg.Hooks.Owner = m.Hook, m.Register, owner
	eng, err := jobs.Open(ctx, st, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	m.Attach(eng)
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(5 * time.Second) })
	return &rig{st: st, eng: eng, m: m, rcv: rcv, url: ts.URL}
}

func exposed(host string) service.Service {
	return service.Service{Host: host, Port: 11434, Product: "ollama", Version: "0.6.8", Auth: service.AuthNone, Risk: service.SeverityCritical,
		Findings: []service.Finding{
			{ID: "LLMF-001", Severity: service.SeverityHigh, Title: "LLM API reachable without authentication"},
			{ID: "LLMF-005", Severity: service.SeverityCritical, Title: "System prompt that could enable harmful activity", Detail: "model evil:latest"},
		}}
}

// scanned records a finished run of svcs and applies it to the inventory.
func (r *rig) scanned(t *testing.T, svcs ...service.Service) {
	t.Helper()
	ctx := context.Background()
	run, err := r.st.CreateRun(ctx, store.Run{Targets: []string{"10.0.0.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	r.st.SaveServices(ctx, run.ID, svcs)
	r.st.FinishRun(ctx, run.ID, store.RunStats{})
	if _, err := r.eng.ApplyRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
}

// settle waits until no delivery is pending.
func (r *rig) settle(t *testing.T) (sent, dead int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int
		r.st.DB().QueryRow(`SELECT COUNT(*) FROM alert_deliveries WHERE status = 'pending'`).Scan(&pending)
		if pending == 0 {
			r.st.DB().QueryRow(`SELECT COUNT(*) FROM alert_deliveries WHERE status = 'sent'`).Scan(&sent)
			r.st.DB().QueryRow(`SELECT COUNT(*) FROM alert_deliveries WHERE status = 'dead'`).Scan(&dead)
			return sent, dead
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still pending", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func rules(bodies []map[string]any) map[string]int {
	out := map[string]int{}
	for _, b := range bodies {
		r, _ := b["rule"].(string)
		out[r]++
	}
	return out
}

func TestWebhookDeliveryRetriesDedupesAndAcceptance(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.m.SaveChannel(ctx, []byte(`{"name":"secops","kind":"webhook","url":"`+r.url+`/hook","min_severity":"high",
		"rules":"exposed_service,harmful_prompt,finding,known_cve,auth_dropped"}`), "alice"); err != nil {
		t.Fatal(err)
	}
	// A failing receiver: every alert still arrives, once.
	r.scanned(t, exposed("10.0.0.7"))
	sent, dead := r.settle(t)
	got := rules(r.rcv.bodies("/hook"))
	if dead != 0 || sent != 3 || got[RuleExposedService] != 1 || got[RuleHarmfulPrompt] != 1 || got[RuleFinding] != 1 {
		t.Fatalf("after a failing receiver: %d sent, %d dead, received %v", sent, dead, got)
	}
	for id, n := range r.rcv.delivery {
		if n != 1 {
			t.Errorf("delivery %s accepted %d times", id, n)
		}
	}
	if r.rcv.attempts != 5 {
		t.Errorf("receiver saw %d attempts, want 3 deliveries + 2 failures", r.rcv.attempts)
	}
	// The same state seen by a second scan alerts nobody.
	r.scanned(t, exposed("10.0.0.7"))
	r.settle(t)
	if n := len(r.rcv.bodies("/hook")); n != 3 {
		t.Errorf("a second scan of the same state sent %d more alerts", n-3)
	}
	// Accept LLMF-001's risk: silent while accepted, alert on reopening.
	fs, _, _ := r.st.ListFindings(ctx, store.FindingQuery{FindingID: "LLMF-001"})
	fid := fs[0].ID
	until := time.Now().Add(3 * time.Second)
	pol := store.DefaultInventoryPolicy()
	pol.WarnBefore = 0
	if err := r.st.RequestAcceptance(ctx, fid, "alice", "lab host behind the jump box", until, pol, r.eng.AlertHook()); err != nil {
		t.Fatal(err)
	}
	if err := r.st.ApproveAcceptance(ctx, fid, "bob", r.eng.AlertHook()); err != nil {
		t.Fatal(err)
	}
	r.scanned(t, exposed("10.0.0.7"))
	if _, err := r.st.Maintain(ctx, pol, r.eng.AlertHook()); err != nil {
		t.Fatal(err)
	}
	r.settle(t)
	if n := len(r.rcv.bodies("/hook")); n != 3 {
		t.Fatalf("an accepted finding alerted: %d bodies", n)
	}
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	if _, err := r.st.Maintain(ctx, pol, r.eng.AlertHook()); err != nil {
		t.Fatal(err)
	}
	r.settle(t)
	bodies := r.rcv.bodies("/hook")
	if len(bodies) != 4 {
		t.Fatalf("expiry: %d bodies, want one more", len(bodies))
	}
	last := bodies[3]
	if last["rule"] != RuleFinding || int64(last["finding_id"].(float64)) != fid || !strings.Contains(last["summary"].(string), "reopened") {
		t.Errorf("expiry alert: %v", last)
	}
}

func TestChannelsAllowListDeadEndpointsAndTemplates(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, bad := range []string{
		`{"name":"x","kind":"webhook","url":"https://hooks.example.org/x"}`,
		`{"name":"x","kind":"webhook","url":"` + strings.Replace(r.url, "http://", "http://user:pw@", 1) + `/hook"}`,
		`{"name":"x","kind":"webhook","url":"` + r.url + `/hook","min_severity":"extreme"}`,
		`{"name":"x","kind":"pager","url":"` + r.url + `/hook"}`,
		`{"name":"x","kind":"webhook","url":"` + r.url + `/hook","rules":"everything"}`,
		`{"name":"x","kind":"email","url":"mailto:secops@example.org"}`,
	} {
		if _, err := r.m.SaveChannel(ctx, []byte(bad), "alice"); !errors.Is(err, store.ErrBadInput) {
			t.Errorf("SaveChannel(%s) = %v, want ErrBadInput", bad, err)
		}
	}
	mk := func(body string) int64 {
		v, err := r.m.SaveChannel(ctx, []byte(body), "alice")
		if err != nil {
			t.Fatal(err)
		}
		return v.(ChannelView).ID
	}
	dead := mk(`{"name":"dead","kind":"webhook","url":"` + r.url + `/dead","min_severity":"info"}`)
	slack := mk(`{"name":"chat","kind":"slack","url":"` + r.url + `/slack","min_severity":"critical"}`)
	teams := mk(`{"name":"teams","kind":"teams","url":"` + r.url + `/teams","min_severity":"critical","rules":"harmful_prompt"}`)
	// Test pings.
	for _, id := range []int64{slack, teams} {
		if err := r.m.TestChannel(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	r.scanned(t, exposed("10.0.0.8"))
	r.settle(t)
	// The slack and teams bodies have their shapes.
	for _, b := range r.rcv.bodies("/slack") {
		if _, ok := b["blocks"]; !ok || b["text"] == "" {
			t.Errorf("slack body: %v", b)
		}
	}
	if len(r.rcv.bodies("/slack")) != 3 { // test ping, exposed service, harmful prompt
		t.Errorf("slack got %d messages", len(r.rcv.bodies("/slack")))
	}
	tb := r.rcv.bodies("/teams")
	if len(tb) != 2 || tb[1]["@type"] != "MessageCard" || !strings.Contains(tb[1]["text"].(string), "harmful") {
		t.Errorf("teams bodies: %v", tb)
	}
	// The endpoint that always fails is disabled, with a notice.
	c, _ := r.st.GetChannel(ctx, dead)
	if c.Enabled || !strings.Contains(c.DisabledReason, "failed deliveries") {
		t.Errorf("dead endpoint: %+v", c)
	}
	var audit int
	r.st.DB().QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'alert channel disabled'`).Scan(&audit)
	if audit != 1 {
		t.Errorf("no notice of the disabled channel in the audit log")
	}
	views, _ := r.m.Channels(ctx)
	for _, v := range views.([]ChannelView) {
		if strings.Contains(v.Endpoint, "/slack") {
			t.Errorf("channel list shows the secret path: %s", v.Endpoint)
		}
	}
}

// TestDigestsAndOwnerRouting: a digest channel collects alerts and sends
// them as one message once the period has passed; a channel for one owner
// hears only about that owner's services.
func TestDigestsAndOwnerRouting(t *testing.T) {
	r := newRigWith(t, func(host string, _ int) string {
		if strings.HasPrefix(host, "10.0.1.") {
			return "lab-team"
		}
		return "gpu-team"
	})
	ctx := context.Background()
	if _, err := r.m.SaveChannel(ctx, []byte(`{"name":"daily","kind":"webhook","url":"`+r.url+`/digest","min_severity":"critical","digest_minutes":60}`), "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.SaveChannel(ctx, []byte(`{"name":"lab","kind":"webhook","url":"`+r.url+`/lab","min_severity":"critical","owners":"lab-team"}`), "alice"); err != nil {
		t.Fatal(err)
	}
	r.scanned(t, exposed("10.0.1.5"), exposed("10.0.2.5"))
	r.settle(t)
	if n := len(r.rcv.bodies("/digest")); n != 0 {
		t.Fatalf("the digest went out at once: %d", n)
	}
	lab := r.rcv.bodies("/lab")
	if len(lab) != 2 { // exposed service and harmful prompt of 10.0.1.5 only
		t.Fatalf("owner channel got %d alerts: %v", len(lab), lab)
	}
	for _, b := range lab {
		if b["host"] != "10.0.1.5" || b["owner"] != "lab-team" {
			t.Errorf("owner channel got %v", b)
		}
	}
	// Not yet due: nothing.
	if err := r.m.SendDigests(ctx); err != nil {
		t.Fatal(err)
	}
	r.settle(t)
	if n := len(r.rcv.bodies("/digest")); n != 0 {
		t.Fatalf("the digest went out before its hour: %d", n)
	}
	// An hour later: one message with all four critical alerts.
	r.st.DB().Exec(`UPDATE alert_digest SET queued_at = ?`, time.Now().UTC().Add(-2*time.Hour))
	if err := r.m.SendDigests(ctx); err != nil {
		t.Fatal(err)
	}
	r.settle(t)
	d := r.rcv.bodies("/digest")
	if len(d) != 1 {
		t.Fatalf("digests sent: %d", len(d))
	}
	if items, _ := d[0]["digest"].([]any); len(items) != 4 {
		t.Errorf("digest holds %d alerts, want 4: %v", len(items), d[0])
	}
}
