package meter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/ollamatest"
)

// TestOllamaIntegration runs real Ollama streams through PrepareRequest and
// a Meter: an uncut stream is billed exactly Ollama's own eval_count, a
// stream with a small budget is cut after that many chunks with a proper
// final error line, and the OpenAI-compatible stream's injected usage
// chunk is billed but not shown.
func TestOllamaIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Ollama")
	}
	s := ollamatest.Start(t)
	s.CreateModel(t, "tiny-meter", "You are tiny.")

	post := func(ctx context.Context, route string, body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+route, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s answered %s", route, resp.Status)
		}
		return resp
	}
	client := `{"model":"tiny-meter","prompt":"Tell me a story","options":{"seed":1,"temperature":0}}`

	run := func(budget int64) (*recorder, Usage, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		body, info, err := PrepareRequest(KindOllama, "/api/generate", []byte(client), 64)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"num_predict":64`) || !info.Stream {
			t.Fatalf("prepared body %s, info %+v", body, info)
		}
		resp := post(ctx, "/api/generate", body)
		defer resp.Body.Close()
		rec := &recorder{}
		u, err := NewMeter(info, budget, rec, rec.flush).Relay(ctx, resp.Body)
		if err != nil {
			cancel() // what the guard does: stop the upstream generation
		}
		return rec, u, err
	}

	// Uncut: the bill is Ollama's own final count.
	rec, u, err := run(Unlimited)
	if err != nil {
		t.Fatalf("uncut stream: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(rec.all.String()), "\n")
	var final struct {
		Done            bool  `json:"done"`
		EvalCount       int64 `json:"eval_count"`
		PromptEvalCount int64 `json:"prompt_eval_count"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil || !final.Done {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if u.Completion != final.EvalCount || u.Prompt != final.PromptEvalCount || !u.FromUpstream || u.Truncated {
		t.Errorf("uncut usage %+v, Ollama says eval_count %d prompt_eval_count %d", u, final.EvalCount, final.PromptEvalCount)
	}
	if final.EvalCount != 64 {
		t.Logf("note: eval_count %d (model stopped early)", final.EvalCount)
	}
	content := oracleContent(RequestInfo{Kind: KindOllama}, rec.all.Bytes())
	if content <= 5 {
		t.Skipf("the tiny model produced only %d content chunks; cannot test a cut at 5", content)
	}

	// Budget 5: five content lines, then the meter's error line.
	rec, u, err = run(5)
	if !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("cut stream: error %v", err)
	}
	relayed, ok := cutMeterError(RequestInfo{Kind: KindOllama}, rec.all.Bytes())
	if !ok {
		t.Fatalf("no final error line: %q", rec.all.String())
	}
	if c := oracleContent(RequestInfo{Kind: KindOllama}, relayed); c != 5 {
		t.Errorf("client got %d content chunks, want 5", c)
	}
	if !u.Truncated || u.Completion != 5 || u.FromUpstream {
		t.Errorf("cut usage %+v", u)
	}
	last := strings.Split(strings.TrimSpace(rec.all.String()), "\n")
	if got := last[len(last)-1]; got != `{"model":"tiny-meter","error":"token budget exhausted","done":true,"done_reason":"length","eval_count":5}` {
		t.Errorf("final line %s", got)
	}

	// OpenAI-compatible stream: usage injected, billed, and stripped.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	body, info, err := PrepareRequest(KindOpenAI, "/v1/chat/completions",
		[]byte(`{"model":"tiny-meter","messages":[{"role":"user","content":"Hi"}],"stream":true,"max_tokens":500,"seed":1}`), 20)
	if err != nil {
		t.Fatal(err)
	}
	if !info.InjectedUsage || info.MaxTokens != 20 {
		t.Fatalf("info %+v", info)
	}
	resp := post(ctx, "/v1/chat/completions", body)
	defer resp.Body.Close()
	rec = &recorder{}
	u, err = NewMeter(info, Unlimited, rec, rec.flush).Relay(ctx, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec.all.String(), `"usage"`) || !strings.HasSuffix(rec.all.String(), "data: [DONE]\n\n") {
		t.Errorf("client saw %q", rec.all.String())
	}
	if !u.FromUpstream || u.Completion < 1 || u.Completion > 20 || u.PromptEstimated {
		t.Errorf("openai usage %+v", u)
	}
}
