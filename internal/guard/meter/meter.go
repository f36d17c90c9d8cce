package meter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
)

// DefaultMaxLine bounds one NDJSON line or one SSE event from the upstream.
// Ollama's own client reads lines of at most 512 KB.
const DefaultMaxLine = 1 << 20

// ErrClientGone is matched by the error Meter.Write returns when writing to
// the client failed: the client disconnected.
var ErrClientGone = errors.New("client disconnected")

// ErrLineTooLong is matched by the error Meter.Write returns when the
// upstream sent a line or event longer than the meter accepts.
var ErrLineTooLong = errors.New("upstream response line too long")

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("meter closed")

// Usage is what one response cost. Bill Prompt + Completion.
type Usage struct {
	Prompt     int64 `json:"prompt"`
	Completion int64 `json:"completion"`
	// FromUpstream is true when Completion is the upstream's own count
	// (Ollama's final eval_count, an OpenAI usage object, or vLLM's running
	// usage up to the last chunk relayed); false when it is the meter's
	// estimate of one token per content-bearing chunk relayed (streams cut
	// before the final count, or from servers that report none).
	FromUpstream bool `json:"from_upstream"`
	// PromptEstimated is true when the upstream did not report a prompt
	// count and Prompt is RequestInfo.PromptEstimate.
	PromptEstimated bool `json:"prompt_estimated"`
	// Truncated is true when the meter ended the stream itself (budget
	// exhausted, or an oversized line); Cut says which (CutBudget,
	// CutLineTooLong).
	Truncated bool   `json:"truncated"`
	Cut       string `json:"cut,omitempty"`
	// ClientGone is true when writing to the client failed.
	ClientGone bool `json:"client_gone"`
}

// Why the meter ended a stream (Usage.Cut).
const (
	CutBudget      = "budget"
	CutLineTooLong = "line_too_long"
)

// Total is Prompt + Completion.
func (u Usage) Total() int64 { return u.Prompt + u.Completion }

// Option adjusts a Meter.
type Option func(*Meter)

// WithMaxLine sets the longest NDJSON line or SSE event accepted from the
// upstream (default DefaultMaxLine).
func WithMaxLine(n int) Option {
	return func(m *Meter) {
		if n > 0 {
			m.maxLine = n
		}
	}
}

type mode int

const (
	modeNDJSON mode = iota // Ollama streams
	modeSSE                // OpenAI streams
	modeJSON               // any non-streaming body
)

// Meter relays one upstream response body to the client, counting tokens
// and enforcing the budget. The proxy writes the upstream body into it (or
// calls Relay) and then calls Close; Result tells what to bill. When Write
// returns an error, or CancelUpstream reports true, the caller must cancel
// the upstream request. A Meter's methods may be called from different
// goroutines, though writes must come in order.
type Meter struct {
	mu     sync.Mutex
	info   RequestInfo
	budget int64
	w      io.Writer
	flush  func()
	dirty  bool // events relayed since the last flush
	// ended: the upstream's last event (Ollama's done:true line, OpenAI's
	// [DONE]) was relayed. It is not flushed: the caller completes the
	// response (the guard does so once the audit record is committed).
	ended   bool
	maxLine int
	mode    mode

	line    []byte // bytes of the current, unfinished line
	event   []byte // SSE: raw lines of the current event
	data    []byte // SSE: data payload of the current event
	hasData bool

	scan      jsonScan // modeJSON
	bodyBytes int64    // modeJSON

	text    func([]byte) // WithText
	textBuf []byte

	count        int64 // completion tokens relayed (estimate or running upstream count)
	upPrompt     int64
	upCompletion int64
	sawPrompt    bool
	sawUsage     bool
	sawError     bool
	truncated    bool
	cut          string
	clientGone   bool
	closed       bool
	err          error
}

