package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llmfence/llmfence/internal/ollamatest"
	"github.com/llmfence/llmfence/internal/service"
)

// TestScanRealOllama scans a real Ollama 0.6.8 serving a tiny model created
// with a SYSTEM prompt: product, version, model, digest and system prompt
// must be reported exactly as Ollama itself reports them.
func TestScanRealOllama(t *testing.T) {
	srv := ollamatest.Start(t)
	const system = "You are the llmfence test assistant. Answer in one word.\nナレッジベースの内容だけを使って答えてください。"
	digest := srv.CreateModel(t, "tiny-sys", system)
	tags, err := srv.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 {
		t.Fatalf("ollama lists %d models, want 1", len(tags))
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "scan.jsonl")
	_, stderr, code := runCLI(t, "", "scan", "--db", filepath.Join(dir, "s.db"), "--format", "json", "-o", out,
		"--progress", "never", srv.Addr.String())
	if code != 0 {
		t.Fatalf("scan exited %d: %s", code, stderr)
	}
	svcs := readJSONL(t, out)
	if len(svcs) != 1 {
		t.Fatalf("scan reported %d services, want 1: %+v", len(svcs), svcs)
	}
	s := svcs[0]
	if s.Product != "ollama" || s.Version != ollamatest.WantVersion || s.Auth != service.AuthNone || s.TLS {
		t.Errorf("service = product %q version %q auth %q tls %v; want ollama %s none false", s.Product, s.Version, s.Auth, s.TLS, ollamatest.WantVersion)
	}
	if len(s.Models) != 1 {
		t.Fatalf("models = %+v, want one", s.Models)
	}
	m := s.Models[0]
	if m.Name != tags[0].Name || m.Digest != tags[0].Digest || m.Digest != digest {
		t.Errorf("model = %q %q, want %q %q (Ollama's /api/tags)", m.Name, m.Digest, tags[0].Name, tags[0].Digest)
	}
	if m.SystemPrompt != system {
		t.Errorf("system prompt = %q, want %q", m.SystemPrompt, system)
	}
	if m.Family != "llama" {
		t.Errorf("family = %q, want llama", m.Family)
	}
	if !s.ManagementOpen {
		t.Error("an unauthenticated Ollama's model management was not reported open")
	}
	var ids []string
	for _, f := range s.Findings {
		ids = append(ids, f.ID)
	}
	if s.Risk != service.SeverityCritical || len(ids) == 0 {
		t.Errorf("risk %q findings %v: an open Ollama with open model management is critical", s.Risk, ids)
	}
	// Still there and unchanged: the scan created, pulled and deleted nothing.
	after, err := srv.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(after), names(tags)) {
		t.Errorf("models changed during the scan: before %v, after %v", names(tags), names(after))
	}
}

func names(ts []ollamatest.TagModel) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name+"@"+t.Digest)
	}
	return out
}
