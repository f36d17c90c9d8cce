package lab

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Ollama follows ollama/ollama server/routes.go (GenerateRoutes: the route
// table, "Ollama is running" on GET and HEAD /, gin's "404 page not found"),
// api/types.go (ListResponse/ListModelResponse, ProcessResponse/
// ProcessModelResponse, ShowResponse, ModelDetails) and docs/api.md. The
// version gates below are when upstream added the route or field.

func ollamaStack(s *server) stack {
	p := s.p
	rs := []route{
		{method: "GET", path: "/", open: true, h: ollamaRunning},
		{method: "HEAD", path: "/", open: true, h: ollamaRunning},
		{method: "GET", path: "/api/version", h: s.ollamaVersion},
		{method: "GET", path: "/api/tags", h: s.ollamaTags},
		{method: "POST", path: "/api/show", h: s.ollamaShow},
		{method: "HEAD", path: "/api/blobs/*", h: s.ollamaHeadBlob},
		{method: "POST", path: "/api/blobs/*", write: true, h: ollamaStatus(http.StatusCreated, "")},
		{method: "POST", path: "/api/pull", write: true, h: ollamaStatus(http.StatusOK, `{"status":"success"}`)},
		{method: "POST", path: "/api/push", write: true, h: ollamaStatus(http.StatusOK, `{"status":"success"}`)},
		{method: "POST", path: "/api/create", write: true, h: ollamaStatus(http.StatusOK, `{"status":"success"}`)},
		{method: "POST", path: "/api/copy", write: true, h: ollamaStatus(http.StatusOK, "")},
		{method: "DELETE", path: "/api/delete", write: true, h: ollamaStatus(http.StatusOK, "")},
		{method: "POST", path: "/api/generate", write: true, h: s.ollamaGenerate},
		{method: "POST", path: "/api/chat", write: true, h: s.ollamaGenerate},
		{method: "POST", path: "/api/embeddings", write: true, h: ollamaStatus(http.StatusOK, `{"embedding":[0.0123,-0.0456,0.0789]}`)},
	}
	if versionAtLeast(p.Version, "0.1.38") {
		rs = append(rs, route{method: "GET", path: "/api/ps", h: s.ollamaPs})
	}
	if versionAtLeast(p.Version, "0.3.0") {
		rs = append(rs, route{method: "POST", path: "/api/embed", write: true, h: ollamaStatus(http.StatusOK, `{"embeddings":[[0.0123,-0.0456,0.0789]]}`)})
		rs = append(rs, route{method: "GET", path: "/v1/models", h: s.ollamaOpenAIModels})
	}
	if versionAtLeast(p.Version, "0.5.0") {
		rs = append(rs, route{method: "HEAD", path: "/api/version", h: s.ollamaVersion})
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	notFound := func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusNotFound, "text/plain", "404 page not found")
	}
	st := stack{routes: rs, notFound: notFound, unauthorized: notFound}
	if versionAtLeast(p.Version, "0.5.0") {
		// GenerateRoutes sets r.HandleMethodNotAllowed = true.
		st.methodNotAllowed = func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusMethodNotAllowed, "text/plain", "405 method not allowed")
		}
	}
	return st
}

func ollamaRunning(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "text/plain; charset=utf-8", "Ollama is running")
}

func ollamaStatus(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if body == "" {
			w.WriteHeader(code)
			return
		}
		writeText(w, code, "application/json; charset=utf-8", body)
	}
}

func (s *server) ollamaVersion(w http.ResponseWriter, _ *http.Request) {
	ginJSON(w, http.StatusOK, map[string]string{"version": s.p.Version})
}

func modifiedAt(m *Model) time.Time {
	return labEpoch.Add(-time.Duration(m.ModifiedDays)*24*time.Hour - time.Duration(m.ModifiedDays*37)*time.Minute)
}

func ollamaDetails(m *Model) map[string]any {
	return map[string]any{
		"parent_model":       m.ParentModel,
		"format":             m.Format,
		"family":             m.Family,
		"families":           m.Families,
		"parameter_size":     m.ParameterSize,
		"quantization_level": m.Quantization,
	}
}

func (s *server) ollamaListEntry(m *Model) map[string]any {
	e := map[string]any{
		"name":        m.Name,
		"model":       m.Name,
		"modified_at": modifiedAt(m).Format(time.RFC3339Nano),
		"size":        m.Size,
		"digest":      m.Digest,
		"details":     ollamaDetails(m),
	}
	if m.Remote {
		e["remote_model"] = m.RemoteModel
		e["remote_host"] = m.RemoteHost
	}
	return e
}

