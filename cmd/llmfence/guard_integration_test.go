package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/ollamatest"
	"github.com/llmfence/llmfence/internal/store"
)

// Integration tests of `llmfence guard` with real components: a real
// Ollama behind the gateway, keys made with `llmfence keys create`, usage
// read back with `llmfence usage`, and two replicas sharing limits through
// a real redis-server.

// syncBuffer is a bytes.Buffer safe for the guard goroutine to write while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// giCreateKey runs `llmfence keys create` and returns the key it printed.
func giCreateKey(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, "", append([]string{"--db", db, "keys", "create"}, args...)...)
	if code != 0 {
		t.Fatalf("keys create %v: exit %d: %s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || len(lines[0]) < 20 {
		t.Fatalf("keys create printed %q, want the key alone on one line", out)
	}
	return lines[0]
}

// giStartGuard runs `llmfence guard` in a goroutine until the test ends and
// returns its base URL once it answers.
func giStartGuard(t *testing.T, db, upstream string, extra ...string) string {
	t.Helper()
	listen, metrics := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	args := append([]string{"--db", db, "--log-level", "warn", "guard", "--upstream", upstream,
		"--listen", listen, "--metrics", metrics}, extra...)
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), io.Discard, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("guard exited with status %d: %s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("guard did not shut down; stderr: %s", stderr.String())
		}
	})
	base := "http://" + listen
	client := &http.Client{Timeout: 2 * time.Second}
	for range 200 {
		select {
		case code := <-done:
			t.Fatalf("guard exited early with status %d: %s", code, stderr.String())
		default:
		}
		resp, err := client.Get("http://" + metrics + "/healthz")
		if err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
				c.Close()
				return base
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("guard did not start on %s; stderr: %s", listen, stderr.String())
	return ""
}

// giPost sends a JSON POST with an optional key.
func giPost(t *testing.T, ctx context.Context, url, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp
}

