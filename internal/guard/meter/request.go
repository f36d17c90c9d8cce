package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// API dialects understood by the meter.
const (
	KindOllama = "ollama" // Ollama's native /api/* endpoints (NDJSON streams)
	KindOpenAI = "openai" // OpenAI-compatible /v1/* endpoints (SSE streams)
)

// Unlimited, given as a token limit or budget, means "no limit": the meter
// still counts, but never clamps or cuts.
const Unlimited int64 = -1

// Endpoint is what a metered route does.
type Endpoint string

// Metered endpoints.
const (
	EndpointGenerate Endpoint = "generate" // Ollama /api/generate, OpenAI /v1/completions
	EndpointChat     Endpoint = "chat"     // Ollama /api/chat, OpenAI /v1/chat/completions
	EndpointEmbed    Endpoint = "embed"    // Ollama /api/embed, /api/embeddings, OpenAI /v1/embeddings
)

// RequestInfo is what PrepareRequest learned about a request; the Meter for
// its response needs it.
type RequestInfo struct {
	Kind     string   // KindOllama or KindOpenAI
	Route    string   // the route as given to PrepareRequest
	Endpoint Endpoint // what the route does
	// Model is the model the upstream will be asked for, "" when the body
	// names none (vLLM then uses its only model; Ollama refuses).
	Model string
	// Stream is whether the upstream will answer with a stream (Ollama:
	// unless "stream": false; OpenAI: only with "stream": true).
	Stream bool
	// MaxTokens is the completion-token limit per choice the upstream will
	// apply after rewriting, or Unlimited.
	MaxTokens int64
	// Choices is how many sequences the upstream generates per request,
	// at least 1: the number of prompts of an OpenAI completions request
	// (a list of prompts is a batch) times the largest of n, best_of and
	// llama.cpp's n_cmpl.
	Choices int64
	// Prompts is the number of prompts in the request (OpenAI completions
	// and embeddings accept a list; 1 otherwise).
	Prompts int64
	// InjectedUsage is true when PrepareRequest switched on
	// stream_options.include_usage although the client did not ask for it:
	// the meter then removes the usage chunk from what the client sees.
	InjectedUsage bool
	// PromptEstimate is a rough count of prompt tokens (text bytes / 4,
	// plus token IDs given as numbers), billed when the upstream never
	// reports its own count (for example when the client disconnects
	// before the final usage arrives).
	PromptEstimate int64
	// Prompt describes the prompt's size for a reservation made before
	// the upstream has counted it (see PromptShape.Bound).
	Prompt PromptShape
	// CompletionCap, when > 0, bounds the completion tokens charged for a
	// response whose upstream reports no usage (an estimate from its
	// size): the caller sets it to the completion allowance it admitted.
	CompletionCap int64
}

// PromptShape is what the meter counted in a request's prompt-bearing
// fields, without decoding them.
type PromptShape struct {
	TextBytes int64 // bytes of prompt text (JSON string contents, escapes counted as written)
	TokenIDs  int64 // token IDs given directly as numbers (OpenAI prompt/input, Ollama context)
	Items     int64 // messages, prompts and inputs: each costs a few template tokens
	Media     int64 // inline images, audio and video parts
}

// Per-item and per-media reservations of Bound.
const (
	ItemTokens  = 8    // a chat template's tokens around one message
	MediaTokens = 1024 // one image or audio part, before the upstream counts it
)

// Bound is a conservative count of prompt tokens to reserve before the
// upstream reports its own: text bytes divided by bytesPerToken (rounded
// up; 1 gives a true upper bound for byte-level tokenizers, 2 is about
// twice the usual count for English and about the count for CJK text),
// plus token IDs, ItemTokens per item and MediaTokens per media part.
func (p PromptShape) Bound(bytesPerToken int64) int64 {
	if bytesPerToken < 1 {
		bytesPerToken = 1
	}
	return (p.TextBytes+bytesPerToken-1)/bytesPerToken + p.TokenIDs + ItemTokens*p.Items + MediaTokens*p.Media
}

// ErrInvalidRequest is matched (errors.Is) by every error PrepareRequest
// returns for a body the client got wrong; answer those with 400.
var ErrInvalidRequest = errors.New("invalid request")

// ErrUnsupportedRoute is returned by PrepareRequest for a route it does not
// meter; that is a bug in the caller's routing, not the client's fault.
var ErrUnsupportedRoute = errors.New("route is not metered")

