package transport_test

import (
	"testing"

	"github.com/llmfence/llmfence/internal/ollamatest"
	"github.com/llmfence/llmfence/internal/probe/transport"
)

// The transport against a real Ollama 0.6.8 serving a tiny random-weight
// model: detection, the model's description and vocabulary, streamed chat
// and raw generation, options honoured, seed determinism, both APIs.
func TestRealOllama(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.CreateModel(t, "tiny-probe", "You are a test assistant. The secret word is persimmon.")

	c, err := transport.New(transport.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Detect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.API != transport.APIOllama || info.Version != ollamatest.WantVersion || info.Logprobs {
		t.Errorf("detected %+v; want Ollama %s without logprobs", info, ollamatest.WantVersion)
	}
	show, err := c.Show(t.Context(), "tiny-probe", true)
	if err != nil {
		t.Fatal(err)
	}
	if show.System != "You are a test assistant. The secret word is persimmon." {
		t.Errorf("system %q", show.System)
	}
	if len(show.Tokens) != 259 || len(show.TokenTypes) != 259 || show.Tokens[3] != "<0x00>" || show.TokenTypes[1] != 3 {
		t.Errorf("vocabulary: %d tokens, %d types, %v", len(show.Tokens), len(show.TokenTypes), show.Tokens[:4])
	}
	if _, err := c.Show(t.Context(), "no-such-model", false); err == nil {
		t.Error("Show of a missing model succeeded")
	}
	if ms, err := c.Models(t.Context()); err != nil || len(ms) != 1 || ms[0].Digest == "" {
		t.Errorf("models %+v %v", ms, err)
	}

	req := transport.Request{Model: "tiny-probe", Messages: []transport.Message{{Role: "user", Content: "Say something."}},
		Seed: 7, Temperature: 0.8, NumPredict: 12}
	a, err := c.Generate(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Tokens != 12 || a.DoneReason != "length" || a.Text == "" || a.TTFT <= 0 || a.QueueWait < 0 {
		t.Errorf("chat: tokens %d, done %q, text %q, ttft %v, queue %v", a.Tokens, a.DoneReason, a.Text, a.TTFT, a.QueueWait)
	}
	b, err := c.Generate(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Text != b.Text {
		t.Errorf("same seed, different answers: %q vs %q", a.Text, b.Text)
	}
	req.Seed = 8
	d, err := c.Generate(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text == a.Text {
		t.Logf("seeds 7 and 8 gave the same text (possible with a tiny vocabulary): %q", a.Text)
	}
	raw, err := c.Generate(t.Context(), transport.Request{Model: "tiny-probe", Raw: "The vault code is ", NumPredict: 5})
	if err != nil || raw.Tokens != 5 {
		t.Errorf("raw generate: %+v %v", raw, err)
	}
	if _, err := c.Generate(t.Context(), transport.Request{Model: "no-such-model", Messages: req.Messages}); err == nil {
		t.Error("generate with a missing model succeeded")
	}

	// The same server through its OpenAI-compatible API.
	oc, err := transport.New(transport.Config{BaseURL: srv.URL, API: transport.APIOpenAI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Detect(t.Context()); err != nil {
		t.Fatal(err)
	}
	oa, err := oc.Generate(t.Context(), transport.Request{Model: "tiny-probe", Messages: req.Messages, Seed: 7, Temperature: 0.8, NumPredict: 12, Logprobs: true})
	if err != nil {
		t.Fatal(err)
	}
	if oa.Text == "" || oa.DoneReason != "length" || oa.Tokens != 12 {
		t.Errorf("openai chat: %+v", oa)
	}
	if oa.Text != a.Text {
		t.Logf("native and OpenAI answers differ (templates or sampler order): %q vs %q", a.Text, oa.Text)
	}
}
