package guard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/guard/limits"
)

func TestAuthentication(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	cases := []struct {
		name   string
		header [2]string
		want   int
	}{
		{"no key", [2]string{}, http.StatusUnauthorized},
		{"wrong key", [2]string{"Authorization", "Bearer lf_nope"}, http.StatusUnauthorized},
		{"basic scheme is not a key", [2]string{"Authorization", "Basic " + userKey}, http.StatusUnauthorized},
		{"bearer", [2]string{"Authorization", "Bearer " + userKey}, http.StatusOK},
		{"bearer lower case scheme", [2]string{"Authorization", "bearer " + userKey}, http.StatusOK},
		{"x-api-key", [2]string{"X-API-Key", userKey}, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", g.ts.URL+"/api/tags", nil)
			if c.header[0] != "" {
				req.Header.Set(c.header[0], c.header[1])
			}
			resp, err := g.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, body)
			}
			if c.want == http.StatusUnauthorized {
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
				}
				if jsonField(t, body, "error") == nil {
					t.Errorf("no error message: %s", body)
				}
			}
		})
	}
	// Only the three authenticated requests reached the upstream.
	if n := len(up.seen()); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
}

func TestForwardedRequest(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	req, _ := http.NewRequest("GET", g.ts.URL+"/api/tags?x=1", nil)
	req.Header.Set("X-API-Key", userKey)
	req.Header.Set("Authorization", "Bearer "+userKey)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Host = "attacker.example"
	resp, err := g.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hits := up.seen()
	if len(hits) != 1 {
		t.Fatalf("upstream saw %d requests", len(hits))
	}
	h := hits[0]
	upHost := strings.TrimPrefix(up.URL, "http://")
	if h.Host != upHost {
		t.Errorf("Host = %q, want the upstream's %q", h.Host, upHost)
	}
	if h.Auth != "" || h.APIKey != "" {
		t.Errorf("client credentials forwarded: Authorization=%q X-API-Key=%q", h.Auth, h.APIKey)
	}
	if h.XFF != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want only the real client 127.0.0.1", h.XFF)
	}
	if h.Path != "/api/tags" {
		t.Errorf("path = %q", h.Path)
	}
}

func TestAdminRoutes(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	cases := []struct {
		method, path, key, body string
		want                    int
	}{
		{"POST", "/api/pull", userKey, `{"model":"evil/x"}`, http.StatusForbidden},
		{"DELETE", "/api/delete", userKey, `{"model":"llama3"}`, http.StatusForbidden},
		{"POST", "/api/create", userKey, `{"model":"x"}`, http.StatusForbidden},
		{"POST", "/api/pull", adminKey, `{"model":"llama3"}`, http.StatusOK},
		{"DELETE", "/api/delete", adminKey, `{"model":"llama3"}`, http.StatusOK},
	}
	for _, c := range cases {
		resp, body := g.do(t, c.method, c.path, c.key, c.body)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s (%s): status %d, want %d: %s", c.method, c.path, c.key, resp.StatusCode, c.want, body)
		}
	}
	var got []string
	for _, h := range up.seen() {
		got = append(got, h.Method+" "+h.Path)
	}
	if strings.Join(got, ",") != "POST /api/pull,DELETE /api/delete" {
		t.Errorf("upstream saw %v, want only the admin's two requests", got)
	}
}

