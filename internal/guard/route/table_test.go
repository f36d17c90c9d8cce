package route

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func mustTable(t testing.TB, kind string) *Table {
	t.Helper()
	tb, err := New(kind)
	if err != nil {
		t.Fatalf("New(%q): %v", kind, err)
	}
	return tb
}

func TestEmbeddedTable(t *testing.T) {
	f, err := LoadFile()
	if err != nil {
		t.Fatal(err)
	}
	if f.Version < 1 {
		t.Errorf("version = %d, want >= 1", f.Version)
	}
	want := []string{"llamacpp", "ollama", "openai", "vllm"}
	if got := Kinds(); !slices.Equal(got, want) {
		t.Errorf("Kinds() = %v, want %v", got, want)
	}
	for _, k := range want {
		tb := mustTable(t, k)
		if tb.Kind != k || tb.Version != f.Version {
			t.Errorf("table %s: kind %q version %d", k, tb.Kind, tb.Version)
		}
		classes := map[Class]int{}
		for _, r := range tb.Routes {
			classes[r.Class]++
		}
		for _, c := range []Class{Listing, Inference, Admin} {
			if classes[c] == 0 {
				t.Errorf("kind %s has no %s route", k, c)
			}
		}
	}
}

func TestNewUnknownKind(t *testing.T) {
	_, err := New("tgi")
	if err == nil || !strings.Contains(err.Error(), `unknown upstream kind "tgi"`) {
		t.Fatalf("New(tgi) error = %v", err)
	}
}

// Every entry is testable: its example path reaches it with each of its
// methods, through Decide and through Lookup.
func TestEveryRouteExample(t *testing.T) {
	for _, k := range Kinds() {
		tb := mustTable(t, k)
		for _, r := range tb.Routes {
			for _, m := range r.Methods {
				d := tb.Decide(m, r.Example)
				if d.Class != r.Class || d.Route != r.ID || d.Path != r.Example || d.Status != 0 {
					t.Errorf("%s %s %s: got %+v, want class %s route %s", k, m, r.Example, d, r.Class, r.ID)
				}
				lr, ok := tb.Lookup(m, r.Example)
				if !ok || lr.ID != r.ID {
					t.Errorf("%s Lookup(%s %s) = %v %v", k, m, r.Example, lr, ok)
				}
				// The trailing-slash and doubled-slash spellings reach the same route.
				for _, alt := range []string{r.Example + "/", "/" + r.Example} {
					if r.Example == "/" {
						continue
					}
					if d2 := tb.Decide(m, alt); d2.Route != r.ID || d2.Class != r.Class || d2.Path != r.Example {
						t.Errorf("%s %s %s: got %+v, want route %s", k, m, alt, d2, r.ID)
					}
				}
				// Upper-casing the path never reaches a route.
				if up := strings.ToUpper(r.Example); up != r.Example {
					if d3 := tb.Decide(m, up); d3.Class != Denied {
						t.Errorf("%s %s %s: odd case got %+v", k, m, up, d3)
					}
				}
			}
		}
	}
}

func TestHeadHandling(t *testing.T) {
	cases := []struct {
		kind, path string
		want       Class
		status     int
	}{
		{"ollama", "/api/tags", Listing, 0},    // registered HEAD explicitly
		{"ollama", "/", Listing, 0},            // registered HEAD explicitly
		{"ollama", "/api/ps", Denied, 405},     // GET only in gin: no HEAD
		{"ollama", "/v1/models", Denied, 405},  // GET only
		{"vllm", "/v1/models", Denied, 405},    // FastAPI APIRoute does not add HEAD
		{"llamacpp", "/v1/models", Listing, 0}, // cpp-httplib answers HEAD with GET handlers
		{"llamacpp", "/slots", Admin, 0},       // ... including admin ones
		{"llamacpp", "/v1/chat/completions", Denied, 405},
	}
	for _, c := range cases {
		d := mustTable(t, c.kind).Decide(http.MethodHead, c.path)
		if d.Class != c.want || d.Status != c.status {
			t.Errorf("%s HEAD %s = %+v, want %s/%d", c.kind, c.path, d, c.want, c.status)
		}
	}
}

