package console

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type harness struct {
	t   *testing.T
	st  store.ServerStore
	eng *jobs.Engine
	srv *Server
	ts  *httptest.Server
}

const testPassword = "correct horse battery"

var testHashOnce = sync.OnceValues(func() (string, error) { return users.HashPassword(testPassword) })

// testHash is testPassword's hash, computed once (argon2id is slow under
// the race detector, by design).
func testHash(t *testing.T) string {
	h, err := testHashOnce()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newHarness runs the console on a fresh SQLite store with its job engine,
// and users alice (admin), bob (approver), olga (operator), vic (viewer).
func newHarness(t *testing.T, cfg Config) *harness {
	return newHarnessWith(t, cfg, nil)
}

// newHarnessWith is newHarness with extra job engine settings (schedules,
// alerts) applied before the engine opens; attach runs once it exists.
func newHarnessWith(t *testing.T, cfg Config, setup func(st store.ServerStore, jc *jobs.Config) (attach func(*jobs.Engine))) *harness {
	t.Helper()
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "s.db")
	st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	jc := jobs.DefaultConfig()
	jc.ScanWorkers, jc.Serve, jc.PollInterval, jc.Logger = 2, true, 50*time.Millisecond, quiet()
	var attach func(*jobs.Engine)
	if setup != nil {
		attach = setup(st, &jc)
	}
	eng, err := jobs.Open(ctx, st, dsn, jc)
	if err != nil {
		t.Fatal(err)
	}
	if attach != nil {
		attach(eng)
	}
	t.Cleanup(eng.Close)
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(10 * time.Second) })
	cfg.Logger = quiet()
	srv := New(st, eng, cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	hash := testHash(t)
	for name, role := range map[string]string{"alice": users.RoleAdmin, "bob": users.RoleApprover, "olga": users.RoleOperator, "vic": users.RoleViewer} {
		if _, err := st.CreateUser(ctx, store.User{Name: name, PasswordHash: hash, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, st: st, eng: eng, srv: srv, ts: ts}
}

// client is a browser: a cookie jar, no redirects followed.
type client struct {
	h    *harness
	http *http.Client
	csrf string
}

func (h *harness) anon() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// login signs in and learns the session's CSRF token.
func (h *harness) login(name string) *client {
	c := h.anon()
	resp := c.form("/login", url.Values{"name": {name}, "password": {testPassword}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("login %s: %d", name, resp.StatusCode)
	}
	var me map[string]string
	c.getJSON("/api/me", &me)
	c.csrf = me["csrf"]
	return c
}

func (c *client) do(req *http.Request) *http.Response {
	c.h.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func (c *client) get(path string) *http.Response {
	req, _ := http.NewRequest("GET", c.h.ts.URL+path, nil)
	return c.do(req)
}

func (c *client) getJSON(path string, v any) int {
	c.h.t.Helper()
	resp := c.get(path)
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			c.h.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// send makes a JSON request with the CSRF header.
func (c *client) send(method, path string, body any) *http.Response {
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, c.h.ts.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	return c.do(req)
}

func (c *client) form(path string, v url.Values) *http.Response {
	req, _ := http.NewRequest("POST", c.h.ts.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func body(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// scanFleet starts a lab fleet and scans it through the API, waiting until
// the run is finished and in the inventory.
func (h *harness) scanFleet(c *client, prefix string, live int) string {
	h.t.Helper()
	personas, err := lab.Generate(lab.Config{Seed: 8, Prefix: netip.MustParsePrefix(prefix), Live: live})
	if err != nil {
		h.t.Fatal(err)
	}
	fleet, err := lab.Start(context.Background(), personas)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(fleet.Close)
	return h.scan(c, prefix)
}

func (h *harness) scan(c *client, prefix string) string {
	h.t.Helper()
	resp := c.send("POST", "/api/scans", map[string]any{"targets": []string{prefix}, "rate": 0, "shards": 2, "seed": 5, "ports": "11434,8000,8080,1234,4000"})
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("start scan: %d %s", resp.StatusCode, body(resp))
	}
	var run store.Run
	json.NewDecoder(resp.Body).Decode(&run)
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, _ := h.st.GetRun(context.Background(), run.ID)
		left, _ := h.st.UnappliedRuns(context.Background(), 100)
		applied := true
		for _, id := range left {
			applied = applied && id != run.ID
		}
		if r.Status != store.StatusRunning && applied {
			return run.ID
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s: %s, applied %v", run.ID, r.Status, applied)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
