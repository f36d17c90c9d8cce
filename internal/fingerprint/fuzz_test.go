package fingerprint

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzMatch feeds arbitrary bodies and header values through every
// catalogue matcher (gateways too), extractor and JSON decoder: none may
// panic; a challenge's scheme is one short token; a generate body filled
// with any model name and prompt is JSON.
func FuzzMatch(f *testing.F) {
	seeds := []string{
		"Ollama is running",
		`{"version":"0.12.3"}`,
		`{"models":[{"name":"a","size":1,"details":{"family":"llama"}}]}`,
		`{"object":"list","data":[{"id":"x","owned_by":"vllm","max_model_len":4096}]}`,
		`{"result":"KoboldCpp","version":"1.9","protected":false}`,
		`{"error":"Unexpected endpoint or method. (GET /x)"}`,
		`{"license":["a","b"],"modelfile":"SYSTEM \"\"\"x","system":7}`,
		`{"data":[[[[[[[[[[]]]]]]]]]]}`,
		`{"a":1}{"b":2}`,
		"\x00\xff\xfe",
		`[` + string(make([]byte, 64)) + `]`,
		`{"models":[null,1,"x",{"name":{"n":1}}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "llama.cpp", 200)
		f.Add([]byte(s), `Basic realm="x"`, 401)
	}
	cat, err := LoadCatalog()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, server string, status int) {
		r := &Response{Status: status, Header: http.Header{"Server": {server}, "Www-Authenticate": {server}}, Body: body}
		for gi := range cat.Gateways {
			for ri := range cat.Gateways[gi].Rules {
				matchAll(cat.Gateways[gi].Rules[ri].Match, r)
			}
		}
		if sc := challengeScheme(server); len(sc) > 32 || strings.ContainsAny(sc, " \t,\r\n") {
			t.Errorf("challenge scheme %q from %q: not one short token", sc, server)
		}
		for pi := range cat.Products {
			if g := cat.Products[pi].Generate; g != nil {
				if req := g.request(server, string(body)); !json.Valid([]byte(req.Body)) {
					t.Errorf("%s generate body not JSON for model %q: %s", cat.Products[pi].ID, server, req.Body)
				}
				_ = replyText(g, r)
			}
		}
		for pi := range cat.Products {
			p := &cat.Products[pi]
			for ri := range p.Rules {
				for ci := range p.Rules[ri].Checks {
					matchAll(p.Rules[ri].Checks[ci].Match, r)
				}
			}
			for ei := range p.Version {
				_ = p.Version[ei].extract(r)
			}
			if p.Auth != nil {
				_ = decideAuth(p.Auth, r)
			}
		}
		decodeOllamaList(body)
		if sh, ok := decodeOllamaShow(body); ok {
			_ = modelfileSystem(string(sh.Modelfile))
		}
		decodeOpenAIModels(body)
		_ = modelfileSystem(string(body))
		_ = snippet(body, 40)
	})
}
