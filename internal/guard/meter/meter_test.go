package meter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// recorder is a client writer that remembers what was written between
// flushes, so tests can check streams are relayed event by event.
type recorder struct {
	all      bytes.Buffer
	pending  bytes.Buffer
	segments []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.all.Write(p)
	r.pending.Write(p)
	return len(p), nil
}

func (r *recorder) flush() {
	r.segments = append(r.segments, r.pending.String())
	r.pending.Reset()
}

// runMeter feeds in through a meter in pieces of size step (0: all at
// once) and returns what the client received and the result.
func runMeter(t *testing.T, info RequestInfo, budget int64, in []byte, step int) (*recorder, Usage, error) {
	t.Helper()
	rec := &recorder{}
	m := NewMeter(info, budget, rec, rec.flush)
	var err error
	if step <= 0 {
		step = len(in) + 1
	}
	for len(in) > 0 && err == nil {
		n := min(step, len(in))
		_, err = m.Write(in[:n])
		in = in[n:]
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if m.CancelUpstream() != (err != nil) {
		t.Errorf("CancelUpstream() = %v with error %v", m.CancelUpstream(), err)
	}
	return rec, m.Result(), err
}

func TestMeterGolden(t *testing.T) {
	ollamaGen := RequestInfo{Kind: KindOllama, Route: "/api/generate", Endpoint: EndpointGenerate, Model: "tiny", Stream: true, MaxTokens: 12, Choices: 1, PromptEstimate: 7}
	ollamaChat := ollamaGen
	ollamaChat.Route, ollamaChat.Endpoint = "/api/chat", EndpointChat
	ollamaNoStream := ollamaGen
	ollamaNoStream.Stream = false
	ollamaChatNoStream := ollamaChat
	ollamaChatNoStream.Stream = false
	ollamaEmbed := RequestInfo{Kind: KindOllama, Route: "/api/embed", Endpoint: EndpointEmbed, Model: "tiny", Choices: 1, MaxTokens: Unlimited, PromptEstimate: 3}
	oaChat := RequestInfo{Kind: KindOpenAI, Route: "/v1/chat/completions", Endpoint: EndpointChat, Model: "tiny", Stream: true, MaxTokens: 8, Choices: 1, PromptEstimate: 7}
	oaChatInjected := oaChat
	oaChatInjected.InjectedUsage = true
	oaNoStream := oaChat
	oaNoStream.Stream = false
	oaCompl := oaChatInjected
	oaCompl.Route, oaCompl.Endpoint = "/v1/completions", EndpointGenerate

	tests := []struct {
		name   string
		in     string
		info   RequestInfo
		budget int64
	}{
		{"ollama_generate_stream_full", "ollama_generate_stream.in", ollamaGen, Unlimited},
		{"ollama_generate_stream_budget2", "ollama_generate_stream.in", ollamaGen, 2},
		{"ollama_chat_stream_full", "ollama_chat_stream.in", ollamaChat, 100},
		{"ollama_chat_stream_budget0", "ollama_chat_stream.in", ollamaChat, 0},
		{"ollama_chat_stream_budget3", "ollama_chat_stream.in", ollamaChat, 3},
		{"ollama_generate_nostream", "ollama_generate_nostream.in", ollamaNoStream, 5},
		{"ollama_chat_nostream", "ollama_chat_nostream.in", ollamaChatNoStream, Unlimited},
		{"ollama_embed", "ollama_embed.in", ollamaEmbed, 0},
		{"ollama_error_stream", "ollama_error.in", ollamaGen, 10},
		{"openai_chat_stream_usage_stripped", "openai_chat_stream_usage.in", oaChatInjected, Unlimited},
		{"openai_chat_stream_usage_kept", "openai_chat_stream_usage.in", oaChat, Unlimited},
		{"openai_chat_stream_usage_budget2", "openai_chat_stream_usage.in", oaChatInjected, 2},
		{"openai_chat_stream_no_usage", "openai_chat_stream.in", oaChat, 50},
		{"openai_chat_nostream", "openai_chat_nostream.in", oaNoStream, 50},
		{"openai_completions_stream_usage_stripped", "openai_completions_stream_usage.in", oaCompl, 6},
		{"vllm_continuous_full", "vllm_chat_stream_continuous.in", oaChat, 8},
		{"vllm_continuous_budget5", "vllm_chat_stream_continuous.in", oaChat, 5},
		{"vllm_reasoning_full", "vllm_chat_stream_reasoning.in", oaChatInjected, Unlimited},
		{"vllm_reasoning_budget3", "vllm_chat_stream_reasoning.in", oaChatInjected, 3},
		{"sse_crlf_comments", "sse_crlf_comments.in", oaChat, 3},
		{"sse_crlf_comments_budget2", "sse_crlf_comments.in", oaChat, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tt.in))
			if err != nil {
				t.Fatal(err)
			}
			rec, usage, err := runMeter(t, tt.info, tt.budget, in, 0)
			got := renderGolden(rec.all.Bytes(), usage, err)
			checkGolden(t, filepath.Join("testdata", tt.name+".golden"), got)

			// However the upstream body is split, the client sees the
			// same bytes and the same bill.
			for _, step := range []int{1, 3, 64} {
				rec2, usage2, err2 := runMeter(t, tt.info, tt.budget, in, step)
				if got2 := renderGolden(rec2.all.Bytes(), usage2, err2); got2 != got {
					t.Errorf("fed %d bytes at a time:\n%s\nwant\n%s", step, got2, got)
				}
			}

			// An upstream that sends event by event is relayed event by
			// event: fed a byte at a time, every flush carries one event.
			if tt.info.Stream {
				rec1, _, _ := runMeter(t, tt.info, tt.budget, in, 1)
				for i, seg := range rec1.segments {
					if events := countEvents(tt.info.Kind, seg); events != 1 && !isMeterError(seg) {
						t.Errorf("flush %d carried %d events: %q", i, events, seg)
					}
				}
			}
		})
	}
}

