package lab

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/service"
)

var fixedNow = func() time.Time { return time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC) }

// goldenPersona is a hand-built persona per stack, independent of the
// PRNG, so golden files only change when a response shape changes.
func goldenPersona(stack string, auth bool) *Persona {
	versions := map[string]string{
		StackOllama: "0.12.6", StackVLLM: "0.8.5", StackLlamaCpp: "b5720", StackLMStudio: "0.3.20",
		StackLocalAI: "v2.24.2", StackTGI: "3.2.3", StackTextGenWebUI: "v3.4", StackOpenWebUI: "0.6.5",
		StackKoboldCpp: "1.86", StackSGLang: "0.4.6.post5", StackLiteLLM: "1.67.4", StackXinference: "1.5.1",
		StackGPT4All: "3.10.0", StackJan: "0.5.17", StackOpenAICompatible: "",
	}
	port, _ := DefaultPort(stack)
	p := &Persona{Addr: netip.MustParseAddr("127.10.0.2"), Port: port, Stack: stack, Version: versions[stack]}
	g := &generator{}
	cat, _ := loadCatalog()
	g.cat = cat
	entries := []modelEntry{cat.Models[0], cat.Models[15]} // llama3.2:3b and its abliterated sibling
	for i, e := range entries {
		m := g.fixedModel(p, e, i)
		p.Models = append(p.Models, m)
	}
	if stack == StackOllama {
		p.Models[1].SystemPrompt = cat.Prompts[8].Text
		p.Models[1].SystemPromptCategories = cat.Prompts[8].Categories
		c := g.fixedModel(p, cat.CloudModels[0], 2)
		c.Remote, c.RemoteModel, c.RemoteHost, c.Blob = true, cat.CloudModels[0].RemoteModel, "https://ollama.com:443", ""
		p.Models = append(p.Models, c)
		p.Loaded = []string{p.Models[0].Name}
		p.ManagementOpen = !auth
	}
	if auth {
		p.AuthRequired, p.AuthMode = true, authModeFor(stack)
	}
	p.CORS = corsFor(stack, false)
	p.ServerHeader = serverHeader(p)
	if p.AuthMode == AuthModeProxy {
		p.CORS, p.ServerHeader = "", "nginx"
	}
	return p
}

// fixedModel is generator.model without randomness.
func (g *generator) fixedModel(p *Persona, e modelEntry, i int) Model {
	saved := g.rng
	g.rng = nil
	defer func() { g.rng = saved }()
	m := Model{}
	m.Family, m.ParameterSize, m.Quantization, m.Size, m.License = e.Family, e.Params, e.Quant, e.Size, e.License
	m.Families = []string{e.Family}
	m.GuardrailsRemoved, m.GuardrailEvidence = e.GuardrailsRemoved, e.Evidence
	m.SystemPromptCategories = []string{}
	m.ModifiedDays = 10 * (i + 1)
	hf := e.HF[strings.LastIndex(e.HF, "/")+1:]
	switch p.Stack {
	case StackOllama, StackOpenWebUI:
		m.Name, m.Format = e.Ollama, "gguf"
		m.Digest = strings.Repeat(string(rune('a'+i)), 64)
		m.Blob = strings.Repeat(string(rune('0'+i)), 64)
		m.Template, m.Parameters = templateFor(e.Family), parametersFor(e.Family)
	case StackVLLM, StackSGLang, StackTGI, StackOpenAICompatible:
		m.Name = e.HF
	case StackXinference:
		m.Name, m.Format = strings.ToLower(hf), "pytorch"
	case StackLlamaCpp:
		m.Name = "/models/" + e.GGUF
	case StackKoboldCpp:
		m.Name = "koboldcpp/" + strings.TrimSuffix(e.GGUF, ".gguf")
	case StackGPT4All:
		m.Name = strings.ReplaceAll(hf, "-", " ")
	case StackTextGenWebUI:
		m.Name = e.GGUF
	case StackLiteLLM:
		m.Name = e.Ollama
	case StackJan:
		m.Name = strings.ToLower(hf) + ":3b"
	default:
		m.Name = strings.ToLower(strings.TrimSuffix(e.GGUF, ".gguf"))
	}
	m.ID = m.Name
	return m
}

type probe struct {
	method, path, body string
	header             map[string]string
}

