package meter

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzInfo picks the request a fuzzed stream answers.
func fuzzInfo(sel byte) RequestInfo {
	switch sel % 3 {
	case 0:
		return RequestInfo{Kind: KindOllama, Endpoint: EndpointChat, Stream: true, Model: "m", Choices: 1}
	case 1:
		return RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true, Model: "m", Choices: 1}
	default:
		return RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true, Model: "m", Choices: 1, InjectedUsage: true}
	}
}

// FuzzMeter feeds arbitrary upstream bytes through a meter: it must not
// panic, must relay only whole upstream events (in order), and the client
// must never receive more content-bearing chunks than the budget allows,
// as judged by an independent, simpler reading of what the client got.
func FuzzMeter(f *testing.F) {
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".in") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		sel := byte(0)
		if bytes.HasPrefix(b, []byte("data:")) || bytes.HasPrefix(b, []byte(":")) {
			sel = 1
		}
		f.Add(b, sel, uint8(2), uint8(0))
		f.Add(b, sel+1, uint8(0), uint8(3))
	}
	f.Add([]byte("{\"response\":\"a\"}\n{\"Response\":\"b\"}\n{\"message\":{\"content\":\"c\"}}\n"), byte(0), uint8(1), uint8(1))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}},{\"text\":\"b\"}]}\n\ndata: [DONE]\n\n"), byte(1), uint8(1), uint8(0))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"completion_tokens\":99}}\n\ndata: x\n\n"), byte(2), uint8(3), uint8(2))

	f.Fuzz(func(t *testing.T, in []byte, sel byte, budget8 uint8, step8 uint8) {
		info := fuzzInfo(sel)
		budget := int64(budget8 % 8)
		rec := &recorder{}
		m := NewMeter(info, budget, rec, rec.flush, WithMaxLine(512))
		step := int(step8%16) + 1
		rest := in
		for len(rest) > 0 {
			n := min(step, len(rest))
			if _, err := m.Write(rest[:n]); err != nil {
				break
			}
			rest = rest[n:]
		}
		m.Close()
		u := m.Result()
		out := rec.all.Bytes()

		relayed := out
		if u.Truncated {
			var ok bool
			if relayed, ok = cutMeterError(info, out); !ok {
				t.Fatalf("truncated stream does not end with the meter's error event: %q", out)
			}
		}
		if !info.InjectedUsage && !bytes.HasPrefix(in, relayed) {
			t.Fatalf("client got bytes that are not a prefix of the upstream body:\nin  %q\nout %q", in, relayed)
		}
		if len(relayed) > len(in) {
			t.Fatalf("client got %d bytes of upstream content, upstream sent %d", len(relayed), len(in))
		}
		if c := oracleContent(info, relayed); c > budget {
			t.Fatalf("client got %d content chunks with a budget of %d:\n%q", c, budget, relayed)
		}
		if !u.FromUpstream && u.Completion > budget {
			t.Fatalf("billed estimate %d exceeds budget %d", u.Completion, budget)
		}
		if u.Completion < 0 || u.Prompt < 0 {
			t.Fatalf("negative usage %+v", u)
		}
	})
}

// cutMeterError removes the meter's final error event from out.
func cutMeterError(info RequestInfo, out []byte) ([]byte, bool) {
	if info.Kind == KindOllama {
		body := bytes.TrimSuffix(out, []byte("\n"))
		i := bytes.LastIndexByte(body, '\n')
		last := body[i+1:]
		var e struct {
			Error string `json:"error"`
			Done  bool   `json:"done"`
		}
		if json.Unmarshal(last, &e) != nil || e.Error == "" || !e.Done {
			return nil, false
		}
		return out[:i+1], true
	}
	const done = "\n\ndata: [DONE]\n\n"
	if !bytes.HasSuffix(out, []byte(done)) {
		return nil, false
	}
	body := out[:len(out)-len(done)]
	i := bytes.LastIndex(body, []byte("data: {\"error\":"))
	if i < 0 {
		return nil, false
	}
	return out[:i], true
}