func TestPathSpellingsCannotReachAdminRoutes(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	spellings := []string{
		"//api/pull", "/api/../api/pull", "/api/./pull", "/api/%2e%2e/api/pull", "/api/%2E%2E/api/pull",
		"/api%2fpull", "/api%2Fpull", "/API/PULL", "/api/Pull", "/api/pull/", "/api/pull//",
		"/api/tags/../pull", "/./api/pull", "/api/pull%00", "/api/pull%20", "/api\\pull",
		"/api/%70ull", "/v1/../api/pull", "/api/delete/", "/api//delete",
	}
	for _, p := range spellings {
		st := g.rawRequest(t, "POST", p, userKey, `{"model":"evil/x"}`)
		if st < 400 || st >= 500 {
			t.Errorf("%s: status %d, want a 4xx refusal", p, st)
		}
	}
	for _, h := range up.seen() {
		t.Errorf("upstream reached with %s %s", h.Method, h.Path)
	}
	// The admin key gets the normalised path forwarded, never the raw one.
	if st := g.rawRequest(t, "POST", "//api/./pull/", adminKey, `{"model":"x"}`); st != http.StatusOK {
		t.Fatalf("admin //api/./pull/: status %d", st)
	}
	hits := up.seen()
	if len(hits) != 1 || hits[0].Path != "/api/pull" {
		t.Errorf("upstream saw %+v, want one request to /api/pull", hits)
	}
}

func TestModelRules(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		io.WriteString(w, `{"model":"llama3","response":"hi","done":true,"prompt_eval_count":2,"eval_count":1}`)
	})
	auth := defaultAuth()
	auth["lf_cloud"] = &Principal{ID: "c1", Name: "cloudy", AllowCloud: true, Models: []string{"*"}}
	g := newGateway(t, up, func(o *Options) { o.Auth = auth })
	cases := []struct {
		key, path, body string
		want            int
		mention         string
	}{
		{userKey, "/api/generate", `{"model":"llama3.2:3b","prompt":"x","stream":false}`, 200, ""},
		{userKey, "/api/generate", `{"model":"qwen2","prompt":"x","stream":false}`, 403, "qwen2"},
		{userKey, "/api/show", `{"model":"qwen2"}`, 403, "qwen2"},
		{userKey, "/api/show", `{"model":"tiny"}`, 200, ""},
		{adminKey, "/api/generate", `{"model":"gpt-oss:120b-cloud","prompt":"x","stream":false}`, 403, "gpt-oss:120b-cloud"},
		{adminKey, "/api/chat", `{"model":"glm-4.6:cloud","messages":[],"stream":false}`, 403, "glm-4.6:cloud"},
		{"lf_cloud", "/api/generate", `{"model":"gpt-oss:120b-cloud","prompt":"x","stream":false}`, 200, ""},
	}
	for _, c := range cases {
		resp, body := g.do(t, "POST", c.path, c.key, c.body)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: status %d, want %d: %s", c.key, c.body, resp.StatusCode, c.want, body)
		}
		if c.mention != "" && !strings.Contains(string(body), c.mention) {
			t.Errorf("refusal does not name the model %q: %s", c.mention, body)
		}
	}
	if n := len(up.seen()); n != 3 {
		t.Errorf("upstream saw %d requests, want the 3 allowed", n)
	}
}

func TestBodyCapAndValidation(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, func(o *Options) { o.Config.MaxBodyBytes = 1024 })
	big := `{"model":"tiny","prompt":"` + strings.Repeat("a", 2000) + `"}`
	resp, body := g.do(t, "POST", "/api/generate", userKey, big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: status %d: %s", resp.StatusCode, body)
	}
	// Chunked (no Content-Length) bodies are capped too.
	req, _ := http.NewRequest("POST", g.ts.URL+"/api/generate", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+userKey)
	req.ContentLength = -1
	r2, err := g.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked big body: status %d", r2.StatusCode)
	}
	for _, bad := range []string{`{"model":"tiny",`, `[1,2]`, `{"model":"tiny","prompt":"x","options":{"num_predict":"lots"}}`} {
		resp, body := g.do(t, "POST", "/api/generate", userKey, bad)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d: %s", bad, resp.StatusCode, body)
		}
		if msg, _ := jsonField(t, body, "error").(string); msg == "" {
			t.Errorf("%s: no message naming the problem: %s", bad, body)
		}
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("upstream saw %d requests; nothing malformed may be forwarded", n)
	}
	if c, r := g.lim.snapshot(); len(c) != 0 || r != 0 {
		t.Errorf("limiter settled %d/%d times for refused requests; they must not be admitted", len(c), r)
	}
}

