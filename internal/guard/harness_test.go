package guard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	userKey  = "lf_user_secret"
	adminKey = "lf_admin_secret"
)

// fakeAuth knows a fixed set of keys.
type fakeAuth map[string]*Principal

func (f fakeAuth) Authenticate(ctx context.Context, k string) (*Principal, error) {
	if p, ok := f[k]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("key %q: %w", k[:min(len(k), 4)], ErrInvalidKey)
}

func defaultAuth() fakeAuth {
	return fakeAuth{
		userKey:  {ID: "u1", Name: "alice", Models: []string{"llama3*", "tiny"}},
		adminKey: {ID: "a1", Name: "root", Admin: true, Models: []string{"*"}},
	}
}

// fakeLimiter admits with a fixed allowance and records settlements.
type fakeLimiter struct {
	mu       sync.Mutex
	max      int64
	capped   bool
	err      error
	wants    []int64 // completion wanted
	prompts  []int64 // prompt reserved
	commits  [][2]int64
	releases int
	settled  chan struct{}
}

func newFakeLimiter(max int64, capped bool) *fakeLimiter {
	return &fakeLimiter{max: max, capped: capped, settled: make(chan struct{}, 100)}
}

func (l *fakeLimiter) Admit(ctx context.Context, key string, lim limits.Limits, want limits.Want) (Reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wants = append(l.wants, want.Completion)
	l.prompts = append(l.prompts, want.Prompt)
	if l.err != nil {
		return nil, l.err
	}
	return &fakeRes{l: l}, nil
}

type fakeRes struct {
	l    *fakeLimiter
	done bool
}

func (r *fakeRes) MaxTokens() (int64, bool) { return r.l.max, r.l.capped }
func (r *fakeRes) Commit(ctx context.Context, p, c int64) error {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.done {
		return errors.New("settled twice")
	}
	r.done = true
	r.l.commits = append(r.l.commits, [2]int64{p, c})
	r.l.settled <- struct{}{}
	return nil
}
func (r *fakeRes) Release(ctx context.Context) error {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.done {
		return errors.New("settled twice")
	}
	r.done = true
	r.l.releases++
	r.l.settled <- struct{}{}
	return nil
}

func (l *fakeLimiter) snapshot() (commits [][2]int64, releases int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][2]int64(nil), l.commits...), l.releases
}

// memSink collects audit records.
type memSink struct {
	mu   sync.Mutex
	recs []store.UsageRecord
}

func (m *memSink) AppendUsage(ctx context.Context, recs []store.UsageRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memSink) all() []store.UsageRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.UsageRecord(nil), m.recs...)
}

// upstreamHit is what the fake upstream saw of one request.
type upstreamHit struct {
	Method, Path, Host, Auth, APIKey, XFF string
	Body                                  []byte
}

// fakeUpstream emulates an Ollama/OpenAI server. handle, when set, answers
// instead of the default ({"ok":true}).
type fakeUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []upstreamHit
	handle func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newUpstream(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeUpstream {
	u := &fakeUpstream{handle: handle}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.hits = append(u.hits, upstreamHit{r.Method, r.URL.Path, r.Host, r.Header.Get("Authorization"),
			r.Header.Get("X-API-Key"), r.Header.Get("X-Forwarded-For"), body})
		u.mu.Unlock()
		if u.handle != nil {
			u.handle(w, r, body)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *fakeUpstream) seen() []upstreamHit {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamHit(nil), u.hits...)
}

type gw struct {
	srv   *Server
	ts    *httptest.Server
	lim   *fakeLimiter
	sink  *memSink
	up    *fakeUpstream
	clock *fakeClock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newGateway starts a gateway in front of up. mod adjusts the options.
func newGateway(t *testing.T, up *fakeUpstream, mod func(*Options)) *gw {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.Timeouts.UpstreamHeader = 5 * time.Second
	g := &gw{lim: newFakeLimiter(1000, false), sink: &memSink{}, up: up,
		clock: &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}}
	opts := Options{Config: cfg, Auth: defaultAuth(), Limiter: g.lim, Sink: g.sink,
		Now: g.clock.now}
	if mod != nil {
		mod(&opts)
	}
	tr := newTransport(opts.Config.Timeouts.UpstreamHeader)
	if opts.Transport == nil {
		opts.Transport = tr
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	g.srv = s
	g.ts = httptest.NewServer(s)
	t.Cleanup(func() {
		g.ts.Close()
		s.Close(context.Background())
		tr.CloseIdleConnections()
	})
	return g
}

// do sends one request with an optional key.
func (g *gw) do(t *testing.T, method, path, key string, body string) (*http.Response, []byte) {
	t.Helper()
	return g.doWith(t, method, path, key, body, nil)
}

// doWith is do with extra request headers.
func (g *gw) doWith(t *testing.T, method, path, key, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := g.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// rawRequest sends path exactly as given on the request line, over a raw
// connection, so no client library cleans it first.
func (g *gw) rawRequest(t *testing.T, method, rawPath, key, body string) int {
	t.Helper()
	c, err := net.Dial("tcp", g.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, rawPath, g.ts.Listener.Addr(), key, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// records flushes the audit writer and returns what it wrote.
func (g *gw) records(t *testing.T) []store.UsageRecord {
	t.Helper()
	g.ts.Close() // waits for handlers, so every record is submitted
	if err := g.srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return g.sink.all()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update)", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func jsonField(t *testing.T, b []byte, path ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
