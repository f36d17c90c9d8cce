package fingerprint

import (
	"net/http"
	"strings"
	"testing"
)

func TestMatchers(t *testing.T) {
	yes, no := true, false
	eq := func(s string) *string { return &s }
	resp := &Response{
		Status: 200,
		Header: http.Header{"Server": {"llama.cpp"}},
		Body:   []byte(`{"object":"list","data":[{"id":"a","owned_by":"vllm","created":1,"ok":true},{"id":"b","owned_by":"x"}],"n":null}`),
	}
	tests := []struct {
		name string
		m    Matcher
		want bool
	}{
		{"status hit", Matcher{Status: []int{404, 200}}, true},
		{"status miss", Matcher{Status: []int{401}}, false},
		{"status not", Matcher{Status: []int{401}, Not: true}, true},
		{"header", Matcher{Header: &HeaderMatch{Name: "server", Regex: `^llama\.cpp$`}}, true},
		{"header absent", Matcher{Header: &HeaderMatch{Name: "X-None", Regex: ``}}, false},
		{"body", Matcher{Body: `"owned_by":"vllm"`}, true},
		{"json exists", Matcher{JSON: &JSONMatch{Path: "data.0.id"}}, true},
		{"json missing", Matcher{JSON: &JSONMatch{Path: "data.5.id"}}, false},
		{"json absent wanted", Matcher{JSON: &JSONMatch{Path: "nope", Exists: &no}}, true},
		{"json present not wanted", Matcher{JSON: &JSONMatch{Path: "object", Exists: &no}}, false},
		{"json exists explicit", Matcher{JSON: &JSONMatch{Path: "object", Exists: &yes}}, true},
		{"json star equals", Matcher{JSON: &JSONMatch{Path: "data.*.owned_by", Equals: eq("x")}}, true},
		{"json equals number", Matcher{JSON: &JSONMatch{Path: "data.0.created", Equals: eq("1")}}, true},
		{"json equals bool", Matcher{JSON: &JSONMatch{Path: "data.0.ok", Equals: eq("true")}}, true},
		{"json equals miss", Matcher{JSON: &JSONMatch{Path: "data.*.owned_by", Equals: eq("sglang")}}, false},
		{"json regex", Matcher{JSON: &JSONMatch{Path: "object", Regex: `^li`}}, true},
		{"json type array", Matcher{JSON: &JSONMatch{Path: "data", Type: "array"}}, true},
		{"json type wrong", Matcher{JSON: &JSONMatch{Path: "data", Type: "object"}}, false},
		{"json null", Matcher{JSON: &JSONMatch{Path: "n", Type: "null"}}, true},
		{"json object not array", Matcher{JSON: &JSONMatch{Path: "object", Equals: eq("list"), Type: "array"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := []Matcher{tc.m}
			if err := compileMatchers(ms); err != nil {
				t.Fatal(err)
			}
			if got := matchAll(ms, resp); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
	// Nothing matches a response that never arrived, or a non-JSON body.
	ms := []Matcher{{Status: []int{0}, Not: true}}
	_ = compileMatchers(ms)
	if matchAll(ms, &Response{Err: errPassive}) {
		t.Error("matched a failed request")
	}
	js := []Matcher{{JSON: &JSONMatch{Path: "a"}}}
	_ = compileMatchers(js)
	if matchAll(js, &Response{Status: 200, Body: []byte(`{"a":1} trailing`)}) {
		t.Error("matched JSON with trailing garbage")
	}
}

func TestCatalogValidation(t *testing.T) {
	good := `version: 1
products:
  - id: x
    sources: [s]
    rules:
      - name: r
        checks:
          - request: {method: GET, path: /}
            match: [{status: [200]}]
`
	if _, err := ParseCatalog("test.yaml", []byte(good)); err != nil {
		t.Fatalf("good catalogue rejected: %v", err)
	}
	bad := map[string]string{
		"no version":     strings.Replace(good, "version: 1", "version: 0", 1),
		"unknown field":  strings.Replace(good, "    sources: [s]", "    sources: [s]\n    colour: red", 1),
		"no sources":     strings.Replace(good, "    sources: [s]\n", "", 1),
		"write method":   strings.Replace(good, "method: GET, path: /}", "method: DELETE, path: /api/delete}", 1),
		"write POST":     strings.Replace(good, "method: GET, path: /}", "method: POST, path: /api/generate}", 1),
		"bad regex":      strings.Replace(good, "{status: [200]}", "{body: '('}", 1),
		"two kinds":      strings.Replace(good, "{status: [200]}", "{status: [200], body: x}", 1),
		"relative path":  strings.Replace(good, "path: /}", "path: x}", 1),
		"bad json type":  strings.Replace(good, "{status: [200]}", "{json: {path: a, type: thing}}", 1),
		"duplicate id":   good + strings.SplitN(good, "products:\n", 2)[1],
		"empty products": "version: 1\nproducts: []\n",
	}
	for name, y := range bad {
		if _, err := ParseCatalog("test.yaml", []byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEmbeddedCatalog(t *testing.T) {
	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ollama", "vllm", "llamacpp", "lmstudio", "localai", "tgi", "text-generation-webui", "open-webui", "koboldcpp", "sglang", "litellm", "xinference", "gpt4all", "jan", "openai-compatible"}
	for _, id := range want {
		if _, ok := c.Product(id); !ok {
			t.Errorf("product %q missing", id)
		}
	}
	if len(c.Products) != len(want) {
		t.Errorf("%d products, want %d", len(c.Products), len(want))
	}
	spec, fb := c.ordered(11434)
	if spec[0].ID != "ollama" || len(fb) != 1 || fb[0].ID != "openai-compatible" {
		t.Errorf("order for 11434 starts with %s, fallback %v", spec[0].ID, fb)
	}
	spec, _ = c.ordered(8000)
	if spec[0].ID != "vllm" {
		t.Errorf("order for 8000 starts with %s, want vllm", spec[0].ID)
	}
}

func TestModelfileSystem(t *testing.T) {
	tests := []struct{ name, mf, want string }{
		{"none", "FROM llama3\nPARAMETER temperature 1", ""},
		{"single line", "FROM x\nSYSTEM You are a pirate.\n", "You are a pirate."},
		{"quoted", "SYSTEM \"Be brief.\"", "Be brief."},
		{"triple one line", `SYSTEM """Be brief."""`, "Be brief."},
		{"triple multi", "SYSTEM \"\"\"Line one.\nLine two.\n\"\"\"\nPARAMETER x 1", "Line one.\nLine two.\n"},
		{"lower case", "system hello", "hello"},
		{"last wins", "SYSTEM first\nSYSTEM second", "second"},
		{"not a prefix", "SYSTEMATIC thing", ""},
		{"template mention", "TEMPLATE \"{{ .System }}\"", ""},
		{"unterminated", "SYSTEM \"\"\"open\nstill open", "open\nstill open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := modelfileSystem(tc.mf); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCleanAndTruncate(t *testing.T) {
	if got := clean("a\x00b\x1b[31mc\nd\xff", 100); got != "ab[31mc\nd\uFFFD" {
		t.Errorf("clean = %q", got)
	}
	if got := truncate("héllo", 2); got != "h" {
		t.Errorf("truncate on a rune boundary = %q", got)
	}
	if !isCloudName("gpt-oss:120b-cloud") || !isCloudName("qwen3-coder:cloud") || isCloudName("cloudy:latest") {
		t.Error("isCloudName")
	}
}
