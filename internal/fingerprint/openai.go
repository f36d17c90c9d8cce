package fingerprint

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// enricher reads product-specific details after identification.
type enricher func(ctx context.Context, p *Prober, t *target, s *service.Service)

var enrichers = map[string]enricher{
	"ollama":                enrichOllama,
	"llamacpp":              enrichLlamaCpp,
	"tgi":                   enrichTGI,
	"koboldcpp":             enrichKobold,
	"lmstudio":              enrichLMStudio,
	"open-webui":            enrichOpenWebUI,
	"litellm":               enrichLiteLLM,
	"sglang":                enrichSGLang,
	"text-generation-webui": enrichTextGenWebUI,
}

// openAICard is one entry of GET /v1/models; vLLM and SGLang add root and
// max_model_len, Xinference adds model_type and model_name.
type openAICard struct {
	ID          flexString `json:"id"`
	OwnedBy     flexString `json:"owned_by"`
	Root        flexString `json:"root"`
	MaxModelLen flexInt    `json:"max_model_len"`
	ModelType   flexString `json:"model_type"`
	ModelName   flexString `json:"model_name"`
}

type openAIList struct {
	Data []json.RawMessage `json:"data"`
}

func decodeOpenAIModels(b []byte) ([]openAICard, bool) {
	var l openAIList
	if !decodeInto(b, &l) || l.Data == nil {
		return nil, false
	}
	out := make([]openAICard, 0, len(l.Data))
	for _, raw := range l.Data {
		var c openAICard
		if json.Unmarshal(raw, &c) != nil || c.ID == "" {
			continue
		}
		out = append(out, c)
	}
	return out, true
}

// addModel appends a model unless one with the same name is recorded; it
// returns the recorded entry.
func addModel(p *Prober, s *service.Service, m service.Model) *service.Model {
	for i := range s.Models {
		if s.Models[i].Name == m.Name {
			return &s.Models[i]
		}
	}
	if len(s.Models) >= p.opts.MaxModels {
		if _, noted := s.Extra["models_truncated"]; !noted {
			s.Extra["models_truncated"] = true
			s.Evidence = append(s.Evidence, fmt.Sprintf("model list truncated at %d", p.opts.MaxModels))
		}
		return nil
	}
	s.Models = append(s.Models, m)
	return &s.Models[len(s.Models)-1]
}

func setMeta(s *service.Service, model, key string, v any) {
	meta, _ := s.Extra["model_meta"].(map[string]map[string]any)
	if meta == nil {
		meta = map[string]map[string]any{}
		s.Extra["model_meta"] = meta
	}
	if meta[model] == nil {
		meta[model] = map[string]any{}
	}
	meta[model][key] = v
}

// fetchModelCards reads an OpenAI-shaped model list (GET path); ok is false
// unless it answered 200 with a list.
func fetchModelCards(ctx context.Context, t *target, path string) ([]openAICard, bool) {
	r := t.fetch(ctx, Request{Method: http.MethodGet, Path: path})
	if !r.OK() || r.Status != http.StatusOK {
		return nil, false
	}
	return decodeOpenAIModels(r.Body)
}

// enrichOpenAI reads GET /v1/models; every OpenAI-compatible stack has it.
func enrichOpenAI(ctx context.Context, p *Prober, t *target, s *service.Service) {
	cards, ok := fetchModelCards(ctx, t, "/v1/models")
	if !ok {
		return
	}
	for _, c := range cards {
		name := clean(string(c.ID), maxName)
		if addModel(p, s, service.Model{Name: name}) == nil {
			break
		}
		if c.OwnedBy != "" {
			setMeta(s, name, "owned_by", clean(string(c.OwnedBy), 64))
		}
		if c.Root != "" && string(c.Root) != string(c.ID) {
			setMeta(s, name, "root", clean(string(c.Root), maxName))
		}
		if c.MaxModelLen > 0 {
			setMeta(s, name, "max_model_len", int64(c.MaxModelLen))
		}
		if c.ModelType != "" {
			setMeta(s, name, "model_type", clean(string(c.ModelType), 32))
		}
		if c.ModelName != "" {
			setMeta(s, name, "model_name", clean(string(c.ModelName), maxName))
		}
	}
	s.Evidence = append(s.Evidence, fmt.Sprintf("GET /v1/models → %d models", len(cards)))
	if s.Auth == service.AuthUnknown {
		s.Auth = service.AuthNone
	}
}