// countEvents counts NDJSON lines or SSE events in s.
func countEvents(kind, s string) int {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if kind == KindOllama {
		n := strings.Count(s, "\n")
		if s != "" && !strings.HasSuffix(s, "\n") {
			n++ // a last line without a newline
		}
		return n
	}
	n := strings.Count(s, "\n\n")
	if strings.HasPrefix(s, "\n") {
		n++ // a lone blank line
	}
	if s != "" && !strings.HasSuffix(s, "\n\n") {
		n++ // an event cut off at the end of the body
	}
	return n
}

func isMeterError(s string) bool {
	return strings.Contains(s, "token_budget_exhausted") || strings.Contains(s, `"error":"token budget exhausted"`) ||
		strings.Contains(s, "exceeds")
}

func renderGolden(out []byte, u Usage, err error) string {
	var b strings.Builder
	b.Write(out)
	ub, _ := json.Marshal(u)
	fmt.Fprintf(&b, "\n--- usage: %s\n", ub)
	fmt.Fprintf(&b, "--- error: %v\n", err)
	return b.String()
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestMeterUsage(t *testing.T) {
	// The same expectations as the golden files, spelled out for the
	// properties that matter most.
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	oa := RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true, InjectedUsage: true, Choices: 1}
	rec, u, err := runMeter(t, oa, Unlimited, read("openai_chat_stream_usage.in"), 0)
	if err != nil || strings.Contains(rec.all.String(), `"usage"`) || !strings.HasSuffix(rec.all.String(), "data: [DONE]\n\n") {
		t.Errorf("injected usage: err %v, client saw %q", err, rec.all.String())
	}
	if u != (Usage{Prompt: 35, Completion: 8, FromUpstream: true}) {
		t.Errorf("injected usage: %+v", u)
	}

	oa.InjectedUsage = false
	rec, _, _ = runMeter(t, oa, Unlimited, read("openai_chat_stream_usage.in"), 0)
	if !bytes.Equal(rec.all.Bytes(), read("openai_chat_stream_usage.in")) {
		t.Errorf("client-requested usage: stream was altered:\n%s", rec.all.String())
	}

	ol := RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate, Stream: true, Choices: 1}
	rec, u, err = runMeter(t, ol, 1, read("ollama_generate_stream.in"), 0)
	if !errors.Is(err, ErrBudgetExhausted) || !u.Truncated || u.Completion != 1 || u.FromUpstream {
		t.Errorf("ollama budget 1: err %v usage %+v", err, u)
	}
	lines := strings.Split(strings.TrimSuffix(rec.all.String(), "\n"), "\n")
	last := map[string]any{}
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &last) != nil || last["error"] != "token budget exhausted" || last["done"] != true {
		t.Errorf("ollama budget 1: client saw %q", rec.all.String())
	}
}

// failAfter is a client that accepts n writes and then fails.
type failAfter struct {
	n   int
	out bytes.Buffer
}

var errBrokenPipe = errors.New("write: broken pipe")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBrokenPipe
	}
	f.n--
	return f.out.Write(p)
}

