package meter

import "testing"

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