// ErrBudgetExhausted is returned by PrepareRequest when the token limit
// leaves nothing to generate (answer 429), and by Meter.Write when the
// meter ended a stream because the budget ran out.
var ErrBudgetExhausted = errors.New("token budget exhausted")

// RequestError describes what is wrong with a client's request body. It
// matches ErrInvalidRequest.
type RequestError struct {
	Field   string // the offending field, "" for the body as a whole
	Problem string
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return "invalid request body: " + e.Problem
	}
	return fmt.Sprintf("invalid request body: field %q: %s", e.Field, e.Problem)
}

// Unwrap makes RequestError match ErrInvalidRequest.
func (e *RequestError) Unwrap() error { return ErrInvalidRequest }

// StatusCode is the HTTP status to answer with (400).
func (e *RequestError) StatusCode() int { return 400 }

func badField(field, format string, args ...any) error {
	return &RequestError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// sensitiveKeys are the fields whose value the meter interprets. A key that
// matches one of them only case-insensitively (Go's encoding/json, used by
// Ollama, would take it as that field) is refused.
var sensitiveKeys = []string{
	"model", "stream", "options", "stream_options", "max_tokens",
	"max_completion_tokens", "n_predict", "n", "best_of", "n_cmpl",
	"num_predict", "include_usage", "prompt", "input", "messages", "context",
}

// multiplierKeys are the OpenAI-compatible fields that make the upstream
// generate several sequences per prompt: OpenAI's n and best_of (vLLM
// generates best_of and returns n) and llama.cpp's n_cmpl.
var multiplierKeys = []string{"n", "best_of", "n_cmpl"}

// Meter IDs name what a route table entry meters (route.Route.Meter):
// the dialect and the endpoint together.
var meterIDs = map[string]struct {
	kind string
	ep   Endpoint
}{
	"ollama.generate":    {KindOllama, EndpointGenerate},
	"ollama.chat":        {KindOllama, EndpointChat},
	"ollama.embed":       {KindOllama, EndpointEmbed},
	"openai.completions": {KindOpenAI, EndpointGenerate},
	"openai.chat":        {KindOpenAI, EndpointChat},
	"openai.embeddings":  {KindOpenAI, EndpointEmbed},
}

// Lookup resolves a meter ID ("ollama.chat", "openai.completions", ...)
// to its dialect and endpoint.
func Lookup(id string) (kind string, ep Endpoint, ok bool) {
	m, ok := meterIDs[id]
	return m.kind, m.ep, ok
}

// MeterIDs lists the meter IDs Lookup knows, sorted.
func MeterIDs() []string {
	out := make([]string, 0, len(meterIDs))
	for id := range meterIDs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Route resolves a route of the given kind to the endpoint it meters.
func Route(kind, route string) (Endpoint, error) {
	switch kind {
	case KindOllama:
		switch route {
		case "/api/generate":
			return EndpointGenerate, nil
		case "/api/chat":
			return EndpointChat, nil
		case "/api/embed", "/api/embeddings":
			return EndpointEmbed, nil
		}
	case KindOpenAI:
		switch route {
		case "/v1/chat/completions", "/chat/completions":
			return EndpointChat, nil
		case "/v1/completions", "/completions":
			return EndpointGenerate, nil
		case "/v1/embeddings", "/embeddings":
			return EndpointEmbed, nil
		}
	default:
		return "", fmt.Errorf("meter: unknown API kind %q: %w", kind, ErrUnsupportedRoute)
	}
	return "", fmt.Errorf("meter: %s route %q: %w", kind, route, ErrUnsupportedRoute)
}

// Request is a parsed, validated request body of a metered route. Parse
// it once with ParseRequest, read what it asks for with Info, then Encode
// it with the completion limit the caller admits.
type Request struct {
	kind     string
	obj      object      // the client's members, unclamped
	info     RequestInfo // what the client asked for (MaxTokens: its own limit)
	plainObj object      // the members without a clamp (nil for embeddings: obj)
}

// ParseRequest validates body for kind's route and reads the model, the
// client's own completion limit, the stream flag and a prompt estimate.
// Errors are ErrUnsupportedRoute, a *RequestError (ErrInvalidRequest)
// naming the problem, or nothing else.
func ParseRequest(kind, route string, body []byte) (*Request, error) {
	ep, err := Route(kind, route)
	if err != nil {
		return nil, err
	}
	return parse(kind, route, ep, body)
}

// ParseMetered is ParseRequest for the route table's meter ID (see
// Lookup) rather than a path: the table, not the path's prefix, says what
// a route is. Unknown IDs give ErrUnsupportedRoute.
func ParseMetered(meterID, route string, body []byte) (*Request, error) {
	kind, ep, ok := Lookup(meterID)
	if !ok {
		return nil, fmt.Errorf("meter: %q: %w", meterID, ErrUnsupportedRoute)
	}
	return parse(kind, route, ep, body)
}

func parse(kind, route string, ep Endpoint, body []byte) (*Request, error) {
	info := RequestInfo{Kind: kind, Route: route, Endpoint: ep, MaxTokens: Unlimited, Choices: 1, Prompts: 1}

	obj, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	if err := obj.checkKeys(""); err != nil {
		return nil, err
	}
	if raw, ok := obj.get("model"); ok && !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badField("model", "must be a string")
		}
		info.Model = s
	}
	shape, prompts, err := measurePrompt(obj, kind, ep)
	if err != nil {
		return nil, err
	}
	info.Prompt, info.Prompts = shape, prompts
	info.PromptEstimate = (shape.TextBytes+3)/4 + shape.TokenIDs
	r := &Request{kind: kind, obj: obj, info: info}
	if ep == EndpointEmbed {
		r.plainObj = obj
		return r, nil
	}
	stream, set, err := boolField(obj, "", "stream")
	if err != nil {
		return nil, err
	}
	switch kind {
	case KindOllama:
		r.info.Stream = !set || stream
	case KindOpenAI:
		r.info.Stream = set && stream
	}
	// Clamping without a limit validates the limit fields and fills in
	// the client's own limit and choice count; the body it would give is
	// encoded only if asked for (Encode(Unlimited)).
	plain, info, err := r.clampObj(Unlimited)
	if err != nil {
		return nil, err
	}
	r.plainObj, r.info = plain, info
	return r, nil
}

