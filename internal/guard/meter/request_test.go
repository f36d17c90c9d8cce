package meter

import (
	"errors"
	"testing"
)

func TestPrepareRequest(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		route    string
		body     string
		max      int64
		wantBody string
		want     RequestInfo // Kind, Route, Endpoint filled in by the test
	}{
		// Ollama num_predict
		{"ollama absent", KindOllama, "/api/generate", `{"model":"llama3","prompt":"hi"}`, 100,
			`{"model":"llama3","prompt":"hi","options":{"num_predict":100}}`,
			RequestInfo{Model: "llama3", Stream: true, MaxTokens: 100, PromptEstimate: 1}},
		{"ollama unlimited -1", KindOllama, "/api/generate", `{"model":"m","prompt":"hi","options":{"temperature":0.2,"num_predict":-1,"seed":4}}`, 100,
			`{"model":"m","prompt":"hi","options":{"temperature":0.2,"num_predict":100,"seed":4}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 100, PromptEstimate: 1}},
		{"ollama fill context -2", KindOllama, "/api/chat", `{"model":"m","options":{"num_predict":-2}}`, 50,
			`{"model":"m","options":{"num_predict":50}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 50}},
		{"ollama zero means unlimited", KindOllama, "/api/chat", `{"model":"m","options":{"num_predict":0}}`, 50,
			`{"model":"m","options":{"num_predict":50}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 50}},
		{"ollama larger", KindOllama, "/api/chat", `{"model":"m","stream":false,"options":{"num_predict":5000}}`, 64,
			`{"model":"m","stream":false,"options":{"num_predict":64}}`,
			RequestInfo{Model: "m", MaxTokens: 64}},
		{"ollama smaller kept", KindOllama, "/api/chat", `{"model":"m","options":{"num_predict":10}}`, 64,
			`{"model":"m","options":{"num_predict":10}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 10}},
		{"ollama fraction truncated", KindOllama, "/api/chat", `{"model":"m","options":{"num_predict":10.9}}`, 64,
			`{"model":"m","options":{"num_predict":10}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 10}},
		{"ollama huge exponent", KindOllama, "/api/chat", `{"model":"m","options":{"num_predict":1e300}}`, 64,
			`{"model":"m","options":{"num_predict":64}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 64}},
		{"ollama null options", KindOllama, "/api/generate", `{"model":"m","options":null,"stream":null}`, 8,
			`{"model":"m","options":{"num_predict":8},"stream":null}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 8}},
		{"ollama no budget limit", KindOllama, "/api/generate", `{"model":"m", "options": {"num_predict": -1}}`, Unlimited,
			`{"model":"m","options":{"num_predict": -1}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: Unlimited}},
		{"ollama unknown fields and order kept", KindOllama, "/api/chat",
			`{"zeta":{"b":1,"a":[1,2]},"model":"m","messages":[{"role":"user","content":"12345678"}],"alpha":"x","keep_alive":"5m"}`, 7,
			`{"zeta":{"b":1,"a":[1,2]},"model":"m","messages":[{"role":"user","content":"12345678"}],"alpha":"x","keep_alive":"5m","options":{"num_predict":7}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 7, PromptEstimate: 3}},
		{"ollama embed untouched", KindOllama, "/api/embed", `{"model":"e","input":["abcd","efgh"]}`, 0,
			`{"model":"e","input":["abcd","efgh"]}`,
			RequestInfo{Model: "e", MaxTokens: Unlimited, PromptEstimate: 2}},
		{"ollama images not counted as prompt", KindOllama, "/api/generate", `{"model":"m","prompt":"abcd","images":["iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="],"stream":false}`, 9,
			`{"model":"m","prompt":"abcd","images":["iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="],"stream":false,"options":{"num_predict":9}}`,
			RequestInfo{Model: "m", MaxTokens: 9, PromptEstimate: 1}},

		// OpenAI max_tokens, max_completion_tokens, n_predict, stream_options
		{"openai absent non-stream", KindOpenAI, "/v1/chat/completions", `{"model":"gpt","messages":[]}`, 256,
			`{"model":"gpt","messages":[],"max_tokens":256}`,
			RequestInfo{Model: "gpt", MaxTokens: 256}},
		{"openai larger", KindOpenAI, "/v1/chat/completions", `{"model":"gpt","max_tokens":100000}`, 256,
			`{"model":"gpt","max_tokens":256}`,
			RequestInfo{Model: "gpt", MaxTokens: 256}},
		{"openai smaller kept", KindOpenAI, "/v1/chat/completions", `{"model":"gpt","max_tokens":16}`, 256,
			`{"model":"gpt","max_tokens":16}`,
			RequestInfo{Model: "gpt", MaxTokens: 16}},
		{"openai null max_tokens", KindOpenAI, "/v1/chat/completions", `{"model":"gpt","max_tokens":null}`, 256,
			`{"model":"gpt","max_tokens":256}`,
			RequestInfo{Model: "gpt", MaxTokens: 256}},
		{"openai max_completion_tokens larger", KindOpenAI, "/v1/chat/completions", `{"model":"o","max_completion_tokens":9000}`, 300,
			`{"model":"o","max_completion_tokens":300,"max_tokens":300}`,
			RequestInfo{Model: "o", MaxTokens: 300}},
		{"openai max_completion_tokens smaller wins", KindOpenAI, "/v1/chat/completions", `{"model":"o","max_tokens":200,"max_completion_tokens":40}`, 300,
			`{"model":"o","max_tokens":40,"max_completion_tokens":40}`,
			RequestInfo{Model: "o", MaxTokens: 40}},
		{"llama.cpp n_predict unlimited", KindOpenAI, "/v1/completions", `{"prompt":"abcdefgh","max_tokens":10,"n_predict":-1}`, 300,
			`{"prompt":"abcdefgh","max_tokens":10,"n_predict":10}`,
			RequestInfo{MaxTokens: 10, PromptEstimate: 2}},
		{"openai n splits the budget", KindOpenAI, "/v1/chat/completions", `{"model":"m","n":4}`, 100,
			`{"model":"m","n":4,"max_tokens":25}`,
			RequestInfo{Model: "m", MaxTokens: 25, Choices: 4}},
		{"openai best_of counts", KindOpenAI, "/v1/completions", `{"model":"m","n":2,"best_of":5,"max_tokens":50}`, 100,
			`{"model":"m","n":2,"best_of":5,"max_tokens":20}`,
			RequestInfo{Model: "m", MaxTokens: 20, Choices: 5}},
		{"openai stream adds include_usage", KindOpenAI, "/v1/chat/completions", `{"model":"m","stream":true}`, 10,
			`{"model":"m","stream":true,"max_tokens":10,"stream_options":{"include_usage":true}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 10, InjectedUsage: true}},
		{"openai stream include_usage false", KindOpenAI, "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":false}}`, 10,
			`{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":10}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 10, InjectedUsage: true}},
		{"openai stream merges stream_options", KindOpenAI, "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":true}}`, 10,
			`{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":true,"include_usage":true},"max_tokens":10}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 10, InjectedUsage: true}},
		{"openai stream client asked usage", KindOpenAI, "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, 10,
			`{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":10}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: 10}},
		{"openai stream null stream_options", KindOpenAI, "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":null}`, Unlimited,
			`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
			RequestInfo{Model: "m", Stream: true, MaxTokens: Unlimited, InjectedUsage: true}},
		{"openai stream false leaves stream_options", KindOpenAI, "/v1/chat/completions", `{"model":"m","stream":false}`, 10,
			`{"model":"m","stream":false,"max_tokens":10}`,
			RequestInfo{Model: "m", MaxTokens: 10}},
		// A list of prompts is a batch: every prompt gets n sequences, and
		// the budget is shared by all of them.
		{"openai prompt list multiplies", KindOpenAI, "/v1/completions", `{"model":"m","prompt":["a","b","c","d"],"max_tokens":100}`, 100,
			`{"model":"m","prompt":["a","b","c","d"],"max_tokens":25}`,
			RequestInfo{Model: "m", MaxTokens: 25, Choices: 4, Prompts: 4, PromptEstimate: 1}},
		{"openai prompt list times n and best_of", KindOpenAI, "/v1/completions", `{"model":"m","prompt":["a","b"],"n":2,"best_of":3}`, 600,
			`{"model":"m","prompt":["a","b"],"n":2,"best_of":3,"max_tokens":100}`,
			RequestInfo{Model: "m", MaxTokens: 100, Choices: 6, Prompts: 2, PromptEstimate: 1}},
		{"openai token lists are prompts", KindOpenAI, "/v1/completions", `{"model":"m","prompt":[[1,2,3],[4,5]]}`, 100,
			`{"model":"m","prompt":[[1,2,3],[4,5]],"max_tokens":50}`,
			RequestInfo{Model: "m", MaxTokens: 50, Choices: 2, Prompts: 2, PromptEstimate: 5}},
		{"openai one token list is one prompt", KindOpenAI, "/v1/completions", `{"model":"m","prompt":[1,2,3]}`, 100,
			`{"model":"m","prompt":[1,2,3],"max_tokens":100}`,
			RequestInfo{Model: "m", MaxTokens: 100, PromptEstimate: 3}},
		{"llama.cpp n_cmpl multiplies", KindOpenAI, "/v1/chat/completions", `{"model":"m","n_cmpl":3}`, 30,
			`{"model":"m","n_cmpl":3,"max_tokens":10}`,
			RequestInfo{Model: "m", MaxTokens: 10, Choices: 3}},
		{"openai embeddings input list", KindOpenAI, "/v1/embeddings", `{"model":"e","input":["abcd","efgh","ijkl"]}`, 0,
			`{"model":"e","input":["abcd","efgh","ijkl"]}`,
			RequestInfo{Model: "e", MaxTokens: Unlimited, Prompts: 3, PromptEstimate: 3}},
		{"openai embeddings untouched", KindOpenAI, "/v1/embeddings", `{"model":"e","input":"abcdefgh"}`, 0,
			`{"model":"e","input":"abcdefgh"}`,
			RequestInfo{Model: "e", MaxTokens: Unlimited, PromptEstimate: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, info, err := PrepareRequest(tt.kind, tt.route, []byte(tt.body), tt.max)
			if err != nil {
				t.Fatalf("PrepareRequest: %v", err)
			}
			if string(got) != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", got, tt.wantBody)
			}
			want := tt.want
			want.Kind, want.Route = tt.kind, tt.route
			want.Endpoint, _ = Route(tt.kind, tt.route)
			if want.Choices == 0 {
				want.Choices = 1
			}
			if want.Prompts == 0 {
				want.Prompts = 1
			}
			if want.Prompt == (PromptShape{}) {
				want.Prompt = info.Prompt // sized in TestPromptShape
			}
			if info != want {
				t.Errorf("info\n got %+v\nwant %+v", info, want)
			}
			// The rewritten body is stable: preparing it again changes
			// nothing and gives the same limit.
			again, info2, err := PrepareRequest(tt.kind, tt.route, got, tt.max)
			if err != nil || string(again) != string(got) || info2.MaxTokens != info.MaxTokens || info2.Stream != info.Stream {
				t.Errorf("second pass: %v, %s, %+v", err, again, info2)
			}
		})
	}
}

func TestPrepareRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		route string
		body  string
		max   int64
		want  error
		field string
	}{
		{"invalid JSON", KindOllama, "/api/generate", `{"model":"m",}`, 10, ErrInvalidRequest, ""},
		{"truncated JSON", KindOpenAI, "/v1/chat/completions", `{"model":"m"`, 10, ErrInvalidRequest, ""},
		{"empty", KindOllama, "/api/chat", ``, 10, ErrInvalidRequest, ""},
		{"array", KindOllama, "/api/chat", `[1]`, 10, ErrInvalidRequest, ""},
		{"trailing data", KindOllama, "/api/chat", `{"model":"m"} {"stream":true}`, 10, ErrInvalidRequest, ""},
		{"duplicate stream", KindOllama, "/api/chat", `{"model":"m","stream":false,"stream":true}`, 10, ErrInvalidRequest, "stream"},
		{"case variant options", KindOllama, "/api/chat", `{"model":"m","Options":{"num_predict":-1}}`, 10, ErrInvalidRequest, "Options"},
		{"long s variant stream", KindOllama, "/api/chat", `{"model":"m","ſtream":true}`, 10, ErrInvalidRequest, "ſtream"},
		{"duplicate num_predict", KindOllama, "/api/chat", `{"options":{"num_predict":1,"num_predict":-1}}`, 10, ErrInvalidRequest, "options.num_predict"},
		{"options not object", KindOllama, "/api/chat", `{"options":"fast"}`, 10, ErrInvalidRequest, "options"},
		{"num_predict string", KindOllama, "/api/chat", `{"options":{"num_predict":"5"}}`, 10, ErrInvalidRequest, "options.num_predict"},
		{"stream string", KindOpenAI, "/v1/chat/completions", `{"stream":"true"}`, 10, ErrInvalidRequest, "stream"},
		{"model number", KindOpenAI, "/v1/chat/completions", `{"model":7}`, 10, ErrInvalidRequest, "model"},
		{"max_tokens string", KindOpenAI, "/v1/chat/completions", `{"max_tokens":"100000"}`, 10, ErrInvalidRequest, "max_tokens"},
		{"include_usage string", KindOpenAI, "/v1/chat/completions", `{"stream":true,"stream_options":{"include_usage":"no"}}`, 10, ErrInvalidRequest, "stream_options.include_usage"},
		{"stream_options array", KindOpenAI, "/v1/chat/completions", `{"stream":true,"stream_options":[]}`, 10, ErrInvalidRequest, "stream_options"},
		{"n string", KindOpenAI, "/v1/chat/completions", `{"n":"3"}`, 10, ErrInvalidRequest, "n"},
		{"prompt list too long for budget", KindOpenAI, "/v1/completions", `{"prompt":["a","b","c"],"n":4}`, 11, ErrBudgetExhausted, ""},
		{"prompt mixes ids and strings", KindOpenAI, "/v1/completions", `{"prompt":["a",1]}`, 10, ErrInvalidRequest, "prompt"},
		{"case variant prompt", KindOpenAI, "/v1/completions", `{"Prompt":["a","b"]}`, 10, ErrInvalidRequest, "Prompt"},
		{"case variant n_cmpl", KindOpenAI, "/v1/completions", `{"N_cmpl":9}`, 10, ErrInvalidRequest, "N_cmpl"},
		{"too many sequences", KindOpenAI, "/v1/completions", `{"prompt":["a","b"],"n":3000}`, Unlimited, ErrInvalidRequest, ""},
		{"no budget left", KindOllama, "/api/generate", `{"model":"m"}`, 0, ErrBudgetExhausted, ""},
		{"n too large for budget", KindOpenAI, "/v1/chat/completions", `{"n":20}`, 10, ErrBudgetExhausted, ""},
		{"unmetered route", KindOllama, "/api/pull", `{"model":"m"}`, 10, ErrUnsupportedRoute, ""},
		{"unknown kind", "tgi", "/generate", `{}`, 10, ErrUnsupportedRoute, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _, err := PrepareRequest(tt.kind, tt.route, []byte(tt.body), tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if body != nil {
				t.Errorf("body returned with an error: %s", body)
			}
			var re *RequestError
			if errors.As(err, &re) {
				if re.Field != tt.field || re.StatusCode() != 400 {
					t.Errorf("RequestError field %q status %d, want field %q", re.Field, re.StatusCode(), tt.field)
				}
			} else if tt.want == ErrInvalidRequest {
				t.Errorf("error %v is not a *RequestError", err)
			}
		})
	}
}

// The prompt is sized without decoding it, and every shape that carries
// prompt tokens counts: text, token IDs (OpenAI lists, Ollama's context),
// messages, tools, inline media.
func TestPromptShape(t *testing.T) {
	tests := []struct {
		name, meter, body string
		want              PromptShape
		bound1, bound2    int64 // Bound(1), Bound(2)
	}{
		{"generate", "ollama.generate", `{"model":"m","prompt":"abcdefgh","system":"xy"}`,
			PromptShape{TextBytes: 10, Items: 1}, 18, 13},
		{"ollama context ids", "ollama.generate", `{"model":"m","prompt":"","context":[1,2,3,4,5]}`,
			PromptShape{TokenIDs: 5, Items: 1}, 13, 13},
		{"ollama images", "ollama.generate", `{"model":"m","prompt":"ab","images":["AAAA","BBBB"]}`,
			PromptShape{TextBytes: 2, Items: 1, Media: 2}, 2 + 8 + 2*MediaTokens, 1 + 8 + 2*MediaTokens},
		{"chat messages and parts", "openai.chat",
			`{"model":"m","messages":[{"role":"system","content":"abcd"},{"role":"user","content":[{"type":"text","text":"efgh"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`,
			PromptShape{TextBytes: 6 + 4 + 4 + 4 + 4 + 9, Items: 2, Media: 1}, 0, 0},
		{"escapes counted as written", "ollama.chat", `{"messages":[{"role":"user","content":"\u00e9\n"}]}`,
			PromptShape{TextBytes: 4 + 8, Items: 1}, 0, 0},
		{"tools are prompt", "openai.chat", `{"messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`,
			PromptShape{TextBytes: int64(len(`[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`))}, 0, 0},
		{"token list batch", "openai.completions", `{"prompt":[[1,2],[3,4,5]]}`,
			PromptShape{TokenIDs: 5, Items: 1}, 13, 13},
		{"embeddings", "openai.embeddings", `{"input":["abcd","efgh"]}`,
			PromptShape{TextBytes: 8, Items: 1}, 16, 12},
		{"data url string", "openai.chat", `{"messages":[{"role":"user","content":"data:image/png;base64,AAAA"}]}`,
			PromptShape{TextBytes: 4, Items: 1, Media: 1}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseMetered(tt.meter, "/x", []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			got := r.Info().Prompt
			if got != tt.want {
				t.Errorf("shape %+v, want %+v", got, tt.want)
			}
			if tt.bound1 > 0 && (got.Bound(1) != tt.bound1 || got.Bound(2) != tt.bound2) {
				t.Errorf("Bound(1) = %d, Bound(2) = %d; want %d, %d", got.Bound(1), got.Bound(2), tt.bound1, tt.bound2)
			}
			// The bound is never below the billing estimate.
			if info := r.Info(); got.Bound(4) < info.PromptEstimate {
				t.Errorf("Bound(4) %d below the estimate %d", got.Bound(4), info.PromptEstimate)
			}
		})
	}
	if _, err := ParseMetered("tgi.generate", "/generate", []byte(`{}`)); !errors.Is(err, ErrUnsupportedRoute) {
		t.Errorf("unknown meter: %v", err)
	}
}
