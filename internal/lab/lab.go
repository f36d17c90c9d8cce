// Package lab provides an emulated fleet of self-hosted LLM servers on
// loopback: `llmfence lab`, and the ground truth scanner tests compare
// their results with.
//
// Generate draws personas (stack, version, auth, TLS, models, system
// prompts, hostile behaviour) deterministically from a seed and the embedded
// catalogue (data/catalog.yaml). Handler answers one persona's HTTP surface
// with the response shapes of the real server it imitates; STACKS.md names
// the upstream file or document each emulated response follows. Start serves
// many personas at once, each on its own 127.x.y.z address and the stack's
// default port, and records every request in a per-persona HitLog so tests
// can prove a scanner stayed passive.
package lab

import (
	_ "embed"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/llmfence/llmfence/internal/datafile"
	"github.com/llmfence/llmfence/internal/service"
)

// Stack product IDs. They are the fingerprint IDs of internal/service.
const (
	StackOllama           = "ollama"
	StackVLLM             = "vllm"
	StackLlamaCpp         = "llamacpp"
	StackLMStudio         = "lmstudio"
	StackLocalAI          = "localai"
	StackTGI              = "tgi"
	StackTextGenWebUI     = "text-generation-webui"
	StackOpenWebUI        = "open-webui"
	StackKoboldCpp        = "koboldcpp"
	StackSGLang           = "sglang"
	StackLiteLLM          = "litellm"
	StackXinference       = "xinference"
	StackGPT4All          = "gpt4all"
	StackJan              = "jan"
	StackOpenAICompatible = "openai-compatible"
)

// Stacks lists every emulated product ID in a stable order.
func Stacks() []string {
	return []string{
		StackOllama, StackVLLM, StackLlamaCpp, StackLMStudio, StackLocalAI,
		StackTGI, StackTextGenWebUI, StackOpenWebUI, StackKoboldCpp,
		StackSGLang, StackLiteLLM, StackXinference, StackGPT4All, StackJan,
		StackOpenAICompatible,
	}
}

// Hostile behaviours. A hostile persona answers on its stack's port but
// misbehaves; it exists to prove a scanner stays bounded.
const (
	HostileTarpit         = "tarpit"          // accepts, then drips one byte a second
	HostileHugeBody       = "huge-body"       // endless 200 body on every route
	HostileGzipBomb       = "gzip-bomb"       // tiny gzip body that inflates to GBs
	HostileRedirect       = "redirect"        // 302 to another loopback address
	HostileGarbage        = "garbage"         // non-HTTP bytes, then close
	HostileInvalidJSON    = "invalid-json"    // 200 application/json that is not JSON
	HostileEndlessHeaders = "endless-headers" // status line, then headers forever
)

// HostileKinds lists every hostile behaviour in a stable order.
func HostileKinds() []string {
	return []string{
		HostileTarpit, HostileHugeBody, HostileGzipBomb, HostileRedirect,
		HostileGarbage, HostileInvalidJSON, HostileEndlessHeaders,
	}
}

// Auth modes say how a persona with AuthRequired refuses an anonymous
// request; they follow what the real server (or the proxy in front of it)
// does.
const (
	AuthModeNone   = ""       // the model API answers anyone
	AuthModeNative = "native" // the server's own key / login (per stack)
	AuthModeProxy  = "proxy"  // an nginx basic-auth front: 401 on every path
)

// Model is one model a persona serves: the service record a scan should
// reproduce, plus what the emulation needs to render it.
type Model struct {
	service.Model
	// Families is Ollama's details.families.
	Families []string `json:"families,omitempty"`
	// ID is the name the stack's OpenAI-style /v1/models lists (HF repo id,
	// GGUF file name, Ollama tag...).
	ID string `json:"id"`
	// Blob is the sha256 hex of the model's weights layer (Ollama blobs).
	Blob string `json:"blob,omitempty"`
	// RemoteModel / RemoteHost are set for Ollama cloud models.
	RemoteModel string `json:"remote_model,omitempty"`
	RemoteHost  string `json:"remote_host,omitempty"`
	Embedding   bool   `json:"embedding,omitempty"`
	// ModifiedDays is how many days before the lab epoch the model was
	// pulled; it keeps modified_at deterministic.
	ModifiedDays int `json:"modified_days"`
}

// Persona is one emulated server and, at the same time, the ground truth
// about it.
type Persona struct {
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port"`
	Stack   string     `json:"stack"`
	Version string     `json:"version"`

	AuthRequired bool `json:"auth_required"`
	// AuthMode is AuthModeNative or AuthModeProxy when AuthRequired.
	AuthMode string `json:"auth_mode,omitempty"`
	TLS      bool   `json:"tls"`
	// Hostile is one of HostileKinds, or empty for a well-behaved server.
	Hostile string `json:"hostile,omitempty"`

	Models []Model `json:"models"`
	// Loaded names the models resident in memory (Ollama /api/ps).
	Loaded []string `json:"loaded,omitempty"`
	// CORS is what the persona sends as Access-Control-Allow-Origin to a
	// foreign Origin: "*", "echo" (the origin is reflected) or "" (none).
	CORS string `json:"cors,omitempty"`
	// ManagementOpen is true when model-management routes (Ollama pull,
	// delete, create, copy, push, blobs) would answer without credentials.
	ManagementOpen bool `json:"management_open"`
	// ServerHeader is the Server response header the persona sends, if any.
	ServerHeader string `json:"server_header,omitempty"`
}

