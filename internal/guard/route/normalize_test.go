package route

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	ok := []struct{ raw, want string }{
		{"/", "/"},
		{"//", "/"},
		{"/api/pull", "/api/pull"},
		{"//api//pull", "/api/pull"},
		{"/api/pull/", "/api/pull"},
		{"/api/pull//", "/api/pull"},
		{"/./api/./pull", "/api/pull"},
		{"/api/../api/pull", "/api/pull"},
		{"/api/chat/../pull", "/api/pull"},
		{"/a/b/c/../../../api/pull", "/api/pull"},
		{"/api/pull/..", "/api"},
		{"/api/tags?name=x", "/api/tags"},
		{"/api/tags?x=/../../pull", "/api/tags"},
		{"/api/%70ull", "/api/pull"}, // encoded letter decodes once
		{"/api/%50ULL", "/api/PULL"}, // case kept; Decide denies it
		{"/v1/models/llama3.2%3A3b", "/v1/models/llama3.2:3b"},
		{"/v1/models/llama3.2:3b", "/v1/models/llama3.2:3b"},
		{"/api/...", "/api/..."}, // three dots is a name, not a dot segment
		{"/api/pull;x", "/api/pull;x"},
		{"/API/Pull", "/API/Pull"},
	}
	for _, c := range ok {
		got, err := Normalize(c.raw)
		if err != nil || got != c.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
	bad := []struct{ raw, reason string }{
		{"", "empty"},
		{"api/pull", "start with /"},
		{"*", "start with /"},
		{"http://127.0.0.1/api/pull", "start with /"},
		{"/..", "above the root"},
		{"/../api/pull", "above the root"},
		{"/api/../../api/pull", "above the root"},
		{"/api%2fpull", "encoded slash"},
		{"/api%2Fpull", "encoded slash"},
		{"/api%5cpull", "encoded slash"},
		{"/api/%2e%2e/api/pull", "encoded dot"},
		{"/api/.%2e/pull", "encoded dot"},
		{"/api/%2E./pull", "encoded dot"},
		{"/api/%252e%252e/pull", "double percent"},
		{"/api/%25", "double percent"},
		{"/api\\pull", "backslash"},
		{"/api/pull#x", "fragment"},
		{"/api/pull\x00", "control"},
		{"/api/%00pull", "encoded control"},
		{"/api/pull\r\n", "control"},
		{"/api/%0d%0apull", "encoded control"},
		{"/api/pull\x7f", "control"},
		{"/api/pull%", "truncated"},
		{"/api/pull%2", "truncated"},
		{"/api/pull%zz", "malformed"},
		{"/api/p\xc3\xbcll", "non-ASCII"},
		{"/api/p%c3%bcll", "non-ASCII"},
		{"/api/pull x", "not allowed"},
		{"/api/pull%20x", "not allowed"},
		{"/api/pull%3fx", "not allowed"}, // encoded '?'
		{"/api/pull%23x", "not allowed"}, // encoded '#'
		{"/api/{pull}", "not allowed"},
	}
	for _, c := range bad {
		got, err := Normalize(c.raw)
		var pe *PathError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("Normalize(%q) = %q, %v; want a PathError containing %q", c.raw, got, err, c.reason)
		}
	}
}

// Normalize is idempotent: its output normalises to itself.
func TestNormalizeIdempotent(t *testing.T) {
	for _, raw := range []string{"/a//b/./c/../d/", "/%41%42/x", "/v1/models/a%3Ab", "/api/pull"} {
		n, err := Normalize(raw)
		if err != nil {
			t.Fatalf("Normalize(%q): %v", raw, err)
		}
		n2, err := Normalize(n)
		if err != nil || n2 != n {
			t.Errorf("Normalize(Normalize(%q)) = %q, %v; want %q", raw, n2, err, n)
		}
	}
}