func (s *server) ollamaTags(w http.ResponseWriter, _ *http.Request) {
	models := make([]any, 0, len(s.p.Models))
	for i := range s.p.Models {
		models = append(models, s.ollamaListEntry(&s.p.Models[i]))
	}
	ginJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (s *server) ollamaPs(w http.ResponseWriter, _ *http.Request) {
	models := make([]any, 0, len(s.p.Loaded))
	for _, name := range s.p.Loaded {
		m, ok := s.p.model(name)
		if !ok {
			continue
		}
		e := map[string]any{
			"name":       m.Name,
			"model":      m.Name,
			"size":       m.Size + m.Size/8,
			"digest":     m.Digest,
			"details":    ollamaDetails(m),
			"expires_at": s.now().Add(4 * time.Minute).Format(time.RFC3339Nano),
			"size_vram":  m.Size + m.Size/8,
		}
		if versionAtLeast(s.p.Version, "0.9.0") {
			e["context_length"] = 4096
		}
		models = append(models, e)
	}
	ginJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (s *server) ollamaShow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	decodeBody(r, &req)
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if name == "" {
		ginJSON(w, http.StatusBadRequest, map[string]string{"error": "model is required"})
		return
	}
	m, ok := s.p.model(name)
	if !ok {
		ginJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model '%s' not found", name)})
		return
	}
	resp := map[string]any{
		"modelfile":  s.modelfile(m),
		"parameters": m.Parameters,
		"template":   m.Template,
		"details":    ollamaDetails(m),
	}
	if m.License != "" {
		resp["license"] = m.License
	}
	if m.SystemPrompt != "" {
		resp["system"] = m.SystemPrompt
	}
	if versionAtLeast(s.p.Version, "0.3.0") {
		arch := m.Family
		resp["model_info"] = map[string]any{
			"general.architecture":         arch,
			"general.file_type":            15,
			"general.parameter_count":      parameterCount(m.ParameterSize),
			"general.quantization_version": 2,
			arch + ".context_length":       131072,
			arch + ".embedding_length":     3072,
			arch + ".block_count":          28,
		}
		resp["modified_at"] = modifiedAt(m).Format(time.RFC3339Nano)
	}
	if versionAtLeast(s.p.Version, "0.6.4") {
		caps := []string{"completion"}
		if m.Embedding {
			caps = []string{"embedding"}
		}
		resp["capabilities"] = caps
	}
	if m.Remote {
		resp["remote_model"] = m.RemoteModel
		resp["remote_host"] = m.RemoteHost
		delete(resp, "model_info")
	}
	ginJSON(w, http.StatusOK, resp)
}

// parameterCount turns "7.6B" / "137M" into a count.
func parameterCount(s string) int64 {
	var f float64
	var unit string
	if _, err := fmt.Sscanf(s, "%f%s", &f, &unit); err != nil {
		return 0
	}
	switch strings.ToUpper(unit) {
	case "B":
		return int64(f * 1e9)
	case "M":
		return int64(f * 1e6)
	}
	return int64(f)
}

func (s *server) modelfile(m *Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM %s\n\n", m.Name)
	if m.Remote {
		fmt.Fprintf(&b, "FROM %s\n", m.Name)
	} else {
		fmt.Fprintf(&b, "FROM /root/.ollama/models/blobs/sha256-%s\n", m.Blob)
	}
	fmt.Fprintf(&b, "TEMPLATE \"\"\"%s\"\"\"\n", m.Template)
	if m.SystemPrompt != "" {
		fmt.Fprintf(&b, "SYSTEM \"\"\"%s\"\"\"\n", m.SystemPrompt)
	}
	for _, line := range strings.Split(m.Parameters, "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			fmt.Fprintf(&b, "PARAMETER %s %s\n", f[0], strings.Join(f[1:], " "))
		}
	}
	if m.License != "" {
		fmt.Fprintf(&b, "LICENSE \"\"\"%s\"\"\"\n", m.License)
	}
	return b.String()
}

var blobDigest = regexp.MustCompile(`^sha256[:-][0-9a-f]{64}$`)