// NewMeter returns a Meter for the response to a request described by info
// (from PrepareRequest). budget is the most completion tokens the client
// may still receive (Unlimited for none); w receives what the client sees
// and flush, if not nil, is called after each Write that relayed events
// of a stream (and after the final error event), but not once the stream's
// last event was relayed, and never for a non-streaming body: the end of a
// response leaves when the caller completes it.
func NewMeter(info RequestInfo, budget int64, w io.Writer, flush func(), opts ...Option) *Meter {
	if budget < 0 {
		budget = Unlimited
	}
	m := &Meter{info: info, budget: budget, w: w, flush: flush, maxLine: DefaultMaxLine}
	for _, o := range opts {
		o(m)
	}
	switch {
	case info.Endpoint == EndpointEmbed || !info.Stream:
		m.mode = modeJSON
		m.scan.onValue = m.jsonValue
	case info.Kind == KindOpenAI:
		m.mode = modeSSE
	default:
		m.mode = modeNDJSON
	}
	return m
}

// Write takes the next bytes of the upstream body. It returns an error
// matching ErrBudgetExhausted, ErrLineTooLong or ErrClientGone once the
// meter has stopped relaying; every later Write returns the same error.
func (m *Meter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	if m.closed {
		return 0, ErrClosed
	}
	if m.mode == modeJSON {
		return m.writeJSON(p)
	}
	defer m.flushPending()
	consumed := 0
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(m.line)+len(p) > m.maxLine {
				m.stop(ErrLineTooLong)
				return consumed, m.err
			}
			m.line = append(m.line, p...)
			return consumed + len(p), nil
		}
		if len(m.line)+i > m.maxLine {
			m.stop(ErrLineTooLong)
			return consumed, m.err
		}
		line := p[:i+1]
		if len(m.line) > 0 {
			m.line = append(m.line, line...)
			line = m.line
		}
		p = p[i+1:]
		consumed += i + 1
		m.handleLine(line)
		m.resetLine()
		if m.err != nil {
			return consumed, m.err
		}
	}
	return consumed, nil
}

func (m *Meter) resetLine() {
	if cap(m.line) > 64<<10 {
		m.line = nil
	} else {
		m.line = m.line[:0]
	}
}

// Close ends the body: a last line without a newline, or an SSE event not
// followed by a blank line, is processed now. It returns the error that
// stopped the meter, if any. Close does not close the client writer.
func (m *Meter) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.err != nil {
		m.closed = true
		return m.err
	}
	m.closed = true
	switch m.mode {
	case modeJSON:
		return nil
	case modeNDJSON:
		if len(m.line) > 0 {
			m.handleLine(m.line)
		}
	case modeSSE:
		if len(m.line) > 0 {
			m.handleLine(m.line)
		}
		if m.err == nil && len(m.event) > 0 {
			m.dispatch()
		}
	}
	m.line = nil
	m.flushPending()
	return m.err
}

// abandon ends the body without processing an unfinished line (the
// upstream broke off mid-line).
func (m *Meter) abandon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.line, m.event, m.data = nil, nil, nil
}

// CancelUpstream reports whether the meter stopped relaying (budget, line
// too long, client gone): the upstream generation must then be cancelled.
func (m *Meter) CancelUpstream() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err != nil
}

// Result is what to bill for the response so far; call it after Close.
// Completion is what the client received: the upstream's final count when
// the stream ran to its end, else the tokens relayed before the meter
// stopped or the client left.
func (m *Meter) Result() Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := Usage{Truncated: m.truncated, Cut: m.cut, ClientGone: m.clientGone, Completion: m.count}
	if m.mode == modeJSON {
		m.jsonResult(&u)
	} else if m.sawUsage && m.upCompletion >= m.count {
		u.Completion = m.upCompletion
		u.FromUpstream = true
	}
	if m.sawPrompt {
		u.Prompt = m.upPrompt
	} else {
		u.Prompt = m.info.PromptEstimate
		u.PromptEstimated = true
	}
	return u
}

// Relay copies the upstream body r through the meter until it ends, the
// meter stops, or ctx is done, then closes the meter. The returned error is
// nil when the body was relayed in full; otherwise the caller cancels the
// upstream request (cancelling ctx does that when r is its body).
func (m *Meter) Relay(ctx context.Context, r io.Reader) (Usage, error) {
	return m.RelayWith(ctx, r, make([]byte, 32<<10))
}

