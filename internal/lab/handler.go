package lab

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Hit is one distinct request line a persona received.
type Hit struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Count  int    `json:"count"`
	// Write is true for routes that change state or spend compute on the
	// real server: pull, push, create, copy, delete, blob upload, generate,
	// chat, completions, embeddings. A passive scanner never causes one.
	Write bool `json:"write"`
}

// HitLog records the requests one persona received. It is safe for
// concurrent use; the zero value is ready.
type HitLog struct {
	mu   sync.Mutex
	hits map[[2]string]*Hit
}

func (l *HitLog) record(method, path string, write bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hits == nil {
		l.hits = make(map[[2]string]*Hit)
	}
	k := [2]string{method, path}
	h, ok := l.hits[k]
	if !ok {
		h = &Hit{Method: method, Path: path}
		l.hits[k] = h
	}
	h.Count++
	h.Write = h.Write || write
}

// Hits returns every recorded request, sorted by path then method.
func (l *HitLog) Hits() []Hit {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Hit, 0, len(l.hits))
	for _, h := range l.hits {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b Hit) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out
}

// Writes returns only the recorded write-route requests.
func (l *HitLog) Writes() []Hit {
	var out []Hit
	for _, h := range l.Hits() {
		if h.Write {
			out = append(out, h)
		}
	}
	return out
}

// route is one endpoint of an emulated server.
type route struct {
	method string
	// path is matched exactly, or as a prefix when it ends in "/*".
	path string
	// write marks state-changing or compute-spending routes.
	write bool
	// open routes answer even when the persona's native auth is on.
	open bool
	h    http.HandlerFunc
}

func (rt route) matches(path string) bool {
	if p, ok := strings.CutSuffix(rt.path, "/*"); ok {
		return strings.HasPrefix(path, p+"/") && len(path) > len(p)+1
	}
	return rt.path == path
}

// stack is how one product answers: its routes and its error bodies.
type stack struct {
	routes []route
	// notFound answers an unknown path; methodNotAllowed a known path with
	// the wrong method (nil = same as notFound).
	notFound, methodNotAllowed http.HandlerFunc
	// unauthorized answers a protected route when native auth is on.
	// The lab accepts no key at all: every credential is wrong.
	unauthorized http.HandlerFunc
}

// labEpoch anchors every timestamp a persona reports, so responses are
// reproducible: model modified_at is ModifiedDays before it.
var labEpoch = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)

// server is one persona's emulation state.
type server struct {
	p     *Persona
	hits  *HitLog
	now   func() time.Time
	stack stack
	bomb  func() []byte
}

// Handler answers HTTP like persona p and records every request in hits
// (which may be nil). Raw-socket hostile kinds (tarpit, garbage,
// endless-headers) are served by hijacking the connection after the request
// is read; Start serves them from the first byte instead.
func Handler(p *Persona, hits *HitLog) http.Handler {
	return newServer(p, hits, time.Now)
}

func newServer(p *Persona, hits *HitLog, now func() time.Time) *server {
	s := &server{p: p, hits: hits, now: now}
	s.bomb = sync.OnceValue(gzipBombMember)
	s.stack = buildStack(s)
	return s
}

func buildStack(s *server) stack {
	switch s.p.Stack {
	case StackOllama:
		return ollamaStack(s)
	case StackVLLM:
		return vllmStack(s)
	case StackSGLang:
		return sglangStack(s)
	case StackLlamaCpp:
		return llamacppStack(s)
	case StackLMStudio:
		return lmstudioStack(s)
	case StackLocalAI:
		return localaiStack(s)
	case StackTGI:
		return tgiStack(s)
	case StackTextGenWebUI:
		return tgwuiStack(s)
	case StackOpenWebUI:
		return openwebuiStack(s)
	case StackKoboldCpp:
		return koboldStack(s)
	case StackLiteLLM:
		return litellmStack(s)
	case StackXinference:
		return xinferenceStack(s)
	case StackGPT4All:
		return gpt4allStack(s)
	case StackJan:
		return janStack(s)
	}
	return openaiStack(s)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, known, pathKnown := s.lookup(r)
	s.hits.record(r.Method, r.URL.Path, known && rt.write)

	if s.p.Hostile != "" {
		s.serveHostile(w, r)
		return
	}
	if s.p.ServerHeader != "" {
		w.Header().Set("Server", s.p.ServerHeader)
	}
	if s.p.AuthRequired && s.p.AuthMode == AuthModeProxy {
		proxyUnauthorized(w, r)
		return
	}
	if !s.cors(w, r) {
		return
	}
	switch {
	case !known && pathKnown && s.stack.methodNotAllowed != nil:
		s.stack.methodNotAllowed(w, r)
	case !known:
		s.stack.notFound(w, r)
	case s.p.AuthRequired && s.p.AuthMode == AuthModeNative && !rt.open:
		s.stack.unauthorized(w, r)
	default:
		rt.h(w, r)
	}
}