func (s *server) ollamaHeadBlob(w http.ResponseWriter, r *http.Request) {
	d := strings.TrimPrefix(r.URL.Path, "/api/blobs/")
	if !blobDigest.MatchString(d) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for _, m := range s.p.Models {
		if m.Blob != "" && d[7:] == m.Blob {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
}

// ollamaGenerate answers /api/generate and /api/chat like Ollama's
// GenerateHandler and ChatHandler (server/routes.go; api/types.go
// GenerateResponse, ChatResponse, Metrics at v0.6.8): an NDJSON stream
// (application/x-ndjson) of one chunk per token and a final chunk with
// done, done_reason, the generate context and the metrics — total and
// load durations, prompt_eval_count and _duration, eval_count and
// _duration — unless "stream": false asks for one JSON object; an empty
// prompt (no messages) only loads the model (done_reason "load"). The
// text is always completionText, cut to options.num_predict tokens
// (done_reason "length"); counts and durations are deterministic.
func (s *server) ollamaGenerate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Prompt   string `json:"prompt"`
		System   string `json:"system"`
		Raw      bool   `json:"raw"`
		Stream   *bool  `json:"stream"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Options struct {
			NumPredict *int `json:"num_predict"`
		} `json:"options"`
	}
	decodeBody(r, &req)
	m, ok := s.p.model(req.Model)
	if !ok {
		ginJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model '%s' not found", req.Model)})
		return
	}
	chat := r.URL.Path == "/api/chat"
	created := s.now().UTC().Format(time.RFC3339Nano)
	chunk := func(text string) map[string]any {
		c := map[string]any{"model": req.Model, "created_at": created, "done": false}
		if chat {
			c["message"] = map[string]any{"role": "assistant", "content": text}
		} else {
			c["response"] = text
		}
		return c
	}
	prompt := req.Prompt
	for _, msg := range req.Messages {
		prompt += " " + msg.Content
	}
	if (!chat && req.Prompt == "") || (chat && len(req.Messages) == 0) {
		done := chunk("")
		done["done"], done["done_reason"] = true, "load"
		ginJSON(w, http.StatusOK, done)
		return
	}

	tokens := strings.SplitAfter(completionText, " ")
	reason := "stop"
	if n := req.Options.NumPredict; n != nil && *n >= 0 && *n < len(tokens) {
		tokens, reason = tokens[:*n], "length"
	}
	system := req.System
	if system == "" {
		system = m.SystemPrompt
	}
	promptTokens := 1 + len(strings.Fields(system)) + len(strings.Fields(prompt)) + 4 // template markers
	const perToken = 18 * time.Millisecond
	final := chunk("")
	final["done"], final["done_reason"] = true, reason
	final["prompt_eval_count"] = promptTokens
	final["prompt_eval_duration"] = int64(time.Duration(promptTokens) * 2 * time.Millisecond)
	final["eval_count"] = len(tokens)
	final["eval_duration"] = int64(time.Duration(len(tokens)) * perToken)
	final["load_duration"] = int64(31 * time.Millisecond)
	final["total_duration"] = final["prompt_eval_duration"].(int64) + final["eval_duration"].(int64) + final["load_duration"].(int64) + int64(3*time.Millisecond)
	if !chat && !req.Raw {
		ctx := make([]int, 0, promptTokens+len(tokens))
		for i := 0; i < promptTokens+len(tokens); i++ {
			ctx = append(ctx, 1000+i)
		}
		final["context"] = ctx
	}

	if req.Stream != nil && !*req.Stream {
		text := strings.Join(tokens, "")
		if chat {
			final["message"] = map[string]any{"role": "assistant", "content": text}
		} else {
			final["response"] = text
		}
		ginJSON(w, http.StatusOK, final)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	for _, tok := range tokens {
		if enc.Encode(chunk(tok)) != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	_ = enc.Encode(final)
}

// ollamaOpenAIModels is openai/openai.go ListMiddleware: owned_by is
// "library" for official models and the namespace otherwise, created is the
// modification time.
func (s *server) ollamaOpenAIModels(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for i := range s.p.Models {
		m := &s.p.Models[i]
		owner := "library"
		if ns, _, ok := strings.Cut(m.Name, "/"); ok {
			owner = ns
		}
		data = append(data, map[string]any{"id": m.Name, "object": "model", "created": modifiedAt(m).Unix(), "owned_by": owner})
	}
	ginJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// ginJSON is gin's c.JSON: same body, with gin's charset in Content-Type.
func ginJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	writeJSON(w, status, v)
}
