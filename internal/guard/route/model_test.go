package route

import (
	"strings"
	"testing"
)

func TestNormalizeModel(t *testing.T) {
	cases := []struct {
		in, want string
		cloud    bool
	}{
		{"llama3", "llama3:latest", false},
		{" llama3 ", "llama3:latest", false},
		{"Llama3:8B", "llama3:8b", false},
		{"llama3.2:3b", "llama3.2:3b", false},
		{"library/llama3", "llama3:latest", false},
		{"registry.ollama.ai/library/llama3:8b", "llama3:8b", false},
		{"registry.ollama.ai/someone/model", "someone/model:latest", false},
		{"hf.co/org/repo:Q4_K_M", "hf.co/org/repo:q4_k_m", false},
		{"localhost:5000/m", "localhost:5000/m:latest", false},
		{"llama3:8b:local", "llama3:8b", false},
		{"llama3:local", "llama3:latest", false},
		{"gpt-oss:120b-cloud", "gpt-oss:120b-cloud", true},
		{"deepseek-v3.1:671b-cloud", "deepseek-v3.1:671b-cloud", true},
		{"GPT-OSS:120B-CLOUD", "gpt-oss:120b-cloud", true},
		{"glm-4.6:cloud", "glm-4.6:cloud", true},
		{"gpt-oss:20b:cloud", "gpt-oss:20b-cloud", true},
		{"gpt-oss:20b:CLOUD", "gpt-oss:20b-cloud", true},
		{"library/kimi-k2:1t-cloud", "kimi-k2:1t-cloud", true},
		{"foo-cloud", "foo-cloud:latest", false}, // no tag: Ollama does not treat it as cloud
	}
	for _, c := range cases {
		got, cloud, err := NormalizeModel(c.in)
		if err != nil || got != c.want || cloud != c.cloud {
			t.Errorf("NormalizeModel(%q) = %q, %v, %v; want %q, %v", c.in, got, cloud, err, c.want, c.cloud)
		}
	}
	bad := []string{"", "  ", "llama3@sha256:abc", "a b", "llama3:", "x:cloud:local", "x:local:cloud", "x-cloud:1b-cloud:local", "registry.ollama.ai/library/", "a//b", "m\x00"}
	for _, in := range bad {
		if got, _, err := NormalizeModel(in); err == nil {
			t.Errorf("NormalizeModel(%q) = %q, want error", in, got)
		}
	}
}

func TestModelAllowed(t *testing.T) {
	llama := []string{"llama3*", "qwen*"}
	cases := []struct {
		model      string
		globs      []string
		allowCloud bool
		want       bool
		reason     string
	}{
		{"llama3.2:3b", llama, false, true, "allowed by"},
		{"llama3", llama, false, true, "allowed by"},
		{"LLAMA3:8b", llama, false, true, "allowed by"},
		{"registry.ollama.ai/library/llama3:8b", llama, false, true, "allowed by"},
		{"qwen2.5:7b", llama, false, true, "allowed by"},
		{"mistral:7b", llama, false, false, "not among"},
		{"library/mistral", llama, false, false, "not among"},
		{"llama2:7b", llama, false, false, "not among"},
		// Cloud models refused regardless of globs unless allowed.
		{"llama3.3:70b-cloud", llama, false, false, "cloud"},
		{"qwen3-coder:480b-cloud", []string{"*"}, false, false, "cloud"},
		{"gpt-oss:120b-cloud", []string{"*"}, false, false, "cloud"},
		{"gpt-oss:20b:cloud", []string{"*"}, false, false, "cloud"},
		{"gpt-oss:120b-cloud", []string{"*"}, true, true, "allowed by"},
		{"gpt-oss:120b-cloud", []string{"gpt-oss:120b"}, true, false, "not among"},
		{"gpt-oss:120b-cloud", []string{"gpt-oss:*-cloud"}, true, true, "allowed by"},
		// Exact names.
		{"llama3", []string{"llama3"}, false, true, "allowed by"},
		{"llama3:latest", []string{"llama3"}, false, true, "allowed by"},
		{"llama3:8b", []string{"llama3"}, false, false, "not among"},
		{"llama3:8b", []string{"library/llama3:8b"}, false, true, "allowed by"},
		// "*" crosses "/" and ":".
		{"hf.co/org/repo:q4", []string{"*"}, false, true, "allowed by"},
		{"hf.co/org/repo:q4", []string{"hf.co/*"}, false, true, "allowed by"},
		{"hf.co/org/repo:q4", []string{"hf.co/other/*"}, false, false, "not among"},
		{"llama3:8b", []string{"llama?:8b"}, false, true, "allowed by"},
		{"llama3:8b", []string{"llama[12]:8b"}, false, false, "not among"},
		// Deny by default and bad input.
		{"llama3", nil, false, false, "not allowed any model"},
		{"llama3", []string{}, false, false, "not allowed any model"},
		{"llama3", []string{"[", ""}, false, false, "not among"},
		{"", llama, false, false, "required"},
		{"llama3@sha256:0000", []string{"*"}, true, false, "digest"},
	}
	for _, c := range cases {
		got, reason := ModelAllowed(c.model, c.globs, c.allowCloud)
		if got != c.want || !strings.Contains(reason, c.reason) {
			t.Errorf("ModelAllowed(%q, %q, %v) = %v, %q; want %v with %q", c.model, c.globs, c.allowCloud, got, reason, c.want, c.reason)
		}
	}
}

func TestValidateGlobs(t *testing.T) {
	if err := ValidateGlobs([]string{"llama3*", "qwen*", "*", "hf.co/org/*", "llama[0-9]"}); err != nil {
		t.Errorf("valid globs refused: %v", err)
	}
	for _, g := range []string{"[", "", "  ", "llama\\"} {
		if err := ValidateGlobs([]string{"ok*", g}); err == nil {
			t.Errorf("ValidateGlobs accepted %q", g)
		}
	}
}
