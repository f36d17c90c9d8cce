package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jvalue is a JSON value that keeps object key order and duplicates.
// Lookups (get) return the last value of a repeated key, as Python's json
// (a dict) and serde_json's maps resolve them: the value the loader sees.
type jvalue struct {
	kind  byte // '{', '[', 's', 'n', 'b', '0' (null)
	str   string
	num   json.Number
	b     bool
	keys  []string
	vals  []*jvalue
	dups  []string // keys repeated in this object
	items []*jvalue
	off   int64 // input offset where the value starts
}

// get returns the value of key; of a repeated key, the last one.
func (v *jvalue) get(key string) *jvalue {
	if v == nil || v.kind != '{' {
		return nil
	}
	for i := len(v.keys) - 1; i >= 0; i-- {
		if v.keys[i] == key {
			return v.vals[i]
		}
	}
	return nil
}

// effective returns the object's keys and values with repeated keys
// resolved to their last value, in first-appearance order.
func (v *jvalue) effective() ([]string, []*jvalue) {
	if len(v.dups) == 0 {
		return v.keys, v.vals
	}
	last := map[string]int{}
	for i, k := range v.keys {
		last[k] = i
	}
	var keys []string
	var vals []*jvalue
	for i, k := range v.keys {
		if j, ok := last[k]; ok {
			keys = append(keys, k)
			vals = append(vals, v.vals[j])
			delete(last, k)
			_ = i
		}
	}
	return keys, vals
}

func (v *jvalue) asString() (string, bool) {
	if v == nil || v.kind != 's' {
		return "", false
	}
	return v.str, true
}

var errTooDeep = errors.New("JSON nested too deeply")

// jsonMode selects which reference implementation the parser follows.
type jsonMode uint8

const (
	// jsonStrict is RFC 8259 as serde_json reads it (safetensors headers).
	jsonStrict jsonMode = iota
	// jsonPython is Python's json.loads on bytes: the encoding is detected
	// (UTF-8 with or without BOM, UTF-16, UTF-32), NaN, Infinity and
	// -Infinity are numbers, and \u escapes may leave lone surrogates
	// (kept distinct, as Python's str does).
	jsonPython
)

// parseJSON parses one JSON value from b, bounded in depth, and returns it
// with the offset just past it (strict mode).
func parseJSON(b []byte, maxDepth int) (*jvalue, int64, error) {
	p := &jparser{s: b, maxDepth: maxDepth, mode: jsonStrict}
	v, err := p.value(0)
	if err != nil {
		return nil, 0, err
	}
	return v, int64(p.i), nil
}

// parsePythonJSON parses b as Python's json.loads(b) would, requiring
// nothing but white space after the value.
func parsePythonJSON(b []byte, maxDepth int) (*jvalue, error) {
	text, err := pyDecodeJSONBytes(b)
	if err != nil {
		return nil, err
	}
	p := &jparser{s: text, maxDepth: maxDepth, mode: jsonPython}
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("extra data at offset %d", p.i)
	}
	return v, nil
}

// pyDecodeJSONBytes decodes bytes as json.loads does (detect_encoding,
// then decode with surrogatepass) into UTF-8 (WTF-8 for surrogates).
func pyDecodeJSONBytes(b []byte) ([]byte, error) {
	enc := "utf-8"
	switch {
	case len(b) >= 4 && (b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0):
		enc, b = "utf-32le", b[4:]
	case len(b) >= 4 && (b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF):
		enc, b = "utf-32be", b[4:]
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		enc, b = "utf-16le", b[2:]
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		enc, b = "utf-16be", b[2:]
	case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		b = b[3:]
	case len(b) >= 4 && b[0] == 0:
		if b[1] == 0 {
			enc = "utf-32be"
		} else {
			enc = "utf-16be"
		}
	case len(b) >= 4 && b[1] == 0:
		if b[2] == 0 && b[3] == 0 {
			enc = "utf-32le"
		} else {
			enc = "utf-16le"
		}
	case len(b) == 2 && b[0] == 0:
		enc = "utf-16be"
	case len(b) == 2 && b[1] == 0:
		enc = "utf-16le"
	}
	switch enc {
	case "utf-8":
		if !utf8.Valid(b) {
			return nil, errors.New("JSON is not valid UTF-8")
		}
		return b, nil
	case "utf-16le", "utf-16be":
		if len(b)%2 != 0 {
			return nil, errors.New("truncated UTF-16 data")
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			if enc == "utf-16le" {
				u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			} else {
				u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
			}
		}
		var out []byte
		for i := 0; i < len(u); i++ {
			r := rune(u[i])
			if utf16.IsSurrogate(r) && i+1 < len(u) {
				if d := utf16.DecodeRune(r, rune(u[i+1])); d != utf8.RuneError {
					out = utf8.AppendRune(out, d)
					i++
					continue
				}
			}
			out = appendWTF8(out, r)
		}
		return out, nil
	default:
		if len(b)%4 != 0 {
			return nil, errors.New("truncated UTF-32 data")
		}
		var out []byte
		for i := 0; i < len(b); i += 4 {
			var r uint32
			if enc == "utf-32le" {
				r = uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
			} else {
				r = uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
			}
			if r > utf8.MaxRune {
				return nil, errors.New("invalid UTF-32 code point")
			}
			out = appendWTF8(out, rune(r))
		}
		return out, nil
	}
}

