package fingerprint

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/llmfence/llmfence/internal/version"
)

func TestPassiveRefusesWrites(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		t.Errorf("request reached the server: %s %s", r.Method, r.URL.Path)
	}))
	defer srv.Close()
	p := testProber(t, Options{})
	tg := newTarget(&p.opts, netip.MustParseAddrPort(srv.Listener.Addr().String()), "", nil, p.opts.Logger)
	tg.setScheme(false)
	defer tg.close()
	for _, req := range []Request{
		{Method: "POST", Path: "/api/generate", Body: "{}"},
		{Method: "POST", Path: "/api/pull", Body: "{}"},
		{Method: "DELETE", Path: "/api/delete", Body: "{}"},
		{Method: "POST", Path: "/v1/chat/completions", Body: "{}"},
		{Method: "PUT", Path: "/anything"},
	} {
		if r := tg.do(context.Background(), req, nil); r.OK() {
			t.Errorf("%s was sent while passive", req)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("%d writes reached the server", hits.Load())
	}
}

func TestActiveGeneratesOnceWithSmallestLocalModel(t *testing.T) {
	c := loadCase(t, "testdata/cases/ollama.yaml")
	var mu sync.Mutex
	var bodies []map[string]any
	c.Routes = append(c.Routes, fakeRoute{Method: "POST", Path: "/api/generate", Status: 200, Body: `{"model":"tinyllama:1.1b","response":"OK","done":true}`})
	srv := serveCase(t, c, false)
	// Wrap to capture generate bodies.
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/generate" {
			var b map[string]any
			_ = json.NewDecoder(r.Body).Decode(&b)
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
			r.Body = http.NoBody
		}
		inner.ServeHTTP(w, r)
	})
	p := testProber(t, Options{Active: true})
	s, err := p.Probe(context.Background(), srv.addrPort(t), "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range srv.hitList() {
		if writeRoutes.MatchString(strings.SplitN(h, " ", 2)[1]) && h != "POST /api/generate" {
			t.Errorf("active probe sent %s", h)
		}
	}
	if len(bodies) != 1 {
		t.Fatalf("generate called %d times, want 1", len(bodies))
	}
	if bodies[0]["model"] != "tinyllama:1.1b" {
		t.Errorf("generated with %v, want the smallest local model tinyllama:1.1b", bodies[0]["model"])
	}
	opts, _ := bodies[0]["options"].(map[string]any)
	if opts["num_predict"] != float64(4) {
		t.Errorf("num_predict = %v, want 4", opts["num_predict"])
	}
	ag, _ := s.Extra["active_generate"].(map[string]any)
	if ag["generated"] != true || ag["reply"] != "OK" {
		t.Errorf("active_generate = %v", ag)
	}
}

func TestUserAgentHostAndHandedOverConn(t *testing.T) {
	c := loadCase(t, "testdata/cases/openai-compatible.yaml")
	var mu sync.Mutex
	uas, hosts := map[string]bool{}, map[string]bool{}
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(nil)
	plain := serveCase(t, c, true)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uas[r.UserAgent()] = true
		hosts[r.Host] = true
		mu.Unlock()
		plain.Config.Handler.ServeHTTP(w, r)
	})
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	p := testProber(t, Options{Contact: "mailto:sec@example.org"})
	s, err := p.Probe(context.Background(), addr, "llm.example.org", false, conn)
	if err != nil {
		t.Fatal(err)
	}
	if s.Product != "openai-compatible" || s.Hostname != "llm.example.org" {
		t.Errorf("product %q hostname %q", s.Product, s.Hostname)
	}
	want := "llmfence/" + version.String() + " (+mailto:sec@example.org)"
	if len(uas) != 1 || !uas[want] {
		t.Errorf("User-Agents = %v, want only %q", uas, want)
	}
	if len(hosts) != 1 || !hosts["llm.example.org:"+addr.String()[strings.LastIndex(addr.String(), ":")+1:]] {
		t.Errorf("Host headers = %v", hosts)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1 (the handed-over conn, kept alive)", n)
	}
	if version.UserAgent("") != "llmfence/"+version.String() {
		t.Errorf("version.UserAgent without contact = %q", version.UserAgent(""))
	}
}

func TestModelCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"models":[`)
	for i := 0; i < 10; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"name":"m` + string(rune('a'+i)) + `:latest","size":1}`)
	}
	b.WriteString(`]}`)
	c := &fakeCase{Routes: []fakeRoute{
		{Method: "GET", Path: "/", Status: 200, Body: "Ollama is running"},
		{Method: "GET", Path: "/api/tags", Status: 200, Body: b.String()},
		{Method: "POST", Path: "/api/show", Status: 200, Body: `{"system":"s"}`},
	}}
	srv := serveCase(t, c, true)
	p := testProber(t, Options{MaxModels: 3})
	s, err := p.Probe(context.Background(), srv.addrPort(t), "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Models) != 3 || s.Extra["models_total"] != 10 {
		t.Errorf("models = %d, models_total = %v; want 3 of 10", len(s.Models), s.Extra["models_total"])
	}
	shows := 0
	for _, h := range srv.hitList() {
		if h == "POST /api/show" {
			shows++
		}
	}
	if shows != 3 {
		t.Errorf("/api/show called %d times, want 3", shows)
	}
	found := false
	for _, e := range s.Evidence {
		found = found || strings.Contains(e, "truncated")
	}
	if !found {
		t.Errorf("truncation not noted in evidence: %v", s.Evidence)
	}
}