func TestUpstreamDown(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	up.Close() // nothing listens there any more
	resp, body := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x"}`)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502: %s", resp.StatusCode, body)
	}
	if msg, _ := jsonField(t, body, "error").(string); !strings.Contains(msg, "unreachable") {
		t.Errorf("message %q", msg)
	}
	if c, r := g.lim.snapshot(); len(c)+r != 1 || (len(c) == 1 && c[0] != [2]int64{0, 0}) {
		t.Errorf("settlements: commits %v releases %d; want one settlement billing nothing", c, r)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		<-r.Context().Done() // never answers
	})
	g := newGateway(t, up, func(o *Options) { o.Config.Timeouts.UpstreamHeader = 200 * time.Millisecond })
	resp, body := g.do(t, "POST", "/v1/chat/completions", userKey, `{"model":"tiny","messages":[]}`)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504: %s", resp.StatusCode, body)
	}
	// OpenAI dialect for /v1 paths.
	if msg, _ := jsonField(t, body, "error", "message").(string); !strings.Contains(msg, "in time") {
		t.Errorf("body %s", body)
	}
}

func TestIPFilterAndReload(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, func(o *Options) { o.Config.Allow = []string{"127.0.0.0/8"} })
	if resp, _ := g.do(t, "GET", "/api/tags", userKey, ""); resp.StatusCode != 200 {
		t.Fatalf("allowed client: %d", resp.StatusCode)
	}
	cfg := g.srv.Config()
	cfg.Deny = []string{"127.0.0.1"} // deny wins over allow
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if resp, _ := g.do(t, "GET", "/api/tags", userKey, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied client: %d", resp.StatusCode)
	}
	cfg.Deny, cfg.Allow = nil, []string{"10.0.0.0/8"}
	g.srv.Reload(cfg)
	if resp, _ := g.do(t, "GET", "/api/tags", userKey, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("client outside the allow list: %d", resp.StatusCode)
	}
	cfg.Deny = []string{"not-a-cidr"}
	if err := g.srv.Reload(cfg); err == nil {
		t.Error("bad CIDR accepted on reload")
	}
}