// discovery is the read-only surface each stack is documented to have, plus
// one unknown path and one write route.
var discovery = map[string][]probe{
	StackOllama: {
		{method: "GET", path: "/"}, {method: "HEAD", path: "/"}, {method: "GET", path: "/api/version"},
		{method: "GET", path: "/api/tags"}, {method: "GET", path: "/api/ps"},
		{method: "POST", path: "/api/show", body: `{"model":"huihui_ai/llama3.2-abliterated:3b"}`},
		{method: "POST", path: "/api/show", body: `{"name":"gpt-oss:120b-cloud"}`},
		{method: "POST", path: "/api/show", body: `{"model":"nope:1b"}`},
		{method: "HEAD", path: "/api/blobs/sha256:" + strings.Repeat("0", 64)},
		{method: "HEAD", path: "/api/blobs/sha256:" + strings.Repeat("f", 64)},
		{method: "GET", path: "/v1/models"},
		{method: "GET", path: "/api/tags", header: map[string]string{"Origin": "https://evil.example"}},
		{method: "GET", path: "/api/version", header: map[string]string{"Origin": "http://localhost:3000"}},
		{method: "GET", path: "/nope"},
	},
	StackVLLM:     {{method: "GET", path: "/v1/models"}, {method: "GET", path: "/version"}, {method: "GET", path: "/health"}, {method: "GET", path: "/metrics"}, {method: "GET", path: "/nope"}},
	StackSGLang:   {{method: "GET", path: "/v1/models"}, {method: "GET", path: "/get_model_info"}, {method: "GET", path: "/get_server_info"}, {method: "GET", path: "/health"}},
	StackLlamaCpp: {{method: "GET", path: "/health"}, {method: "GET", path: "/props"}, {method: "GET", path: "/v1/models"}, {method: "GET", path: "/slots"}, {method: "GET", path: "/metrics"}, {method: "GET", path: "/nope"}},
	StackLMStudio: {{method: "GET", path: "/v1/models"}, {method: "GET", path: "/api/v0/models"}, {method: "GET", path: "/nope"}},
	StackLocalAI:  {{method: "GET", path: "/readyz"}, {method: "GET", path: "/v1/models"}, {method: "GET", path: "/system"}, {method: "GET", path: "/version"}, {method: "GET", path: "/nope"}},
	StackTGI:      {{method: "GET", path: "/info"}, {method: "GET", path: "/health"}, {method: "GET", path: "/nope"}},
	StackTextGenWebUI: {{method: "GET", path: "/v1/models"}, {method: "GET", path: "/v1/internal/model/info"},
		{method: "GET", path: "/v1/internal/model/list"}, {method: "GET", path: "/nope"}},
	StackOpenWebUI: {{method: "GET", path: "/"}, {method: "GET", path: "/health"}, {method: "GET", path: "/api/version"},
		{method: "GET", path: "/api/config"}, {method: "GET", path: "/api/models"}},
	StackKoboldCpp: {{method: "GET", path: "/api/v1/model"}, {method: "GET", path: "/api/extra/version"}, {method: "GET", path: "/v1/models"},
		{method: "POST", path: "/api/v1/generate", body: `{"prompt":"hi"}`}},
	StackLiteLLM: {{method: "GET", path: "/health/liveliness"}, {method: "GET", path: "/health/readiness"},
		{method: "GET", path: "/v1/models"}, {method: "GET", path: "/model/info"}},
	StackXinference:       {{method: "GET", path: "/v1/models"}, {method: "GET", path: "/v1/cluster/auth"}, {method: "GET", path: "/v1/cluster/version"}},
	StackGPT4All:          {{method: "GET", path: "/v1/models"}, {method: "GET", path: "/nope"}},
	StackJan:              {{method: "GET", path: "/v1/models"}},
	StackOpenAICompatible: {{method: "GET", path: "/v1/models"}, {method: "GET", path: "/nope"}},
}

