package guard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/guard/limits"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/store"
)

// The tests in this file replay what an outside tester did to the guard
// (issue 8), one attack per test, and the classes of problem behind them.

// 1. Requests without a key cost a bounded, small amount: records are
// aggregated per kind and their paths cut, however many arrive and however
// long their paths.
func TestUnauthenticatedFloodIsAggregated(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, func(o *Options) {
		o.Config.AuthFail = AuthBackoff{Free: 1000, Base: time.Second, Max: time.Second, Forget: time.Hour}
	})
	long := "/api/" + strings.Repeat("A", 7<<10)
	for i := range 400 {
		g.do(t, "POST", fmt.Sprintf("%s%d", long, i), "", `{"model":"x"}`)
	}
	// A path over the target cap is refused before anything else.
	if resp, _ := g.do(t, "GET", "/api/"+strings.Repeat("B", 9<<10), "", ""); resp.StatusCode != http.StatusRequestURITooLong {
		t.Errorf("a 9 KiB path: status %d, want 414", resp.StatusCode)
	}
	recs := g.records(t)
	var requests, bytes int64
	for _, r := range recs {
		requests += r.Count()
		bytes += int64(len(r.Route) + len(r.Error))
		if len(r.Route) > maxRouteChars || len(r.Error) > maxErrorChars {
			t.Errorf("record keeps %d bytes of route, %d of error", len(r.Route), len(r.Error))
		}
	}
	if len(recs) > 4 || requests != 401 {
		t.Errorf("%d records counting %d requests, want at most 4 counting all 401", len(recs), requests)
	}
	if bytes > 4<<10 {
		t.Errorf("the flood's records hold %d bytes of text", bytes)
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// pruneSink is a sink that records retention runs.
type pruneSink struct {
	memSink
	mu     sync.Mutex
	before []time.Time
}

func (p *pruneSink) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = append(p.before, before)
	return 0, nil
}

// 1. Usage records have a retention, applied at start and hourly.
func TestAuditRetention(t *testing.T) {
	sink := &pruneSink{}
	up := newUpstream(t, nil)
	g := newGateway(t, up, func(o *Options) {
		o.Sink = sink
		o.Config.Audit.Retention = 48 * time.Hour
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sink.mu.Lock()
		n := len(sink.before)
		sink.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.before) == 0 || !sink.before[0].Equal(g.clock.now().Add(-48*time.Hour)) {
		t.Errorf("retention runs %v, want one at start deleting before %v", sink.before, g.clock.now().Add(-48*time.Hour))
	}
}

// sseChoices streams n events, each with one token for every prompt of a
// batch (choices with indexes 0..prompts-1), then usage.
func sseChoices(w http.ResponseWriter, n, prompts int) {
	w.Header().Set("Content-Type", "text/event-stream")
	for i := range n {
		var cs []string
		for p := range prompts {
			cs = append(cs, fmt.Sprintf(`{"index":%d,"text":"t%d","finish_reason":null}`, p, i))
		}
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[%s]}\n\n", strings.Join(cs, ","))
		w.(http.Flusher).Flush()
	}
	fmt.Fprintf(w, "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":%d}}\n\ndata: [DONE]\n\n", n*prompts)
}

