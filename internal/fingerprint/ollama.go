package fingerprint

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// Shapes from ollama/ollama api/types.go (ListResponse, ProcessResponse,
// ShowResponse, ModelDetails). Only what llmfence records is decoded.

type ollamaDetails struct {
	ParentModel       flexString `json:"parent_model"`
	Format            flexString `json:"format"`
	Family            flexString `json:"family"`
	ParameterSize     flexString `json:"parameter_size"`
	QuantizationLevel flexString `json:"quantization_level"`
}

// UnmarshalJSON keeps a model whose details are not an object.
func (d *ollamaDetails) UnmarshalJSON(b []byte) error {
	type plain ollamaDetails
	var p plain
	if json.Unmarshal(b, &p) == nil {
		*d = ollamaDetails(p)
	}
	return nil
}

type ollamaModel struct {
	Name        flexString    `json:"name"`
	Model       flexString    `json:"model"`
	Size        flexInt       `json:"size"`
	SizeVRAM    flexInt       `json:"size_vram"`
	Digest      flexString    `json:"digest"`
	ExpiresAt   flexString    `json:"expires_at"`
	RemoteModel flexString    `json:"remote_model"`
	RemoteHost  flexString    `json:"remote_host"`
	Details     ollamaDetails `json:"details"`
}

type ollamaList struct {
	Models []json.RawMessage `json:"models"`
}

type ollamaShow struct {
	License     flexText      `json:"license"`
	Modelfile   flexString    `json:"modelfile"`
	Parameters  flexString    `json:"parameters"`
	Template    flexString    `json:"template"`
	System      flexString    `json:"system"`
	RemoteModel flexString    `json:"remote_model"`
	RemoteHost  flexString    `json:"remote_host"`
	Details     ollamaDetails `json:"details"`
}

const (
	maxLicense    = 512
	maxPromptText = 64 << 10
	maxName       = 256
	showWorkers   = 4
)

// decodeOllamaList reads /api/tags or /api/ps; each model is decoded on its
// own so one malformed entry does not drop the others.
func decodeOllamaList(b []byte) ([]ollamaModel, bool) {
	var l ollamaList
	if !decodeInto(b, &l) {
		return nil, false
	}
	out := make([]ollamaModel, 0, len(l.Models))
	for _, raw := range l.Models {
		var m ollamaModel
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		if m.Name == "" {
			m.Name = m.Model
		}
		if m.Name == "" {
			continue
		}
		out = append(out, m)
	}
	return out, true
}

func decodeOllamaShow(b []byte) (ollamaShow, bool) {
	var s ollamaShow
	ok := decodeInto(b, &s)
	return s, ok
}

func isCloudName(name string) bool {
	return strings.HasSuffix(name, ":cloud") || strings.HasSuffix(name, "-cloud")
}

func enrichOllama(ctx context.Context, p *Prober, t *target, s *service.Service) {
	tagsReq := Request{Method: http.MethodGet, Path: "/api/tags"}
	r := t.fetch(ctx, tagsReq)
	if r.OK() && r.Status == http.StatusOK {
		models, ok := decodeOllamaList(r.Body)
		switch {
		case !ok && r.Truncated:
			s.Evidence = append(s.Evidence, fmt.Sprintf("GET /api/tags → body over %d bytes, cut off; model list unreadable", p.opts.MaxBody))
		case !ok:
			s.Evidence = append(s.Evidence, "GET /api/tags → 200 but not the Ollama list shape")
		default:
			s.Evidence = append(s.Evidence, fmt.Sprintf("GET /api/tags → %d models", len(models)))
			if len(models) > p.opts.MaxModels {
				s.Evidence = append(s.Evidence, fmt.Sprintf("model list truncated: %d listed, first %d recorded", len(models), p.opts.MaxModels))
				s.Extra["models_total"] = len(models)
				models = models[:p.opts.MaxModels]
			}
			for _, m := range models {
				name := clean(string(m.Name), maxName)
				s.Models = append(s.Models, service.Model{
					Name:          name,
					Digest:        clean(string(m.Digest), 128),
					Family:        clean(string(m.Details.Family), 64),
					ParameterSize: clean(string(m.Details.ParameterSize), 32),
					Quantization:  clean(string(m.Details.QuantizationLevel), 32),
					Size:          int64(m.Size),
					Format:        clean(string(m.Details.Format), 32),
					ParentModel:   clean(string(m.Details.ParentModel), maxName),
					Remote:        isCloudName(name) || m.RemoteHost != "" || m.RemoteModel != "",
				})
			}
		}
	}

	psReq := Request{Method: http.MethodGet, Path: "/api/ps"}
	if r := t.fetch(ctx, psReq); r.OK() && r.Status == http.StatusOK {
		if loaded, ok := decodeOllamaList(r.Body); ok {
			for i, m := range loaded {
				if i == p.opts.MaxModels {
					break
				}
				lm := service.LoadedModel{
					Name:     clean(string(m.Name), maxName),
					Digest:   clean(string(m.Digest), 128),
					Size:     int64(m.Size),
					SizeVRAM: int64(m.SizeVRAM),
				}
				if ts, err := time.Parse(time.RFC3339Nano, string(m.ExpiresAt)); err == nil {
					lm.ExpiresAt = ts.UTC()
				}
				s.Loaded = append(s.Loaded, lm)
			}
			s.Evidence = append(s.Evidence, fmt.Sprintf("GET /api/ps → %d loaded", len(s.Loaded)))
		}
	}

	showAll(ctx, t, s)
}

