package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OllamaLogprobsVersion is the first Ollama release whose native API
// returns per-token log-probabilities ("logprobs": true on /api/chat and
// /api/generate; release notes of v0.12.11).
const OllamaLogprobsVersion = "0.12.11"

// Detect finds out which API the target speaks (unless Config.API fixed
// it), its version where it says, and whether it has log-probabilities. It
// sends GET /api/version and, if that is not Ollama, GET /v1/models.
func (c *Client) Detect(ctx context.Context) (Server, error) {
	api := c.Server().API
	var srv Server
	var ollamaErr error
	if api == "" || api == APIOllama {
		v, err := c.ollamaVersion(ctx)
		switch {
		case err == nil:
			srv = Server{API: APIOllama, Version: v, Logprobs: VersionAtLeast(v, OllamaLogprobsVersion)}
		case api == APIOllama || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrUnauthorized) || ctx.Err() != nil:
			return Server{}, err
		default:
			ollamaErr = err
		}
	}
	if srv.API == "" {
		if _, err := c.openaiModels(ctx); err != nil {
			if api == "" && !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrUnreachable) {
				return Server{}, fmt.Errorf("%w (GET /api/version: %v; GET /v1/models: %v)", ErrNotLLM, ollamaErr, err)
			}
			return Server{}, err
		}
		srv = Server{API: APIOpenAI, Logprobs: true}
	}
	c.mu.Lock()
	c.server = srv
	c.mu.Unlock()
	return srv, nil
}

// getJSON sends a GET (or POST with body) and decodes a JSON answer of at
// most limit bytes into out.
func (c *Client) getJSON(ctx context.Context, method, path string, body []byte, limit int64, out any) error {
	resp, it, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer it.stop()
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return statusError(method, path, resp, b)
	}
	dec := json.NewDecoder(&touchReader{r: io.LimitReader(resp.Body, limit+1), it: it, left: limit})
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return fmt.Errorf("%s %s: answer larger than %d bytes: %w", method, path, limit, ErrProtocol)
		}
		if cerr := context.Cause(ctx); cerr != nil {
			return fmt.Errorf("%s %s: %w", method, path, cerr)
		}
		return fmt.Errorf("%s %s: answer is not the expected JSON (%v): %w", method, path, err, ErrProtocol)
	}
	return nil
}

var errBodyTooLarge = errors.New("body too large")

// touchReader touches the idle timer on every read and fails once more
// than left bytes were read.
type touchReader struct {
	r    io.Reader
	it   *idleTimer
	left int64
}

func (t *touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.it.touch()
		t.left -= int64(n)
		if t.left < 0 {
			return n, errBodyTooLarge
		}
	}
	return n, err
}

func (c *Client) ollamaVersion(ctx context.Context) (string, error) {
	var v struct {
		Version *string `json:"version"`
	}
	if err := c.getJSON(ctx, http.MethodGet, "/api/version", nil, maxErrorBody, &v); err != nil {
		return "", err
	}
	if v.Version == nil {
		return "", fmt.Errorf("GET /api/version: no version field: %w", ErrProtocol)
	}
	return *v.Version, nil
}

// Model is one model the target lists.
type Model struct {
	Name   string `json:"name"`
	Digest string `json:"digest,omitempty"`
}

// Models lists what the target serves (/api/tags or /v1/models).
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	if c.Server().API == APIOpenAI {
		return c.openaiModels(ctx)
	}
	var tags struct {
		Models []struct {
			Name   string `json:"name"`
			Model  string `json:"model"`
			Digest string `json:"digest"`
		} `json:"models"`
	}
	if err := c.getJSON(ctx, http.MethodGet, "/api/tags", nil, maxSmallBody, &tags); err != nil {
		return nil, err
	}
	out := make([]Model, 0, len(tags.Models))
	for _, m := range tags.Models {
		name := m.Name
		if name == "" {
			name = m.Model
		}
		out = append(out, Model{Name: name, Digest: m.Digest})
	}
	return out, nil
}

// Show is what Ollama's /api/show reveals about a model.
type Show struct {
	System     string `json:"system,omitempty"`
	Template   string `json:"template,omitempty"`
	Parameters string `json:"parameters,omitempty"`
	Family     string `json:"family,omitempty"`
	// Tokens and TokenTypes are the vocabulary (verbose only, and only
	// where the model file carries it): GGUF tokenizer.ggml.tokens and
	// tokenizer.ggml.token_type (1 normal, 2 unknown, 3 control, 4 user
	// defined, 5 unused, 6 byte).
	Tokens     []string `json:"-"`
	TokenTypes []int    `json:"-"`
}

// ErrNoShow: the API has no model description (OpenAI-compatible).
var ErrNoShow = errors.New("the API does not describe models")

// Show reads a model's description (POST /api/show); verbose adds the
// vocabulary. A missing model is ErrModelNotFound.
func (c *Client) Show(ctx context.Context, model string, verbose bool) (Show, error) {
	if c.Server().API != APIOllama {
		return Show{}, ErrNoShow
	}
	body, _ := json.Marshal(map[string]any{"model": model, "verbose": verbose})
	var raw struct {
		System     string `json:"system"`
		Template   string `json:"template"`
		Parameters string `json:"parameters"`
		Details    struct {
			Family string `json:"family"`
		} `json:"details"`
		ModelInfo struct {
			Tokens     []string `json:"tokenizer.ggml.tokens"`
			TokenTypes []int    `json:"tokenizer.ggml.token_type"`
		} `json:"model_info"`
	}
	if err := c.getJSON(ctx, http.MethodPost, "/api/show", body, c.limits.MaxShowBytes, &raw); err != nil {
		return Show{}, err
	}
	s := Show{System: raw.System, Template: raw.Template, Parameters: raw.Parameters, Family: raw.Details.Family,
		Tokens: raw.ModelInfo.Tokens, TokenTypes: raw.ModelInfo.TokenTypes}
	if len(s.TokenTypes) != len(s.Tokens) {
		s.TokenTypes = nil
	}
	return s, nil
}