type exchange struct {
	Request string            `json:"request"`
	Auth    bool              `json:"auth"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	JSON    any               `json:"json,omitempty"`
	Text    string            `json:"text,omitempty"`
}

var goldenHeaders = []string{"Content-Type", "Server", "WWW-Authenticate", "X-Powered-By", "Access-Control-Allow-Origin", "Content-Encoding"}

func TestStackGolden(t *testing.T) {
	for _, stack := range Stacks() {
		t.Run(stack, func(t *testing.T) {
			var got []exchange
			for _, auth := range []bool{false, true} {
				s := newServer(goldenPersona(stack, auth), &HitLog{}, fixedNow)
				for _, pr := range discovery[stack] {
					req := httptest.NewRequest(pr.method, pr.path, strings.NewReader(pr.body))
					for k, v := range pr.header {
						req.Header.Set(k, v)
					}
					rec := httptest.NewRecorder()
					s.ServeHTTP(rec, req)
					ex := exchange{Request: pr.method + " " + pr.path, Auth: auth, Status: rec.Code, Headers: map[string]string{}}
					if pr.header["Origin"] != "" {
						ex.Request += " Origin=" + pr.header["Origin"]
					}
					for _, h := range goldenHeaders {
						if v := rec.Header().Get(h); v != "" {
							ex.Headers[h] = v
						}
					}
					body := rec.Body.Bytes()
					if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && json.Unmarshal(body, &ex.JSON) == nil {
						// parsed
					} else {
						ex.Text = string(body)
					}
					got = append(got, ex)
				}
			}
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			goldentest.Check(t, filepath.Join("testdata", stack+".golden.json"), b)
		})
	}
}

func do(t *testing.T, s http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestOllamaShapes(t *testing.T) {
	p := goldenPersona(StackOllama, false)
	s := newServer(p, nil, fixedNow)

	var tags struct {
		Models []struct {
			Name, Model, Digest, ModifiedAt string
			Size                            int64
			RemoteModel                     string `json:"remote_model"`
			RemoteHost                      string `json:"remote_host"`
			Details                         struct {
				Format, Family, ParameterSize string
				Quantization                  string `json:"quantization_level"`
				Families                      []string
			}
		}
	}
	rec := do(t, s, "GET", "/api/tags", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &tags); err != nil {
		t.Fatal(err)
	}
	if len(tags.Models) != len(p.Models) {
		t.Fatalf("tags lists %d models, persona has %d", len(tags.Models), len(p.Models))
	}
	for i, m := range tags.Models {
		if m.Name != p.Models[i].Name || m.Model != m.Name || len(m.Digest) != 64 || m.Details.Format != "gguf" {
			t.Errorf("tags entry %d = %+v", i, m)
		}
		if p.Models[i].Remote != (m.RemoteHost != "") {
			t.Errorf("remote_host on %s = %q", m.Name, m.RemoteHost)
		}
	}

	for _, tc := range []struct {
		body   string
		status int
		system string
	}{
		{`{"model":"huihui_ai/llama3.2-abliterated:3b"}`, 200, p.Models[1].SystemPrompt},
		{`{"name":"llama3.2:3b"}`, 200, ""},
		{`{"model":"unknown:7b"}`, 404, ""},
		{`{}`, 400, ""},
	} {
		rec := do(t, s, "POST", "/api/show", tc.body)
		if rec.Code != tc.status {
			t.Errorf("show %s: status %d, want %d", tc.body, rec.Code, tc.status)
			continue
		}
		var resp map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		if tc.status == 404 && resp["error"] != "model 'unknown:7b' not found" {
			t.Errorf("show 404 body %v", resp)
		}
		if tc.status == 200 {
			if got, _ := resp["system"].(string); got != tc.system {
				t.Errorf("show %s: system %q, want %q", tc.body, got, tc.system)
			}
			if tc.system != "" && !strings.Contains(resp["modelfile"].(string), "SYSTEM") {
				t.Errorf("modelfile lacks SYSTEM line")
			}
		}
	}

	for path, want := range map[string]int{
		"/api/blobs/sha256:" + p.Models[0].Blob:        200,
		"/api/blobs/sha256:" + strings.Repeat("9", 64): 404,
		"/api/blobs/sha256:xyz":                        400,
	} {
		if rec := do(t, s, "HEAD", path, ""); rec.Code != want {
			t.Errorf("HEAD %s = %d, want %d", path, rec.Code, want)
		}
	}

	// Old Ollama had no /api/ps.
	old := goldenPersona(StackOllama, false)
	old.Version = "0.1.29"
	if rec := do(t, newServer(old, nil, fixedNow), "GET", "/api/ps", ""); rec.Code != 404 || rec.Body.String() != "404 page not found" {
		t.Errorf("0.1.29 /api/ps = %d %q", rec.Code, rec.Body.String())
	}
}

func TestCORS(t *testing.T) {
	for _, tc := range []struct {
		stack, cors, origin string
		status              int
		acao                string
	}{
		{StackOllama, "", "https://evil.example", 403, ""},
		{StackOllama, "", "http://127.0.0.1:8080", 200, "http://127.0.0.1:8080"},
		{StackOllama, "", "app://obsidian.md", 200, "app://obsidian.md"},
		{StackOllama, "*", "https://evil.example", 200, "*"},
		{StackVLLM, "*", "https://evil.example", 200, "*"},
		{StackLlamaCpp, "echo", "https://evil.example", 200, "https://evil.example"},
		{StackLMStudio, "", "https://evil.example", 200, ""},
	} {
		p := goldenPersona(tc.stack, false)
		p.CORS = tc.cors
		path := "/v1/models"
		if tc.stack == StackOllama {
			path = "/api/version"
		}
		rec := do(t, newServer(p, nil, fixedNow), "GET", path, "", "Origin", tc.origin)
		if rec.Code != tc.status || rec.Header().Get("Access-Control-Allow-Origin") != tc.acao {
			t.Errorf("%s cors=%q origin %s: %d ACAO %q, want %d %q", tc.stack, tc.cors, tc.origin,
				rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), tc.status, tc.acao)
		}
	}
}

func TestAuthPerStack(t *testing.T) {
	// path that must be refused, path that must stay open (empty = none).
	for _, tc := range []struct {
		stack, refused, open string
	}{
		{StackOllama, "/api/tags", ""},
		{StackVLLM, "/v1/models", "/version"},
		{StackLlamaCpp, "/props", "/v1/models"},
		{StackLocalAI, "/v1/models", "/readyz"},
		{StackOpenWebUI, "/api/models", "/api/config"},
		{StackLiteLLM, "/v1/models", "/health/liveliness"},
		{StackXinference, "/v1/models", "/v1/cluster/auth"},
		{StackTextGenWebUI, "/v1/models", ""},
		{StackSGLang, "/v1/models", "/health"},
		{StackKoboldCpp, "/api/v1/generate", "/api/v1/model"},
		{StackGPT4All, "/v1/models", ""},
	} {
		p := goldenPersona(tc.stack, true)
		s := newServer(p, nil, fixedNow)
		method := "GET"
		if tc.stack == StackKoboldCpp {
			method = "POST"
		}
		if rec := do(t, s, method, tc.refused, "{}"); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s with auth on: %d, want 401", tc.stack, tc.refused, rec.Code)
		}
		if tc.open != "" {
			if rec := do(t, s, "GET", tc.open, ""); rec.Code != http.StatusOK {
				t.Errorf("%s %s with auth on: %d, want 200", tc.stack, tc.open, rec.Code)
			}
		}
		// The same persona without auth answers the refused route.
		s = newServer(goldenPersona(tc.stack, false), nil, fixedNow)
		if rec := do(t, s, method, tc.refused, `{"prompt":"hi"}`); rec.Code != http.StatusOK {
			t.Errorf("%s %s with auth off: %d, want 200", tc.stack, tc.refused, rec.Code)
		}
	}
}

func TestHitLogRecordsWriteRoutes(t *testing.T) {
	hits := &HitLog{}
	s := newServer(goldenPersona(StackOllama, false), hits, fixedNow)
	do(t, s, "GET", "/api/tags", "")
	do(t, s, "GET", "/api/tags", "")
	do(t, s, "POST", "/api/show", `{"model":"llama3.2:3b"}`)
	if w := hits.Writes(); len(w) != 0 {
		t.Fatalf("read-only requests logged as writes: %v", w)
	}
	do(t, s, "POST", "/api/pull", `{"model":"llama3"}`)
	do(t, s, "POST", "/api/generate", `{"model":"llama3.2:3b","prompt":"hi","stream":false}`)
	do(t, s, "DELETE", "/api/delete", `{"model":"llama3.2:3b"}`)
	do(t, s, "POST", "/v1/chat/completions", `{"model":"llama3.2:3b"}`)

	want := []Hit{
		{Method: "DELETE", Path: "/api/delete", Count: 1, Write: true},
		{Method: "POST", Path: "/api/generate", Count: 1, Write: true},
		{Method: "POST", Path: "/api/pull", Count: 1, Write: true},
		{Method: "POST", Path: "/v1/chat/completions", Count: 1, Write: true},
	}
	got := hits.Writes()
	if len(got) != len(want) {
		t.Fatalf("writes = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("write %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, h := range hits.Hits() {
		if h.Path == "/api/tags" && h.Count != 2 {
			t.Errorf("/api/tags counted %d times, want 2", h.Count)
		}
	}
	// Generated text is the fixed completion.
	rec := do(t, s, "POST", "/api/generate", `{"model":"llama3.2:3b","prompt":"hi","stream":false}`)
	if !strings.Contains(rec.Body.String(), completionText) {
		t.Errorf("generate answered %q", rec.Body.String())
	}
}

func TestPersonaServiceModels(t *testing.T) {
	p := goldenPersona(StackOllama, false)
	sm := p.ServiceModels()
	if len(sm) != len(p.Models) {
		t.Fatal("ServiceModels dropped models")
	}
	var _ []service.Model = sm
	if !sm[1].GuardrailsRemoved || len(sm[1].SystemPromptCategories) == 0 {
		t.Errorf("ground truth lost labels: %+v", sm[1])
	}
}
