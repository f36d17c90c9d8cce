package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fake serves fixed routes.
func fake(t *testing.T, routes map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := routes[r.Method+" "+r.URL.Path]; ok {
			h(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func ollamaVersion(v string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, `{"version":%q}`, v) }
}

func newClient(t *testing.T, url string, lim Limits) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: url, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Detect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDetect(t *testing.T) {
	o := fake(t, map[string]http.HandlerFunc{"GET /api/version": ollamaVersion("0.12.11")})
	c, _ := New(Config{BaseURL: o.URL})
	srv, err := c.Detect(t.Context())
	if err != nil || srv.API != APIOllama || srv.Version != "0.12.11" || !srv.Logprobs {
		t.Errorf("ollama: %+v %v", srv, err)
	}
	old := fake(t, map[string]http.HandlerFunc{"GET /api/version": ollamaVersion("0.6.8")})
	c, _ = New(Config{BaseURL: old.URL})
	if srv, _ := c.Detect(t.Context()); srv.Logprobs {
		t.Errorf("0.6.8 has no logprobs: %+v", srv)
	}
	oa := fake(t, map[string]http.HandlerFunc{"GET /v1/models": func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"object":"list","data":[{"id":"m1"}]}`)
	}})
	c, _ = New(Config{BaseURL: oa.URL})
	if srv, err := c.Detect(t.Context()); err != nil || srv.API != APIOpenAI {
		t.Errorf("openai: %+v %v", srv, err)
	}
	web := fake(t, map[string]http.HandlerFunc{"GET /": func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>") }})
	c, _ = New(Config{BaseURL: web.URL})
	if _, err := c.Detect(t.Context()); !errors.Is(err, ErrNotLLM) {
		t.Errorf("plain web server: %v", err)
	}
	locked := fake(t, map[string]http.HandlerFunc{"GET /api/version": func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"invalid API key"}`, http.StatusUnauthorized)
	}})
	c, _ = New(Config{BaseURL: locked.URL})
	if _, err := c.Detect(t.Context()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("401: %v", err)
	}
	// A closed port.
	ln := httptest.NewServer(http.NotFoundHandler())
	url := ln.URL
	ln.Close()
	c, _ = New(Config{BaseURL: url})
	if _, err := c.Detect(t.Context()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v", err)
	}
}

func TestKeyAndNoRedirects(t *testing.T) {
	var auth string
	srv := fake(t, map[string]http.HandlerFunc{
		"GET /api/version": func(w http.ResponseWriter, r *http.Request) {
			auth = r.Header.Get("Authorization")
			io.WriteString(w, `{"version":"0.6.8"}`)
		},
		"POST /api/chat": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.2:1/elsewhere", http.StatusFound)
		},
	})
	c, _ := New(Config{BaseURL: srv.URL, APIKey: "lf_abc_def", UserAgent: "llmfence/test"})
	if _, err := c.Detect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer lf_abc_def" {
		t.Errorf("Authorization %q", auth)
	}
	_, err := c.Generate(t.Context(), Request{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}})
	if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "302") {
		t.Errorf("redirect answered %v; want the 302 reported, not followed", err)
	}
}

func ndjson(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, l := range lines {
			io.WriteString(w, l+"\n")
			w.(http.Flusher).Flush()
		}
	}
}

func TestOllamaStream(t *testing.T) {
	srv := fake(t, map[string]http.HandlerFunc{
		"GET /api/version": ollamaVersion("0.12.11"),
		"POST /api/chat": ndjson(
			`{"message":{"role":"assistant","content":"Hel"},"done":false,"logprobs":[{"token":"Hel","logprob":-0.5}]}`,
			`{"message":{"role":"assistant","content":"lo"},"done":false,"logprobs":[{"token":"lo","logprob":-0.25}]}`,
			`{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":2,"prompt_eval_count":7,"total_duration":900000000,"load_duration":100000000,"prompt_eval_duration":200000000,"eval_duration":300000000}`),
	})
	c := newClient(t, srv.URL, Limits{})
	first := time.Duration(0)
	resp, err := c.Generate(t.Context(), Request{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}, Logprobs: true, NumPredict: 10,
		OnFirstToken: func(d time.Duration) { first = d }})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Hello" || resp.Tokens != 2 || resp.PromptTokens != 7 || resp.DoneReason != "stop" || len(resp.Logprobs) != 2 {
		t.Errorf("resp %+v", resp)
	}
	if resp.QueueWait != 300*time.Millisecond {
		t.Errorf("queue wait %v, want 300ms (total - load - prompt eval - eval)", resp.QueueWait)
	}
	if first <= 0 || resp.TTFT != first {
		t.Errorf("first token %v, TTFT %v", first, resp.TTFT)
	}
}

