package meter

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// maxCapture bounds one captured top-level value (a usage object or a
// count); larger ones are ignored.
const maxCapture = 64 << 10

// jsonScan finds the values of a few top-level keys in a stream of JSON
// bytes without buffering the body: it tracks nesting and strings, and
// captures only the values of interesting keys of top-level objects.
// Several top-level values in a row are accepted (the last wins).
type jsonScan struct {
	depth     int
	topObject bool // the current top-level value is an object
	inString  bool
	escaped   bool
	wantKey   bool // at depth 1, the next string is a key
	inKey     bool
	key       []byte
	capturing bool
	overflow  bool
	capture   []byte
	onValue   func(key string, raw []byte)
}

// scannedKeys are the top-level keys whose values the scanner captures.
var scannedKeys = []string{"usage", "prompt_eval_count", "eval_count", "done", "error"}

func (s *jsonScan) write(p []byte) {
	for _, c := range p {
		if s.capturing && !(s.depth == 1 && !s.inString && (c == ',' || c == '}')) {
			if len(s.capture) < maxCapture {
				s.capture = append(s.capture, c)
			} else {
				s.overflow = true
			}
		}
		if s.inString {
			switch {
			case s.escaped:
				s.escaped = false
			case c == '\\':
				s.escaped = true
			case c == '"':
				s.inString = false
				s.inKey = false
				continue
			}
			if s.inKey && len(s.key) < 64 {
				s.key = append(s.key, c)
			}
			continue
		}
		switch c {
		case '"':
			s.inString = true
			if s.depth == 1 && s.topObject && s.wantKey {
				s.inKey = true
				s.key = s.key[:0]
			}
		case '{', '[':
			if s.depth == 0 {
				s.topObject = c == '{'
				s.wantKey = s.topObject
			}
			s.depth++
		case '}', ']':
			if s.depth == 1 {
				s.finishValue()
			}
			if s.depth > 0 {
				s.depth--
			}
		case ':':
			if s.depth == 1 && s.topObject && s.wantKey {
				s.wantKey = false
				key := string(s.key)
				for _, k := range scannedKeys {
					if isKey(key, k) {
						s.capturing = true
						s.overflow = false
						s.capture = s.capture[:0]
						break
					}
				}
			}
		case ',':
			if s.depth == 1 {
				s.finishValue()
				s.wantKey = s.topObject
			}
		}
	}
}

func (s *jsonScan) finishValue() {
	if !s.capturing {
		return
	}
	s.capturing = false
	if !s.overflow && s.onValue != nil {
		s.onValue(string(s.key), bytes.TrimSpace(s.capture))
	}
}

// writeJSON relays a non-streaming body as it arrives and scans it for
// usage.
func (m *Meter) writeJSON(p []byte) (int, error) {
	m.scan.write(p)
	m.bodyBytes += int64(len(p))
	n, err := m.w.Write(p)
	if err != nil {
		m.clientGone = true
		m.err = fmt.Errorf("%w: %w", ErrClientGone, err)
		return n, m.err
	}
	return n, nil // not flushed: a whole body is only useful whole
}

// jsonValue takes one captured top-level value of a non-streaming body.
func (m *Meter) jsonValue(key string, raw []byte) {
	switch {
	case isKey(key, "usage"):
		var usage map[string]json.RawMessage
		if json.Unmarshal(raw, &usage) != nil || usage == nil {
			return
		}
		if v, ok := lookup(usage, "prompt_tokens"); ok && !isNull(v) {
			m.upPrompt, m.sawPrompt = count(v), true
		}
		if v, ok := lookup(usage, "completion_tokens"); ok && !isNull(v) {
			m.upCompletion, m.sawUsage = count(v), true
		}
	case isKey(key, "prompt_eval_count"):
		m.upPrompt, m.sawPrompt = count(raw), true
	case isKey(key, "eval_count"):
		m.upCompletion, m.sawUsage = count(raw), true
	case isKey(key, "done"):
		// eval_count is omitted when zero: a done object without one
		// generated nothing.
		if string(raw) == "true" && !m.sawUsage {
			m.upCompletion, m.sawUsage = 0, true
		}
	case isKey(key, "error"):
		m.sawError = nonEmpty(raw)
	}
}

// jsonResult fills in the completion count of a non-streaming body.
func (m *Meter) jsonResult(u *Usage) {
	u.Completion = 0
	switch {
	case m.info.Endpoint == EndpointEmbed:
	case m.sawUsage:
		u.Completion, u.FromUpstream = m.upCompletion, true
	case m.sawError:
	default:
		// No usage reported: charge a byte-based estimate, bounded by what
		// the request allowed the upstream to generate and by what the
		// caller admitted it for.
		est := (m.bodyBytes + 3) / 4
		if m.info.MaxTokens > 0 {
			if lim := m.info.MaxTokens * max(m.info.Choices, 1); est > lim {
				est = lim
			}
		}
		if c := m.info.CompletionCap; c > 0 && est > c {
			est = c
		}
		u.Completion = est
	}
}