// 2. A list of prompts on /v1/completions is a batch: max_tokens applies to
// each prompt, so the clamp and the stream's budget count prompts × n ×
// best_of. A 100-token budget cannot deliver 20,000 tokens.
func TestPromptListCannotMultiplyTheBudget(t *testing.T) {
	for _, kind := range []string{"vllm", "llamacpp", "openai"} {
		t.Run(kind, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				var req struct {
					Prompt []string `json:"prompt"`
				}
				json.Unmarshal(body, &req)
				sseChoices(w, 100, len(req.Prompt))
			})
			g := newGateway(t, up, func(o *Options) { o.Config.Kind = kind })
			g.lim.max, g.lim.capped = 100, true
			prompts := make([]string, 200)
			for i := range prompts {
				prompts[i] = "say something"
			}
			many, _ := json.Marshal(map[string]any{"model": "tiny", "prompt": prompts, "max_tokens": 100, "stream": true})
			resp, body := g.do(t, "POST", "/v1/completions", userKey, string(many))
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("200 prompts on a 100-token budget: status %d: %s", resp.StatusCode, body)
			}
			four, _ := json.Marshal(map[string]any{"model": "tiny", "prompt": prompts[:4], "max_tokens": 100, "n": 2, "stream": true})
			resp, body = g.do(t, "POST", "/v1/completions", userKey, string(four))
			if resp.StatusCode != 200 {
				t.Fatalf("4 prompts × n=2: status %d: %s", resp.StatusCode, body)
			}
			hits := up.seen()
			if len(hits) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(hits))
			}
			if mt := jsonField(t, hits[0].Body, "max_tokens"); mt != float64(12) {
				t.Errorf("max_tokens %v for 4 prompts × 2 sequences on 100 tokens, want 12", mt)
			}
			if got := strings.Count(string(body), `"text":"t`); got > 100 {
				t.Errorf("the client received %d tokens on a 100-token budget", got)
			}
			commits, _ := g.lim.snapshot()
			if len(commits) != 1 || commits[0][1] > 100 {
				t.Errorf("billed %v, want at most 100 completion tokens", commits)
			}
		})
	}
}

// 3. The prompt is reserved at admission: 40 parallel embeddings on a
// 100-token budget cannot each be admitted and together bill thousands.
func TestPromptReservedAtAdmission(t *testing.T) {
	var inFlight, peak atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		var req struct {
			Input string `json:"input"`
		}
		json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"model":"e","embeddings":[[0.1,0.2]],"prompt_eval_count":%d}`, len(req.Input)/2)
	})
	g := newGateway(t, up, func(o *Options) {
		o.Limiter = LimiterFrom(limits.NewMemory(limits.Options{}, nil))
		o.Config.DefaultLimits = limits.Limits{Daily: 100}
	})
	input := strings.Repeat("word ", 30) // 150 bytes: about 75 tokens
	body, _ := json.Marshal(map[string]any{"model": "tiny", "input": input})
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := g.do(t, "POST", "/api/embed", userKey, string(body))
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	// A prompt larger than the limit itself can never fit: 413, not 429.
	huge, _ := json.Marshal(map[string]any{"model": "tiny", "input": strings.Repeat("x", 400)})
	if resp, _ := g.do(t, "POST", "/api/embed", adminKey, string(huge)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a prompt over the daily limit: status %d, want 413", resp.StatusCode)
	}
	var billed int64
	for _, r := range g.records(t) {
		billed += r.PromptTokens + r.CompletionTokens
	}
	if billed > 100 || ok.Load() < 1 || peak.Load() > 1 {
		t.Errorf("40 parallel embeddings on a 100-token budget: %d admitted (peak %d at once), %d refused, %d tokens billed",
			ok.Load(), peak.Load(), refused.Load(), billed)
	}
}

// 4. Budgets survive a restart without Redis: the limiter is seeded from
// the audit log.
func TestBudgetsRestoredFromTheAuditLog(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenGuard(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	if err := st.AppendUsage(ctx, []store.UsageRecord{
		{Time: now.Add(-time.Hour), KeyID: "u1", KeyName: "alice", Method: "POST", Route: "/api/generate", Status: 200, PromptTokens: 40, CompletionTokens: 50},
		{Time: now.Add(-40 * 24 * time.Hour), KeyID: "u1", KeyName: "alice", Method: "POST", Route: "/api/generate", Status: 200, CompletionTokens: 5000},
	}); err != nil {
		t.Fatal(err)
	}
	mem := limits.NewMemory(limits.Options{Now: func() time.Time { return now }}, nil)
	n, err := RestoreBudgets(ctx, mem, st, now)
	if err != nil || n != 1 {
		t.Fatalf("RestoreBudgets = %d, %v", n, err)
	}
	up := ndjsonUpstream(t, 3, nil, nil)
	g := newGateway(t, up, func(o *Options) {
		o.Limiter = LimiterFrom(mem)
		o.Config.DefaultLimits = limits.Limits{Daily: 100}
	})
	if resp, body := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"hello there"}`); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after a restart with 90 of 100 tokens used today: status %d: %s", resp.StatusCode, body)
	}
	u, _ := mem.Usage(ctx, "u1")
	if u.Daily != 90 {
		t.Errorf("restored day %d, want 90 (last month's 5000 not counted)", u.Daily)
	}
}