func (s *server) lookup(r *http.Request) (route, bool, bool) {
	pathKnown := false
	for _, rt := range s.stack.routes {
		if !rt.matches(r.URL.Path) {
			continue
		}
		pathKnown = true
		if rt.method == r.Method {
			return rt, true, true
		}
	}
	return route{}, false, pathKnown
}

// cors applies the persona's CORS behaviour; false means the request was
// answered (refused or preflight done).
func (s *server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if s.p.Stack == StackOllama && s.p.CORS == "" {
		// gin-contrib/cors with Ollama's allow-list: a foreign origin is
		// aborted with an empty 403; localhost origins pass.
		if !ollamaOriginAllowed(origin) {
			w.WriteHeader(http.StatusForbidden)
			return false
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	} else {
		switch s.p.CORS {
		case "*":
			w.Header().Set("Access-Control-Allow-Origin", "*")
		case "echo":
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Add("Vary", "Origin")
		default:
			return true
		}
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}

// ollamaOriginAllowed mirrors Ollama's default OLLAMA_ORIGINS list
// (envconfig: localhost, 127.0.0.1, 0.0.0.0 with any port, over http and
// https, plus app://, file://, tauri:// and browser extensions).
func ollamaOriginAllowed(origin string) bool {
	for _, scheme := range []string{"app://", "file://", "tauri://", "vscode-webview://", "chrome-extension://", "moz-extension://", "safari-web-extension://"} {
		if strings.HasPrefix(origin, scheme) {
			return true
		}
	}
	for _, host := range []string{"localhost", "127.0.0.1", "0.0.0.0"} {
		for _, scheme := range []string{"http://", "https://"} {
			if origin == scheme+host || strings.HasPrefix(origin, scheme+host+":") {
				return true
			}
		}
	}
	return false
}

// proxyUnauthorized is nginx's auth_basic refusal.
func proxyUnauthorized(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Server", "nginx")
	w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeText(w http.ResponseWriter, status int, ctype, body string) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// Shared error bodies of the frameworks the stacks are built on.
func fastapiNotFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
}

func fastapiMethodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method Not Allowed"})
}

// decodeBody reads a small JSON request body into v; errors are ignored
// because the emulation answers the same either way.
func decodeBody(r *http.Request, v any) {
	if r.Body == nil {
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	_ = dec.Decode(v)
}

// completionText is the fixed answer every generate/chat route gives.
const completionText = "Hello! How can I help you today?"

// openAIChat answers /v1/chat/completions and /v1/completions with a fixed
// short completion in OpenAI's shape.
func (s *server) openAIChat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	decodeBody(r, &req)
	if req.Model == "" && len(s.p.Models) > 0 {
		req.Model = s.p.Models[0].ID
	}
	created := s.now().Unix()
	if strings.HasSuffix(r.URL.Path, "/chat/completions") {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "chatcmpl-lab", "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": completionText}}},
			"usage": map[string]int{"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "cmpl-lab", "object": "text_completion", "created": created, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "text": completionText, "finish_reason": "stop", "logprobs": nil}},
		"usage":   map[string]int{"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
	})
}

func (s *server) openAIEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	decodeBody(r, &req)
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "model": req.Model,
		"data":  []any{map[string]any{"object": "embedding", "index": 0, "embedding": []float64{0.0123, -0.0456, 0.0789}}},
		"usage": map[string]int{"prompt_tokens": 3, "total_tokens": 3},
	})
}

// openAIWriteRoutes are the generation routes every OpenAI-compatible
// server has.
func (s *server) openAIWriteRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/chat/completions", write: true, h: s.openAIChat},
		{method: "POST", path: "/v1/completions", write: true, h: s.openAIChat},
		{method: "POST", path: "/v1/embeddings", write: true, h: s.openAIEmbeddings},
	}
}