// ollamaChunk is one NDJSON line of /api/chat or /api/generate.
type ollamaChunk struct {
	Message *struct {
		Content string `json:"content"`
	} `json:"message"`
	Response           string `json:"response"`
	Done               bool   `json:"done"`
	DoneReason         string `json:"done_reason"`
	Error              string `json:"error"`
	EvalCount          int    `json:"eval_count"`
	PromptEvalCount    int    `json:"prompt_eval_count"`
	TotalDuration      int64  `json:"total_duration"`
	LoadDuration       int64  `json:"load_duration"`
	PromptEvalDuration int64  `json:"prompt_eval_duration"`
	EvalDuration       int64  `json:"eval_duration"`
	Logprobs           []struct {
		Logprob float64 `json:"logprob"`
	} `json:"logprobs"`
}

func (c *Client) ollamaGenerate(ctx context.Context, r Request) (Response, error) {
	opts := map[string]any{"seed": r.Seed, "temperature": r.Temperature}
	if r.NumPredict > 0 {
		opts["num_predict"] = r.NumPredict
	}
	body := map[string]any{"model": r.Model, "stream": r.stream(), "options": opts}
	path := "/api/chat"
	if r.Raw != "" {
		path = "/api/generate"
		body["prompt"] = r.Raw
		body["raw"] = true
	} else {
		msgs := make([]Message, 0, len(r.Messages)+1)
		if r.System != "" {
			msgs = append(msgs, Message{Role: "system", Content: r.System})
		}
		body["messages"] = append(msgs, r.Messages...)
	}
	if r.Logprobs && c.Server().Logprobs {
		body["logprobs"] = true
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Response{}, err
	}
	start := time.Now()
	resp, it, err := c.do(ctx, http.MethodPost, path, b)
	if err != nil {
		return Response{QueueWait: -1}, err
	}
	defer it.stop()
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		eb, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return Response{QueueWait: -1}, statusError(http.MethodPost, path, resp, eb)
	}
	acc := newAccumulator(c.limits, r, start)
	lr := newLineReader(resp.Body, c.limits.MaxLineBytes, it)
	for n := 1; ; n++ {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return acc.finish(), fmt.Errorf("POST %s: stream ended before the answer was done: %w", path, ErrProtocol)
		}
		if err != nil {
			return acc.finish(), c.streamError(ctx, path, n, err)
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var ch ollamaChunk
		if err := json.Unmarshal(line, &ch); err != nil {
			return acc.finish(), fmt.Errorf("POST %s: line %d is not JSON (%s): %w", path, n, excerpt(line), ErrProtocol)
		}
		if ch.Error != "" {
			return acc.finish(), fmt.Errorf("POST %s: the server stopped with %q: %w", path, excerpt([]byte(ch.Error)), ErrServer)
		}
		piece := ch.Response
		if ch.Message != nil {
			piece = ch.Message.Content
		}
		for _, lp := range ch.Logprobs {
			acc.addLogprob(lp.Logprob)
		}
		if !acc.add(piece) {
			return acc.finish(), nil
		}
		if ch.Done {
			drain(resp.Body)
			acc.resp.DoneReason = ch.DoneReason
			acc.resp.Tokens = ch.EvalCount
			acc.resp.PromptTokens = ch.PromptEvalCount
			if ch.TotalDuration > 0 {
				q := time.Duration(ch.TotalDuration - ch.LoadDuration - ch.PromptEvalDuration - ch.EvalDuration)
				acc.resp.QueueWait = max(q, 0)
			}
			return acc.finish(), nil
		}
	}
}

// streamError explains a failed read inside a stream.
func (c *Client) streamError(ctx context.Context, path string, line int, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("POST %s: %w", path, context.Cause(ctx))
	case errors.Is(err, errLineTooLong):
		return fmt.Errorf("POST %s: line %d: %w: %w", path, line, err, ErrProtocol)
	case errors.Is(err, errIdle), errors.Is(err, context.Canceled), strings.Contains(err.Error(), "context canceled"):
		return fmt.Errorf("POST %s: nothing received for %v: %w", path, c.limits.IdleTimeout, ErrSilent)
	}
	return fmt.Errorf("POST %s: reading the answer: %v: %w", path, err, ErrProtocol)
}

// excerpt shows at most 80 bytes of untrusted data, quoted.
func excerpt(b []byte) string {
	s := validPrefix(string(b), 80)
	if len(s) < len(b) {
		return strconv.Quote(s) + "..."
	}
	return strconv.Quote(s)
}

// VersionAtLeast compares dotted versions numerically ("0.12.11" >=
// "0.6.8"); a leading "v" and any suffix after '-' or '+' are ignored.
func VersionAtLeast(v, min string) bool {
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
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	var out []int
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

// drain reads what little may follow the last event, so the connection
// goes back to the pool instead of being closed.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 4<<10))
}
