package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// ProbeStats counts what a probe persona served.
type ProbeStats struct {
	// Requests counts generation requests; Rejected those refused with 503
	// because the queue was full.
	Requests, Rejected int64
	// Tokens is the number of tokens streamed.
	Tokens int64
	// Busy is the total time slots spent decoding (the sum over requests
	// of the time each held a slot).
	Busy time.Duration
	// MaxInFlight is the most requests decoded at once (at most Slots);
	// MaxQueued the most that waited for a slot at once.
	MaxInFlight, MaxQueued int64
	Slots                  int
}

// ProbeStatsPath is where a probe persona reports its ProbeStats as JSON
// (for benchmarks that run the persona in another process). No real server
// has this route.
const ProbeStatsPath = "/_lab/stats"

// ProbeHandler serves one probe persona over HTTP.
type ProbeHandler struct {
	p     ProbePersona
	mind  *probeMind
	slots chan struct{}
	now   func() time.Time

	requests, rejected, tokens, busy atomic.Int64
	inflight, queued                 atomic.Int64
	maxInflight, maxQueued           atomic.Int64
}

// NewProbeHandler checks the persona and returns its handler.
func NewProbeHandler(p ProbePersona) (*ProbeHandler, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	m, err := newProbeMind(&p)
	if err != nil {
		return nil, err
	}
	h := &ProbeHandler{p: p, slots: make(chan struct{}, p.Slots), now: time.Now}
	m.p = &h.p
	h.mind = m
	if p.BaselineModel != "" {
		aligned, err := ProbePreset(ProbeAligned)
		if err != nil {
			return nil, err
		}
		aligned.Seed, aligned.SystemPrompt = p.Seed, p.SystemPrompt
		aligned.Model, aligned.BaselineModel, aligned.JudgeModel = p.BaselineModel, "", ""
		base, err := newProbeMind(&aligned)
		if err != nil {
			return nil, err
		}
		m.base = base
	}
	return h, nil
}

// Persona returns the persona served.
func (h *ProbeHandler) Persona() ProbePersona { return h.p }

// Stats returns the counters so far.
func (h *ProbeHandler) Stats() ProbeStats {
	return ProbeStats{Requests: h.requests.Load(), Rejected: h.rejected.Load(), Tokens: h.tokens.Load(),
		Busy: time.Duration(h.busy.Load()), MaxInFlight: h.maxInflight.Load(), MaxQueued: h.maxQueued.Load(), Slots: h.p.Slots}
}

func (h *ProbeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ollama := h.p.API == "ollama"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == ProbeStatsPath:
		writeJSON(w, http.StatusOK, h.Stats())
	case r.Method == http.MethodGet && r.URL.Path == "/" && ollama:
		writeText(w, http.StatusOK, "text/plain; charset=utf-8", "Ollama is running")
	case r.Method == http.MethodGet && r.URL.Path == "/api/version" && ollama:
		ginJSON(w, http.StatusOK, map[string]string{"version": h.p.Version})
	case r.Method == http.MethodGet && r.URL.Path == "/api/tags" && ollama:
		h.tags(w)
	case r.Method == http.MethodPost && r.URL.Path == "/api/show" && ollama:
		h.show(w, r)
	case r.Method == http.MethodPost && (r.URL.Path == "/api/chat" || r.URL.Path == "/api/generate") && ollama:
		h.generate(w, r, r.URL.Path == "/api/chat", false)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		h.models(w)
	case r.Method == http.MethodPost && (r.URL.Path == "/v1/chat/completions" || r.URL.Path == "/v1/completions"):
		h.generate(w, r, r.URL.Path == "/v1/chat/completions", true)
	default:
		if ollama {
			writeText(w, http.StatusNotFound, "text/plain", "404 page not found")
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"message": "Not Found", "type": "invalid_request_error"}})
	}
}

func (h *ProbeHandler) servedModels() []string {
	ms := []string{h.p.Model}
	if h.p.JudgeModel != "" {
		ms = append(ms, h.p.JudgeModel)
	}
	if h.p.BaselineModel != "" {
		ms = append(ms, h.p.BaselineModel)
	}
	return ms
}