// Info reports what the client asked for; MaxTokens is the client's own
// completion limit (Unlimited when it named none).
func (r *Request) Info() RequestInfo { return r.info }

// Encode returns the body to forward with completions clamped to
// maxTokens (Unlimited: no clamp), and the request's info under that
// clamp. It fails with ErrBudgetExhausted when maxTokens is 0 or too small
// for the choices asked for. The Request is not changed: Encode may be
// called again with another limit.
func (r *Request) Encode(maxTokens int64) ([]byte, RequestInfo, error) {
	if maxTokens < 0 || r.info.Endpoint == EndpointEmbed {
		return r.plainObj.encode(), r.info, nil
	}
	return r.clamp(maxTokens)
}

func (r *Request) clamp(maxTokens int64) ([]byte, RequestInfo, error) {
	obj, info, err := r.clampObj(maxTokens)
	if err != nil {
		return nil, info, err
	}
	return obj.encode(), info, nil
}

func (r *Request) clampObj(maxTokens int64) (object, RequestInfo, error) {
	obj := append(object(nil), r.obj...) // clamps replace members, never edit them
	info := r.info
	var err error
	switch r.kind {
	case KindOllama:
		err = clampOllama(&obj, &info, maxTokens)
	case KindOpenAI:
		err = clampOpenAI(&obj, &info, maxTokens)
	}
	if err != nil {
		return nil, info, err
	}
	return obj, info, nil
}

// PrepareRequest validates a client's request body for route (the
// normalised path the upstream will see) and rewrites it so the upstream
// generates at most maxTokens completion tokens (Unlimited: leave limits as
// the client set them) and, for OpenAI streams, reports usage. It is
// ParseRequest followed by Encode(maxTokens).
//
// Errors matching ErrInvalidRequest name the problem for the client (400);
// ErrBudgetExhausted means maxTokens is 0 (or too small for the number of
// choices asked) on a generating route (429); ErrUnsupportedRoute means the
// route is not one the meter handles. See the package documentation for
// what is rewritten and how key order is kept.
func PrepareRequest(kind string, route string, body []byte, maxTokens int64) ([]byte, RequestInfo, error) {
	r, err := ParseRequest(kind, route, body)
	if err != nil {
		info := RequestInfo{Kind: kind, Route: route, MaxTokens: Unlimited, Choices: 1}
		return nil, info, err
	}
	return r.Encode(maxTokens)
}