// oracleContent counts what a client would see as generated content: per
// NDJSON line, 1 if it has a non-empty response/thinking/message content
// (or is not JSON); per SSE event, the choices with a non-empty delta
// content/reasoning or text (or 1 if the data is not JSON).
func oracleContent(info RequestInfo, out []byte) int64 {
	var n int64
	nonEmptyValue := func(v any) bool {
		switch v := v.(type) {
		case nil:
			return false
		case string:
			return v != ""
		case []any:
			return len(v) > 0
		case map[string]any:
			return len(v) > 0
		}
		return true
	}
	if info.Kind == KindOllama {
		for _, line := range strings.Split(string(out), "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			var v any
			dec := json.NewDecoder(strings.NewReader(line))
			dec.UseNumber() // see the SSE case below
			if dec.Decode(&v) != nil || dec.More() {
				n++
				continue
			}
			obj, ok := v.(map[string]any)
			if !ok {
				if v != nil {
					n++
				}
				continue
			}
			msg, _ := obj["message"].(map[string]any)
			if nonEmptyValue(obj["response"]) || nonEmptyValue(obj["thinking"]) ||
				(msg != nil && (nonEmptyValue(msg["content"]) || nonEmptyValue(msg["thinking"]) || nonEmptyValue(msg["tool_calls"]))) {
				n++
			}
		}
		return n
	}
	var data []string
	hasData := false
	event := func() {
		defer func() { data, hasData = nil, false }()
		if !hasData {
			return
		}
		d := strings.Join(data, "\n")
		if strings.TrimSpace(d) == "[DONE]" {
			return
		}
		// UseNumber: a syntactically valid number too large for a float64
		// (e.g. 17e5456107) is still JSON, not text a client would show.
		var v any
		dec := json.NewDecoder(strings.NewReader(d))
		dec.UseNumber()
		if dec.Decode(&v) != nil || dec.More() {
			n++
			return
		}
		obj, ok := v.(map[string]any)
		if !ok {
			if v != nil {
				n++
			}
			return
		}
		choices, _ := obj["choices"].([]any)
		for _, c := range choices {
			cm, _ := c.(map[string]any)
			delta, _ := cm["delta"].(map[string]any)
			if nonEmptyValue(cm["text"]) || (delta != nil && (nonEmptyValue(delta["content"]) || nonEmptyValue(delta["reasoning_content"]) || nonEmptyValue(delta["tool_calls"]))) {
				n++
			}
		}
	}
	lines := strings.Split(string(out), "\n")
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			if i < len(lines)-1 {
				event()
			}
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		if name == "data" {
			data = append(data, strings.TrimPrefix(value, " "))
			hasData = true
		}
	}
	event()
	return n
}