// showAll calls POST /api/show for every recorded model, a few at a time.
// Old servers want {"name":...} instead of {"model":...}; the first 400
// switches the field for the rest.
func showAll(ctx context.Context, t *target, s *service.Service) {
	if len(s.Models) == 0 {
		return
	}
	var useName atomic.Bool
	var failed, shown atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < showWorkers && w < len(s.Models); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				sh, ok := showOne(ctx, t, s.Models[i].Name, &useName)
				if !ok {
					failed.Add(1)
					continue
				}
				shown.Add(1)
				applyShow(&s.Models[i], sh)
			}
		}()
	}
	for i := range s.Models {
		if ctx.Err() != nil || t.failing() {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	field := "model"
	if useName.Load() {
		field = "name"
	}
	s.Evidence = append(s.Evidence, fmt.Sprintf("POST /api/show {%q:…} → details for %d of %d models", field, shown.Load(), len(s.Models)))
}

func showOne(ctx context.Context, t *target, name string, useName *atomic.Bool) (ollamaShow, bool) {
	body := func(field string) string {
		b, _ := json.Marshal(map[string]string{field: name})
		return string(b)
	}
	field := "model"
	if useName.Load() {
		field = "name"
	}
	r := t.do(ctx, Request{Method: http.MethodPost, Path: "/api/show", Body: body(field)}, nil)
	if r.OK() && r.Status == http.StatusBadRequest && field == "model" {
		r2 := t.do(ctx, Request{Method: http.MethodPost, Path: "/api/show", Body: body("name")}, nil)
		if r2.OK() && r2.Status == http.StatusOK {
			useName.Store(true)
			r = r2
		}
	}
	if !r.OK() || r.Status != http.StatusOK {
		return ollamaShow{}, false
	}
	return decodeOllamaShow(r.Body)
}

func applyShow(m *service.Model, sh ollamaShow) {
	sys := string(sh.System)
	if sys == "" {
		sys = modelfileSystem(string(sh.Modelfile))
	}
	m.SystemPrompt = clean(sys, maxPromptText)
	m.Template = clean(string(sh.Template), maxPromptText)
	m.Parameters = clean(string(sh.Parameters), maxPromptText)
	m.License = clean(strings.TrimSpace(string(sh.License)), maxLicense)
	if sh.RemoteHost != "" || sh.RemoteModel != "" {
		m.Remote = true
	}
	fill := func(dst *string, v flexString, n int) {
		if *dst == "" {
			*dst = clean(string(v), n)
		}
	}
	fill(&m.Family, sh.Details.Family, 64)
	fill(&m.ParameterSize, sh.Details.ParameterSize, 32)
	fill(&m.Quantization, sh.Details.QuantizationLevel, 32)
	fill(&m.Format, sh.Details.Format, 32)
	fill(&m.ParentModel, sh.Details.ParentModel, maxName)
}

var systemLineRE = regexp.MustCompile(`(?i)^\s*SYSTEM(\s+|$)`)

// modelfileSystem returns the last SYSTEM instruction of a Modelfile:
// SYSTEM text, SYSTEM "text" or SYSTEM """multi-line text""".
func modelfileSystem(mf string) string {
	lines := strings.Split(mf, "\n")
	found := ""
	for i := 0; i < len(lines); i++ {
		loc := systemLineRE.FindStringIndex(lines[i])
		if loc == nil {
			continue
		}
		rest := strings.TrimSpace(lines[i][loc[1]:])
		if strings.HasPrefix(rest, `"""`) {
			rest = rest[3:]
			if end := strings.Index(rest, `"""`); end >= 0 {
				found = rest[:end]
				continue
			}
			var b strings.Builder
			b.WriteString(rest)
			for i++; i < len(lines); i++ {
				if end := strings.Index(lines[i], `"""`); end >= 0 {
					b.WriteString("\n")
					b.WriteString(lines[i][:end])
					break
				}
				b.WriteString("\n")
				b.WriteString(lines[i])
			}
			found = strings.TrimPrefix(b.String(), "\n")
			continue
		}
		if len(rest) >= 2 && strings.HasPrefix(rest, `"`) && strings.HasSuffix(rest, `"`) {
			rest = rest[1 : len(rest)-1]
		}
		found = rest
	}
	return found
}