// 5. The meter is chosen by the route table: llama.cpp's /chat/completions
// (no /v1) is metered like /v1/chat/completions, and every inference route
// of every kind is either metered or refused to keys with token limits, in
// the kind's own error format.
func TestEveryInferenceRouteIsMeteredOrRefused(t *testing.T) {
	f, err := route.LoadFile()
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]string{
		"ollama.generate":    `{"model":"tiny","prompt":"hi","stream":false}`,
		"ollama.chat":        `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":false}`,
		"ollama.embed":       `{"model":"tiny","input":"hi"}`,
		"openai.completions": `{"model":"tiny","prompt":"hi"}`,
		"openai.chat":        `{"model":"tiny","messages":[{"role":"user","content":"hi"}]}`,
		"openai.embeddings":  `{"model":"tiny","input":"hi"}`,
		route.MeterNone:      `{"model":"tiny","input":"hi"}`,
	}
	for _, kind := range f.KindNames() {
		tb, _ := f.Table(kind)
		for _, r := range tb.Routes {
			if r.Class != route.Inference {
				continue
			}
			t.Run(kind+" "+r.Example, func(t *testing.T) {
				up := newUpstream(t, func(w http.ResponseWriter, req *http.Request, body []byte) {
					w.Header().Set("Content-Type", "application/json")
					if strings.HasPrefix(r.Meter, "ollama.") {
						io.WriteString(w, `{"model":"tiny","response":"aaaa","done":true,"prompt_eval_count":2,"eval_count":7}`)
						return
					}
					io.WriteString(w, `{"choices":[{"index":0,"text":"aaaa"}],"usage":{"prompt_tokens":2,"completion_tokens":7}}`)
				})
				g := newGateway(t, up, func(o *Options) {
					o.Config.Kind = kind
					o.Config.DefaultLimits = limits.Limits{Daily: 1000}
				})
				g.lim.max, g.lim.capped = 500, true
				resp, body := g.do(t, "POST", r.Example, userKey, bodies[r.Meter])
				if r.Meter == route.MeterNone {
					if resp.StatusCode != http.StatusForbidden || len(up.seen()) != 0 {
						t.Fatalf("unbillable route for a limited key: status %d, upstream hits %d", resp.StatusCode, len(up.seen()))
					}
					checkErrorFormat(t, kind, r.Example, body)
					return
				}
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				commits, _ := g.lim.snapshot()
				if len(commits) != 1 || commits[0][0] != 2 || (!strings.HasSuffix(r.Meter, "embed") && !strings.HasSuffix(r.Meter, "embeddings") && commits[0][1] != 7) {
					t.Errorf("billed %v, want the upstream's 2 prompt + 7 completion tokens", commits)
				}
				hit := up.seen()[0].Body
				switch {
				case strings.HasSuffix(r.Meter, "embed"), strings.HasSuffix(r.Meter, "embeddings"):
				case strings.HasPrefix(r.Meter, "ollama."):
					if jsonField(t, hit, "options", "num_predict") == nil {
						t.Errorf("num_predict not clamped: %s", hit)
					}
				default:
					if jsonField(t, hit, "max_tokens") == nil {
						t.Errorf("max_tokens not clamped: %s", hit)
					}
				}
			})
		}
	}
}

// checkErrorFormat: Ollama's native routes answer {"error":"..."}, every
// other route and kind OpenAI's {"error":{"message":...}}.
func checkErrorFormat(t *testing.T, kind, path string, body []byte) {
	t.Helper()
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	native := kind == "ollama" && !strings.HasPrefix(path, "/v1/")
	if isString := len(v.Error) > 0 && v.Error[0] == '"'; isString != native {
		t.Errorf("%s %s: error %s, want the %s format", kind, path, v.Error, map[bool]string{true: "Ollama", false: "OpenAI"}[native])
	}
}