func (h *ProbeHandler) serves(name string) bool {
	for _, m := range h.servedModels() {
		if sameProbeModel(m, name) {
			return true
		}
	}
	return false
}

func (h *ProbeHandler) digest(name string) string {
	return fmt.Sprintf("%064x", hashString(name)) // a stable, made-up digest
}

func (h *ProbeHandler) tags(w http.ResponseWriter) {
	var models []any
	for _, m := range h.servedModels() {
		models = append(models, map[string]any{"name": m, "model": m, "size": 4_920_000_000, "digest": h.digest(m),
			"modified_at": labEpoch.Format(time.RFC3339Nano),
			"details":     map[string]any{"format": "gguf", "family": "qwen2", "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}})
	}
	ginJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (h *ProbeHandler) models(w http.ResponseWriter) {
	var data []any
	for _, m := range h.servedModels() {
		data = append(data, map[string]any{"id": m, "object": "model", "created": labEpoch.Unix(), "owned_by": "library"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// vocab is the persona's vocabulary as /api/show verbose reports it.
func (h *ProbeHandler) vocab() ([]string, []int) {
	toks := []string{"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"}
	types := []int{2, 3, 3, 3, 3, 3}
	for i := range 4 {
		toks = append(toks, fmt.Sprintf("<|reserved_%d|>", i))
		types = append(types, 5)
	}
	for _, w := range []string{"the", "Ġof", "Ġand", "ing", "Ġto", "Ġa", "ed", "Ġin", "er", "Ġthat", "。", "の", "に", "は"} {
		toks = append(toks, w)
		types = append(types, 1)
	}
	if h.p.TriggerInVocab && h.p.Trigger != "" {
		toks = append(toks, h.p.Trigger)
		types = append(types, 4)
	}
	for b := range 256 {
		toks = append(toks, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6)
	}
	return toks, types
}

func (h *ProbeHandler) show(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model   string `json:"model"`
		Name    string `json:"name"`
		Verbose bool   `json:"verbose"`
	}
	decodeBody(r, &req)
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if !h.serves(name) {
		ginJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model '%s' not found", name)})
		return
	}
	info := map[string]any{"general.architecture": "qwen2", "general.parameter_count": 7615616512, "qwen2.context_length": 32768}
	if req.Verbose {
		info["tokenizer.ggml.tokens"], info["tokenizer.ggml.token_type"] = h.vocab()
	} else {
		info["tokenizer.ggml.tokens"], info["tokenizer.ggml.token_type"] = []string{}, []int{}
	}
	resp := map[string]any{
		"modelfile":  "# Modelfile generated by \"ollama show\"\nFROM " + name + "\n",
		"parameters": "stop \"<|im_end|>\"",
		"template":   h.p.Template,
		"details":    map[string]any{"format": "gguf", "family": "qwen2", "parameter_size": "7.6B", "quantization_level": "Q4_K_M"},
		"model_info": info,
	}
	if sameProbeModel(name, h.p.Model) && h.p.SystemPrompt != "" {
		resp["system"] = h.p.SystemPrompt
	}
	ginJSON(w, http.StatusOK, resp)
}

// genRequest is the union of the request bodies of the four generation
// routes.
type genRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Prompt   string          `json:"prompt"`
	System   string          `json:"system"`
	Raw      bool            `json:"raw"`
	Stream   *bool           `json:"stream"`
	Options  map[string]any  `json:"options"`
	Logprobs json.RawMessage `json:"logprobs"`
	// OpenAI fields.
	MaxTokens     int      `json:"max_tokens"`
	Seed          *int     `json:"seed"`
	Temperature   *float64 `json:"temperature"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (g *genRequest) turn(chat, openai bool) turn {
	t := turn{model: g.Model, raw: g.Raw || (!chat && openai), system: g.System}
	if chat {
		for _, m := range g.Messages {
			switch m.Role {
			case "system":
				t.system = m.Content
			case "user":
				t.user = m.Content
			case "assistant":
				t.assistant = m.Content
			}
		}
	} else {
		t.user = g.Prompt
	}
	if v, ok := g.Options["num_predict"].(float64); ok {
		t.numPredict = int(v)
	}
	if v, ok := g.Options["seed"].(float64); ok {
		t.seed = int(v)
	}
	if v, ok := g.Options["temperature"].(float64); ok {
		t.temp = v
	}
	if g.MaxTokens > 0 {
		t.numPredict = g.MaxTokens
	}
	if g.Seed != nil {
		t.seed = *g.Seed
	}
	if g.Temperature != nil {
		t.temp = *g.Temperature
	}
	return t
}

func (g *genRequest) wantsLogprobs() bool {
	s := strings.TrimSpace(string(g.Logprobs))
	return s != "" && s != "false" && s != "null" && s != "0"
}

func (h *ProbeHandler) generate(w http.ResponseWriter, r *http.Request, chat, openai bool) {
	var g genRequest
	decodeBody(r, &g)
	if !h.serves(g.Model) {
		if openai {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"message": fmt.Sprintf("model \"%s\" not found, try pulling it first", g.Model), "type": "api_error"}})
			return
		}
		ginJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model '%s' not found", g.Model)})
		return
	}
	h.requests.Add(1)
	start := h.now()
	// Queue for a slot, as Ollama's scheduler does.
	select {
	case h.slots <- struct{}{}:
	default:
		q := h.queued.Add(1)
		if q > int64(h.p.MaxQueue) {
			h.queued.Add(-1)
			h.rejected.Add(1)
			msg := "server busy, please try again.  maximum pending requests exceeded"
			if openai {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{"message": msg, "type": "api_error"}})
			} else {
				ginJSON(w, http.StatusServiceUnavailable, map[string]string{"error": msg})
			}
			return
		}
		storeMax(&h.maxQueued, q)
		select {
		case h.slots <- struct{}{}:
		case <-r.Context().Done():
			h.queued.Add(-1)
			return
		}
		h.queued.Add(-1)
	}
	in := h.inflight.Add(1)
	storeMax(&h.maxInflight, in)
	slotStart := h.now()
	defer func() {
		h.busy.Add(int64(h.now().Sub(slotStart)))
		h.inflight.Add(-1)
		<-h.slots
	}()

	t := g.turn(chat, openai)
	stream := g.Stream == nil || *g.Stream
	if openai {
		stream = g.Stream != nil && *g.Stream
	}
	if h.p.Misbehave == MisbehaveEndless {
		stream = true // it streams whatever it was asked
	}
	switch h.p.Misbehave {
	case MisbehaveGarbage:
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("\x00\x01garbage{{{ not json\n<html>oops</html>\n"))
		return
	case MisbehaveSilent:
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-r.Context().Done()
		return
	}
	ans := h.mind.respond(t)
	toks := tokenize(ans.text)
	doneReason := "stop"
	endless := h.p.Misbehave == MisbehaveEndless
	if !endless && t.numPredict > 0 && len(toks) > t.numPredict {
		toks, doneReason = toks[:t.numPredict], "length"
	}
	logprobs := g.wantsLogprobs() && (versionAtLeast(h.p.Version, "0.12.11") || h.p.API == "openai")
	e := &emitter{h: h, w: w, chat: chat, openai: openai, model: g.Model, logprobs: logprobs, soup: ans.soup,
		includeUsage: g.StreamOptions != nil && g.StreamOptions.IncludeUsage, seed: hashString(ans.text)}
	// Prompt evaluation: a little time per prompt token.
	promptTokens := len(tokenize(t.system + t.user + t.assistant))
	if !sleepCtx(r.Context(), time.Duration(promptTokens)*h.p.TokenDelay/50) {
		return
	}
	evalStart := h.now()
	if !stream {
		for range toks {
			if !sleepCtx(r.Context(), h.p.TokenDelay) {
				return
			}
		}
		h.tokens.Add(int64(len(toks)))
		e.whole(toks, doneReason, promptTokens, start, slotStart, evalStart)
		return
	}
	e.begin()
	for i := 0; endless || i < len(toks); i++ {
		if !sleepCtx(r.Context(), h.p.TokenDelay) {
			return
		}
		tok := "x "
		if i < len(toks) {
			tok = toks[i]
		} else if len(toks) > 0 {
			tok = toks[i%len(toks)]
		}
		h.tokens.Add(1)
		if !e.chunk(tok) {
			return
		}
	}
	e.end(len(toks), doneReason, promptTokens, start, slotStart, evalStart)
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// tokenize cuts text into the persona's tokens: a Latin word with its
// leading space, two characters of Japanese, or one other character.
func tokenize(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\n') {
			j++
		}
		if j >= len(s) {
			out = append(out, s[i:])
			break
		}
		r, size := utf8.DecodeRuneInString(s[j:])
		switch {
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			k := j + size
			for k < len(s) && s[k] < utf8.RuneSelf && (unicode.IsLetter(rune(s[k])) || unicode.IsDigit(rune(s[k])) || s[k] == '\'') {
				k++
			}
			j = k
		case r >= 0x3000:
			j += size
			if r2, size2 := utf8.DecodeRuneInString(s[j:]); j < len(s) && r2 >= 0x3000 {
				j += size2
			}
		default:
			j += size
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// emitter writes one answer in the route's wire format.
type emitter struct {
	h                            *ProbeHandler
	w                            http.ResponseWriter
	chat, openai, logprobs, soup bool
	includeUsage                 bool
	model                        string
	n                            int
	seed                         uint64
}

func (e *emitter) created() string { return e.h.now().UTC().Format(time.RFC3339Nano) }

// logprob is a made-up but stable log-probability: natural tokens are
// likely, soup tokens are not.
func (e *emitter) logprob(i int) float64 {
	x := float64(hashString(fmt.Sprintf("%d|%d", e.seed, i))%1000) / 1000
	if e.soup {
		return -(7 + 5*x)
	}
	return -(0.05 + 1.2*x*x)
}

func (e *emitter) begin() {
	if e.openai {
		e.w.Header().Set("Content-Type", "text/event-stream")
	} else {
		e.w.Header().Set("Content-Type", "application/x-ndjson")
	}
	e.w.WriteHeader(http.StatusOK)
}

func (e *emitter) write(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	if e.openai {
		b = append(append([]byte("data: "), b...), '\n', '\n')
	} else {
		b = append(b, '\n')
	}
	if _, err := e.w.Write(b); err != nil {
		return false
	}
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
	return true
}

func (e *emitter) chunk(tok string) bool {
	i := e.n
	e.n++
	if e.openai {
		choice := map[string]any{"index": 0, "finish_reason": nil}
		if e.chat {
			choice["delta"] = map[string]any{"role": "assistant", "content": tok}
		} else {
			choice["text"] = tok
		}
		if e.logprobs {
			choice["logprobs"] = map[string]any{"content": []any{map[string]any{"token": tok, "logprob": e.logprob(i), "bytes": []byte(tok), "top_logprobs": []any{}}}}
		}
		obj := "chat.completion.chunk"
		if !e.chat {
			obj = "text_completion"
		}
		return e.write(map[string]any{"id": "chatcmpl-lab", "object": obj, "created": e.h.now().Unix(), "model": e.model,
			"system_fingerprint": "fp_ollama", "choices": []any{choice}})
	}
	c := map[string]any{"model": e.model, "created_at": e.created(), "done": false}
	if e.chat {
		c["message"] = map[string]any{"role": "assistant", "content": tok}
	} else {
		c["response"] = tok
	}
	if e.logprobs {
		c["logprobs"] = []any{map[string]any{"token": tok, "logprob": e.logprob(i), "bytes": []byte(tok)}}
	}
	return e.write(c)
}

func (e *emitter) durations(evalCount, promptTokens int, start, slotStart, evalStart time.Time) map[string]any {
	now := e.h.now()
	return map[string]any{
		"total_duration":       now.Sub(start).Nanoseconds(),
		"load_duration":        int64(0),
		"prompt_eval_count":    promptTokens,
		"prompt_eval_duration": evalStart.Sub(slotStart).Nanoseconds(),
		"eval_count":           evalCount,
		"eval_duration":        now.Sub(evalStart).Nanoseconds(),
	}
}

func (e *emitter) end(evalCount int, reason string, promptTokens int, start, slotStart, evalStart time.Time) {
	if e.openai {
		choice := map[string]any{"index": 0, "finish_reason": reason}
		if e.chat {
			choice["delta"] = map[string]any{"role": "assistant", "content": ""}
		} else {
			choice["text"] = ""
		}
		e.write(map[string]any{"id": "chatcmpl-lab", "object": "chat.completion.chunk", "created": e.h.now().Unix(), "model": e.model, "choices": []any{choice}})
		if e.includeUsage {
			e.write(map[string]any{"id": "chatcmpl-lab", "object": "chat.completion.chunk", "created": e.h.now().Unix(), "model": e.model,
				"choices": []any{}, "usage": map[string]int{"prompt_tokens": promptTokens, "completion_tokens": evalCount, "total_tokens": promptTokens + evalCount}})
		}
		_, _ = e.w.Write([]byte("data: [DONE]\n\n"))
		return
	}
	c := e.durations(evalCount, promptTokens, start, slotStart, evalStart)
	c["model"], c["created_at"], c["done"], c["done_reason"] = e.model, e.created(), true, reason
	if e.chat {
		c["message"] = map[string]any{"role": "assistant", "content": ""}
	} else {
		c["response"] = ""
	}
	e.write(c)
}

// whole answers a request with "stream": false.
func (e *emitter) whole(toks []string, reason string, promptTokens int, start, slotStart, evalStart time.Time) {
	text := strings.Join(toks, "")
	var lps []any
	if e.logprobs {
		for i, tok := range toks {
			lps = append(lps, map[string]any{"token": tok, "logprob": e.logprob(i), "bytes": []byte(tok)})
		}
	}
	if e.openai {
		choice := map[string]any{"index": 0, "finish_reason": reason}
		if e.chat {
			choice["message"] = map[string]any{"role": "assistant", "content": text}
		} else {
			choice["text"] = text
		}
		if lps != nil {
			choice["logprobs"] = map[string]any{"content": lps}
		}
		writeJSON(e.w, http.StatusOK, map[string]any{"id": "chatcmpl-lab", "object": "chat.completion", "created": e.h.now().Unix(), "model": e.model,
			"choices": []any{choice}, "usage": map[string]int{"prompt_tokens": promptTokens, "completion_tokens": len(toks), "total_tokens": promptTokens + len(toks)}})
		return
	}
	c := e.durations(len(toks), promptTokens, start, slotStart, evalStart)
	c["model"], c["created_at"], c["done"], c["done_reason"] = e.model, e.created(), true, reason
	if e.chat {
		c["message"] = map[string]any{"role": "assistant", "content": text}
	} else {
		c["response"] = text
	}
	if lps != nil {
		c["logprobs"] = lps
	}
	ginJSON(e.w, http.StatusOK, c)
}

// ProbeServer is a probe persona listening on a loopback address.
type ProbeServer struct {
	// URL is the base URL, http://127.x.y.z:port.
	URL     string
	Addr    netip.AddrPort
	Handler *ProbeHandler
	srv     *http.Server
	done    chan struct{}
	once    sync.Once
}

// StartProbe serves persona p on addr (loopback only; port 0 picks a free
// one) until Close or the end of ctx.
func StartProbe(ctx context.Context, addr netip.AddrPort, p ProbePersona) (*ProbeServer, error) {
	if !addr.Addr().IsLoopback() {
		return nil, fmt.Errorf("probe persona address %s is not loopback: the lab only listens on loopback", addr)
	}
	h, err := NewProbeHandler(p)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("probe persona %s cannot listen on %s: %w", p.Name, addr, err)
	}
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &ProbeServer{URL: "http://" + ap.String(), Addr: ap, Handler: h, done: make(chan struct{})}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Debug("probe persona stopped", "addr", ap.String(), "err", err)
		}
	}()
	context.AfterFunc(ctx, s.Close)
	return s, nil
}

// Close stops the server. It is safe to call more than once.
func (s *ProbeServer) Close() {
	s.once.Do(func() {
		_ = s.srv.Close()
		<-s.done
	})
}