func TestGenericOpenAIKeepsAdminRoutes(t *testing.T) {
	tb := mustTable(t, "openai")
	admin := []struct{ method, path string }{
		{"POST", "/pause"}, {"POST", "/update_weights"}, {"POST", "/collective_rpc"},
		{"POST", "/invocations"}, {"GET", "/metrics"}, {"POST", "/tokenize"},
		{"POST", "/slots/0"}, {"POST", "/lora-adapters"}, {"POST", "/props"},
		{"POST", "/v1/load_lora_adapter"}, {"POST", "/models/load"},
	}
	for _, c := range admin {
		if d := tb.Decide(c.method, c.path); d.Class != Admin {
			t.Errorf("openai %s %s = %+v, want admin", c.method, c.path, d)
		}
	}
	denied := []struct{ method, path string }{
		{"POST", "/completion"}, {"POST", "/api/pull"}, {"GET", "/health"}, {"POST", "/chat/completions"},
	}
	for _, c := range denied {
		if d := tb.Decide(c.method, c.path); d.Class != Denied {
			t.Errorf("openai %s %s = %+v, want denied", c.method, c.path, d)
		}
	}
}

func TestParseFileRejects(t *testing.T) {
	const good = `version: 1
kinds:
  k:
    routes:
      - {id: a, class: inference, methods: [POST], path: /v1/chat/completions, source: s, example: /v1/chat/completions, meter: openai.chat}
`
	if _, err := ParseFile([]byte(good)); err != nil {
		t.Fatalf("good file refused: %v", err)
	}
	route := func(r string) string {
		return "version: 1\nkinds:\n  k:\n    routes:\n      - " + r + "\n"
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"no version", "kinds:\n  k:\n    routes: []\n", "version missing"},
		{"no kinds", "version: 1\n", "no kinds"},
		{"unknown field", "version: 1\nbogus: 1\n", "bogus"},
		{"bad class", route("{id: a, class: open, methods: [GET], path: /x, source: s, example: /x}"), "class"},
		{"denied class", route("{id: a, class: denied, methods: [GET], path: /x, source: s, example: /x}"), "class"},
		{"no source", route("{id: a, class: listing, methods: [GET], path: /x, example: /x}"), "no source"},
		{"no id", route("{class: listing, methods: [GET], path: /x, source: s, example: /x}"), "no id"},
		{"no methods", route("{id: a, class: listing, path: /x, source: s, example: /x}"), "no methods"},
		{"bad method", route("{id: a, class: listing, methods: [TRACE], path: /x, source: s, example: /x}"), "method"},
		{"unnormalised", route("{id: a, class: listing, methods: [GET], path: /x/, source: s, example: /x}"), "not a normalised"},
		{"dotdot", route("{id: a, class: listing, methods: [GET], path: /x/../y, source: s, example: /y}"), "not a normalised"},
		{"upper literal", route("{id: a, class: listing, methods: [GET], path: /X, source: s, example: /X}"), "lower case"},
		{"catch-all middle", route("{id: a, class: listing, methods: [GET], path: /*r/x, source: s, example: /a/x}"), "catch-all"},
		{"no example", route("{id: a, class: listing, methods: [GET], path: /x, source: s}"), "no example"},
		{"example mismatch", route("{id: a, class: listing, methods: [GET], path: /x, source: s, example: /y}"), "does not match"},
		{"duplicate id", "version: 1\nkinds:\n  k:\n    routes:\n" +
			"      - {id: a, class: listing, methods: [GET], path: /x, source: s, example: /x}\n" +
			"      - {id: a, class: listing, methods: [GET], path: /y, source: s, example: /y}\n", "duplicate"},
		{"overlap", "version: 1\nkinds:\n  k:\n    routes:\n" +
			"      - {id: a, class: listing, methods: [GET], path: /m/:id, source: s, example: /m/1}\n" +
			"      - {id: b, class: admin, methods: [GET], path: /m/pull, source: s, example: /m/pull}\n", "overlapping"},
		{"overlap by case", "version: 1\nkinds:\n  k:\n    routes:\n" +
			"      - {id: a, class: listing, methods: [GET], path: /m/*rest, source: s, example: /m/1}\n" +
			"      - {id: b, class: admin, methods: [GET], path: /m/x/y, source: s, example: /m/x/y}\n", "overlapping"},
		{"inference without meter", route("{id: a, class: inference, methods: [POST], path: /x, source: s, example: /x}"), "must name its meter"},
		{"unknown meter", route("{id: a, class: inference, methods: [POST], path: /x, source: s, example: /x, meter: tgi.generate}"), "unknown meter"},
		{"metered listing", route("{id: a, class: listing, methods: [GET], path: /x, source: s, example: /x, meter: openai.chat}"), "only inference"},
		{"model_param not in path", route("{id: a, class: listing, methods: [GET], path: /m/:id, source: s, example: /m/x, model_param: model}"), "model_param"},
		{"admin_from unknown", "version: 1\nkinds:\n  k:\n    admin_from: [nope]\n    routes: []\n", "admin_from"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseFile([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestSamePathDifferentMethodsAllowed(t *testing.T) {
	// llama.cpp /lora-adapters: GET and POST are separate admin entries.
	tb := mustTable(t, "llamacpp")
	if d := tb.Decide("GET", "/lora-adapters"); d.Route != "llamacpp.lora.list" {
		t.Errorf("GET /lora-adapters = %+v", d)
	}
	if d := tb.Decide("POST", "/lora-adapters"); d.Route != "llamacpp.lora.apply" {
		t.Errorf("POST /lora-adapters = %+v", d)
	}
}

func TestClassString(t *testing.T) {
	for _, c := range []Class{Denied, Listing, Inference, Admin} {
		got, ok := ParseClass(c.String())
		if !ok || got != c {
			t.Errorf("ParseClass(%q) = %v, %v", c.String(), got, ok)
		}
	}
	if Class(42).String() != "denied" {
		t.Errorf("unknown class should print as denied")
	}
	var zero Decision
	if zero.Class != Denied {
		t.Errorf("zero Decision must be Denied")
	}
}

// The meter comes from the table, never from the path: a route without /v1
// is metered like its /v1 twin, in the dialect of the kind's server.
func TestMeterFromTheTable(t *testing.T) {
	cases := []struct{ kind, method, path, meter string }{
		{"llamacpp", "POST", "/chat/completions", "openai.chat"},
		{"llamacpp", "POST", "/v1/chat/completions", "openai.chat"},
		{"llamacpp", "POST", "/v1/completions", "openai.completions"},
		{"ollama", "POST", "/api/embeddings", "ollama.embed"},
		{"ollama", "POST", "/v1/completions", "openai.completions"},
		{"ollama", "POST", "/v1/responses", MeterNone},
		{"vllm", "POST", "/v1/responses", MeterNone},
		{"ollama", "GET", "/api/tags", ""},
	}
	for _, c := range cases {
		d := mustTable(t, c.kind).Decide(c.method, c.path)
		if d.Meter != c.meter {
			t.Errorf("%s %s %s: meter %q, want %q", c.kind, c.method, c.path, d.Meter, c.meter)
		}
	}
	// Every inference route of every kind names a meter the meter package
	// knows, or none.
	f, err := LoadFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range f.KindNames() {
		tb, _ := f.Table(k)
		for _, r := range tb.Routes {
			if (r.Class == Inference) != (r.Meter != "") {
				t.Errorf("%s %s: class %s, meter %q", k, r.ID, r.Class, r.Meter)
			}
		}
	}
	if d := mustTable(t, "ollama").Decide("GET", "/v1/models/llama3.2:3b"); d.Model != "llama3.2:3b" || d.Class != Listing {
		t.Errorf("GET /v1/models/llama3.2:3b = %+v, want the model read from the path", d)
	}
}