// 5. The outside tester's case exactly: llama.cpp's /chat/completions
// streamed 500 tokens billed 0. It is cut at the budget and billed.
func TestLlamaCppBareChatIsMetered(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 500 {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	g := newGateway(t, up, func(o *Options) { o.Config.Kind = "llamacpp" })
	g.lim.max, g.lim.capped = 20, true
	resp, body := g.do(t, "POST", "/chat/completions", userKey, `{"model":"tiny","messages":[{"role":"user","content":"x"}],"stream":true}`)
	if resp.StatusCode != 200 || strings.Count(string(body), `"content":"t`) != 20 || !strings.Contains(string(body), "token_budget_exhausted") {
		t.Fatalf("status %d, %d tokens relayed:\n%.300s", resp.StatusCode, strings.Count(string(body), `"content":"t`), body)
	}
	if commits, _ := g.lim.snapshot(); len(commits) != 1 || commits[0][1] != 20 {
		t.Errorf("billed %v, want 20 completion tokens", commits)
	}
}

// 7. A client that stops reading loses its request: the write deadline
// fails the relay, the upstream generation is cancelled and the key's
// reservation is settled.
func TestSlowReaderIsDropped(t *testing.T) {
	cancelled := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		line := `{"model":"tiny","response":"` + strings.Repeat("z", 8<<10) + `","done":false}` + "\n"
		for {
			if _, err := io.WriteString(w, line); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			if r.Context().Err() != nil {
				break
			}
		}
		close(cancelled)
	})
	g := newGateway(t, up, func(o *Options) { o.Config.Timeouts.Write = 300 * time.Millisecond })
	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", g.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"model":"tiny","prompt":"go on forever"}`
	fmt.Fprintf(c, "POST /api/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", userKey, len(body), body)
	// Read the status line, then stop reading.
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("status line %q, %v", line, err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream generation was not cancelled for a client that stopped reading")
	}
	select {
	case <-g.lim.settled:
	case <-time.After(5 * time.Second):
		t.Fatal("the reservation was not settled")
	}
	recs := g.records(t)
	if len(recs) != 1 || !recs[0].ClientGone {
		t.Errorf("records %+v, want one with client_gone", recs)
	}
}

// 7. Every key without a concurrency limit of its own gets the default
// tier's (16 in flight).
func TestDefaultConcurrencyCap(t *testing.T) {
	if DefaultConfig().DefaultLimits.Concurrent != DefaultConcurrent || DefaultConcurrent <= 0 {
		t.Fatalf("default tier %+v", DefaultConfig().DefaultLimits)
	}
	gate := make(chan struct{})
	up := ndjsonUpstream(t, 2, gate, nil)
	g := newGateway(t, up, func(o *Options) { o.Limiter = LimiterFrom(limits.NewMemory(limits.Options{}, nil)) })
	var wg sync.WaitGroup
	for range DefaultConcurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x"}`)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(up.seen()) < DefaultConcurrent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// One more: refused at once (were it admitted, it would wait for the
	// gate like the others, and the deadline would end it).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", g.ts.URL+"/api/generate", strings.NewReader(`{"model":"tiny","prompt":"x"}`))
	req.Header.Set("Authorization", "Bearer "+userKey)
	resp, err := g.ts.Client().Do(req)
	close(gate)
	wg.Wait()
	if err != nil {
		t.Fatalf("request %d in flight was admitted and held: %v", DefaultConcurrent+1, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "concurrent") {
		t.Errorf("request %d in flight: status %d: %s", DefaultConcurrent+1, resp.StatusCode, body)
	}
}

// 8. Upstream headers pass only from an allow list: hop-by-hop, server
// identification, cookies, redirects and the upstream's CORS answer never
// reach the client. Client headers that could re-route or impersonate
// (method overrides, X-Original-URL, client-IP claims, Expect, Upgrade)
// never reach the upstream.
func TestHeadersPassOnlyFromAllowLists(t *testing.T) {
	var got http.Header
	var mu sync.Mutex
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		h := w.Header()
		for _, k := range []string{"Server", "X-Powered-By", "Via", "Set-Cookie", "X-Internal-Host", "Location",
			"Access-Control-Allow-Origin", "Strict-Transport-Security", "Alt-Svc", "X-Ollama-Version"} {
			h.Set(k, "leak")
		}
		h.Set("Content-Type", "application/json")
		h.Set("X-Request-Id", "r1")
		io.WriteString(w, `{"models":[]}`)
	})
	g := newGateway(t, up, func(o *Options) { o.Config.PassResponseHeaders = []string{"X-Ollama-Version"} })
	tricks := map[string]string{
		"X-HTTP-Method-Override": "DELETE", "X-Method-Override": "DELETE", "X-Original-URL": "/api/pull",
		"X-Rewrite-URL": "/api/pull", "True-Client-IP": "10.0.0.1", "X-Client-IP": "10.0.0.1",
		"X-Real-IP": "10.0.0.1", "Forwarded": "for=10.0.0.1", "Cookie": "a=b", "X-Forwarded-Host": "evil",
		"Proxy-Authorization": "Basic x", "X-Custom-Anything": "x", "Accept": "application/json",
	}
	resp, _ := g.doWith(t, "GET", "/api/tags", userKey, "", tricks)
	for _, k := range []string{"Server", "X-Powered-By", "Via", "Set-Cookie", "X-Internal-Host", "Location",
		"Access-Control-Allow-Origin", "Strict-Transport-Security", "Alt-Svc"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("upstream header %s: %q reached the client", k, v)
		}
	}
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Request-Id") != "r1" ||
		resp.Header.Get("X-Ollama-Version") != "leak" {
		t.Errorf("allowed headers lost: %v", resp.Header)
	}
	mu.Lock()
	defer mu.Unlock()
	for k := range tricks {
		if k == "Accept" {
			continue
		}
		if v := got.Get(k); v != "" && !(k == "X-Forwarded-Host" && v != "evil") {
			t.Errorf("client header %s: %q reached the upstream", k, v)
		}
	}
	if got.Get("Accept") != "application/json" {
		t.Errorf("Accept lost: %v", got)
	}
	for _, bad := range []string{"Authorization", "Cookie", "Upgrade", "Location"} {
		if err := passableHeader(bad); err == nil {
			t.Errorf("pass_*_headers accepted %s", bad)
		}
	}
}

