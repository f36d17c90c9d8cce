package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/ollamatest"
)

// ollamaAnswer is one generate or chat answer: its Content-Type and its
// JSON objects (one, or one per NDJSON line).
type ollamaAnswer struct {
	status int
	ctype  string
	chunks []map[string]any
}

func postOllama(t *testing.T, base, path, body string) ollamaAnswer {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := ollamaAnswer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type")}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: line %q is not JSON: %v", path, body, sc.Text(), err)
		}
		a.chunks = append(a.chunks, m)
	}
	return a
}

// shape is the sorted "key:type" list of a JSON object, nested objects
// included (message.role:string, ...).
func shape(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		typ := "?"
		switch x := v.(type) {
		case string:
			typ = "string"
		case float64:
			typ = "number"
		case bool:
			typ = "bool"
		case []any:
			typ = "array"
		case nil:
			typ = "null"
		case map[string]any:
			typ = "object"
			out = append(out, shape(x, prefix+k+".")...)
		}
		out = append(out, prefix+k+":"+typ)
	}
	sort.Strings(out)
	return out
}

// TestOllamaGenerateMatchesRealOllama sends the same generate and chat
// requests, streamed and not, to a real Ollama 0.6.8 and to the lab's
// Ollama persona, and compares the answers' shapes: Content-Type, the
// fields (and their JSON types) of the token chunks and of the final
// chunk — eval_count, prompt_eval_count and the durations that metering
// reads among them.
func TestOllamaGenerateMatchesRealOllama(t *testing.T) {
	real := ollamatest.Start(t)
	real.CreateModel(t, "tiny", "You are terse.")

	p := goldenPersona(StackOllama, false)
	p.Version = ollamatest.WantVersion
	labSrv := httptest.NewServer(Handler(p, nil))
	defer labSrv.Close()
	labModel := p.Models[0].Name

	for _, tc := range []struct {
		path, body string
	}{
		{"/api/generate", `{"model":%q,"prompt":"Say hi.","options":{"num_predict":3}}`},
		{"/api/generate", `{"model":%q,"prompt":"Say hi.","stream":false,"options":{"num_predict":3}}`},
		{"/api/chat", `{"model":%q,"messages":[{"role":"user","content":"Say hi."}],"options":{"num_predict":3}}`},
		{"/api/chat", `{"model":%q,"messages":[{"role":"user","content":"Say hi."}],"stream":false,"options":{"num_predict":3}}`},
		{"/api/generate", `{"model":%q}`},
		{"/api/chat", `{"model":%q,"messages":[]}`},
	} {
		name := tc.path + " " + tc.body
		t.Run(name, func(t *testing.T) {
			want := postOllama(t, real.URL, tc.path, fmt.Sprintf(tc.body, "tiny"))
			got := postOllama(t, labSrv.URL, tc.path, fmt.Sprintf(tc.body, labModel))
			if want.status != http.StatusOK || got.status != want.status {
				t.Fatalf("status: lab %d, real Ollama %d", got.status, want.status)
			}
			if got.ctype != want.ctype {
				t.Errorf("Content-Type: lab %q, real Ollama %q", got.ctype, want.ctype)
			}
			if len(want.chunks) == 0 || len(got.chunks) == 0 {
				t.Fatalf("no answer: lab %d chunks, real %d", len(got.chunks), len(want.chunks))
			}
			wf, gf := want.chunks[len(want.chunks)-1], got.chunks[len(got.chunks)-1]
			if ws, gs := shape(wf, ""), shape(gf, ""); !slices.Equal(ws, gs) {
				t.Errorf("final chunk fields differ:\n  lab:  %v\n  real: %v", gs, ws)
			}
			if len(want.chunks) > 1 {
				if len(got.chunks) < 2 {
					t.Fatalf("real Ollama streamed %d chunks, the lab %d", len(want.chunks), len(got.chunks))
				}
				if ws, gs := shape(want.chunks[0], ""), shape(got.chunks[0], ""); !slices.Equal(ws, gs) {
					t.Errorf("token chunk fields differ:\n  lab:  %v\n  real: %v", gs, ws)
				}
			}
			// What a meter bills: the lab's counts must hold together.
			if n, ok := gf["eval_count"].(float64); ok {
				tokens := len(got.chunks) - 1
				if tokens > 0 && int(n) != tokens {
					t.Errorf("lab eval_count %v, but it streamed %d token chunks", n, tokens)
				}
				if n > 3 {
					t.Errorf("lab eval_count %v past num_predict 3", n)
				}
			}
		})
	}
}