// RelayWith is Relay reading through the caller's buffer.
func (m *Meter) RelayWith(ctx context.Context, r io.Reader, buf []byte) (Usage, error) {
	for {
		if err := ctx.Err(); err != nil {
			m.abandon()
			return m.Result(), fmt.Errorf("relaying the upstream response: %w", err)
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := m.Write(buf[:n]); err != nil {
				return m.Result(), err
			}
		}
		switch {
		case rerr == io.EOF:
			err := m.Close()
			return m.Result(), err
		case rerr != nil:
			m.abandon()
			if cerr := ctx.Err(); cerr != nil {
				rerr = cerr
			}
			return m.Result(), fmt.Errorf("reading the upstream response: %w", rerr)
		}
	}
}

// handleLine processes one line, its terminator included.
func (m *Meter) handleLine(line []byte) {
	body := bytes.TrimRight(line, "\r\n")
	if m.mode == modeSSE {
		if len(body) == 0 {
			m.event = append(m.event, line...)
			m.dispatch()
			return
		}
		if len(m.event)+len(line) > m.maxLine {
			m.stop(ErrLineTooLong)
			return
		}
		m.event = append(m.event, line...)
		name, value, _ := bytes.Cut(body, []byte(":"))
		if string(name) == "data" {
			value = bytes.TrimPrefix(value, []byte(" "))
			if m.hasData {
				m.data = append(m.data, '\n')
			}
			m.data = append(m.data, value...)
			m.hasData = true
		}
		return
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		m.relay(line, 0, upstreamUsage{})
		return
	}
	n, u := ollamaChunk(trimmed)
	m.relay(line, n, u)
	if m.text != nil && n > 0 && m.err == nil {
		m.emitText(trimmed)
	}
}

// dispatch processes the SSE event collected so far.
func (m *Meter) dispatch() {
	raw, data, hasData := m.event, m.data, m.hasData
	defer func() {
		if cap(m.event) > 64<<10 {
			m.event, m.data = nil, nil
		} else {
			m.event, m.data = m.event[:0], m.data[:0]
		}
		m.hasData = false
	}()
	if !hasData || string(bytes.TrimSpace(data)) == "[DONE]" {
		if hasData {
			m.ended = true
		}
		m.relay(raw, 0, upstreamUsage{})
		return
	}
	n, u, usageOnly := openAIChunk(data)
	if usageOnly && m.info.InjectedUsage {
		m.record(0, u)
		return
	}
	m.relay(raw, n, u)
	if m.text != nil && n > 0 && m.err == nil {
		m.emitText(data)
	}
}

// upstreamUsage is what one chunk says about usage.
type upstreamUsage struct {
	prompt, completion       int64
	hasPrompt, hasCompletion bool
	final                    bool // the upstream's count for the whole response
}

// relay sends one event carrying n content units to the client, unless
// that would exceed the budget, in which case the stream is ended.
func (m *Meter) relay(raw []byte, n int64, u upstreamUsage) {
	next := m.count + n
	if n > 0 && u.hasCompletion && u.completion > next {
		next = u.completion
	}
	if n > 0 && m.budget != Unlimited && next > m.budget {
		m.stop(ErrBudgetExhausted)
		return
	}
	m.record(n, u)
	if u.final {
		m.ended = true
	}
	if _, err := m.w.Write(raw); err != nil {
		m.clientGone = true
		m.err = fmt.Errorf("%w: %w", ErrClientGone, err)
		return
	}
	m.dirty = true
}

// flushPending flushes what this Write relayed: once per upstream chunk
// rather than once per event, so a burst of events costs one write to the
// client, while an upstream that sends event by event is still relayed
// event by event.
func (m *Meter) flushPending() {
	if m.dirty && m.flush != nil && m.err == nil && !m.ended {
		m.flush()
	}
	m.dirty = false
}

// record accounts for an event that is relayed (or deliberately withheld,
// like an injected usage chunk).
func (m *Meter) record(n int64, u upstreamUsage) {
	if n > 0 {
		m.count += n
		if u.hasCompletion && u.completion > m.count {
			m.count = u.completion
		}
	}
	if u.hasPrompt && (u.final || u.prompt > 0) {
		if !m.sawPrompt || u.prompt > m.upPrompt {
			m.upPrompt = u.prompt
		}
		m.sawPrompt = true
	}
	if u.hasCompletion {
		// Running counts (vLLM continuous usage) only grow; the largest
		// seen is the upstream's count of what it generated so far.
		if !m.sawUsage || u.completion > m.upCompletion {
			m.upCompletion = u.completion
		}
		m.sawUsage = true
	}
}