func TestMeterClientGone(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		info     RequestInfo
		writes   int
		wantComp int64
	}{
		// Two content lines reach the client; the third fails and is
		// billed too, since the upstream produced it.
		{"ollama", "ollama_generate_stream.in", RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate, Stream: true, PromptEstimate: 9}, 2, 3},
		{"openai", "openai_chat_stream_usage.in", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true, InjectedUsage: true, PromptEstimate: 9}, 1, 2},
		{"vllm running usage", "vllm_chat_stream_continuous.in", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true, PromptEstimate: 9}, 4, 6},
		{"non-streaming", "openai_chat_nostream.in", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, MaxTokens: 8, Choices: 1, PromptEstimate: 9}, 0, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tt.in))
			if err != nil {
				t.Fatal(err)
			}
			client := &failAfter{n: tt.writes}
			m := NewMeter(tt.info, 1000, client, nil)
			u, err := m.Relay(context.Background(), bytes.NewReader(in))
			if !errors.Is(err, ErrClientGone) || !errors.Is(err, errBrokenPipe) {
				t.Fatalf("Relay error = %v, want client gone", err)
			}
			if !m.CancelUpstream() {
				t.Error("CancelUpstream() = false after the client left")
			}
			if !u.ClientGone || u.Truncated || u.Completion != tt.wantComp {
				t.Errorf("usage = %+v, want ClientGone with %d completion tokens", u, tt.wantComp)
			}
			if tt.info.Stream && (u.FromUpstream || !u.PromptEstimated || u.Prompt != 9) {
				if !(tt.name == "vllm running usage" && u.Prompt == 17 && !u.PromptEstimated) {
					t.Errorf("usage = %+v: want relayed count and the prompt estimate", u)
				}
			}
			if _, err := m.Write([]byte("more\n")); !errors.Is(err, ErrClientGone) {
				t.Errorf("Write after the client left = %v", err)
			}
		})
	}
}

func TestMeterLineTooLong(t *testing.T) {
	tests := []struct {
		name string
		info RequestInfo
		in   string
		want string
	}{
		{"ollama", RequestInfo{Kind: KindOllama, Endpoint: EndpointChat, Stream: true, Model: "m"},
			`{"response":"a","done":false}` + "\n" + `{"response":"` + strings.Repeat("x", 200) + `"}` + "\n",
			`{"response":"a","done":false}` + "\n" + `{"model":"m","error":"upstream response line exceeds 100 bytes","done":true}` + "\n"},
		{"ollama no newline", RequestInfo{Kind: KindOllama, Endpoint: EndpointChat, Stream: true, Model: "m"},
			strings.Repeat("y", 150),
			`{"model":"m","error":"upstream response line exceeds 100 bytes","done":true}` + "\n"},
		{"sse event of short lines", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true},
			strings.Repeat("data: 1234567890\n", 10) + "\n",
			`data: {"error":{"message":"upstream response line exceeds 100 bytes","type":"server_error","param":null,"code":"upstream_event_too_long"}}` + "\n\ndata: [DONE]\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 7} {
				rec := &recorder{}
				m := NewMeter(tt.info, Unlimited, rec, rec.flush, WithMaxLine(100))
				in := []byte(tt.in)
				if step == 0 {
					step = len(in)
				}
				var err error
				for len(in) > 0 && err == nil {
					n := min(step, len(in))
					_, err = m.Write(in[:n])
					in = in[n:]
				}
				if err == nil {
					err = m.Close()
				}
				if !errors.Is(err, ErrLineTooLong) || !m.Result().Truncated || m.Result().Cut != CutLineTooLong {
					t.Errorf("step %d: error %v, result %+v", step, err, m.Result())
				}
				if rec.all.String() != tt.want {
					t.Errorf("step %d: client saw\n%q\nwant\n%q", step, rec.all.String(), tt.want)
				}
			}
		})
	}
}