// ollamaLine is the part of an Ollama /api/generate NDJSON line the tests
// read.
type ollamaLine struct {
	Model           string `json:"model"`
	Response        string `json:"response"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	Error           string `json:"error"`
	EvalCount       *int64 `json:"eval_count"`
	PromptEvalCount *int64 `json:"prompt_eval_count"`
}

func readLines(t *testing.T, r io.Reader) []ollamaLine {
	t.Helper()
	var out []ollamaLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l ollamaLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("stream line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading stream: %v", err)
	}
	return out
}

// giUsage runs `llmfence usage --format json --key name`.
func giUsage(t *testing.T, db, key string) []store.UsageSummary {
	t.Helper()
	out, errOut, code := runCLI(t, "", "--db", db, "usage", "--format", "json", "--since", "0", "--key", key)
	if code != 0 {
		t.Fatalf("usage: exit %d: %s", code, errOut)
	}
	return decodeJSONL[store.UsageSummary](t, out)
}

// giRecords waits until the audit log holds n records of key and returns
// them, newest first. (A request's record is committed before its response
// ends; the wait covers requests whose client went away mid-stream.)
func giRecords(t *testing.T, db, key string, n int) []store.UsageRecord {
	t.Helper()
	var recs []store.UsageRecord
	for range 100 {
		st, err := store.OpenGuard(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		recs, err = st.QueryUsage(context.Background(), store.UsageFilter{Key: key})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) >= n {
			return recs
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("audit log holds %d records of %s, want %d: %+v", len(recs), key, n, recs)
	return nil
}

// giCapture waits for the first capture of key (captures are written in
// the background) and returns it.
func giCapture(t *testing.T, db, key string) store.Capture {
	t.Helper()
	for range 100 {
		st, err := store.OpenGuard(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		caps, err := st.QueryCaptures(context.Background(), store.CaptureFilter{Key: key})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(caps) > 0 {
			return caps[len(caps)-1]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no capture of %s stored", key)
	return store.Capture{}
}

func TestGuardRealOllama(t *testing.T) {
	ol := ollamatest.Start(t)
	ol.CreateModel(t, "tiny", "You are tiny.")
	db := filepath.Join(t.TempDir(), "guard.db")
	alice := giCreateKey(t, db, "alice", "--models", "tiny*")
	// 16 tokens a day: the prompt "Hello" reserves 11 (5 bytes / 2, plus 8
	// for the template), which leaves 5 to generate.
	small := giCreateKey(t, db, "small", "--models", "tiny*", "--daily-tokens", "16")
	leaver := giCreateKey(t, db, "leaver", "--models", "*")
	base := giStartGuard(t, db, ol.URL, "--capture")
	ctx := t.Context()

	t.Run("no key is 401", func(t *testing.T) {
		for _, key := range []string{"", "not-a-real-key-0123456789abcdef"} {
			resp := giPost(t, ctx, base+"/api/generate", key, `{"model":"tiny","prompt":"hi","stream":false}`)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("key %q: status %d (%s), want 401", key, resp.StatusCode, body)
			}
		}
	})

	t.Run("stream relayed and billed as ollama counted", func(t *testing.T) {
		resp := giPost(t, ctx, base+"/api/generate", alice,
			`{"model":"tiny","prompt":"Hello there","stream":true,"options":{"num_predict":24,"seed":1}}`)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "ndjson") {
			t.Errorf("Content-Type %q, want NDJSON", ct)
		}
		if resp.ContentLength != -1 {
			t.Errorf("Content-Length %d: a stream must not be buffered to a known length", resp.ContentLength)
		}
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("first line: %v", err)
		}
		var l0 ollamaLine
		if err := json.Unmarshal(first, &l0); err != nil || l0.Done || l0.Model != "tiny" {
			t.Fatalf("first line %q (%v): want a done:false chunk of tiny", first, err)
		}
		lines := append([]ollamaLine{l0}, readLines(t, br)...)
		if len(lines) < 3 {
			t.Fatalf("got %d lines, want a chunk per token and a final line", len(lines))
		}
		for i, l := range lines[:len(lines)-1] {
			if l.Done || l.Error != "" {
				t.Errorf("line %d %+v: only the last line may be done", i, l)
			}
		}
		last := lines[len(lines)-1]
		if !last.Done || last.Error != "" || last.EvalCount == nil || last.PromptEvalCount == nil {
			t.Fatalf("final line %+v: want done with eval_count and prompt_eval_count", last)
		}
		if *last.EvalCount < 1 || *last.EvalCount > 24 {
			t.Errorf("eval_count %d, want 1..24", *last.EvalCount)
		}

		recs := giRecords(t, db, "alice", 1)
		r := recs[0]
		if r.Status != 200 || r.Route != "/api/generate" || r.Model != "tiny" || r.ClientGone || r.Truncated {
			t.Errorf("usage record %+v", r)
		}
		if r.PromptTokens != *last.PromptEvalCount || r.CompletionTokens != *last.EvalCount {
			t.Errorf("record billed %d+%d tokens; ollama counted prompt_eval_count=%d eval_count=%d",
				r.PromptTokens, r.CompletionTokens, *last.PromptEvalCount, *last.EvalCount)
		}
		// --capture stored the prompt and exactly the text Ollama streamed.
		var streamed strings.Builder
		for _, l := range lines {
			streamed.WriteString(l.Response)
		}
		c := giCapture(t, db, "alice")
		if c.Prompt != "Hello there" || c.Response != streamed.String() || c.Model != "tiny" || c.Status != 200 {
			t.Errorf("capture prompt %q response %q (model %q, status %d); streamed %q",
				c.Prompt, c.Response, c.Model, c.Status, streamed.String())
		}
		rep := giUsage(t, db, "alice")
		if len(rep) != 1 || rep[0].KeyName != "alice" || rep[0].Requests != 1 ||
			rep[0].PromptTokens != *last.PromptEvalCount || rep[0].CompletionTokens != *last.EvalCount {
			t.Errorf("llmfence usage %+v, want 1 request of %d+%d tokens", rep, *last.PromptEvalCount, *last.EvalCount)
		}
	})

	t.Run("model management refused", func(t *testing.T) {
		for _, tc := range []struct{ method, path, body string }{
			{http.MethodPost, "/api/pull", `{"model":"tiny","stream":false}`},
			{http.MethodDelete, "/api/delete", `{"model":"tiny"}`},
			{http.MethodPost, "//api/pull", `{"model":"tiny"}`},
			{http.MethodDelete, "/api/../api/delete", `{"model":"tiny"}`},
		} {
			req, _ := http.NewRequestWithContext(ctx, tc.method, base+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: status %d (%s), want 403", tc.method, tc.path, resp.StatusCode, body)
			}
		}
		tags, err := ol.Tags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) != 1 || !ollamatest.SameModel(tags[0].Name, "tiny") {
			t.Errorf("ollama's models after the refused calls: %+v, want tiny still there", tags)
		}
	})

	t.Run("daily budget ends the stream then refuses", func(t *testing.T) {
		resp := giPost(t, ctx, base+"/api/generate", small,
			`{"model":"tiny","prompt":"Hello","stream":true,"options":{"num_predict":200,"seed":1}}`)
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("first request: status %d: %s", resp.StatusCode, b)
		}
		lines := readLines(t, resp.Body)
		resp.Body.Close()
		if len(lines) == 0 {
			t.Fatal("empty stream")
		}
		last := lines[len(lines)-1]
		chunks := 0
		for _, l := range lines[:len(lines)-1] {
			if l.Done {
				t.Errorf("done line %+v before the end", l)
			}
			chunks++
		}
		if !last.Done || last.EvalCount == nil {
			t.Fatalf("final line %+v: want done:true with eval_count", last)
		}
		// The gateway clamps num_predict to the 5 tokens left, so Ollama
		// itself stops at the budget (done_reason "length") and the stream
		// never needs cutting; a stop token may end it sooner.
		if chunks > 5 || *last.EvalCount > 5 || (last.DoneReason == "length" && *last.EvalCount != 5) {
			t.Errorf("a 5-token budget relayed %d chunks, final line %q with eval_count %d",
				chunks, last.DoneReason, *last.EvalCount)
		}
		t.Logf("budget stream: %d chunks, final done_reason=%q eval_count=%d error=%q",
			chunks, last.DoneReason, *last.EvalCount, last.Error)

		resp = giPost(t, ctx, base+"/api/generate", small, `{"model":"tiny","prompt":"again","stream":true}`)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("after the budget: status %d (%s), want 429", resp.StatusCode, body)
		}
		recs := giRecords(t, db, "small", 2)
		if recs[1].Status != 200 || recs[1].CompletionTokens != *last.EvalCount ||
			last.PromptEvalCount == nil || recs[1].PromptTokens != *last.PromptEvalCount || recs[0].Status != 429 {
			t.Errorf("usage records %+v", recs)
		}
	})

	t.Run("client gone billed and upstream cancelled", func(t *testing.T) {
		const numPredict = 1000000
		// Ollama logs a request ([GIN] line) only when its handler returns,
		// which for a million-token generation happens only if it is
		// cancelled.
		handled := func() int {
			data, _ := os.ReadFile(ol.LogPath)
			n := 0
			for _, line := range strings.Split(string(data), "\n") {
				if strings.Contains(line, "[GIN]") && strings.Contains(line, `"/api/generate"`) {
					n++
				}
			}
			return n
		}
		before := handled()
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp := giPost(t, rctx, base+"/api/generate", leaver,
			fmt.Sprintf(`{"model":"tiny","prompt":"Tell me everything","stream":true,"options":{"num_predict":%d,"seed":1}}`, numPredict))
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		first, err := bufio.NewReader(resp.Body).ReadBytes('\n')
		if err != nil {
			t.Fatalf("first line: %v", err)
		}
		var l0 ollamaLine
		if err := json.Unmarshal(first, &l0); err != nil || l0.Done {
			t.Fatalf("first line %q (%v)", first, err)
		}
		cancel()
		resp.Body.Close()

		recs := giRecords(t, db, "leaver", 1)
		r := recs[0]
		if !r.ClientGone || r.CompletionTokens < 1 || r.CompletionTokens >= numPredict {
			t.Errorf("record %+v: want client_gone and the relayed tokens billed", r)
		}
		t.Logf("client gone after %d relayed tokens: %+v", r.CompletionTokens, r)

		for i := 0; handled() == before; i++ {
			if i == 150 {
				t.Fatalf("ollama still generating the abandoned request 15s after the client left; log:\n%s",
					tailString(readFileString(ol.LogPath), 2000))
			}
			time.Sleep(100 * time.Millisecond)
		}

		// Ollama serves one request at a time here (OLLAMA_NUM_PARALLEL=1),
		// so had the abandoned million-token generation kept running, this
		// request would queue behind it. Its answer shows the slot is free.
		g := ol.Generate(t, "tiny", "Hi", 2)
		if !g.Done || g.EvalCount < 1 {
			t.Errorf("follow-up generation %+v", g)
		}
	})
}

func readFileString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// giStartRedis starts a private redis-server on a free loopback port.
func giStartRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/redis-server"); serr == nil {
			bin = "/usr/bin/redis-server"
		} else if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is required in CI: %v", err)
		} else {
			t.Skip("redis-server not installed")
		}
	}
	for range 3 {
		addr := freeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		dir := t.TempDir()
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"), "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() { _ = cmd.Process.Kill(); <-exited }
		for range 200 {
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				fmt.Fprint(c, "PING\r\n")
				buf := make([]byte, 7)
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				n, _ := io.ReadFull(c, buf)
				c.Close()
				if string(buf[:n]) == "+PONG\r\n" {
					t.Cleanup(stop)
					return addr
				}
			}
			select {
			case <-exited:
			default:
				time.Sleep(25 * time.Millisecond)
				continue
			}
			break
		}
		stop()
	}
	t.Fatal("redis-server did not start")
	return ""
}

func TestGuardReplicasShareLimitsThroughRedis(t *testing.T) {
	raddr := giStartRedis(t)
	var upstreamCalls sync.Mutex
	calls := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/generate" {
			http.NotFound(w, r)
			return
		}
		upstreamCalls.Lock()
		calls++
		upstreamCalls.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"model":"tiny","response":"ok","done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":1}`)
	}))
	defer up.Close()

	db := filepath.Join(t.TempDir(), "guard.db")
	key := giCreateKey(t, db, "burst", "--models", "*", "--rpm", "20")
	redisURL := "redis://" + raddr + "/0"
	// Two guard processes, as replicas would run.
	replicas := []string{
		startGuardProcess(t, db, up.URL, "--redis", redisURL).base,
		startGuardProcess(t, db, up.URL, "--redis", redisURL).base,
	}

	const workers, perWorker = 8, 8 // 64 requests, per replica 32
	var mu sync.Mutex
	status := map[int]map[int]int{0: {}, 1: {}} // replica -> status -> count
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				rep := (w + i) % 2
				req, _ := http.NewRequest(http.MethodPost, replicas[rep]+"/api/generate",
					strings.NewReader(`{"model":"tiny","prompt":"x","stream":false,"options":{"num_predict":4}}`))
				req.Header.Set("Authorization", "Bearer "+key)
				code := 0
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				status[rep][code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	ok := status[0][200] + status[1][200]
	limited := status[0][429] + status[1][429]
	t.Logf("replica statuses: %v", status)
	if ok+limited != workers*perWorker {
		t.Errorf("statuses %v: want only 200 and 429", status)
	}
	// The limit is per minute and the burst takes far less: exactly the 20
	// requests the key may make are admitted, across both replicas.
	if ok != 20 {
		t.Errorf("%d requests admitted across both replicas, want exactly rpm=20", ok)
	}
	// Each replica got 32 requests: with counters of their own they would
	// admit 20 each, 40 in all.
	upstreamCalls.Lock()
	if calls != ok {
		t.Errorf("upstream got %d requests, guard admitted %d", calls, ok)
	}
	upstreamCalls.Unlock()

	// A third replica started now sees the same spent budget.
	third := startGuardProcess(t, db, up.URL, "--redis", redisURL).base
	resp := giPost(t, context.Background(), third+"/api/generate", key, `{"model":"tiny","prompt":"x","stream":false}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("fresh replica: status %d (%s), want 429", resp.StatusCode, body)
	}
	// The limiter counts requests in whole-second buckets, rounded up, so a
	// slot frees at most 61 s after it was taken.
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 61 {
		t.Errorf("Retry-After %q, want 1..61 seconds", resp.Header.Get("Retry-After"))
	}
}