// llama.cpp tools/server: GET /props.
func enrichLlamaCpp(ctx context.Context, p *Prober, t *target, s *service.Service) {
	enrichOpenAI(ctx, p, t, s)
	r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/props"})
	if !r.OK() || r.Status != http.StatusOK {
		return
	}
	var props struct {
		SystemPrompt flexString `json:"system_prompt"`
		ChatTemplate flexString `json:"chat_template"`
		ModelPath    flexString `json:"model_path"`
		TotalSlots   flexInt    `json:"total_slots"`
		BuildInfo    flexString `json:"build_info"`
		Settings     struct {
			NCtx  flexInt    `json:"n_ctx"`
			Model flexString `json:"model"`
		} `json:"default_generation_settings"`
	}
	if !decodeInto(r.Body, &props) {
		return
	}
	if props.ModelPath != "" {
		s.Extra["model_path"] = clean(string(props.ModelPath), 1024)
	}
	if props.TotalSlots > 0 {
		s.Extra["total_slots"] = int64(props.TotalSlots)
	}
	if props.Settings.NCtx > 0 {
		s.Extra["n_ctx"] = int64(props.Settings.NCtx)
	}
	if len(s.Models) == 0 {
		name := string(props.Settings.Model)
		if name == "" {
			name = string(props.ModelPath)
		}
		if name != "" {
			addModel(p, s, service.Model{Name: clean(name, maxName)})
		}
	}
	// One llama-server serves one model: /props describes it.
	if len(s.Models) > 0 {
		s.Models[0].SystemPrompt = clean(string(props.SystemPrompt), maxPromptText)
		s.Models[0].Template = clean(string(props.ChatTemplate), maxPromptText)
		s.Models[0].Format = "gguf"
	}
	s.Evidence = append(s.Evidence, "GET /props → server properties read")
}

// TGI router: GET /info.
func enrichTGI(ctx context.Context, p *Prober, t *target, s *service.Service) {
	r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/info"})
	if r.OK() && r.Status == http.StatusOK {
		var info struct {
			ModelID        flexString `json:"model_id"`
			ModelSHA       flexString `json:"model_sha"`
			ModelDType     flexString `json:"model_dtype"`
			Device         flexString `json:"model_device_type"`
			MaxTotalTokens flexInt    `json:"max_total_tokens"`
			DockerLabel    flexString `json:"docker_label"`
		}
		if decodeInto(r.Body, &info) && info.ModelID != "" {
			name := clean(string(info.ModelID), maxName)
			addModel(p, s, service.Model{Name: name, Digest: clean(string(info.ModelSHA), 128)})
			if info.MaxTotalTokens > 0 {
				setMeta(s, name, "max_total_tokens", int64(info.MaxTotalTokens))
			}
			if info.ModelDType != "" {
				setMeta(s, name, "dtype", clean(string(info.ModelDType), 32))
			}
			if info.Device != "" {
				setMeta(s, name, "device", clean(string(info.Device), 32))
			}
			if info.DockerLabel != "" {
				s.Extra["docker_label"] = clean(string(info.DockerLabel), 128)
			}
			s.Evidence = append(s.Evidence, fmt.Sprintf("GET /info → model %s", name))
		}
	}
	enrichOpenAI(ctx, p, t, s)
}

// KoboldCpp: GET /api/v1/model and /api/extra/version.
func enrichKobold(ctx context.Context, p *Prober, t *target, s *service.Service) {
	if r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/api/extra/version"}); r.OK() && r.Status == http.StatusOK {
		var v struct {
			Protected flexBool `json:"protected"`
			Txt2Img   flexBool `json:"txt2img"`
		}
		if decodeInto(r.Body, &v) {
			s.Extra["kobold_protected"] = bool(v.Protected)
		}
	}
	if r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/api/v1/model"}); r.OK() && r.Status == http.StatusOK {
		var m struct {
			Result flexString `json:"result"`
		}
		if decodeInto(r.Body, &m) && m.Result != "" {
			name := clean(string(m.Result), maxName)
			addModel(p, s, service.Model{Name: name, Format: "gguf"})
			s.Evidence = append(s.Evidence, fmt.Sprintf("GET /api/v1/model → %s", name))
		}
	}
	auth := s.Auth
	enrichOpenAI(ctx, p, t, s)
	s.Auth = auth // the kobold "protected" flag decides, not the open /v1/models
}

// LM Studio: GET /api/v0/models lists downloaded models and their state.
func enrichLMStudio(ctx context.Context, p *Prober, t *target, s *service.Service) {
	r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/api/v0/models"})
	if r.OK() && r.Status == http.StatusOK {
		var l openAIList
		if decodeInto(r.Body, &l) {
			for _, raw := range l.Data {
				var c struct {
					ID           flexString `json:"id"`
					Type         flexString `json:"type"`
					Publisher    flexString `json:"publisher"`
					Arch         flexString `json:"arch"`
					Compat       flexString `json:"compatibility_type"`
					Quantization flexString `json:"quantization"`
					State        flexString `json:"state"`
					MaxContext   flexInt    `json:"max_context_length"`
				}
				if json.Unmarshal(raw, &c) != nil || c.ID == "" {
					continue
				}
				name := clean(string(c.ID), maxName)
				m := addModel(p, s, service.Model{
					Name:         name,
					Family:       clean(string(c.Arch), 64),
					Quantization: clean(string(c.Quantization), 32),
					Format:       clean(string(c.Compat), 32),
				})
				if m == nil {
					break
				}
				if c.Type != "" {
					setMeta(s, name, "type", clean(string(c.Type), 32))
				}
				if c.MaxContext > 0 {
					setMeta(s, name, "max_context_length", int64(c.MaxContext))
				}
				if c.State == "loaded" {
					s.Loaded = append(s.Loaded, service.LoadedModel{Name: name})
				}
			}
			s.Evidence = append(s.Evidence, fmt.Sprintf("GET /api/v0/models → %d models", len(l.Data)))
		}
	}
	enrichOpenAI(ctx, p, t, s)
}