// 8. Protocol upgrades (WebSocket, h2c) are refused, never relayed.
func TestUpgradeRefused(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	for _, h := range []map[string]string{
		{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"},
		{"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA"},
		{"Connection": "keep-alive, upgrade"},
	} {
		if resp, body := g.doWith(t, "GET", "/api/tags", userKey, "", h); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("upgrade %v: status %d: %s", h, resp.StatusCode, body)
		}
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("upstream saw %d upgrade requests", n)
	}
}

// 8. Expect: 100-continue yields exactly one 100 Continue (the gateway's),
// never a second one relayed from the upstream.
func TestExpectContinueAnsweredOnce(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		io.WriteString(w, `{"model":"tiny","response":"ok","done":true,"eval_count":1}`)
	})
	g := newGateway(t, up, nil)
	c, err := net.Dial("tcp", g.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"model":"tiny","prompt":"hi","stream":false}`
	fmt.Fprintf(c, "POST /api/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", userKey, len(body))
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if !strings.Contains(line, "100 Continue") {
		t.Fatalf("first line %q", line)
	}
	io.WriteString(c, body)
	rest, _ := io.ReadAll(br)
	if n := strings.Count(line+string(rest), "100 Continue"); n != 1 {
		t.Errorf("%d \"100 Continue\" lines:\n%s%s", n, line, rest)
	}
	if !strings.Contains(string(rest), "200 OK") {
		t.Errorf("no final answer:\n%s", rest)
	}
}

// 8. A preflight is answered the same way for every path, so it does not
// tell a stranger which routes exist.
func TestPreflightRevealsNoRoutes(t *testing.T) {
	up := newUpstream(t, nil)
	g := newGateway(t, up, nil)
	var first string
	for _, p := range []string{"/api/pull", "/api/tags", "/no/such/route", "/api/../etc", "/v1/chat/completions"} {
		resp, body := g.do(t, "OPTIONS", p, "", "")
		got := fmt.Sprintf("%d %q %q", resp.StatusCode, resp.Header.Get("Allow"), body)
		if first == "" {
			first = got
		}
		if got != first {
			t.Errorf("OPTIONS %s answered %s; OPTIONS /api/pull answered %s", p, got, first)
		}
	}
}

// 8. /v1/models/{id} and /api/ps follow the key's model rules.
func TestModelRulesOnSingleModelAndRunningModels(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/ps":
			io.WriteString(w, `{"models":[{"name":"llama3:latest","model":"llama3:latest","size_vram":1},{"name":"qwen2:7b","model":"qwen2:7b","size_vram":2}]}`)
		default:
			fmt.Fprintf(w, `{"id":%q,"object":"model"}`, strings.TrimPrefix(r.URL.Path, "/v1/models/"))
		}
	})
	for _, filter := range []bool{false, true} {
		g := newGateway(t, up, func(o *Options) { o.Config.FilterModelList = filter })
		want := http.StatusForbidden
		if filter {
			want = http.StatusNotFound
		}
		if resp, body := g.do(t, "GET", "/v1/models/qwen2:7b", userKey, ""); resp.StatusCode != want {
			t.Errorf("filter=%v: a model the key may not use: status %d, want %d: %s", filter, resp.StatusCode, want, body)
		}
		if resp, _ := g.do(t, "GET", "/v1/models/llama3:latest", userKey, ""); resp.StatusCode != 200 {
			t.Errorf("filter=%v: an allowed model: status %d", filter, resp.StatusCode)
		}
		// /api/ps shows what runs now: filtered for a limited key always.
		_, body := g.do(t, "GET", "/api/ps", userKey, "")
		if s := string(body); !strings.Contains(s, "llama3") || strings.Contains(s, "qwen2") {
			t.Errorf("filter=%v: /api/ps for a llama3-only key: %s", filter, body)
		}
		if _, body := g.do(t, "GET", "/api/ps", adminKey, ""); !strings.Contains(string(body), "qwen2") {
			t.Errorf("filter=%v: /api/ps for an all-models key: %s", filter, body)
		}
	}
}

// 8. The upstream's credentials in --upstream (a basic-auth front) are sent
// to it, never shown.
func TestUpstreamCredentials(t *testing.T) {
	up := newUpstream(t, nil)
	withCreds := strings.Replace(up.URL, "http://", "http://ops:s3cret@", 1)
	g := newGateway(t, up, func(o *Options) { o.Config.Upstream = withCreds })
	g.do(t, "GET", "/api/tags", userKey, "")
	if hits := up.seen(); len(hits) != 1 || hits[0].Auth != "Basic b3BzOnMzY3JldA==" {
		t.Errorf("upstream saw Authorization %q, want the basic credentials of --upstream", hits[0].Auth)
	}
	if strings.Contains(RedactURL(withCreds), "s3cret") {
		t.Errorf("RedactURL(%q) = %q", withCreds, RedactURL(withCreds))
	}
	bad := Config{Upstream: "ftp://ops:s3cret@host"}
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Validate error %v shows the password", err)
	}
}

// 9. A stream cut for an over-long line is recorded as such, not as
// "token budget exhausted".
func TestLineTooLongRecordedAsSuch(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		io.WriteString(w, `{"model":"tiny","response":"a","done":false}`+"\n")
		io.WriteString(w, `{"model":"tiny","response":"`+strings.Repeat("b", 2<<20)+`"}`+"\n")
	})
	g := newGateway(t, up, nil)
	g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"x"}`)
	recs := g.records(t)
	if len(recs) != 1 || !recs[0].Truncated || !strings.Contains(recs[0].Error, "too long") || strings.Contains(recs[0].Error, "budget") {
		t.Errorf("records %+v, want one truncated for a line too long", recs)
	}
}

// 9. A non-streamed answer without usage is billed a size estimate no
// larger than what the request was admitted for, even for a key without
// token limits.
func TestUsagelessAnswerEstimateIsCapped(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"%s"}}]}`, strings.Repeat("z", 400<<10))
	})
	g := newGateway(t, up, func(o *Options) { o.Config.DefaultMaxTokens = 1000 })
	g.do(t, "POST", "/v1/chat/completions", userKey, `{"model":"tiny","messages":[{"role":"user","content":"x"}]}`)
	commits, _ := g.lim.snapshot()
	if len(commits) != 1 || commits[0][1] > 1000 || commits[0][1] == 0 {
		t.Errorf("billed %v for a usage-less 400 KiB answer admitted for 1000 tokens", commits)
	}
}