// appendWTF8 appends r, keeping lone surrogates as three bytes.
func appendWTF8(b []byte, r rune) []byte {
	if r >= 0xD800 && r <= 0xDFFF {
		return append(b, byte(0xE0|r>>12), byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
	}
	return utf8.AppendRune(b, r)
}

type jparser struct {
	s        []byte
	i        int
	maxDepth int
	mode     jsonMode
}

func (p *jparser) errf(format string, a ...any) error {
	return fmt.Errorf("JSON at offset %d: %s", p.i, fmt.Sprintf(format, a...))
}

func (p *jparser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jparser) value(depth int) (*jvalue, error) {
	p.ws()
	if p.i >= len(p.s) {
		return nil, errors.New("JSON ends early")
	}
	start := int64(p.i)
	switch c := p.s[p.i]; {
	case c == '{':
		if depth >= p.maxDepth {
			return nil, errTooDeep
		}
		p.i++
		v := &jvalue{kind: '{', off: start}
		seen := map[string]bool{}
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return v, nil
		}
		for {
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				if p.i >= len(p.s) {
					return nil, errors.New("JSON ends early")
				}
				return nil, p.errf("object key is not a string")
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, p.errf("expected ':'")
			}
			p.i++
			val, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if seen[k] {
				v.dups = append(v.dups, k)
			}
			seen[k] = true
			v.keys = append(v.keys, k)
			v.vals = append(v.vals, val)
			p.ws()
			if p.i >= len(p.s) {
				return nil, errors.New("JSON ends early")
			}
			if p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.s[p.i] == '}' {
				p.i++
				return v, nil
			}
			return nil, p.errf("expected ',' or '}'")
		}
	case c == '[':
		if depth >= p.maxDepth {
			return nil, errTooDeep
		}
		p.i++
		v := &jvalue{kind: '[', off: start}
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return v, nil
		}
		for {
			val, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.items = append(v.items, val)
			p.ws()
			if p.i >= len(p.s) {
				return nil, errors.New("JSON ends early")
			}
			if p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.s[p.i] == ']' {
				p.i++
				return v, nil
			}
			return nil, p.errf("expected ',' or ']'")
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &jvalue{kind: 's', str: s, off: start}, nil
	case c == 't' && p.lit("true"):
		return &jvalue{kind: 'b', b: true, off: start}, nil
	case c == 'f' && p.lit("false"):
		return &jvalue{kind: 'b', off: start}, nil
	case c == 'n' && p.lit("null"):
		return &jvalue{kind: '0', off: start}, nil
	case p.mode == jsonPython && (c == 'N' && p.lit("NaN") || c == 'I' && p.lit("Infinity") || c == '-' && p.lit("-Infinity")):
		return &jvalue{kind: 'n', num: json.Number(string(p.s[start:p.i])), off: start}, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number(start)
	}
	return nil, p.errf("unexpected %q", p.s[p.i])
}

func (p *jparser) lit(w string) bool {
	if len(p.s)-p.i >= len(w) && string(p.s[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

func (p *jparser) number(start int64) (*jvalue, error) {
	j := p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	digits := func() int {
		k := j
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(p.s) && p.s[j] == '0' {
		j++
	} else if digits() == 0 {
		return nil, p.errf("invalid number")
	}
	if j < len(p.s) && p.s[j] == '.' {
		j++
		if digits() == 0 {
			return nil, p.errf("invalid number")
		}
	}
	if j < len(p.s) && (p.s[j] == 'e' || p.s[j] == 'E') {
		j++
		if j < len(p.s) && (p.s[j] == '+' || p.s[j] == '-') {
			j++
		}
		if digits() == 0 {
			return nil, p.errf("invalid number")
		}
	}
	v := &jvalue{kind: 'n', num: json.Number(string(p.s[p.i:j])), off: start}
	p.i = j
	return v, nil
}

// str reads a string; control characters are refused, escapes decoded
// (a lone surrogate stays distinct in Python mode, becomes U+FFFD in
// strict mode, as serde_json refuses it... and we only need equality).
func (p *jparser) str() (string, error) {
	p.i++ // opening quote
	var b []byte
	for {
		if p.i >= len(p.s) {
			return "", errors.New("JSON ends early inside a string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), nil
		case c < 0x20:
			return "", p.errf("control character in a string")
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", errors.New("JSON ends early inside a string")
			}
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) && r < 0xDC00 && p.i+6 <= len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					r2, err := p.hex4()
					if err == nil && r2 >= 0xDC00 && r2 <= 0xDFFF {
						b = utf8.AppendRune(b, utf16.DecodeRune(r, r2))
						continue
					}
					p.i = save
				}
				if utf16.IsSurrogate(r) && p.mode != jsonPython {
					r = utf8.RuneError
				}
				b = appendWTF8(b, r)
			default:
				return "", p.errf("invalid escape \\%c", e)
			}
		default:
			b = append(b, c)
			p.i++
		}
	}
}

func (p *jparser) hex4() (rune, error) {
	if p.i+4 > len(p.s) {
		return 0, errors.New("JSON ends early inside a \\u escape")
	}
	v, err := strconv.ParseUint(string(p.s[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, p.errf("invalid \\u escape")
	}
	p.i += 4
	return rune(v), nil
}