// AddrPort is where the persona listens.
func (p Persona) AddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Addr, p.Port) }

// URL is the base URL a scanner would use.
func (p Persona) URL() string {
	scheme := "http"
	if p.TLS {
		scheme = "https"
	}
	return scheme + "://" + p.AddrPort().String()
}

// ServiceModels returns the models as internal/service records.
func (p *Persona) ServiceModels() []service.Model {
	out := make([]service.Model, 0, len(p.Models))
	for _, m := range p.Models {
		out = append(out, m.Model)
	}
	return out
}

func (p *Persona) model(name string) (*Model, bool) {
	for i := range p.Models {
		if p.Models[i].Name == name || p.Models[i].ID == name {
			return &p.Models[i], true
		}
	}
	// Ollama treats "mistral" as "mistral:latest".
	for i := range p.Models {
		if p.Models[i].Name == name+":latest" {
			return &p.Models[i], true
		}
	}
	return nil, false
}

// catalog mirrors data/catalog.yaml.
type catalog struct {
	Version     int                   `yaml:"version"`
	Stacks      map[string]stackEntry `yaml:"stacks"`
	Models      []modelEntry          `yaml:"models"`
	CloudModels []modelEntry          `yaml:"cloud_models"`
	Prompts     []promptEntry         `yaml:"prompts"`
}

type stackEntry struct {
	Port     uint16   `yaml:"port"`
	Weight   int      `yaml:"weight"`
	Versions []string `yaml:"versions"`
}

type modelEntry struct {
	Ollama            string   `yaml:"ollama"`
	HF                string   `yaml:"hf"`
	GGUF              string   `yaml:"gguf"`
	Family            string   `yaml:"family"`
	Families          []string `yaml:"families"`
	Params            string   `yaml:"params"`
	Quant             string   `yaml:"quant"`
	Size              int64    `yaml:"size"`
	License           string   `yaml:"license"`
	Embedding         bool     `yaml:"embedding"`
	GuardrailsRemoved bool     `yaml:"guardrails_removed"`
	Evidence          string   `yaml:"evidence"`
	RemoteModel       string   `yaml:"remote_model"`
}

type promptEntry struct {
	Text       string   `yaml:"text"`
	Lang       string   `yaml:"lang"`
	Categories []string `yaml:"categories"`
}

//go:embed data/catalog.yaml
var catalogYAML []byte

// loadCatalog parses and checks the embedded catalogue once, on first
// use. Every fleet shares it: nothing writes to it after loading.
var loadCatalog = sync.OnceValues(func() (*catalog, error) {
	return datafile.Decode("internal/lab/data/catalog.yaml", catalogYAML, (*catalog).check)
})

func (c *catalog) check() error {
	for _, s := range Stacks() {
		e, ok := c.Stacks[s]
		if !ok || e.Port == 0 || e.Weight <= 0 || len(e.Versions) == 0 {
			return fmt.Errorf("stack %q needs a port, a weight and versions", s)
		}
	}
	for name := range c.Stacks {
		if !slices.Contains(Stacks(), name) {
			return fmt.Errorf("unknown stack %q", name)
		}
	}
	for i, m := range c.Models {
		if m.Ollama == "" || m.HF == "" || m.GGUF == "" || m.Family == "" || m.Size <= 0 {
			return fmt.Errorf("model %d (%q) is missing a name, family or size", i, m.Ollama)
		}
		if m.GuardrailsRemoved && m.Evidence == "" {
			return fmt.Errorf("model %q is marked guardrails_removed without evidence", m.Ollama)
		}
	}
	for i, p := range c.Prompts {
		for _, cat := range p.Categories {
			if !slices.Contains(service.Categories, cat) || cat == service.CategoryCSAM {
				return fmt.Errorf("prompt %d has category %q, which the lab does not carry", i, cat)
			}
		}
	}
	return nil
}

// CatalogVersion is the version of the embedded persona catalogue.
func CatalogVersion() (int, error) {
	c, err := loadCatalog()
	if err != nil {
		return 0, err
	}
	return c.Version, nil
}

// DefaultPort is the port a stack listens on unless Config.Ports says
// otherwise.
func DefaultPort(stack string) (uint16, error) {
	c, err := loadCatalog()
	if err != nil {
		return 0, err
	}
	e, ok := c.Stacks[stack]
	if !ok {
		return 0, fmt.Errorf("unknown stack %q (known: %v)", stack, Stacks())
	}
	return e.Port, nil
}
