package lab

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

func TestGenerateIsDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, Prefix: netip.MustParsePrefix("127.16.0.0/12"), Live: 300, HostileFraction: 0.05}
	a, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same config gave different fleets")
	}
	cfg.Seed = 43
	c, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same fleet")
	}
}

func TestGenerateFleetProperties(t *testing.T) {
	prefix := netip.MustParsePrefix("127.40.0.0/16")
	ps, err := Generate(Config{Seed: 7, Prefix: prefix, Live: 2000, HostileFraction: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2000 {
		t.Fatalf("got %d personas, want 2000", len(ps))
	}
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	stacks := map[string]int{}
	var hostile, auth, tls, guard, harmful, cloud, loaded int
	for _, p := range ps {
		if !prefix.Contains(p.Addr) {
			t.Fatalf("%s outside %s", p.Addr, prefix)
		}
		if seen[p.Addr] {
			t.Fatalf("address %s drawn twice", p.Addr)
		}
		if b := p.Addr.As4(); b[3] == 0 || b[3] == 255 {
			t.Fatalf("unusable address %s drawn", p.Addr)
		}
		seen[p.Addr] = true
		stacks[p.Stack]++
		if want := cat.Stacks[p.Stack].Port; p.Port != want {
			t.Fatalf("%s on port %d, want default %d", p.Stack, p.Port, want)
		}
		if p.Hostile != "" {
			hostile++
			if len(p.Models) != 0 || p.AuthRequired {
				t.Fatalf("hostile persona %s carries models or auth", p.Addr)
			}
			continue
		}
		if len(p.Models) == 0 {
			t.Fatalf("persona %s (%s) has no models", p.Addr, p.Stack)
		}
		if p.AuthRequired {
			auth++
			if p.AuthMode != AuthModeNative && p.AuthMode != AuthModeProxy {
				t.Fatalf("auth persona %s has mode %q", p.Addr, p.AuthMode)
			}
		}
		if p.TLS {
			tls++
		}
		for _, l := range p.Loaded {
			if _, ok := p.model(l); !ok {
				t.Fatalf("%s lists loaded model %q it does not have", p.Addr, l)
			}
			loaded++
		}
		for _, m := range p.Models {
			if m.GuardrailsRemoved {
				guard++
				if m.GuardrailEvidence == "" {
					t.Fatalf("%s: %s guardrails removed without evidence", p.Addr, m.Name)
				}
			}
			if len(m.SystemPromptCategories) > 0 {
				harmful++
				if m.SystemPrompt == "" || p.Stack != StackOllama {
					t.Fatalf("%s: categories without an Ollama system prompt", p.Addr)
				}
				if slices.Contains(m.SystemPromptCategories, service.CategoryCSAM) {
					t.Fatal("the lab must never carry csam-labelled content")
				}
			}
			if m.Remote {
				cloud++
				if !versionAtLeast(p.Version, "0.12.0") || m.RemoteHost == "" {
					t.Fatalf("%s: cloud model on Ollama %s", p.Addr, p.Version)
				}
			}
			if p.Stack == StackOllama && !m.Remote && (len(m.Digest) != 64 || len(m.Blob) != 64) {
				t.Fatalf("%s: digest %q is not 64 hex", p.Addr, m.Digest)
			}
		}
	}
	for _, s := range Stacks() {
		if stacks[s] == 0 {
			t.Errorf("stack %s never drawn in 2000 personas", s)
		}
	}
	for name, n := range map[string]int{"hostile": hostile, "auth": auth, "tls": tls, "guardrails-removed": guard,
		"harmful prompt": harmful, "cloud": cloud, "loaded": loaded} {
		if n == 0 {
			t.Errorf("no %s personas/models in 2000", name)
		}
	}
}

func TestGenerateOptions(t *testing.T) {
	ps, err := Generate(Config{Seed: 1, Prefix: netip.MustParsePrefix("127.9.9.0/24"), Live: 50,
		Stacks: []string{StackVLLM, StackJan}, HostileFraction: 1, AuthFraction: -1, TLSFraction: -1,
		Ports: map[string]uint16{StackVLLM: 18000}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Stack != StackVLLM && p.Stack != StackJan {
			t.Fatalf("stack %s drawn despite filter", p.Stack)
		}
		if p.Stack == StackVLLM && p.Port != 18000 {
			t.Fatalf("port override ignored: %d", p.Port)
		}
		if p.Hostile == "" || p.TLS || p.AuthRequired {
			t.Fatalf("persona %+v ignores fractions", p)
		}
	}
}

func TestGenerateRefusesNonLoopback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		live   int
		stacks []string
	}{
		{"private range", "10.0.0.0/8", 1, nil},
		{"everything", "0.0.0.0/0", 1, nil},
		{"wider than loopback", "126.0.0.0/7", 1, nil},
		{"next to loopback", "128.0.0.0/24", 1, nil},
		{"ipv6 loopback", "::1/128", 1, nil},
		{"too small", "127.1.2.0/30", 4, nil},
		{"unknown stack", "127.0.0.0/8", 1, []string{"chatgpt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(Config{Seed: 1, Prefix: netip.MustParsePrefix(tc.prefix), Live: tc.live, Stacks: tc.stacks})
			if err == nil {
				t.Fatalf("Generate accepted %s", tc.prefix)
			}
		})
	}
}

func TestCatalogIsValid(t *testing.T) {
	c, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if c.Version <= 0 {
		t.Fatal("catalogue has no version")
	}
	want := map[string]uint16{
		StackOllama: 11434, StackVLLM: 8000, StackLlamaCpp: 8080, StackLMStudio: 1234, StackLocalAI: 8080,
		StackTGI: 8080, StackTextGenWebUI: 5000, StackOpenWebUI: 3000, StackKoboldCpp: 5001, StackSGLang: 30000,
		StackLiteLLM: 4000, StackXinference: 9997, StackGPT4All: 4891, StackJan: 1337, StackOpenAICompatible: 8000,
	}
	for s, port := range want {
		if got := c.Stacks[s].Port; got != port {
			t.Errorf("%s default port %d, want %d", s, got, port)
		}
	}
	for _, m := range c.CloudModels {
		if !strings.HasSuffix(m.Ollama, "-cloud") || m.RemoteModel == "" || m.Size > 1024 {
			t.Errorf("cloud model %+v is not a tiny remote stub", m)
		}
	}
	var cats []string
	for _, p := range c.Prompts {
		if p.Text == "" && len(p.Categories) > 0 {
			t.Errorf("empty prompt labelled %v", p.Categories)
		}
		cats = append(cats, p.Categories...)
	}
	for _, want := range service.Categories {
		if want == service.CategoryCSAM {
			continue
		}
		if !slices.Contains(cats, want) {
			t.Errorf("no prompt carries category %s", want)
		}
	}
}

func TestGroundTruthRoundTrip(t *testing.T) {
	ps, err := Generate(Config{Seed: 3, Prefix: netip.MustParsePrefix("127.3.0.0/16"), Live: 25, HostileFraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteGroundTruth(&buf, ps); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["catalog_version"] == nil || raw["format"] == nil {
		t.Fatalf("ground truth lacks version fields: %v", raw)
	}
	back, err := ReadGroundTruth(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ps, back) {
		t.Fatal("ground truth did not survive a round trip")
	}
	if _, err := ReadGroundTruth(strings.NewReader(`{"format":"other"}`)); err == nil {
		t.Fatal("foreign document accepted")
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v, min string
		want   bool
	}{
		{"0.1.34", "0.1.29", true},
		{"0.1.29", "0.1.34", false},
		{"0.12.3", "0.9.0", true},
		{"0.6.3.post1", "0.6.3", true},
		{"v2.24.2", "2.22.0", true},
		{"0.3", "0.3.0", true},
		{"0.2.8", "0.3.0", false},
	} {
		if got := versionAtLeast(tc.v, tc.min); got != tc.want {
			t.Errorf("versionAtLeast(%q, %q) = %v", tc.v, tc.min, got)
		}
	}
}
