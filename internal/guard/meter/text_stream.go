package meter

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Generated text of a stream, event by event, for an output watch (the
// guard's gibberish watch): WithText hands the text of every relayed
// event to a callback, decoded from JSON, through a buffer the meter
// reuses, so a watch costs no allocation per event.

// WithText calls fn with the generated text of every event the meter
// relays (Ollama's response, thinking and message content; OpenAI's
// choices' text and delta/message content), decoded. fn must not keep the
// slice.
func WithText(fn func(text []byte)) Option {
	return func(m *Meter) { m.text = fn }
}

var (
	ollamaTextKeys = []string{"response", "thinking", "message"}
	contentKeys    = []string{"content", "reasoning_content", "thinking"}
	choiceTextKeys = []string{"text", "delta", "message"}
	choicesKey     = []string{"choices"}
)

// emitText decodes the text of one relayed event and hands it to m.text.
func (m *Meter) emitText(payload []byte) {
	buf := m.textBuf[:0]
	switch m.mode {
	case modeNDJSON:
		var v [3][]byte
		if pickMembers(payload, ollamaTextKeys, v[:]) {
			buf = appendJSONString(buf, v[0])
			buf = appendJSONString(buf, v[1])
			if msg := v[2]; len(msg) > 0 && msg[0] == '{' {
				var c [3][]byte
				if pickMembers(msg, contentKeys, c[:]) {
					for _, x := range c {
						buf = appendJSONString(buf, x)
					}
				}
			}
		}
	case modeSSE:
		var top [1][]byte
		if pickMembers(payload, choicesKey, top[:]) && len(top[0]) > 0 && top[0][0] == '[' {
			walkArray(top[0], func(el []byte) {
				var v [3][]byte
				if len(el) == 0 || el[0] != '{' || !pickMembers(el, choiceTextKeys, v[:]) {
					return
				}
				buf = appendJSONString(buf, v[0])
				for _, d := range v[1:] {
					if len(d) > 0 && d[0] == '{' {
						var c [3][]byte
						if pickMembers(d, contentKeys, c[:]) {
							for _, x := range c {
								buf = appendJSONString(buf, x)
							}
						}
					}
				}
			})
		}
	}
	m.textBuf = buf
	if len(buf) > 0 {
		m.text(buf)
	}
}

// appendJSONString appends the decoded value of the JSON string raw (with
// its quotes) to dst; anything that is not a string adds nothing.
func appendJSONString(dst, raw []byte) []byte {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return dst
	}
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch s[i] {
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			r, n := hexRune(s[i+1:])
			if n == 0 {
				dst = append(dst, '\\', 'u')
				continue
			}
			i += n
			if utf16.IsSurrogate(r) && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2, n2 := hexRune(s[i+3:]); n2 > 0 {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 2 + n2
					}
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // \" \\ \/ and anything else: the character itself
			dst = append(dst, s[i])
		}
	}
	return dst
}

// hexRune reads four hex digits; n is 4, or 0 when they are not there.
func hexRune(s []byte) (rune, int) {
	if len(s) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}