// Open WebUI: /api/config (public) and /api/models (needs a user unless
// auth is off).
func enrichOpenWebUI(ctx context.Context, p *Prober, t *target, s *service.Service) {
	if r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/api/config"}); r.OK() && r.Status == http.StatusOK {
		var c struct {
			Name     flexString `json:"name"`
			Features struct {
				Auth         *flexBool `json:"auth"`
				EnableSignup *flexBool `json:"enable_signup"`
			} `json:"features"`
		}
		if decodeInto(r.Body, &c) {
			if c.Name != "" {
				s.Extra["webui_name"] = clean(string(c.Name), 128)
			}
			if c.Features.Auth != nil {
				s.Extra["webui_auth"] = bool(*c.Features.Auth)
			}
			if c.Features.EnableSignup != nil {
				s.Extra["signup_enabled"] = bool(*c.Features.EnableSignup)
			}
		}
	}
	cards, ok := fetchModelCards(ctx, t, "/api/models")
	if !ok {
		return
	}
	for _, c := range cards {
		if addModel(p, s, service.Model{Name: clean(string(c.ID), maxName)}) == nil {
			break
		}
	}
	s.Evidence = append(s.Evidence, fmt.Sprintf("GET /api/models → %d models without credentials", len(cards)))
}

// LiteLLM: /v1/models, then /model/info for the backing provider models
// (api keys in litellm_params are never read or stored).
func enrichLiteLLM(ctx context.Context, p *Prober, t *target, s *service.Service) {
	enrichOpenAI(ctx, p, t, s)
	r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/model/info"})
	if !r.OK() || r.Status != http.StatusOK {
		return
	}
	var l openAIList
	if !decodeInto(r.Body, &l) {
		return
	}
	n := 0
	for _, raw := range l.Data {
		var e struct {
			ModelName flexString `json:"model_name"`
			Params    struct {
				Model flexString `json:"model"`
			} `json:"litellm_params"`
		}
		if json.Unmarshal(raw, &e) != nil || e.ModelName == "" {
			continue
		}
		name := clean(string(e.ModelName), maxName)
		addModel(p, s, service.Model{Name: name})
		if e.Params.Model != "" {
			setMeta(s, name, "backend_model", clean(string(e.Params.Model), maxName))
			if !strings.HasPrefix(string(e.Params.Model), "ollama") && !strings.HasPrefix(string(e.Params.Model), "hosted_vllm") {
				setMeta(s, name, "upstream_provider", clean(strings.SplitN(string(e.Params.Model), "/", 2)[0], 64))
			}
		}
		n++
	}
	s.Evidence = append(s.Evidence, fmt.Sprintf("GET /model/info → %d deployments without credentials", n))
}

// SGLang: /get_model_info names the weights.
func enrichSGLang(ctx context.Context, p *Prober, t *target, s *service.Service) {
	enrichOpenAI(ctx, p, t, s)
	r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/get_model_info"})
	if !r.OK() || r.Status != http.StatusOK {
		return
	}
	var info struct {
		ModelPath flexString `json:"model_path"`
	}
	if decodeInto(r.Body, &info) && info.ModelPath != "" {
		s.Extra["model_path"] = clean(string(info.ModelPath), 1024)
		if len(s.Models) == 0 {
			addModel(p, s, service.Model{Name: clean(string(info.ModelPath), maxName)})
		}
	}
}

// text-generation-webui: /v1/internal/model/info names the loaded model.
func enrichTextGenWebUI(ctx context.Context, p *Prober, t *target, s *service.Service) {
	enrichOpenAI(ctx, p, t, s)
	r := t.fetch(ctx, Request{Method: http.MethodGet, Path: "/v1/internal/model/info"})
	if !r.OK() || r.Status != http.StatusOK {
		return
	}
	var info struct {
		ModelName flexString   `json:"model_name"`
		Loader    flexString   `json:"loader"`
		Loras     []flexString `json:"lora_names"`
	}
	if !decodeInto(r.Body, &info) {
		return
	}
	if info.ModelName != "" && info.ModelName != "None" {
		name := clean(string(info.ModelName), maxName)
		addModel(p, s, service.Model{Name: name})
		s.Loaded = append(s.Loaded, service.LoadedModel{Name: name})
	}
	if info.Loader != "" {
		s.Extra["loader"] = clean(string(info.Loader), 64)
	}
}
