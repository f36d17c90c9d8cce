package meter

import (
	"io"
	"strings"
	"testing"
)

func TestRequestText(t *testing.T) {
	for _, tt := range []struct{ name, body, want string }{
		{"ollama generate", `{"model":"m","system":"be brief","prompt":"hi there"}`, "system: be brief\nhi there"},
		{"chat with parts and an image",
			`{"messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"assistant","content":"ok"}]}`,
			"system: sys\nuser: look\nassistant: ok"},
		{"ollama images field is ignored", `{"prompt":"p","images":["iVBORw0KGgo="]}`, "p"},
		{"data URL string", `{"messages":[{"role":"user","content":"data:image/png;base64,AAAA"}]}`, ""},
		{"legacy prompt list", `{"prompt":["a","b"]}`, "a\nb"},
		{"embeddings input", `{"model":"e","input":"embed me"}`, "embed me"},
		{"not JSON", `prompt=hi`, "prompt=hi"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := RequestText([]byte(tt.body)); got != tt.want {
				t.Errorf("RequestText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResponseText(t *testing.T) {
	ollamaStream := RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate, Stream: true}
	ollamaChat := RequestInfo{Kind: KindOllama, Endpoint: EndpointChat, Stream: true}
	openaiStream := RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true}
	openaiPlain := RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat}
	for _, tt := range []struct {
		name string
		info RequestInfo
		body string
		want string
	}{
		{"ollama generate stream", ollamaStream,
			"{\"response\":\"Hel\",\"done\":false}\n{\"response\":\"lo\",\"done\":false}\n{\"response\":\"\",\"done\":true,\"eval_count\":2}\n", "Hello"},
		{"ollama chat stream", ollamaChat,
			"{\"message\":{\"role\":\"assistant\",\"content\":\"a\"}}\n{\"message\":{\"role\":\"assistant\",\"content\":\"b\"},\"done\":true}\n", "ab"},
		{"openai stream with usage and DONE", openaiStream,
			"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"completion_tokens\":1}}\n\ndata: [DONE]\n\n", "x"},
		{"openai non-streaming", openaiPlain,
			`{"choices":[{"message":{"role":"assistant","content":"whole answer"}}],"usage":{"completion_tokens":2}}`, "whole answer"},
		{"gateway error event is not model text", ollamaStream,
			"{\"response\":\"a\"}\n{\"error\":\"token budget exhausted\"}\n", "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResponseText(tt.info, []byte(tt.body)); got != tt.want {
				t.Errorf("ResponseText = %q, want %q", got, tt.want)
			}
		})
	}
}

// WithText hands the decoded text of every relayed event to the watch,
// for Ollama lines and OpenAI events, without allocating per event.
func TestWithText(t *testing.T) {
	for _, tc := range []struct {
		name string
		info RequestInfo
		in   string
		want []string
	}{
		{"ollama", RequestInfo{Kind: KindOllama, Endpoint: EndpointGenerate, Stream: true, Choices: 1},
			`{"response":"Hello"}` + "\n" + `{"response":" w\u00f6rld\n","done":false}` + "\n" +
				`{"message":{"role":"assistant","content":"\ud83d\ude00 \"q\""}}` + "\n" + `{"response":"","done":true,"eval_count":3}` + "\n",
			[]string{"Hello", " wörld\n", "😀 \"q\""}},
		{"openai", RequestInfo{Kind: KindOpenAI, Endpoint: EndpointChat, Stream: true, Choices: 1},
			"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
				"data: {\"choices\":[{\"index\":0,\"text\":\"a\\tb\"},{\"index\":1,\"delta\":{\"reasoning_content\":\"r\"}}]}\n\n" +
				"data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\ndata: [DONE]\n\n",
			[]string{"Hi", "a\tbr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			m := NewMeter(tc.info, Unlimited, io.Discard, nil, WithText(func(b []byte) { got = append(got, string(b)) }))
			if _, err := m.Write([]byte(tc.in)); err != nil {
				t.Fatal(err)
			}
			m.Close()
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("text %q, want %q", got, tc.want)
			}
			if raceEnabled {
				return
			}
			var sink int
			m2 := NewMeter(tc.info, Unlimited, io.Discard, nil, WithText(func(b []byte) { sink += len(b) }))
			line := []byte(tc.in[:strings.Index(tc.in, "\n")+1])
			if tc.info.Kind == KindOpenAI {
				line = []byte(tc.in[:strings.Index(tc.in, "\n\n")+2])
			}
			m2.Write(line)
			if n := testing.AllocsPerRun(200, func() { m2.Write(line) }); n > 0 {
				t.Errorf("%.1f allocations per event with a text watch", n)
			}
		})
	}
}
