package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// Config says what fleet Generate draws.
type Config struct {
	// Seed makes the fleet reproducible: the same Config always gives the
	// same personas.
	Seed int64
	// Prefix is where addresses are drawn from. It must lie inside
	// 127.0.0.0/8; 127.0.0.1 and addresses ending in .0 or .255 are never
	// used. The zero value means 127.0.0.0/8.
	Prefix netip.Prefix
	// Live is how many personas to draw.
	Live int
	// Stacks restricts the products drawn (empty = all of Stacks()).
	Stacks []string
	// HostileFraction is the share of hostile personas (0 = none).
	HostileFraction float64
	// AuthFraction is the share of personas that demand credentials;
	// 0 means the default 0.3, a negative value means none.
	AuthFraction float64
	// TLSFraction is the share of personas behind a TLS front; 0 means the
	// default 0.1, a negative value means none.
	TLSFraction float64
	// Ports overrides a stack's default port.
	Ports map[string]uint16
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// Generate draws cfg.Live personas. It is deterministic for a Config and
// refuses any prefix outside 127.0.0.0/8.
func Generate(cfg Config) ([]Persona, error) {
	cat, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	prefix := cfg.Prefix
	if !prefix.IsValid() {
		prefix = loopback
	}
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() || prefix.Bits() < loopback.Bits() || !loopback.Contains(prefix.Addr()) {
		return nil, fmt.Errorf("lab prefix %s is not inside 127.0.0.0/8: the lab only listens on loopback", cfg.Prefix)
	}
	if cfg.Live < 0 {
		return nil, fmt.Errorf("lab size %d is negative", cfg.Live)
	}
	if cfg.HostileFraction < 0 || cfg.HostileFraction > 1 {
		return nil, fmt.Errorf("hostile fraction %v is not between 0 and 1", cfg.HostileFraction)
	}
	stacks := cfg.Stacks
	if len(stacks) == 0 {
		stacks = Stacks()
	}
	for _, s := range stacks {
		if _, ok := cat.Stacks[s]; !ok {
			return nil, fmt.Errorf("unknown stack %q (known: %s)", s, strings.Join(Stacks(), ", "))
		}
	}
	authFrac := fraction(cfg.AuthFraction, 0.3)
	tlsFrac := fraction(cfg.TLSFraction, 0.1)

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6c6c6d66656e6365)) // "llmfence"
	addrs, err := drawAddrs(rng, prefix, cfg.Live)
	if err != nil {
		return nil, err
	}
	g := &generator{cat: cat, rng: rng}
	out := make([]Persona, 0, cfg.Live)
	for _, a := range addrs {
		stack := g.pickStack(stacks)
		port := cat.Stacks[stack].Port
		if p, ok := cfg.Ports[stack]; ok && p != 0 {
			port = p
		}
		p := Persona{Addr: a, Port: port, Stack: stack}
		p.Version = pick(rng, cat.Stacks[stack].Versions)
		// Every draw below happens for every persona, so that changing one
		// fraction does not reshuffle the rest of the fleet.
		hostileDraw, authDraw, tlsDraw := rng.Float64(), rng.Float64(), rng.Float64()
		hostileKind := pick(rng, HostileKinds())
		if hostileDraw < cfg.HostileFraction {
			p.Hostile = hostileKind
		}
		p.TLS = tlsDraw < tlsFrac
		if authDraw < authFrac {
			p.AuthRequired = true
			p.AuthMode = authModeFor(stack)
		}
		g.fill(&p)
		if p.Hostile != "" {
			p.Models, p.Loaded, p.ManagementOpen, p.CORS, p.ServerHeader = nil, nil, false, "", ""
			p.AuthRequired, p.AuthMode = false, AuthModeNone
			if rawHostile(p.Hostile) {
				p.TLS = false // raw junk comes before any TLS handshake
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Persona) int { return a.Addr.Compare(b.Addr) })
	return out, nil
}

func fraction(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	case v > 1:
		return 1
	}
	return v
}

