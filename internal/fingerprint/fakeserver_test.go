package fingerprint

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// fakeCase is a recorded-shape server: the routes a real product answers,
// written from the upstream source cited in Upstream.
type fakeCase struct {
	Description   string      `yaml:"description"`
	Upstream      string      `yaml:"upstream"`
	ExpectProduct string      `yaml:"expect_product"`
	CORS          string      `yaml:"cors"` // "", "*" or "reflect"
	ServerHeader  string      `yaml:"server_header"`
	Default       *fakeRoute  `yaml:"default"`
	Routes        []fakeRoute `yaml:"routes"`
}

type fakeRoute struct {
	Method    string            `yaml:"method"`
	Path      string            `yaml:"path"`
	BodyMatch string            `yaml:"body_match"` // regexp on the request body
	Status    int               `yaml:"status"`
	Headers   map[string]string `yaml:"headers"`
	Body      string            `yaml:"body"`
	BodyFile  string            `yaml:"body_file"`

	re *regexp.Regexp
}

func loadCase(t *testing.T, path string) *fakeCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c fakeCase
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.BodyMatch != "" {
			r.re = regexp.MustCompile(r.BodyMatch)
		}
		if r.BodyFile != "" {
			bb, err := os.ReadFile(filepath.Join(filepath.Dir(path), r.BodyFile))
			if err != nil {
				t.Fatal(err)
			}
			r.Body = string(bb)
		}
		if r.Status == 0 {
			r.Status = 200
		}
		if r.Method == "" {
			r.Method = http.MethodGet
		}
	}
	return &c
}

// writeRoutes are routes that pull, push, create, copy, delete or generate;
// a passive probe must never reach them.
var writeRoutes = regexp.MustCompile(`^/(api/(pull|push|create|copy|delete|generate|chat|embed|embeddings)|v1/(chat/completions|completions|embeddings)|completion|generate|generate_stream|api/v1/generate|models/apply|models/delete)`)

type fakeServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits []string
}

func (f *fakeServer) hitList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.hits...)
}

func (f *fakeServer) addrPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(f.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// serveCase starts a server for c. If passive, any state-changing or
// generating request fails the test.
func serveCase(t *testing.T, c *fakeCase, passive bool) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 1<<16)
		n, _ := r.Body.Read(body)
		body = body[:n]
		f.mu.Lock()
		f.hits = append(f.hits, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		if passive {
			safe := r.Method == http.MethodGet || r.Method == http.MethodHead || (r.Method == http.MethodPost && r.URL.Path == "/api/show")
			if !safe || writeRoutes.MatchString(r.URL.Path) {
				t.Errorf("passive probe sent %s %s", r.Method, r.URL.Path)
			}
		}
		if c.ServerHeader != "" {
			w.Header().Set("Server", c.ServerHeader)
		}
		if o := r.Header.Get("Origin"); o != "" {
			switch c.CORS {
			case "*":
				w.Header().Set("Access-Control-Allow-Origin", "*")
			case "reflect":
				w.Header().Set("Access-Control-Allow-Origin", o)
			}
		}
		var route *fakeRoute
		for i := range c.Routes {
			rt := &c.Routes[i]
			method := rt.Method
			if method == r.Method || (r.Method == http.MethodHead && method == http.MethodGet) {
				if rt.Path == r.URL.Path && (rt.re == nil || rt.re.Match(body)) {
					route = rt
					break
				}
			}
		}
		if route == nil {
			route = c.Default
		}
		if route == nil {
			http.NotFound(w, r)
			return
		}
		for k, v := range route.Headers {
			w.Header().Set(k, strings.ReplaceAll(v, "{path}", r.URL.Path))
		}
		w.WriteHeader(route.Status)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(strings.NewReplacer("{path}", r.URL.Path, "{method}", r.Method).Replace(route.Body)))
		}
	}))
	t.Cleanup(f.Close)
	return f
}