// FuzzPrepareRequest: arbitrary bodies never panic; an accepted body is
// re-prepared to itself, and both a case-insensitive Go reading (as
// Ollama's server does) and an exact-key reading (as Python servers do)
// see the stream flag PrepareRequest reported and a completion limit
// within the budget.
func FuzzPrepareRequest(f *testing.F) {
	seeds := []string{
		`{"model":"m","prompt":"hi"}`,
		`{"model":"m","options":{"num_predict":-1}}`,
		`{"model":"m","stream":false,"options":{"num_predict":1e9}}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":false},"max_tokens":99999,"n":3}`,
		`{"model":"m","max_completion_tokens":5,"n_predict":-1}`,
		`{"Stream":true,"stream":false}`,
		`{"options":{"NUM_PREDICT":-1,"num_predict":3}}`,
		`{"model":"m","messages":[{"role":"user","content":"x","images":["data:..."]}]}`,
		`{"max_tokens":1.5,"best_of":2.5}`,
		`{"model":"m","prompt":["a","b","c"],"n":2,"best_of":3,"max_tokens":50}`,
		`{"prompt":[[1,2],[3]],"n_cmpl":2}`,
		`{}`,
		`{"a":`,
	}
	routes := []struct{ kind, route string }{
		{KindOllama, "/api/generate"}, {KindOllama, "/api/chat"}, {KindOllama, "/api/embed"},
		{KindOpenAI, "/v1/chat/completions"}, {KindOpenAI, "/v1/completions"}, {KindOpenAI, "/v1/embeddings"},
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i), int16(100))
		f.Add([]byte(s), uint8(i+3), int16(-1))
	}
	f.Fuzz(func(t *testing.T, body []byte, routeSel uint8, max16 int16) {
		r := routes[int(routeSel)%len(routes)]
		maxTokens := int64(max16)
		out, info, err := PrepareRequest(r.kind, r.route, body, maxTokens)
		if err != nil {
			if out != nil {
				t.Fatalf("body returned with error %v", err)
			}
			return
		}
		again, info2, err := PrepareRequest(r.kind, r.route, out, maxTokens)
		if err != nil {
			t.Fatalf("rewritten body %s refused: %v", out, err)
		}
		if !bytes.Equal(again, out) || info2.Stream != info.Stream || info2.MaxTokens != info.MaxTokens || info2.Model != info.Model {
			t.Fatalf("not idempotent:\n%s\n%s\n%+v\n%+v", out, again, info, info2)
		}
		if info.Endpoint == EndpointEmbed {
			return
		}

		// Case-insensitive reading, as Go servers (Ollama) decode.
		var goReq struct {
			Model   string         `json:"model"`
			Stream  *bool          `json:"stream"`
			Options map[string]any `json:"options"`
			Max     *float64       `json:"max_tokens"`
		}
		if err := json.Unmarshal(out, &goReq); err != nil {
			t.Fatalf("rewritten body %s does not decode: %v", out, err)
		}
		if goReq.Model != info.Model {
			t.Fatalf("model %q, info says %q", goReq.Model, info.Model)
		}
		// Exact-key reading, as Python servers decode.
		var exact map[string]any
		if err := json.Unmarshal(out, &exact); err != nil {
			t.Fatal(err)
		}
		streamExact, _ := exact["stream"].(bool)

		switch r.kind {
		case KindOllama:
			goStream := goReq.Stream == nil || *goReq.Stream
			if goStream != info.Stream {
				t.Fatalf("Ollama would stream=%v, info says %v: %s", goStream, info.Stream, out)
			}
			if maxTokens > 0 {
				np, ok := goReq.Options["num_predict"].(float64)
				if !ok || np < 1 || np > float64(maxTokens) || np != math.Trunc(np) {
					t.Fatalf("num_predict %v outside [1,%d]: %s", goReq.Options["num_predict"], maxTokens, out)
				}
			}
		case KindOpenAI:
			if streamExact != info.Stream {
				t.Fatalf("stream=%v, info says %v: %s", streamExact, info.Stream, out)
			}
			if maxTokens > 0 {
				per := float64(maxTokens / info.Choices)
				for _, k := range []string{"max_tokens", "max_completion_tokens", "n_predict"} {
					v, present := exact[k]
					if !present && k != "max_tokens" {
						continue
					}
					f, ok := v.(float64)
					if !ok || f < 1 || f > per {
						t.Fatalf("%s = %v outside [1,%v]: %s", k, v, per, out)
					}
				}
				if goReq.Max == nil || *goReq.Max > per {
					t.Fatalf("Go reading of max_tokens %v > %v", goReq.Max, per)
				}
				// Independently: every sequence the upstream may generate
				// (prompts of a batch × n / best_of / n_cmpl) at max_tokens
				// each stays within the limit.
				seqs := 1.0
				for _, k := range []string{"n", "best_of", "n_cmpl"} {
					if f, ok := exact[k].(float64); ok && math.Ceil(f) > seqs {
						seqs = math.Ceil(f)
					}
				}
				if list, ok := exact["prompt"].([]any); ok && r.route == "/v1/completions" && len(list) > 0 {
					if _, ids := list[0].(float64); !ids {
						seqs *= float64(len(list))
					}
				}
				if mt, _ := exact["max_tokens"].(float64); mt*seqs > float64(maxTokens) {
					t.Fatalf("%v sequences × max_tokens %v exceed the limit %d: %s", seqs, mt, maxTokens, out)
				}
			}
			if info.Stream {
				so, _ := exact["stream_options"].(map[string]any)
				if so["include_usage"] != true {
					t.Fatalf("stream without include_usage: %s", out)
				}
			}
		}
	})
}