func clampOllama(obj *object, info *RequestInfo, maxTokens int64) error {
	var opts object
	if raw, ok := obj.get("options"); ok && !isNull(raw) {
		if trimmedFirst(raw) != '{' {
			return badField("options", "must be an object")
		}
		var err error
		if opts, err = parseObject(raw); err != nil {
			return badField("options", "%v", err)
		}
		if err := opts.checkKeys("options."); err != nil {
			return err
		}
	}
	client, err := limitField(opts, "options.", "num_predict")
	if err != nil {
		return err
	}
	eff := effectiveLimit(client, maxTokens)
	info.MaxTokens = eff
	if maxTokens == Unlimited {
		return nil
	}
	if maxTokens == 0 {
		return fmt.Errorf("no tokens left to generate: %w", ErrBudgetExhausted)
	}
	opts.set("num_predict", json.RawMessage(strconv.FormatInt(eff, 10)))
	obj.set("options", opts.encode())
	return nil
}

func clampOpenAI(obj *object, info *RequestInfo, maxTokens int64) error {
	limits := []string{"max_tokens", "max_completion_tokens", "n_predict"}
	client := Unlimited
	present := map[string]bool{}
	for _, k := range limits {
		v, err := limitField(*obj, "", k)
		if err != nil {
			return err
		}
		if raw, ok := obj.get(k); ok && !isNull(raw) {
			present[k] = true
		}
		if v != Unlimited && (client == Unlimited || v < client) {
			client = v
		}
	}
	perPrompt := int64(1)
	for _, k := range multiplierKeys {
		raw, ok := obj.get(k)
		if !ok || isNull(raw) {
			continue
		}
		f, ok := number(raw)
		if !ok {
			return badField(k, "must be a number")
		}
		if c := ceilInt(f); c > perPrompt {
			perPrompt = c
		}
	}
	// Every prompt of a batch gets every sequence.
	choices := perPrompt * max(info.Prompts, 1)
	if choices > maxChoices {
		return badField("", "%d prompts × %d sequences each: more than %d sequences in one request", info.Prompts, perPrompt, maxChoices)
	}
	info.Choices = choices

	perChoice := maxTokens
	if maxTokens != Unlimited {
		perChoice = maxTokens / choices
		if perChoice == 0 {
			if maxTokens == 0 {
				return fmt.Errorf("no tokens left to generate: %w", ErrBudgetExhausted)
			}
			return fmt.Errorf("%d tokens left cannot cover %d choices: %w", maxTokens, choices, ErrBudgetExhausted)
		}
	}
	eff := effectiveLimit(client, perChoice)
	info.MaxTokens = eff
	if perChoice != Unlimited {
		v := json.RawMessage(strconv.FormatInt(eff, 10))
		// max_tokens is understood by every OpenAI-compatible server, so it
		// is always set; the others are clamped only when the client used
		// them (a server that knows them may prefer them).
		obj.set("max_tokens", v)
		for _, k := range limits[1:] {
			if present[k] {
				obj.set(k, v)
			}
		}
	}

	if !info.Stream {
		return nil
	}
	var so object
	if raw, ok := obj.get("stream_options"); ok && !isNull(raw) {
		if trimmedFirst(raw) != '{' {
			return badField("stream_options", "must be an object")
		}
		var err error
		if so, err = parseObject(raw); err != nil {
			return badField("stream_options", "%v", err)
		}
		if err := so.checkKeys("stream_options."); err != nil {
			return err
		}
	}
	asked, _, err := boolField(so, "stream_options.", "include_usage")
	if err != nil {
		return err
	}
	if !asked {
		so.set("include_usage", json.RawMessage("true"))
		obj.set("stream_options", so.encode())
		info.InjectedUsage = true
	}
	return nil
}

// effectiveLimit is the smaller of the client's own limit and the caller's,
// either of which may be Unlimited.
func effectiveLimit(client, max int64) int64 {
	switch {
	case max == Unlimited:
		return client
	case client == Unlimited || client > max:
		return max
	}
	return client
}

// limitField reads a token-limit field: absent, null, and values below 1
// (which servers treat as "no limit" or reject) give Unlimited; fractions
// are truncated as Ollama does.
func limitField(obj object, prefix, key string) (int64, error) {
	raw, ok := obj.get(key)
	if !ok || isNull(raw) {
		return Unlimited, nil
	}
	f, ok := number(raw)
	if !ok {
		return 0, badField(prefix+key, "must be a number")
	}
	f = math.Floor(f)
	if f < 1 {
		return Unlimited, nil
	}
	if f >= math.MaxInt64/2 {
		return math.MaxInt64 / 2, nil
	}
	return int64(f), nil
}

