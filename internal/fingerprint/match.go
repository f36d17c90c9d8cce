package fingerprint

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Response is what one request got back, bounded and decoded.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool  // the body was longer than the cap
	Err       error // transport error: no usable HTTP response

	jsonDone bool
	jsonVal  any
	jsonOK   bool
}

// OK reports whether an HTTP response arrived.
func (r *Response) OK() bool { return r != nil && r.Err == nil }

// JSON decodes the body once (numbers kept as text); ok is false for bodies
// that are not JSON.
func (r *Response) JSON() (any, bool) {
	if r == nil || r.Err != nil {
		return nil, false
	}
	if !r.jsonDone {
		r.jsonDone = true
		r.jsonVal, r.jsonOK = decodeJSON(r.Body)
	}
	return r.jsonVal, r.jsonOK
}

func decodeJSON(b []byte) (any, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if dec.More() {
		return nil, false
	}
	return v, true
}

// matchAll reports whether every matcher holds for r.
func matchAll(ms []Matcher, r *Response) bool {
	if !r.OK() {
		return false
	}
	for i := range ms {
		if !ms[i].match(r) {
			return false
		}
	}
	return true
}

func (m *Matcher) match(r *Response) bool {
	var ok bool
	switch {
	case len(m.Status) > 0:
		ok = slices.Contains(m.Status, r.Status)
	case m.Header != nil:
		vals := r.Header.Values(m.Header.Name)
		for _, v := range vals {
			if m.Header.re.MatchString(v) {
				ok = true
				break
			}
		}
	case m.bodyRE != nil:
		ok = m.bodyRE.Match(r.Body)
	case m.JSON != nil:
		ok = m.JSON.match(r)
	}
	return ok != m.Not
}

func (j *JSONMatch) match(r *Response) bool {
	root, ok := r.JSON()
	if !ok {
		return false
	}
	vals := lookupJSON(root, j.Path)
	if j.Exists != nil && !*j.Exists {
		return len(vals) == 0
	}
	for _, v := range vals {
		if j.Equals != nil {
			s, scalar := scalarText(v)
			if !scalar || s != *j.Equals {
				continue
			}
		}
		if j.re != nil {
			s, scalar := scalarText(v)
			if !scalar || !j.re.MatchString(s) {
				continue
			}
		}
		if j.Type != "" && jsonType(v) != j.Type {
			continue
		}
		return true
	}
	return false
}

// lookupJSON follows a dotted path ("data.*.owned_by", "models.0.name")
// through decoded JSON and returns every value found. "*" matches every
// element of an array or every member of an object.
func lookupJSON(root any, path string) []any {
	cur := []any{root}
	for _, seg := range strings.Split(path, ".") {
		var next []any
		for _, v := range cur {
			switch t := v.(type) {
			case map[string]any:
				if seg == "*" {
					for _, e := range t {
						next = append(next, e)
					}
				} else if e, ok := t[seg]; ok {
					next = append(next, e)
				}
			case []any:
				if seg == "*" {
					next = append(next, t...)
				} else if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(t) {
					next = append(next, t[i])
				}
			}
		}
		if len(next) == 0 {
			return nil
		}
		cur = next
	}
	return cur
}

// scalarText renders a JSON scalar as text; ok is false for arrays and
// objects.
func scalarText(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	case nil:
		return "null", true
	}
	return "", false
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return ""
}

// extract reads a value with an extractor; "" when absent.
func (e *Extractor) extract(r *Response) string {
	if !r.OK() || r.Status < 200 || r.Status > 299 {
		return ""
	}
	switch {
	case e.JSON != "":
		root, ok := r.JSON()
		if !ok {
			return ""
		}
		for _, v := range lookupJSON(root, e.JSON) {
			if s, ok := scalarText(v); ok && s != "" && s != "null" {
				return clean(s, 128)
			}
		}
	case e.Header != "":
		return clean(r.Header.Get(e.Header), 128)
	case e.re != nil:
		if m := e.re.FindSubmatch(r.Body); len(m) > 1 {
			return clean(string(m[1]), 128)
		}
	}
	return ""
}

// clean makes untrusted text safe to store and print: valid UTF-8, no
// control characters except newline and tab, at most max bytes.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return truncate(s, max)
}

// truncate cuts s to at most max bytes on a rune boundary.
func truncate(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

var spaceRE = regexp.MustCompile(`\s+`)

// snippet is a one-line, short rendering of a body for Evidence.
func snippet(b []byte, max int) string {
	s := clean(string(b), max*2)
	s = strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
	if len(s) > max {
		return truncate(s, max) + "…"
	}
	return s
}
