package guard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/llmfence/llmfence/internal/guard/route"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzGatewayPaths proves, end to end through the handler, that whatever
// path a normal key sends, what reaches the upstream is a normalised path
// the route table classes Listing or Inference: never an admin route, never
// an unknown one, never the raw spelling.
func FuzzGatewayPaths(f *testing.F) {
	for _, s := range []string{
		"/api/pull", "//api/pull", "/api/../api/pull", "/api/%2e%2e/api/pull", "/api%2fpull", "/API/PULL",
		"/api/pull/", "/api/tags", "/api/tags/", "/v1/models", "/api/generate", "/api/chat", "/api/blobs/sha256:x",
		"/api/./delete", "/%61pi/pull", "/api/tags/..%2fpull", "/v1/../api/create", "/api/tags%00",
	} {
		for _, m := range []string{"GET", "POST", "DELETE", "HEAD"} {
			f.Add(m, s)
		}
	}
	table, err := route.New("ollama")
	if err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	var forwarded []*http.Request
	tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		forwarded = append(forwarded, r)
		mu.Unlock()
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"done":true}`)), Request: r}, nil
	})
	cfg := DefaultConfig()
	cfg.Upstream = "http://127.0.0.1:11434"
	srv, err := New(Options{Config: cfg, Auth: defaultAuth(), Router: table, Limiter: newFakeLimiter(100, true), Transport: tr})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, raw string) {
		switch method {
		case "GET", "POST", "DELETE", "HEAD", "PUT":
		default:
			return
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil || u.Host != "" || u.Scheme != "" || strings.ContainsAny(raw, " \r\n\t#") {
			return // not something a client can put on a request line
		}
		mu.Lock()
		forwarded = forwarded[:0]
		mu.Unlock()
		req := &http.Request{Method: method, URL: u, RequestURI: raw, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Authorization": {"Bearer " + userKey}}, Host: "gw", RemoteAddr: "127.0.0.1:4242",
			Body: io.NopCloser(strings.NewReader(`{"model":"tiny","prompt":"x","stream":false}`))}
		srv.ServeHTTP(httptest.NewRecorder(), req)
		mu.Lock()
		defer mu.Unlock()
		for _, out := range forwarded {
			p := out.URL.Path
			if out.URL.RawPath != "" {
				t.Fatalf("%s %q forwarded with an escaped path %q", method, raw, out.URL.RawPath)
			}
			norm, err := route.Normalize(raw)
			if err != nil || norm != p {
				t.Fatalf("%s %q forwarded as %q, want the normalised %q (%v)", method, raw, p, norm, err)
			}
			d := table.Decide(out.Method, p)
			if d.Class != route.Listing && d.Class != route.Inference {
				t.Fatalf("%s %q reached the upstream as %s %q, class %v", method, raw, out.Method, p, d.Class)
			}
		}
	})
}