// stop ends the stream with a final error event in the client's dialect.
func (m *Meter) stop(reason error) {
	m.truncated = true
	m.cut = CutLineTooLong
	if reason == ErrBudgetExhausted {
		m.cut = CutBudget
	}
	m.err = reason
	if reason == ErrBudgetExhausted {
		m.err = fmt.Errorf("%w after %d completion tokens", ErrBudgetExhausted, m.count)
	}
	if _, err := m.w.Write(m.errorEvent(reason)); err != nil {
		m.clientGone = true
		m.err = fmt.Errorf("%w (%w: %w)", m.err, ErrClientGone, err)
		return
	}
	if m.flush != nil {
		m.flush()
	}
}

// errorEvent is the last thing the client sees of a stream the meter ends.
func (m *Meter) errorEvent(reason error) []byte {
	budget := reason == ErrBudgetExhausted
	msg := fmt.Sprintf("upstream response line exceeds %d bytes", m.maxLine)
	if budget {
		msg = "token budget exhausted"
	}
	if m.mode == modeSSE {
		type apiError struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		}
		e := apiError{Message: msg, Type: "server_error", Code: "upstream_event_too_long"}
		if budget {
			e.Message = fmt.Sprintf("token budget exhausted: the response was cut after %d completion tokens", m.count)
			e.Type, e.Code = "insufficient_quota", "token_budget_exhausted"
		}
		b, _ := json.Marshal(struct {
			Error apiError `json:"error"`
		}{e})
		return fmt.Appendf(nil, "data: %s\n\ndata: [DONE]\n\n", b)
	}
	type ollamaError struct {
		Model      string `json:"model"`
		Error      string `json:"error"`
		Done       bool   `json:"done"`
		DoneReason string `json:"done_reason,omitempty"`
		EvalCount  *int64 `json:"eval_count,omitempty"`
	}
	e := ollamaError{Model: m.info.Model, Error: msg, Done: true}
	if budget {
		n := m.count
		e.DoneReason, e.EvalCount = "length", &n
	}
	b, _ := json.Marshal(e)
	return append(b, '\n')
}

// ollamaChunk reads one NDJSON line of an Ollama stream: n is 1 when it
// carries generated text (response, thinking, message content or tool
// calls; a line that is not a JSON object counts too), and u the counts on
// the final done:true object.
func ollamaChunk(line []byte) (n int64, u upstreamUsage) {
	// This runs for every streamed line: valid lines are walked without
	// decoding (fastline.go), the rest decoded with the semantics of
	// Ollama's own encoding/json (case-insensitive keys, last duplicate wins).
	if !json.Valid(line) {
		return 1, u
	}
	if n, u, ok := fastOllamaChunk(line); ok {
		return n, u
	}
	return decodeOllamaChunk(line)
}

// decodeOllamaChunk is ollamaChunk with encoding/json, for lines the fast
// walk leaves alone.
func decodeOllamaChunk(line []byte) (n int64, u upstreamUsage) {
	// A struct, not a map: named fields skip everything else without
	// allocating for it.
	var obj ollamaLine
	if err := json.Unmarshal(line, &obj); err != nil {
		return 1, u
	}
	switch {
	case nonEmpty(obj.Response), nonEmpty(obj.Thinking), nonEmpty(obj.Content), nonEmpty(obj.ToolCalls):
		n = 1
	case nonEmpty(obj.Message):
		var msg ollamaMessage
		if json.Unmarshal(obj.Message, &msg) != nil ||
			nonEmpty(msg.Content) || nonEmpty(msg.Thinking) || nonEmpty(msg.ToolCalls) || nonEmpty(msg.ReasoningContent) {
			n = 1
		}
	}
	if string(bytes.TrimSpace(obj.Done)) == "true" {
		u.final = true
		u.hasCompletion = true
		if obj.EvalCount != nil {
			u.completion = count(obj.EvalCount)
		}
		if obj.PromptEvalCount != nil && !isNull(obj.PromptEvalCount) {
			u.prompt, u.hasPrompt = count(obj.PromptEvalCount), true
		}
	}
	return n, u
}