func TestMeterNonStreamingFallbacks(t *testing.T) {
	tests := []struct {
		name string
		info RequestInfo
		body string
		want Usage
	}{
		{"no usage: byte estimate capped by max tokens", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, MaxTokens: 10, Choices: 2, PromptEstimate: 4},
			`{"choices":[{"message":{"content":"` + strings.Repeat("z", 400) + `"}}]}`,
			Usage{Prompt: 4, Completion: 20, PromptEstimated: true}},
		{"no usage: byte estimate", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, MaxTokens: Unlimited, Choices: 1},
			`{"choices":[{"message":{"content":"abcdefgh"}}]}`,
			Usage{Completion: 12, PromptEstimated: true}},
		// Without a client limit the estimate is still held to what the
		// request was admitted for.
		{"no usage, no limit: byte estimate capped by the admission", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat,
			MaxTokens: Unlimited, Choices: 1, CompletionCap: 50},
			`{"choices":[{"message":{"content":"` + strings.Repeat("z", 4000) + `"}}]}`,
			Usage{Completion: 50, PromptEstimated: true}},
		{"error body costs nothing", RequestInfo{Kind: KindOllama, Endpoint: EndpointChat, PromptEstimate: 4},
			`{"error":"model 'x' not found"}`,
			Usage{Prompt: 4, Completion: 0, PromptEstimated: true}},
		{"ollama done without eval_count", RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate},
			`{"model":"m","response":"","done":true,"prompt_eval_count":3}`,
			Usage{Prompt: 3, Completion: 0, FromUpstream: true}},
		{"nested usage keys are not top-level", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, MaxTokens: 5, Choices: 1},
			`{"choices":[{"message":{"content":"{\"usage\":{\"completion_tokens\":1}}"},"usage":{"completion_tokens":1}}],"usage":{"prompt_tokens":2,"completion_tokens":5}}`,
			Usage{Prompt: 2, Completion: 5, FromUpstream: true}},
		{"pretty printed", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointEmbed},
			"{\n  \"data\": [{\"embedding\": [0.1, 0.2]}],\n  \"usage\" : {\n    \"prompt_tokens\": 6,\n    \"total_tokens\": 6\n  }\n}\n",
			Usage{Prompt: 6, Completion: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, u, err := runMeter(t, tt.info, 1, []byte(tt.body), 5)
			if err != nil {
				t.Fatal(err)
			}
			if rec.all.String() != tt.body {
				t.Errorf("body altered: %q", rec.all.String())
			}
			if u != tt.want {
				t.Errorf("usage = %+v, want %+v", u, tt.want)
			}
		})
	}
}

func TestRelayContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	in, err := os.ReadFile(filepath.Join("testdata", "ollama_generate_stream.in"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m := NewMeter(RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate, Stream: true, PromptEstimate: 2}, Unlimited, rec, rec.flush)
	// The reader yields one line, then the context is cancelled.
	r := &cancelReader{data: in, cancel: cancel}
	u, err := m.Relay(ctx, r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Relay error = %v, want context.Canceled", err)
	}
	if u.Completion != 1 || u.FromUpstream {
		t.Errorf("usage after cancel = %+v, want 1 relayed token", u)
	}
	if strings.Count(rec.all.String(), "\n") != 1 {
		t.Errorf("client saw %q", rec.all.String())
	}
}

type cancelReader struct {
	data   []byte
	cancel func()
}

func (r *cancelReader) Read(p []byte) (int, error) {
	i := bytes.IndexByte(r.data, '\n')
	if i < 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:i+1])
	r.data = r.data[n:]
	r.cancel()
	return n, nil
}

// The end of a response is left unflushed for the caller to complete (the
// guard completes it once the audit record is committed): the last event
// of a stream and every byte of a non-streaming body stay pending.
func TestMeterLeavesTheEndUnflushed(t *testing.T) {
	for _, tt := range []struct {
		name        string
		info        RequestInfo
		in          string
		flushed     []string
		leftPending string
	}{
		{"ollama stream",
			RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate, Stream: true},
			`{"response":"a","done":false}` + "\n" + `{"response":"b","done":false}` + "\n" + `{"response":"","done":true,"eval_count":2}` + "\n",
			[]string{`{"response":"a","done":false}` + "\n", `{"response":"b","done":false}` + "\n"},
			`{"response":"","done":true,"eval_count":2}` + "\n"},
		{"openai stream",
			RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true},
			"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" + "data: [DONE]\n\n",
			[]string{"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"},
			"data: [DONE]\n\n"},
		{"non-streaming body",
			RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate},
			`{"response":"ab","done":true,"eval_count":2}`,
			nil,
			`{"response":"ab","done":true,"eval_count":2}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, _, err := runMeter(t, tt.info, Unlimited, []byte(tt.in), 1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rec.segments, tt.flushed) {
				t.Errorf("flushed %q, want %q", rec.segments, tt.flushed)
			}
			if rec.pending.String() != tt.leftPending {
				t.Errorf("left unflushed %q, want %q", rec.pending.String(), tt.leftPending)
			}
		})
	}
}