// authModeFor says how a stack enforces credentials: with its own key or
// login where it has one, else with a basic-auth reverse proxy in front.
func authModeFor(stack string) string {
	switch stack {
	case StackVLLM, StackLlamaCpp, StackLocalAI, StackTextGenWebUI, StackOpenWebUI,
		StackKoboldCpp, StackSGLang, StackLiteLLM, StackXinference, StackOpenAICompatible:
		return AuthModeNative
	}
	return AuthModeProxy
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// drawAddrs picks n distinct usable addresses in prefix.
func drawAddrs(rng *rand.Rand, prefix netip.Prefix, n int) ([]netip.Addr, error) {
	base := prefix.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	size := uint64(1) << (32 - prefix.Bits())
	usable := func(v uint32) (netip.Addr, bool) {
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		last := byte(v)
		if last == 0 || last == 255 || a == netip.MustParseAddr("127.0.0.1") {
			return a, false
		}
		return a, true
	}
	if size <= 1<<16 {
		var all []netip.Addr
		for i := uint64(0); i < size; i++ {
			if a, ok := usable(start + uint32(i)); ok {
				all = append(all, a)
			}
		}
		if n > len(all) {
			return nil, fmt.Errorf("prefix %s has only %d usable addresses, %d asked for", prefix, len(all), n)
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		return all[:n], nil
	}
	seen := make(map[netip.Addr]bool, n)
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		a, ok := usable(start + uint32(rng.Uint64N(size)))
		if !ok || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}

type generator struct {
	cat *catalog
	rng *rand.Rand
}

func (g *generator) pickStack(stacks []string) string {
	total := 0
	for _, s := range stacks {
		total += g.cat.Stacks[s].Weight
	}
	n := g.rng.IntN(total)
	for _, s := range stacks {
		n -= g.cat.Stacks[s].Weight
		if n < 0 {
			return s
		}
	}
	return stacks[len(stacks)-1]
}

// pickModels draws k distinct catalogue models; lineages with removed
// guardrails are drawn at a third of the weight of the others.
func (g *generator) pickModels(k int) []modelEntry {
	idx := make([]int, 0, k)
	for len(idx) < k && len(idx) < len(g.cat.Models) {
		i := g.rng.IntN(len(g.cat.Models))
		if g.cat.Models[i].GuardrailsRemoved && g.rng.IntN(3) != 0 {
			continue
		}
		if slices.Contains(idx, i) {
			continue
		}
		idx = append(idx, i)
	}
	out := make([]modelEntry, len(idx))
	for j, i := range idx {
		out[j] = g.cat.Models[i]
	}
	return out
}

func (g *generator) hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write([]byte(strconv.FormatUint(g.rng.Uint64(), 16)))
	return hex.EncodeToString(h.Sum(nil))
}

// fill draws the persona's models, prompts, CORS and headers.
func (g *generator) fill(p *Persona) {
	n := 1
	switch p.Stack {
	case StackOllama, StackOpenWebUI:
		n = 1 + g.rng.IntN(6)
	case StackLiteLLM, StackLocalAI, StackLMStudio, StackGPT4All, StackJan, StackXinference:
		n = 1 + g.rng.IntN(4)
	}
	for _, e := range g.pickModels(n) {
		p.Models = append(p.Models, g.model(p, e))
	}
	if p.Stack == StackOllama {
		if versionAtLeast(p.Version, "0.12.0") && g.rng.IntN(2) == 0 {
			for _, e := range g.cat.CloudModels[:1+g.rng.IntN(len(g.cat.CloudModels))] {
				m := g.model(p, e)
				m.Remote, m.RemoteModel, m.RemoteHost = true, e.RemoteModel, "https://ollama.com:443"
				m.Blob = ""
				p.Models = append(p.Models, m)
			}
		}
		if versionAtLeast(p.Version, "0.1.38") {
			for _, m := range p.Models {
				if !m.Remote && len(p.Loaded) < 2 && g.rng.IntN(3) == 0 {
					p.Loaded = append(p.Loaded, m.Name)
				}
			}
		}
		p.ManagementOpen = !p.AuthRequired
	}
	corsDraw := g.rng.IntN(4)
	p.CORS = corsFor(p.Stack, corsDraw == 0)
	if p.AuthRequired && p.AuthMode == AuthModeProxy {
		// nginx answers the foreign origin's 401 itself, with no CORS header.
		p.CORS = ""
		p.ServerHeader = "nginx"
	} else {
		p.ServerHeader = serverHeader(p)
	}
}

// model renders one catalogue entry the way the persona's stack names it.
func (g *generator) model(p *Persona, e modelEntry) Model {
	m := Model{}
	m.Family, m.ParameterSize, m.Quantization = e.Family, e.Params, e.Quant
	m.Size, m.License, m.Embedding = e.Size, e.License, e.Embedding
	m.Families = e.Families
	if len(m.Families) == 0 {
		m.Families = []string{e.Family}
	}
	m.GuardrailsRemoved, m.GuardrailEvidence = e.GuardrailsRemoved, e.Evidence
	m.SystemPromptCategories = []string{}
	m.ModifiedDays = 1 + g.rng.IntN(400)
	base := strings.TrimSuffix(e.GGUF, ".gguf")
	hfLast := e.HF[strings.LastIndex(e.HF, "/")+1:]
	switch p.Stack {
	case StackOllama, StackOpenWebUI:
		m.Name, m.Format = e.Ollama, "gguf"
		m.Digest = g.hash(p.Addr.String(), e.Ollama, "manifest")
		m.Blob = g.hash(p.Addr.String(), e.Ollama, "weights")
		if p.Stack == StackOllama && !e.Embedding && g.rng.IntN(3) == 0 {
			pr := pick(g.rng, g.cat.Prompts)
			m.SystemPrompt = pr.Text
			if pr.Text != "" {
				m.SystemPromptCategories = service.SortCategories(pr.Categories)
				// A prompt that tells the model to drop its safety rules
				// removes guardrails as surely as an abliterated lineage.
				if !m.GuardrailsRemoved && slices.Contains(pr.Categories, service.CategoryGuardrailRemoval) {
					m.GuardrailsRemoved = true
					m.GuardrailEvidence = "system prompt asks the model to drop its safety rules"
				}
			}
		}
		m.Template = templateFor(e.Family)
		m.Parameters = parametersFor(e.Family)
	case StackVLLM, StackSGLang, StackTGI, StackOpenAICompatible:
		m.Name, m.Format = e.HF, "safetensors"
		m.Quantization = ""
	case StackXinference:
		m.Name, m.Format = strings.ToLower(hfLast), "pytorch"
		m.Quantization = "none"
	case StackLiteLLM:
		m.Name = e.Ollama
	case StackLlamaCpp:
		m.Name, m.Format = "/models/"+e.GGUF, "gguf"
	case StackKoboldCpp:
		m.Name, m.Format = "koboldcpp/"+base, "gguf"
	case StackLMStudio, StackLocalAI:
		m.Name, m.Format = strings.ToLower(base), "gguf"
	case StackGPT4All:
		m.Name, m.Format = strings.ReplaceAll(hfLast, "-", " "), "gguf"
	case StackJan:
		m.Name, m.Format = strings.ToLower(hfLast)+":"+strings.ToLower(strings.TrimSuffix(e.Params, "B"))+"b", "gguf"
	case StackTextGenWebUI:
		m.Name, m.Format = e.GGUF, "gguf"
	}
	m.ID = m.Name
	return m
}

func templateFor(family string) string {
	switch family {
	case "llama":
		return "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>"
	case "qwen2", "qwen3moe":
		return "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
	case "gemma3":
		return "{{- range $i, $_ := .Messages }}<start_of_turn>{{ .Role }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n"
	case "nomic-bert":
		return "{{ .Prompt }}"
	}
	return "{{ .System }}\n\n{{ .Prompt }}"
}

func parametersFor(family string) string {
	switch family {
	case "llama":
		return "stop                           \"<|start_header_id|>\"\nstop                           \"<|end_header_id|>\"\nstop                           \"<|eot_id|>\""
	case "qwen2", "qwen3moe":
		return "stop                           \"<|im_start|>\"\nstop                           \"<|im_end|>\""
	case "gemma3":
		return "stop                           \"<end_of_turn>\"\ntemperature                    1\ntop_k                          64\ntop_p                          0.95"
	}
	return ""
}

// corsFor is the Access-Control-Allow-Origin a stack sends to a foreign
// origin. open is the per-persona draw for stacks where CORS is a switch
// (Ollama OLLAMA_ORIGINS=*, LM Studio "Enable CORS", LocalAI CORS=true).
func corsFor(stack string, open bool) string {
	switch stack {
	case StackOllama, StackLMStudio, StackLocalAI:
		if open {
			return "*"
		}
		return ""
	case StackVLLM, StackSGLang, StackKoboldCpp, StackTGI, StackXinference:
		return "*"
	case StackLlamaCpp, StackLiteLLM, StackTextGenWebUI, StackOpenWebUI:
		return "echo"
	}
	return ""
}

func serverHeader(p *Persona) string {
	switch p.Stack {
	case StackVLLM, StackSGLang, StackLiteLLM, StackXinference, StackOpenWebUI, StackTextGenWebUI:
		return "uvicorn"
	case StackLlamaCpp:
		return "llama.cpp"
	case StackKoboldCpp:
		return "ConcedoLlamaForKoboldServer"
	}
	return ""
}

// versionAtLeast compares dotted numeric versions ("0.1.34" >= "0.1.29");
// a leading "v" and any suffix after the numbers ("0.6.3.post1") are
// ignored.
func versionAtLeast(v, min string) bool {
	a, b := versionParts(v), versionParts(min)
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x > y
		}
	}
	return true
}

func versionParts(v string) []int {
	v = strings.TrimPrefix(v, "v")
	var out []int
	for _, f := range strings.Split(v, ".") {
		end := 0
		for end < len(f) && f[end] >= '0' && f[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		n, _ := strconv.Atoi(f[:end])
		out = append(out, n)
		if end < len(f) {
			break
		}
	}
	return out
}