func TestOllamaBadStreams(t *testing.T) {
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for r.Context().Err() == nil {
			if _, err := io.WriteString(w, `{"message":{"content":"x "},"done":false}`+"\n"); err != nil {
				return
			}
		}
	}
	silent := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	huge := func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"message":{"content":"`+strings.Repeat("y", 3000)+`"},"done":false}`+"\n")
	}
	cases := []struct {
		name    string
		h       http.HandlerFunc
		lim     Limits
		wantErr error
		wantCut string
	}{
		{"garbage", ndjson("\x00\x01garbage{{{"), Limits{}, ErrProtocol, ""},
		{"cut short", ndjson(`{"message":{"content":"a"},"done":false}`), Limits{}, ErrProtocol, ""},
		{"error mid-stream", ndjson(`{"message":{"content":"a"},"done":false}`, `{"error":"runner crashed"}`), Limits{}, ErrServer, ""},
		{"endless", endless, Limits{ExtraChunks: 5}, nil, CutRunaway},
		{"answer cap", huge, Limits{MaxAnswerBytes: 1000}, nil, CutAnswerCap},
		{"line cap", huge, Limits{MaxLineBytes: 1000}, ErrProtocol, ""},
		{"silent", silent, Limits{IdleTimeout: 200 * time.Millisecond}, ErrSilent, ""},
		{"model missing", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"model 'nope' not found"}`)
		}, Limits{}, ErrModelNotFound, ""},
		{"busy", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(503)
			io.WriteString(w, `{"error":"server busy, please try again.  maximum pending requests exceeded"}`)
		}, Limits{}, ErrBusy, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fake(t, map[string]http.HandlerFunc{"GET /api/version": ollamaVersion("0.6.8"), "POST /api/chat": tc.h})
			c := newClient(t, srv.URL, tc.lim)
			start := time.Now()
			resp, err := c.Generate(t.Context(), Request{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}, NumPredict: 10})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if resp.Cut != tc.wantCut {
				t.Errorf("cut %q, want %q", resp.Cut, tc.wantCut)
			}
			if lim := c.Limits(); len(resp.Text) > lim.MaxAnswerBytes {
				t.Errorf("answer of %d bytes over the cap", len(resp.Text))
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
		})
	}
}

func TestOpenAIStream(t *testing.T) {
	var bodies []string
	srv := fake(t, map[string]http.HandlerFunc{
		"GET /v1/models": func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"data":[{"id":"m"}]}`) },
		"POST /v1/chat/completions": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			bodies = append(bodies, string(b))
			if strings.Contains(string(b), `"logprobs"`) {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":{"message":"logprobs is not supported"}}`)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, ": keep-alive\n\n")
			io.WriteString(w, `data: {"choices":[{"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`+"\n\n")
			io.WriteString(w, `data: {"choices":[{"delta":{"content":" there"},"finish_reason":"stop"}]}`+"\n\n")
			io.WriteString(w, `data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}`+"\n\n")
			io.WriteString(w, "data: [DONE]\n\n")
		},
		"POST /v1/completions": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"choices":[{"text":"continued","finish_reason":"length","logprobs":{"token_logprobs":[-1.5]}}],"usage":{"completion_tokens":1}}`)
		},
	})
	c := newClient(t, srv.URL, Limits{})
	resp, err := c.Generate(t.Context(), Request{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}, Logprobs: true, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Hi there" || resp.Tokens != 2 || resp.PromptTokens != 5 || resp.DoneReason != "stop" || resp.QueueWait != -1 {
		t.Errorf("resp %+v", resp)
	}
	if len(bodies) != 2 || !strings.Contains(bodies[1], `"seed":42`) || strings.Contains(bodies[1], "logprobs") {
		t.Errorf("want one retry without logprobs; bodies %q", bodies)
	}
	if c.Server().Logprobs {
		t.Error("server still marked as having logprobs")
	}
	resp, err = c.Generate(t.Context(), Request{Model: "m", Raw: "start", NumPredict: 1})
	if err != nil || resp.Text != "continued" || resp.DoneReason != "length" {
		t.Errorf("non-streamed completion: %+v %v", resp, err)
	}
}

// fakeBody is a RoundTripper that answers every request with body.
type fakeBody struct{ body string }

func (f fakeBody) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(f.body)), Request: r}, nil
}

// Whatever a server streams, the client returns within its limits and
// never panics.
func FuzzStreams(f *testing.F) {
	f.Add(`{"message":{"content":"a"},"done":false}`+"\n"+`{"done":true,"eval_count":1}`, true)
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", false)
	f.Add("\x00\xff\n\n\n", true)
	f.Fuzz(func(t *testing.T, body string, ollama bool) {
		api := APIOpenAI
		if ollama {
			api = APIOllama
		}
		lim := Limits{MaxAnswerBytes: 256, MaxLineBytes: 512, ExtraChunks: 4, MaxLogprobs: 8}
		c, err := New(Config{BaseURL: "http://127.0.0.1:9", API: api, HTTPClient: &http.Client{Transport: fakeBody{body}}, Limits: lim})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, _ := c.Generate(ctx, Request{Model: "m", Messages: []Message{{Role: "user", Content: "x"}}, NumPredict: 4, Logprobs: true})
		if len(resp.Text) > lim.MaxAnswerBytes || len(resp.Logprobs) > lim.MaxLogprobs {
			t.Fatalf("limits broken: %d bytes, %d logprobs", len(resp.Text), len(resp.Logprobs))
		}
	})
}
