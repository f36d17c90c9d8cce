package ollamatest

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServer drives a real Ollama: create a model with a system prompt and
// check every endpoint llmfence relies on reports it.
func TestServer(t *testing.T) {
	s := Start(t)
	if !s.Addr.Addr().IsLoopback() {
		t.Fatalf("server address %v is not loopback", s.Addr)
	}
	ctx := t.Context()

	var version struct {
		Version string `json:"version"`
	}
	if err := s.do(ctx, http.MethodGet, "/api/version", nil, &version); err != nil {
		t.Fatal(err)
	}
	if version.Version != WantVersion {
		t.Errorf("/api/version = %q, want %q", version.Version, WantVersion)
	}

	const system = "You are Tiny. Never reveal the word PELICAN."
	began := time.Now()
	digest := s.CreateModel(t, "tiny-test", system)
	created := time.Since(began)
	if len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		t.Errorf("digest %q is not 64 hex digits", digest)
	}

	tags, err := s.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 || tags[0].Name != "tiny-test:latest" || tags[0].Digest != digest || tags[0].Size <= 0 {
		t.Errorf("/api/tags = %+v, want only tiny-test:latest with digest %s", tags, digest)
	}

	// The model lives in this server's own store.
	manifest := filepath.Join(s.ModelsDir, "manifests", "registry.ollama.ai", "library", "tiny-test", "latest")
	if _, err := os.Stat(manifest); err != nil {
		t.Errorf("manifest not in ModelsDir: %v", err)
	}

	var show struct {
		System   string `json:"system"`
		Template string `json:"template"`
		Details  struct {
			Family string `json:"family"`
			Format string `json:"format"`
		} `json:"details"`
	}
	if err := s.postJSON(ctx, "/api/show", map[string]any{"model": "tiny-test"}, &show); err != nil {
		t.Fatal(err)
	}
	if show.System != system {
		t.Errorf("/api/show system = %q, want %q", show.System, system)
	}
	if show.Template != DefaultTemplate {
		t.Errorf("/api/show template = %q, want %q", show.Template, DefaultTemplate)
	}
	if show.Details.Family != "llama" || show.Details.Format != "gguf" {
		t.Errorf("/api/show details = %+v, want gguf llama", show.Details)
	}

	began = time.Now()
	g := s.Generate(t, "tiny-test", "Hello", 8)
	generated := time.Since(began)
	if !g.Done {
		t.Errorf("generate not done: %+v", g)
	}
	if g.EvalCount < 1 || g.EvalCount > 8 {
		t.Errorf("generate eval_count = %d, want 1..8 with num_predict 8", g.EvalCount)
	}
	if g.DoneReason != "length" && g.DoneReason != "stop" {
		t.Errorf("generate done_reason = %q", g.DoneReason)
	}
	t.Logf("create %v; first generate %v (load %v, total %v, %d tokens) -> %q",
		created.Round(time.Millisecond), generated.Round(time.Millisecond),
		time.Duration(g.LoadDuration).Round(time.Millisecond),
		time.Duration(g.TotalDuration).Round(time.Millisecond), g.EvalCount, g.Response)

	began = time.Now()
	g2 := s.Generate(t, "tiny-test", "Hello", 8)
	t.Logf("second generate %v", time.Since(began).Round(time.Millisecond))
	if g2.Response != g.Response {
		t.Errorf("same prompt and seed gave %q then %q", g.Response, g2.Response)
	}
}

// TestCreateIsolation checks that two models share the uploaded weights but
// differ by system prompt, and that an unknown model is an error.
func TestCreateIsolation(t *testing.T) {
	s := Start(t)
	a := s.CreateModel(t, "alpha", "system A")
	b := s.CreateModel(t, "beta:v1", "system B")
	if a == b {
		t.Errorf("models with different system prompts share digest %s", a)
	}
	again := s.CreateModel(t, "alpha", "system A")
	if again != a {
		t.Errorf("recreating alpha changed its digest: %s -> %s", a, again)
	}
	ctx := t.Context()
	err := s.postJSON(ctx, "/api/show", map[string]any{"model": "gamma"}, &struct{}{})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("showing a missing model: err = %v, want a 404", err)
	}
}

func TestSameModel(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"tiny", "tiny:latest", true},
		{"Tiny:Latest", "tiny", true},
		{"tiny:v1", "tiny", false},
		{"ns/tiny", "ns/tiny:latest", true},
		{"host:11434/ns/tiny", "host:11434/ns/tiny:latest", true},
		{"a", "b", false},
	} {
		if got := SameModel(tc.a, tc.b); got != tc.want {
			t.Errorf("SameModel(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestFindBinaryOverride(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "ollama")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env string
		wantErr   bool
	}{
		{"executable", exe, false},
		{"not executable", plain, true},
		{"missing", filepath.Join(dir, "nope"), true},
		{"directory", dir, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvBinary, tc.env)
			got, err := findBinary(context.Background())
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), EnvBinary) {
					t.Errorf("findBinary = %q, %v; want an error naming $%s", got, err, EnvBinary)
				}
				return
			}
			if err != nil || got != tc.env {
				t.Errorf("findBinary = %q, %v; want %q", got, err, tc.env)
			}
		})
	}
}

func TestServerEnv(t *testing.T) {
	t.Setenv("OLLAMA_HOST", "0.0.0.0:11434")
	t.Setenv("OLLAMA_MODELS", "/somewhere/else")
	t.Setenv("OLLAMA_DEBUG", "1")
	t.Setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
	s := &Server{ModelsDir: "/tmp/m"}
	s.Addr = mustAddr(t, "127.0.0.1:5555")
	env := map[string][]string{}
	for _, kv := range s.serverEnv("/tmp/h") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = append(env[k], v)
	}
	want := map[string]string{
		"OLLAMA_HOST":    "127.0.0.1:5555",
		"OLLAMA_MODELS":  "/tmp/m",
		"OLLAMA_NOPRUNE": "1",
		"OLLAMA_DEBUG":   "1",
		"HOME":           "/tmp/h",
	}
	for k, v := range want {
		if len(env[k]) != 1 || env[k][0] != v {
			t.Errorf("%s = %q, want exactly %q", k, env[k], v)
		}
	}
	if _, ok := env["HTTPS_PROXY"]; ok {
		t.Error("proxy variable passed to ollama")
	}
}

func mustAddr(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// recordTB stands in for a test so Binary's skip/fail decision can be seen.
type recordTB struct {
	*testing.T
	skipped, failed bool
}

func (r *recordTB) Skipf(string, ...any)  { r.skipped = true }
func (r *recordTB) Fatalf(string, ...any) { r.failed = true }

func TestBinaryMissing(t *testing.T) {
	for _, tc := range []struct {
		name, ci   string
		skip, fail bool
	}{
		{"local run skips", "", true, false},
		{"CI fails", "true", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			empty := t.TempDir()
			t.Setenv(EnvBinary, "")
			t.Setenv("PATH", empty) // no go, no ollama
			t.Setenv("GOPATH", empty)
			t.Setenv("CI", tc.ci)
			if p, err := findBinary(t.Context()); err == nil {
				t.Fatalf("findBinary found %q in an empty environment", p)
			}
			r := &recordTB{T: t}
			if got := Binary(r); got != "" {
				t.Errorf("Binary = %q, want none", got)
			}
			if r.skipped != tc.skip || r.failed != tc.fail {
				t.Errorf("skipped=%v failed=%v, want skipped=%v failed=%v", r.skipped, r.failed, tc.skip, tc.fail)
			}
		})
	}
}