// ollamaLine holds the fields of an Ollama stream line the meter reads.
type ollamaLine struct {
	Response        json.RawMessage `json:"response"`
	Thinking        json.RawMessage `json:"thinking"`
	Content         json.RawMessage `json:"content"`
	ToolCalls       json.RawMessage `json:"tool_calls"`
	Message         json.RawMessage `json:"message"`
	Done            json.RawMessage `json:"done"`
	EvalCount       json.RawMessage `json:"eval_count"`
	PromptEvalCount json.RawMessage `json:"prompt_eval_count"`
}

type ollamaMessage struct {
	Content          json.RawMessage `json:"content"`
	Thinking         json.RawMessage `json:"thinking"`
	ToolCalls        json.RawMessage `json:"tool_calls"`
	ReasoningContent json.RawMessage `json:"reasoning_content"`
}

// openAIChunk reads the data of one SSE event of an OpenAI stream: n is the
// number of choices carrying generated text (data that is not a JSON object
// counts as 1), u its usage, usageOnly whether it is the final usage chunk
// (usage set, no choices).
func openAIChunk(data []byte) (n int64, u upstreamUsage, usageOnly bool) {
	// Per streamed event, like ollamaChunk: valid data is walked without
	// decoding (fastline.go) unless it needs the decoder's semantics.
	if !json.Valid(data) {
		return 1, u, false
	}
	if n, u, usageOnly, ok := fastOpenAIChunk(data); ok {
		return n, u, usageOnly
	}
	return decodeOpenAIChunk(data)
}

// decodeOpenAIChunk is openAIChunk with encoding/json.
func decodeOpenAIChunk(data []byte) (n int64, u upstreamUsage, usageOnly bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return 1, u, false
	}
	if obj == nil {
		return 0, u, false
	}
	choicesRaw, hasChoices := lookup(obj, "choices")
	if hasChoices && !isNull(choicesRaw) {
		var choices []json.RawMessage
		if json.Unmarshal(choicesRaw, &choices) != nil {
			return 1, u, false
		}
		for _, c := range choices {
			if choiceHasContent(c) {
				n++
			}
		}
		hasChoices = len(choices) > 0
	} else {
		hasChoices = false
	}
	if raw, ok := lookup(obj, "usage"); ok && !isNull(raw) {
		var usage map[string]json.RawMessage
		if json.Unmarshal(raw, &usage) == nil && usage != nil {
			if v, ok := lookup(usage, "prompt_tokens"); ok && !isNull(v) {
				u.prompt, u.hasPrompt = count(v), true
			}
			if v, ok := lookup(usage, "completion_tokens"); ok && !isNull(v) {
				u.completion, u.hasCompletion = count(v), true
			}
			if !hasChoices && n == 0 {
				u.final = true
				usageOnly = true
			}
		}
	}
	return n, u, usageOnly
}

func choiceHasContent(raw json.RawMessage) bool {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil {
		return nonEmpty(raw)
	}
	for k, v := range c {
		switch {
		case isKey(k, "text") && nonEmpty(v):
			return true
		case isKey(k, "delta", "message") && nonEmpty(v):
			var d map[string]json.RawMessage
			if json.Unmarshal(v, &d) != nil {
				return true
			}
			for dk, dv := range d {
				if isKey(dk, "content", "reasoning_content", "reasoning", "refusal", "tool_calls", "function_call", "audio") && nonEmpty(dv) {
					return true
				}
			}
		}
	}
	return false
}

// isKey compares a JSON key with names the way Go's encoding/json would
// match it to a struct field (ignoring case), so a case variant cannot hide
// content from the meter.
func isKey(k string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(k, n) {
			return true
		}
	}
	return false
}

func lookup(obj map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if v, ok := obj[name]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// nonEmpty is false for null, "", [], {} (and whitespace around them).
func nonEmpty(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	switch string(s) {
	case "", "null", `""`:
		return false
	}
	if len(s) >= 2 && (s[0] == '[' || s[0] == '{') {
		return len(bytes.TrimSpace(s[1:len(s)-1])) > 0
	}
	return true
}

// count reads a token count; anything that is not a non-negative number
// counts as 0, and huge values are capped.
func count(raw json.RawMessage) int64 {
	f, ok := number(raw)
	if !ok || !(f > 0) {
		return 0
	}
	if f >= math.MaxInt64/4 {
		return math.MaxInt64 / 4
	}
	return int64(f)
}
