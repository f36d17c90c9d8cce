package route

import (
	"testing"
)

type decideCase struct {
	kind, method, raw string
	class             Class
	status            int
	path, route       string
}

func TestDecideSpellings(t *testing.T) {
	cases := []decideCase{
		// Ollama: plain routes.
		{"ollama", "POST", "/api/chat", Inference, 0, "/api/chat", "ollama.chat"},
		{"ollama", "POST", "/api/generate", Inference, 0, "/api/generate", "ollama.generate"},
		{"ollama", "POST", "/api/embed", Inference, 0, "/api/embed", "ollama.embed"},
		{"ollama", "POST", "/v1/chat/completions", Inference, 0, "/v1/chat/completions", "ollama.openai.chat"},
		{"ollama", "GET", "/api/tags", Listing, 0, "/api/tags", "ollama.tags"},
		{"ollama", "GET", "/v1/models/qwen3%3A8b", Listing, 0, "/v1/models/qwen3:8b", "ollama.openai.model"},
		{"ollama", "POST", "/api/pull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "DELETE", "/api/delete", Admin, 0, "/api/delete", "ollama.delete"},
		{"ollama", "POST", "/api/blobs/sha256:abc", Admin, 0, "/api/blobs/sha256:abc", "ollama.blobs"},
		{"ollama", "GET", "/debug/pprof/goroutine", Admin, 0, "/debug/pprof/goroutine", "ollama.pprof"},
		// Ollama: spellings of /api/pull all land on the admin route or are refused.
		{"ollama", "POST", "//api/pull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api//pull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api/pull/", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api/./pull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api/../api/pull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api/chat/../pull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/v1/chat/completions/../../../api/pull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api/%70ull", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api/pull?x=1", Admin, 0, "/api/pull", "ollama.pull"},
		{"ollama", "POST", "/api/%2e%2e/api/pull", Denied, 400, "", ""},
		{"ollama", "POST", "/api/chat%2f..%2fpull", Denied, 400, "", ""},
		{"ollama", "POST", "/api%2fpull", Denied, 400, "", ""},
		{"ollama", "POST", "/api\\pull", Denied, 400, "", ""},
		{"ollama", "POST", "/API/PULL", Denied, 404, "/API/PULL", ""},
		{"ollama", "POST", "/Api/Pull", Denied, 404, "/Api/Pull", ""},
		{"ollama", "POST", "/api/%50ull", Denied, 404, "/api/Pull", ""},
		{"ollama", "POST", "/api/CHAT", Denied, 404, "/api/CHAT", ""},
		{"ollama", "POST", "/../api/pull", Denied, 400, "", ""},
		// Ollama: methods.
		{"ollama", "GET", "/api/chat", Denied, 405, "/api/chat", "ollama.chat"},
		{"ollama", "GET", "/api/pull", Denied, 405, "/api/pull", "ollama.pull"},
		{"ollama", "post", "/api/chat", Denied, 405, "/api/chat", "ollama.chat"},
		{"ollama", "OPTIONS", "/api/chat", Denied, 204, "/api/chat", "ollama.chat"},
		{"ollama", "OPTIONS", "/nope", Denied, 404, "/nope", ""},
		// Ollama: everything else denied.
		{"ollama", "POST", "/api/chatx", Denied, 404, "/api/chatx", ""},
		{"ollama", "POST", "/v1/messages", Denied, 404, "/v1/messages", ""},
		{"ollama", "POST", "/v1/images/generations", Denied, 404, "/v1/images/generations", ""},
		{"ollama", "GET", "/debug/pprof", Denied, 404, "/debug/pprof", ""},
		// vLLM.
		{"vllm", "POST", "/v1/chat/completions", Inference, 0, "/v1/chat/completions", "vllm.chat"},
		{"vllm", "POST", "/v1/chat/completions/", Inference, 0, "/v1/chat/completions", "vllm.chat"},
		{"vllm", "GET", "/v1/models", Listing, 0, "/v1/models", "vllm.models"},
		{"vllm", "POST", "/invocations", Admin, 0, "/invocations", "vllm.invocations"},
		{"vllm", "POST", "/v1/../invocations", Admin, 0, "/invocations", "vllm.invocations"},
		{"vllm", "POST", "/pause", Admin, 0, "/pause", "vllm.pause"},
		{"vllm", "POST", "//collective_rpc", Admin, 0, "/collective_rpc", "vllm.collective_rpc"},
		{"vllm", "POST", "/tokenize", Admin, 0, "/tokenize", "vllm.tokenize"},
		{"vllm", "GET", "/metrics", Admin, 0, "/metrics", "vllm.metrics"},
		{"vllm", "POST", "/V1/chat/completions", Denied, 404, "/V1/chat/completions", ""},
		{"vllm", "POST", "/v1/score", Denied, 404, "/v1/score", ""},
		{"vllm", "GET", "/docs", Denied, 404, "/docs", ""},
		// llama.cpp.
		{"llamacpp", "POST", "/v1/chat/completions", Inference, 0, "/v1/chat/completions", "llamacpp.chat"},
		{"llamacpp", "POST", "/chat/completions", Inference, 0, "/chat/completions", "llamacpp.chat.bare"},
		{"llamacpp", "POST", "/slots/0?action=save", Admin, 0, "/slots/0", "llamacpp.slots.action"},
		{"llamacpp", "POST", "/slots/1?action=erase", Admin, 0, "/slots/1", "llamacpp.slots.action"},
		{"llamacpp", "POST", "/props", Admin, 0, "/props", "llamacpp.props"},
		{"llamacpp", "POST", "/lora-adapters", Admin, 0, "/lora-adapters", "llamacpp.lora.apply"},
		{"llamacpp", "POST", "/completion", Denied, 404, "/completion", ""},
		{"llamacpp", "POST", "/slots", Denied, 405, "/slots", "llamacpp.slots"},
	}
	for _, c := range cases {
		d := mustTable(t, c.kind).Decide(c.method, c.raw)
		if d.Class != c.class || d.Status != c.status || d.Path != c.path || d.Route != c.route {
			t.Errorf("%s %s %q:\n got  class=%s status=%d path=%q route=%q (%s)\n want class=%s status=%d path=%q route=%q",
				c.kind, c.method, c.raw, d.Class, d.Status, d.Path, d.Route, d.Reason, c.class, c.status, c.path, c.route)
		}
		if d.Reason == "" {
			t.Errorf("%s %s %q: empty reason", c.kind, c.method, c.raw)
		}
		if (d.Class == Denied) != (d.Status != 0) {
			t.Errorf("%s %s %q: class %s with status %d", c.kind, c.method, c.raw, d.Class, d.Status)
		}
	}
}

func TestDecideAllowHeader(t *testing.T) {
	tb := mustTable(t, "ollama")
	if d := tb.Decide("PUT", "/api/tags"); d.Allow != "GET, HEAD, OPTIONS" {
		t.Errorf("Allow = %q", d.Allow)
	}
	d := tb.Decide("OPTIONS", "/api/blobs/sha256:1")
	if !d.Preflight || d.Allow != "HEAD, POST, OPTIONS" {
		t.Errorf("preflight = %+v", d)
	}
	if d := tb.Decide("POST", "/api/chat"); d.Preflight || d.Allow != "" {
		t.Errorf("plain request carries preflight data: %+v", d)
	}
}