// boolField reads a boolean field; set is false when it is absent or null.
func boolField(obj object, prefix, key string) (val, set bool, err error) {
	raw, ok := obj.get(key)
	if !ok || isNull(raw) {
		return false, false, nil
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, badField(prefix+key, "must be true or false")
}

func number(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	// A JSON number literal (raw is always one valid JSON value here) is
	// read directly; json.Number also accepts a string holding a number,
	// which is refused: servers disagree about it.
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || !json.Valid(raw) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// maxChoices bounds the sequences one request may ask for (prompts ×
// n / best_of); more is refused as a request that cannot be metered.
const maxChoices = 4096

func ceilInt(f float64) int64 {
	f = math.Ceil(f)
	switch {
	case f < 1:
		return 1
	case f >= math.MaxInt32:
		return math.MaxInt32
	}
	return int64(f)
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func trimmedFirst(raw []byte) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// field is one member of a JSON object, its value kept verbatim.
type field struct {
	key string
	val json.RawMessage
}

// object is a JSON object with its members in their original order.
type object []field

func parseObject(data []byte) (object, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &RequestError{Problem: "empty body, expected a JSON object"}
	}
	// Valid JSON whose keys hold no escape or non-ASCII byte is split by
	// the allocation-free walk, its values kept as slices of data; the
	// rest (and every error message) goes through the decoder.
	if json.Valid(data) {
		obj := make(object, 0, 16)
		if walkObject(data, func(key, val []byte) { obj = append(obj, field{key: string(key), val: val}) }) {
			return obj, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonProblem(err)
	}
	if tok != json.Delim('{') {
		return nil, &RequestError{Problem: "expected a JSON object"}
	}
	var obj object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonProblem(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, &RequestError{Problem: "expected a field name"}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonProblem(err)
		}
		obj = append(obj, field{key: key, val: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &RequestError{Problem: "unexpected data after the JSON object"}
	}
	return obj, nil
}

func jsonProblem(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &RequestError{Problem: fmt.Sprintf("not valid JSON: %v (at byte %d)", se, se.Offset)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &RequestError{Problem: "not valid JSON: unexpected end of body"}
	}
	return &RequestError{Problem: fmt.Sprintf("not valid JSON: %v", err)}
}

// checkKeys refuses duplicate keys (compared the way Go's encoding/json
// matches them, i.e. ignoring case) and case variants of sensitive keys.
func (o object) checkKeys(prefix string) error {
	if len(o) <= 32 && o.asciiKeys() {
		return o.checkASCIIKeys(prefix)
	}
	seen := make(map[string]string, len(o))
	for _, f := range o {
		k := foldKey(f.key)
		if first, dup := seen[k]; dup {
			if first == f.key {
				return badField(prefix+f.key, "appears twice")
			}
			return badField(prefix+f.key, "appears twice (also as %q)", first)
		}
		seen[k] = f.key
		for _, s := range sensitiveKeys {
			if f.key != s && k == foldKey(s) {
				return badField(prefix+f.key, "write it as %q", s)
			}
		}
	}
	return nil
}

// asciiKeys reports whether every key is ASCII: then encoding/json's
// folding is ASCII case folding, and checkASCIIKeys applies.
func (o object) asciiKeys() bool {
	for _, f := range o {
		for i := 0; i < len(f.key); i++ {
			if f.key[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}

// checkASCIIKeys is checkKeys for small objects of ASCII keys, without
// allocating: pairwise comparisons instead of a map of folded keys.
func (o object) checkASCIIKeys(prefix string) error {
	for i, f := range o {
		for j := 0; j < i; j++ {
			if strings.EqualFold(o[j].key, f.key) {
				if o[j].key == f.key {
					return badField(prefix+f.key, "appears twice")
				}
				return badField(prefix+f.key, "appears twice (also as %q)", o[j].key)
			}
		}
		for _, s := range sensitiveKeys {
			if f.key != s && strings.EqualFold(f.key, s) {
				return badField(prefix+f.key, "write it as %q", s)
			}
		}
	}
	return nil
}

// foldKey maps a key to a case-folded form under which keys Go's
// encoding/json treats as the same field compare equal (it also folds
// U+017F to s and U+212A to k).
func foldKey(s string) string {
	return strings.Map(func(r rune) rune {
		return unicode.ToUpper(unicode.ToLower(r))
	}, s)
}

func (o object) get(key string) (json.RawMessage, bool) {
	for _, f := range o {
		if f.key == key {
			return f.val, true
		}
	}
	return nil, false
}

// set replaces key's value in place, or appends it.
func (o *object) set(key string, val json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].val = val
			return
		}
	}
	*o = append(*o, field{key: key, val: val})
}

func (o object) encode() []byte {
	n := 2
	for _, f := range o {
		n += len(f.key) + len(f.val) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		if plainKey(f.key) {
			b = append(b, '"')
			b = append(b, f.key...)
			b = append(b, '"')
		} else {
			k, _ := json.Marshal(f.key) // a string always marshals
			b = append(b, k...)
		}
		b = append(b, ':')
		b = append(b, bytes.TrimSpace(f.val)...)
	}
	return append(b, '}')
}

// plainKey reports whether json.Marshal would write key as it is between
// quotes (printable ASCII, none of " \ < > &).
func plainKey(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// promptKeys hold the text a model reads as its prompt. context is
// Ollama's token list from an earlier answer, sent back as prompt.
var promptKeys = []string{"prompt", "system", "messages", "input", "suffix", "tools", "template", "context", "images"}

// maxPrompts bounds the prompts of one batch request.
const maxPrompts = 1024

// measurePrompt sizes the prompt-bearing fields and counts the prompts of
// a batch (OpenAI completions' and embeddings' "prompt"/"input" lists).
func measurePrompt(obj object, kind string, ep Endpoint) (PromptShape, int64, error) {
	var p PromptShape
	for _, k := range promptKeys {
		raw, ok := obj.get(k)
		if !ok || isNull(raw) {
			continue
		}
		switch k {
		case "images": // Ollama's inline images of /api/generate
			if n, ok := arrayLen(raw); ok {
				p.Media += n
			}
			continue
		case "tools":
			// Rendered into the prompt as JSON schema, keys and all.
			p.TextBytes += int64(len(bytes.TrimSpace(raw)))
			continue
		case "messages", "prompt", "input":
			if n, ok := arrayLen(raw); ok && k == "messages" {
				p.Items += n
			} else {
				p.Items++
			}
		}
		sizeValue(raw, &p, 0)
	}
	prompts := int64(1)
	if kind == KindOpenAI && ep != EndpointChat {
		field := "prompt"
		if ep == EndpointEmbed {
			field = "input"
		}
		if raw, ok := obj.get(field); ok {
			n, err := countPrompts(field, raw)
			if err != nil {
				return p, 0, err
			}
			prompts = n
		}
	}
	return p, prompts, nil
}

// countPrompts reads how many prompts an OpenAI prompt or input holds: a
// string or a list of token IDs is one; a list of strings or of token
// lists is one per element.
func countPrompts(field string, raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return 1, nil
	}
	var n, numbers, lists int64
	ok := walkArray(raw, func(el []byte) {
		n++
		switch el[0] {
		case '[':
			lists++
		case '"':
		default:
			numbers++
		}
	})
	if !ok {
		return 0, badField(field, "must be a string or a list")
	}
	switch {
	case n == 0:
		return 1, nil
	case numbers == n:
		return 1, nil // one prompt given as token IDs
	case numbers > 0:
		return 0, badField(field, "mixes token IDs with strings or lists")
	case n > maxPrompts:
		return 0, badField(field, "more than %d prompts in one request", maxPrompts)
	}
	return n, nil
}

// arrayLen is the number of elements of a JSON array value.
func arrayLen(raw []byte) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return 0, false
	}
	var n int64
	ok := walkArray(raw, func([]byte) { n++ })
	return n, ok
}

// mediaKeys hold inline media rather than text.
var mediaKeys = []string{"images", "image_url", "input_audio", "audio", "video", "image", "file", "input_image", "video_url"}

// sizeValue adds the text bytes, token IDs and media parts of a JSON
// value (valid JSON, as parseObject checked) to p, without decoding it.
func sizeValue(raw []byte, p *PromptShape, depth int) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > 64 {
		return
	}
	switch raw[0] {
	case '"':
		body := raw[1 : len(raw)-1]
		if bytes.HasPrefix(body, []byte("data:")) {
			p.Media++
			return
		}
		p.TextBytes += int64(len(body))
	case '[':
		walkArray(raw, func(el []byte) { sizeValue(el, p, depth+1) })
	case '{':
		walkMembers(raw, func(key, val []byte) {
			for _, m := range mediaKeys {
				if asciiFold(key, m) {
					if n, ok := arrayLen(val); ok {
						p.Media += n
					} else if !isNull(val) {
						p.Media++
					}
					return
				}
			}
			sizeValue(val, p, depth+1)
		})
	case 't', 'f', 'n':
	default:
		p.TokenIDs++ // a number: a token ID given directly
	}
}