// Failed authentication backs off per credential, and never locks out a
// valid key: a stranger guessing from the same address (a NAT) does not
// keep its users out.
func TestFailedAuthBackoff(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, func(o *Options) {
		o.Config.AuthFail = AuthBackoff{Free: 2, Base: 10 * time.Second, Max: time.Minute, Forget: time.Hour}
	})
	for i := range 3 {
		if resp, _ := g.do(t, "GET", "/api/tags", fmt.Sprintf("guess%d", i), ""); resp.StatusCode != 401 {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	// The third failure blocked this address's unknown credentials for
	// Base: the next guess waits...
	resp, _ := g.do(t, "GET", "/api/tags", "guess4", "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" {
		t.Fatalf("blocked guessing: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// ...but a valid key from the same address gets in.
	if resp, _ := g.do(t, "GET", "/api/tags", userKey, ""); resp.StatusCode != 200 {
		t.Fatalf("valid key behind the same address: %d", resp.StatusCode)
	}
	g.clock.add(11 * time.Second)
	if resp, _ := g.do(t, "GET", "/api/tags", "guess5", ""); resp.StatusCode != 401 {
		t.Fatalf("after the block: %d", resp.StatusCode)
	}
	// The back-off doubled.
	resp, _ = g.do(t, "GET", "/api/tags", "guess6", "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "20" {
		t.Fatalf("second block: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// Wrong secrets for one key ID count against that ID wherever they
	// come from; the key's own secret still works.
	id := "lf_abcdefgh_"
	for i := range 3 {
		g.do(t, "GET", "/api/tags", fmt.Sprintf("%swrong%d", id, i), "")
	}
	if resp, _ := g.do(t, "GET", "/api/tags", id+"wrong9", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("key ID under attack: %d", resp.StatusCode)
	}

	// Keyless floods back off per network, without touching keys.
	for range 3 {
		g.do(t, "GET", "/api/tags", "", "")
	}
	if resp, _ := g.do(t, "GET", "/api/tags", "", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("keyless flood: %d", resp.StatusCode)
	}
	if resp, _ := g.do(t, "GET", "/api/tags", userKey, ""); resp.StatusCode != 200 {
		t.Fatalf("valid key after a keyless flood: %d", resp.StatusCode)
	}
}

func TestLimitRefusal(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	g.lim.err = &limits.LimitError{Key: "u1", Reason: limits.ReasonRPM, Limit: 60, RetryAfter: 1500 * time.Millisecond}
	resp, body := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("status %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	g.lim.err = fmt.Errorf("redis down: %w", limits.ErrUnavailable)
	if resp, _ := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x"}`); resp.StatusCode != 503 {
		t.Fatalf("limiter unavailable: %d", resp.StatusCode)
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

func TestModelListFiltered(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			io.WriteString(w, `{"object":"list","data":[{"id":"llama3:latest"},{"id":"qwen2:7b"}]}`)
			return
		}
		io.WriteString(w, `{"models":[{"name":"llama3:latest","model":"llama3:latest"},{"name":"qwen2:7b"},{"name":"gpt-oss:120b-cloud"}]}`)
	})
	g := newGateway(t, up, func(o *Options) { o.Config.FilterModelList = true })
	_, body := g.do(t, "GET", "/api/tags", userKey, "")
	if s := string(body); !strings.Contains(s, "llama3:latest") || strings.Contains(s, "qwen2") || strings.Contains(s, "cloud") {
		t.Errorf("/api/tags for a llama3-only key: %s", body)
	}
	_, body = g.do(t, "GET", "/v1/models", userKey, "")
	if s := string(body); !strings.Contains(s, "llama3:latest") || strings.Contains(s, "qwen2") {
		t.Errorf("/v1/models: %s", body)
	}
	_, body = g.do(t, "GET", "/api/tags", adminKey, "")
	if !strings.Contains(string(body), "qwen2") {
		t.Errorf("admin with * sees everything: %s", body)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		io.WriteString(w, `{"model":"tiny","response":"hi","done":true,"prompt_eval_count":7,"eval_count":5}`)
	})
	g := newGateway(t, up, nil)
	g.do(t, "GET", "/api/tags", "", "")
	g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x","stream":false}`)
	g.do(t, "POST", "/api/pull", userKey, `{"model":"x"}`)
	mts := newTestServer(t, g.srv.MetricsHandler())
	body := get(t, mts+"/metrics")
	for _, want := range []string{
		`llmfence_guard_requests_total{route="none",status="401"} 1`,
		`llmfence_guard_requests_total{route="ollama.generate",status="200"} 1`,
		`llmfence_guard_requests_total{route="ollama.pull",status="403"} 1`,
		`llmfence_guard_tokens_total{key="alice",type="completion"} 5`,
		`llmfence_guard_tokens_total{key="alice",type="prompt"} 7`,
		`llmfence_guard_denied_total{reason="admin_required"} 1`,
		`llmfence_guard_denied_total{reason="no_key"} 1`,
		`llmfence_guard_upstream_latency_seconds_count 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q\n%s", want, body)
		}
	}
	if got := get(t, mts+"/healthz"); got != "ok\n" {
		t.Errorf("/healthz: %q", got)
	}
	if got := get(t, mts+"/readyz"); got != "ready\n" {
		t.Errorf("/readyz: %q", got)
	}
	up.Close()
	if got := get(t, mts+"/readyz"); !strings.HasPrefix(got, "upstream not ready") {
		t.Errorf("/readyz with the upstream down: %q", got)
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestAuditRecords(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		io.WriteString(w, `{"model":"tiny","response":"hello","done":true,"prompt_eval_count":3,"eval_count":4}`)
	})
	g := newGateway(t, up, nil)
	req := `{"model":"tiny","prompt":"secret prompt text","stream":false}`
	g.do(t, "POST", "/api/generate", userKey, req)
	g.do(t, "POST", "/api/generate", "", req)
	recs := g.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	r := recs[0]
	if r.KeyName != "alice" || r.KeyID != "u1" || r.Route != "/api/generate" || r.Model != "tiny" ||
		r.Status != 200 || r.PromptTokens != 3 || r.CompletionTokens != 4 || r.ClientIP != "127.0.0.1" ||
		r.BytesIn != int64(len(req)) || r.BytesOut == 0 || r.Method != "POST" {
		t.Errorf("record %+v", r)
	}
	if r2 := recs[1]; r2.Status != 401 || r2.KeyID != "" || r2.Error == "" {
		t.Errorf("unauthenticated record %+v", r2)
	}
	b, _ := json.Marshal(recs)
	if strings.Contains(string(b), "secret prompt") || strings.Contains(string(b), "hello") {
		t.Errorf("audit stores prompt or response text: %s", b)
	}
}

// ndjsonUpstream streams n Ollama chunks, waiting on gate (if not nil)
// before each chunk after the first, and reports in cancelled when the
// request context ends before the stream does.
func ndjsonUpstream(t *testing.T, n int, gate chan struct{}, cancelled chan struct{}) *fakeUpstream {
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		f := w.(http.Flusher)
		for i := range n {
			if i > 0 && gate != nil {
				select {
				case <-gate:
				case <-r.Context().Done():
					close(cancelled)
					return
				}
			}
			fmt.Fprintf(w, `{"model":"tiny","response":"t%d","done":false}`+"\n", i)
			f.Flush()
		}
		io.WriteString(w, `{"model":"tiny","response":"","done":true,"done_reason":"stop","prompt_eval_count":6,"eval_count":`+fmt.Sprint(n)+"}\n")
		f.Flush()
		if cancelled != nil {
			<-r.Context().Done() // the client may still go away; nothing to do
		}
	})
}

func TestStreamArrivesChunkByChunk(t *testing.T) {
	gate := make(chan struct{})
	up := ndjsonUpstream(t, 3, gate, nil)
	g := newGateway(t, up, nil)
	req, _ := http.NewRequest("POST", g.ts.URL+"/api/generate", strings.NewReader(`{"model":"tiny","prompt":"x"}`))
	req.Header.Set("Authorization", "Bearer "+userKey)
	resp, err := g.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The upstream holds back everything after the first chunk until we
	// have read it: the gateway must not buffer.
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if want := fmt.Sprintf(`"response":"t%d"`, i); !strings.Contains(line, want) {
			t.Fatalf("chunk %d = %q", i, line)
		}
		if i < 2 {
			gate <- struct{}{}
		}
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `"done":true`) {
		t.Errorf("final object missing: %q", rest)
	}
	<-g.lim.settled
	if c, _ := g.lim.snapshot(); len(c) != 1 || c[0] != [2]int64{6, 3} {
		t.Errorf("billed %v, want prompt 6 completion 3 from the upstream's counts", c)
	}
}

func TestDisconnectCancelsUpstreamAndBills(t *testing.T) {
	gate := make(chan struct{})
	cancelled := make(chan struct{})
	up := ndjsonUpstream(t, 50, gate, cancelled)
	g := newGateway(t, up, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", g.ts.URL+"/api/generate", strings.NewReader(`{"model":"tiny","prompt":"hello there"}`))
	req.Header.Set("Authorization", "Bearer "+userKey)
	resp, err := g.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if i < 2 {
			gate <- struct{}{}
		}
	}
	cancel() // the client goes away after three chunks
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream request was not cancelled after the client left")
	}
	<-g.lim.settled
	c, r := g.lim.snapshot()
	if r != 0 || len(c) != 1 || c[0][1] != 3 {
		t.Fatalf("billed %v (releases %d), want the 3 relayed completion tokens", c, r)
	}
	if c[0][0] <= 0 {
		t.Errorf("prompt tokens %d: an estimate is billed when the upstream never reported", c[0][0])
	}
	recs := g.records(t)
	if len(recs) != 1 || !recs[0].ClientGone || recs[0].CompletionTokens != 3 {
		t.Errorf("audit %+v", recs)
	}
}

func TestBudgetCutOllama(t *testing.T) {
	up := ndjsonUpstream(t, 10, nil, nil)
	g := newGateway(t, up, nil)
	g.lim.max, g.lim.capped = 3, true
	resp, body := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x","options":{"num_predict":100}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	golden(t, "budget_cut_ollama.golden", body)
	hit := up.seen()[0]
	if np := jsonField(t, hit.Body, "options", "num_predict"); np != float64(3) {
		t.Errorf("upstream got num_predict %v, want it clamped to 3", np)
	}
	<-g.lim.settled
	if c, _ := g.lim.snapshot(); len(c) != 1 || c[0][1] != 3 {
		t.Errorf("billed %v, want 3 completion tokens", c)
	}
	if w := g.lim.wants; len(w) != 1 || w[0] != 100 {
		t.Errorf("Admit asked for %v, want the client's 100", w)
	}
	recs := g.records(t)
	if len(recs) != 1 || !recs[0].Truncated {
		t.Errorf("audit %+v", recs)
	}
}

func TestBudgetCutOpenAI(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 8 {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"},\"finish_reason\":null}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"tiny\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":8,\"total_tokens\":13}}\n\ndata: [DONE]\n\n")
	})
	g := newGateway(t, up, nil)
	g.lim.max, g.lim.capped = 2, true
	resp, body := g.do(t, "POST", "/v1/chat/completions", userKey, `{"model":"tiny","messages":[{"role":"user","content":"x"}],"stream":true}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	golden(t, "budget_cut_openai.golden", body)
	hit := up.seen()[0]
	if v := jsonField(t, hit.Body, "stream_options", "include_usage"); v != true {
		t.Errorf("upstream not asked for usage: %s", hit.Body)
	}
	if v := jsonField(t, hit.Body, "max_tokens"); v != float64(2) {
		t.Errorf("max_tokens %v, want 2", v)
	}
}

func TestOpenAIUsageStripped(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n")
		io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\ndata: [DONE]\n\n")
	})
	g := newGateway(t, up, nil)
	_, body := g.do(t, "POST", "/v1/chat/completions", userKey, `{"model":"tiny","messages":[],"stream":true}`)
	if strings.Contains(string(body), "usage") || !strings.Contains(string(body), "[DONE]") {
		t.Errorf("client that did not ask sees: %s", body)
	}
	_, body = g.do(t, "POST", "/v1/chat/completions", userKey, `{"model":"tiny","messages":[],"stream":true,"stream_options":{"include_usage":true}}`)
	if !strings.Contains(string(body), `"prompt_tokens":5`) {
		t.Errorf("client that asked lost the usage chunk: %s", body)
	}
	<-g.lim.settled
	<-g.lim.settled
	if c, _ := g.lim.snapshot(); len(c) != 2 || c[0] != [2]int64{5, 1} || c[1] != [2]int64{5, 1} {
		t.Errorf("billed %v", c)
	}
}

func TestPreflightAnsweredLocally(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	resp, _ := g.do(t, "OPTIONS", "/api/generate", "", "")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if len(up.seen()) != 0 {
		t.Error("preflight forwarded")
	}
}