// FuzzFastOllamaChunk: wherever the allocation-free walk of a stream line
// answers, it answers exactly what decoding with encoding/json does.
func FuzzFastOllamaChunk(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","created_at":"t","response":" tok","done":false}`,
		`{"model":"m","response":"","done":true,"eval_count":20,"prompt_eval_count":7}`,
		`{"model":"m","message":{"role":"assistant","content":"hi"},"done":false}`,
		`{"message":{"role":"assistant","content":""},"done":true,"eval_count":3,"prompt_eval_count":null}`,
		`{"message":{"content":"","tool_calls":[{"function":{"name":"f"}}]}}`,
		`{"message":{"CONTENT":"x","content":""}}`,
		`{"message":"text"}`,
		`{"message":[]}`,
		`{"message":[1]}`,
		`{"Response":"x","RESPONSE":""}`,
		`{"done":true,"eval_count":1e400}`,
		`{"done":true,"eval_count":"12"}`,
		`{"done" : true , "eval_count" : 5 }`,
		`{"re\u0073ponse":"x"}`,
		`{"reſponse":"x"}`,
		`{"thinking":"a","done":false}`,
		`{"message":{"reasoning_content":"r"}}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":{"b":[{"c":"}"}]},"response":"\"}"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if !json.Valid(line) {
			return
		}
		n, u, ok := fastOllamaChunk(line)
		if !ok {
			return
		}
		wn, wu := decodeOllamaChunk(line)
		if n != wn || u != wu {
			t.Fatalf("line %q: fast walk says n=%d usage=%+v, encoding/json says n=%d usage=%+v", line, n, u, wn, wu)
		}
	})
}

// The fast walk must actually take the lines Ollama sends, or the hot path
// silently falls back to decoding.
func TestFastOllamaChunkTakesOllamaLines(t *testing.T) {
	for _, tt := range []struct {
		line string
		n    int64
		u    upstreamUsage
	}{
		{`{"model":"m","created_at":"2026-11-23T18:35:05Z","response":" tok","done":false}`, 1, upstreamUsage{}},
		{`{"model":"m","created_at":"t","message":{"role":"assistant","content":"hi"},"done":false}`, 1, upstreamUsage{}},
		{`{"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":5,"prompt_eval_count":7,"eval_count":20}`, 0,
			upstreamUsage{final: true, hasCompletion: true, completion: 20, hasPrompt: true, prompt: 7}},
		{`{"model":"m","message":{"role":"assistant","content":""},"done":true,"eval_count":3}`, 0,
			upstreamUsage{final: true, hasCompletion: true, completion: 3}},
	} {
		n, u, ok := fastOllamaChunk([]byte(tt.line))
		if !ok || n != tt.n || u != tt.u {
			t.Errorf("%s: got n=%d usage=%+v ok=%v, want n=%d usage=%+v ok=true", tt.line, n, u, ok, tt.n, tt.u)
		}
	}
}

// FuzzFastOpenAIChunk: wherever the allocation-free walk of an SSE event's
// data answers, it answers exactly what decoding with encoding/json does.
func FuzzFastOpenAIChunk(f *testing.F) {
	for _, s := range []string{
		`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`,
		`{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":12,"total_tokens":19}}`,
		`{"choices":[{"text":"a"},{"text":""},{"text":"b"}],"usage":null}`,
		`{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}`,
		`{"choices":[{"delta":{"reasoning_content":"r"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`,
		`{"choices":[{"text":"a","text":""}]}`,
		`{"choices":[{"delta":"x"}]}`, `{"choices":[{"message":[1]}]}`, `{"choices":["x",null,1]}`,
		`{"choices":{}}`, `{"choices":null,"usage":{}}`, `{"usage":[1]}`, `{"usage":{"completion_tokens":"5"}}`,
		`{"Choices":[{"text":"a"}]}`, `{"choices":[{"TEXT":"a"}]}`, `{"choices":[{"delta":{"Content":"a"}}]}`,
		`{"usage":{"Completion_Tokens":5}}`, `{"choices":[{"delta":{"content":"a","content":""}}]}`,
		`{"usage":{"completion_tokens":1e400,"prompt_tokens":-3}}`, `{"choi\u0063es":[{"text":"a"}]}`,
		`{}`, `[]`, `null`, `"x"`, `1`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		n, u, uo, ok := fastOpenAIChunk(data)
		if !ok {
			return
		}
		wn, wu, wuo := decodeOpenAIChunk(data)
		if n != wn || u != wu || uo != wuo {
			t.Fatalf("data %q: fast walk says n=%d usage=%+v only=%v, encoding/json says n=%d usage=%+v only=%v", data, n, u, uo, wn, wu, wuo)
		}
	})
}

// The meter's per-line path allocates nothing once warm, for Ollama lines
// and for OpenAI events alike (the hot path of every relayed stream).
func TestMeterFastPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, tc := range []struct {
		name  string
		info  RequestInfo
		chunk string
	}{
		{"ollama", RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate, Stream: true, Choices: 1},
			`{"model":"m","created_at":"2026-11-23T19:27:01.1Z","response":" tok","done":false}` + "\n" +
				`{"model":"m","created_at":"2026-11-23T19:27:01.1Z","response":" tik","done":false}` + "\n"},
		{"openai", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true, Choices: 1},
			`data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}` + "\n\n" +
				`data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" tik"},"finish_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":2}}` + "\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMeter(tc.info, Unlimited, io.Discard, func() {})
			chunk := []byte(tc.chunk)
			m.Write(chunk)
			if n := testing.AllocsPerRun(500, func() { m.Write(chunk) }); n > 0 {
				t.Errorf("%.1f allocations per two relayed events", n)
			}
		})
	}
}
